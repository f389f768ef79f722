/** A minimal typed event emitter (no dependency, works in browsers and Node). */

type Listener<T> = (value: T) => void;

/** Event emitter keyed by an event map. */
export class Emitter<E> {
  // Stored untyped so that an emitter of a narrower event map (a Subscription<'alerts'>) stays
  // assignable to the wider one (Subscription<Channel>); `on` and `emit` keep the types.
  private readonly listeners = new Map<keyof E, Listener<never>[]>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    const list = this.listeners.get(event);
    if (list) list.push(listener);
    else this.listeners.set(event, [listener]);
    return () => this.off(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    const list = this.listeners.get(event);
    if (list) this.listeners.set(event, list.filter((l) => l !== listener));
  }

  /**
   * Calls every listener. A listener that throws must neither stop the others nor corrupt the
   * client's state halfway through a frame, so its error is rethrown on its own task, where the
   * runtime reports it (the browser console, Node's `uncaughtException`) instead of being lost.
   */
  protected emit<K extends keyof E>(event: K, value: E[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const l of list) {
      try {
        (l as Listener<E[K]>)(value);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
