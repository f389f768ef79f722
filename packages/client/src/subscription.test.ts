/**
 * The subscription's position bookkeeping, fed the frames the server sends (shapes as rendered by
 * packages/protocol's valtronics codec): duplicates dropped by offset, replays counted, gaps and new
 * epochs reported, positions never moving back.
 */
import { describe, expect, it } from 'vitest';
import { Subscription } from './subscription.js';
import type { RecoveryEvent } from './types.js';

function make() {
  const sub = new Subscription('alerts', { device_id: 1 }, () => {});
  const got: number[] = [];
  const recoveries: RecoveryEvent[] = [];
  sub.on('update', (u) => got.push(u.offset));
  sub.on('recovered', (r) => recoveries.push(r));
  const update = (offset: number, epoch = 'e1') => sub.update({ type: 'alert', channel: 'alerts', offset, epoch });
  return { sub, got, recoveries, update };
}

describe('Subscription', () => {
  it('delivers nothing before the server confirms it, then starts after the answered position', () => {
    const { sub, got, update } = make();
    update(5);
    sub.subscribed({ epoch: 'e1', offset: 10 }, null, false);
    update(10);
    update(11);
    update(13);
    expect(got).toEqual([11, 13]);
    expect(sub.position).toEqual({ epoch: 'e1', offset: 13 });
    expect(sub.duplicatesDropped).toBe(1);
  });

  it('drops duplicates by offset', () => {
    const { sub, got, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 0 }, null, false);
    for (const o of [1, 2, 2, 3, 1, 4, 4]) update(o);
    expect(got).toEqual([1, 2, 3, 4]);
    expect(sub.duplicatesDropped).toBe(3);
  });

  it('recovered: replays after the asked position, then moves to the top the server answered', () => {
    const { sub, got, recoveries, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 20, recovered: true, replayed: 3 }, { epoch: 'e1', offset: 10 }, true);
    expect(recoveries).toEqual([{ recovered: true, replayed: 3, epochChanged: false, from: { epoch: 'e1', offset: 10 }, position: { epoch: 'e1', offset: 10 } }]);
    update(9); // an at-least-once replay from an older checkpoint: dropped, still counted as replayed
    update(12);
    expect(sub.position).toEqual({ epoch: 'e1', offset: 12 });
    update(15);
    // The filtered-out offsets 16..20 are accounted for once the replay is complete.
    expect(sub.position).toEqual({ epoch: 'e1', offset: 20 });
    update(21);
    expect(got).toEqual([12, 15, 21]);
  });

  it('recovered with nothing to replay: at the top at once', () => {
    const { sub } = make();
    sub.subscribed({ epoch: 'e1', offset: 30, recovered: true, replayed: 0 }, { epoch: 'e1', offset: 10 }, false);
    expect(sub.position).toEqual({ epoch: 'e1', offset: 30 });
  });

  it('not recovered: reported, and delivery continues from the top', () => {
    const { sub, got, recoveries, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 500, recovered: false, replayed: 0 }, { epoch: 'e1', offset: 10 }, true);
    expect(recoveries).toEqual([{ recovered: false, replayed: 0, epochChanged: false, from: { epoch: 'e1', offset: 10 }, position: { epoch: 'e1', offset: 500 } }]);
    update(501);
    expect(got).toEqual([501]);
  });

  it('not recovered because the epoch changed: epochChanged', () => {
    const { sub, recoveries } = make();
    sub.subscribed({ epoch: 'e2', offset: 1, recovered: false, replayed: 0 }, { epoch: 'e1', offset: 10 }, true);
    expect(recoveries[0]).toMatchObject({ recovered: false, epochChanged: true, position: { epoch: 'e2', offset: 1 } });
  });

  it('a live update of another epoch is delivered and reported as a possible gap', () => {
    const { sub, got, recoveries, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 10 }, null, false);
    update(11);
    update(1, 'e2');
    update(2, 'e2');
    expect(got).toEqual([11, 1, 2]);
    expect(recoveries).toEqual([{ recovered: false, replayed: 0, epochChanged: true, from: { epoch: 'e1', offset: 11 }, position: { epoch: 'e2', offset: 1 } }]);
  });

  it('a position never moves back: a second answer on one connection does not deliver twice', () => {
    const { sub, got, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 20, recovered: true, replayed: 2 }, { epoch: 'e1', offset: 10 }, false);
    update(12);
    update(14);
    sub.subscribed({ epoch: 'e1', offset: 20, recovered: true, replayed: 2 }, { epoch: 'e1', offset: 10 }, false);
    update(12);
    update(14);
    expect(got).toEqual([12, 14]);
    expect(sub.position).toEqual({ epoch: 'e1', offset: 20 });
  });

  it('after a reset (connection lost) nothing is delivered until confirmed again; the position stays', () => {
    const { sub, got, update } = make();
    sub.subscribed({ epoch: 'e1', offset: 10 }, null, false);
    update(11);
    sub.reset();
    update(12);
    expect(got).toEqual([11]);
    expect(sub.position).toEqual({ epoch: 'e1', offset: 11 });
    expect(sub.active).toBe(false);
  });

  it('a channel without positions (system) is delivered as it comes', () => {
    const sub = new Subscription('system', {}, () => {});
    const got: number[] = [];
    sub.on('update', (u) => got.push(u.offset));
    sub.subscribed({}, null, false);
    sub.update({ type: 'system_status_update', channel: 'system', offset: 3, epoch: 'n1' });
    sub.update({ type: 'system_status_update', channel: 'system', offset: 3, epoch: 'n2' });
    expect(got).toEqual([3, 3]);
    expect(sub.position).toBeNull();
    expect(sub.confirmed).toBe(false);
  });

  it('unsubscribe stops delivery and detaches once', () => {
    let detached = 0;
    const sub = new Subscription('alerts', {}, () => detached++);
    const got: number[] = [];
    sub.on('update', (u) => got.push(u.offset));
    sub.subscribed({ epoch: 'e1', offset: 0 }, null, false);
    sub.unsubscribe();
    sub.unsubscribe();
    sub.update({ offset: 1, epoch: 'e1' });
    expect(got).toEqual([]);
    expect(detached).toBe(1);
    expect(sub.closed).toBe(true);
  });
});
