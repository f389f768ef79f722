/**
 * The admin page: a login form, then panels polling the edge's admin routes (nodes and their live
 * counters, channels, rate limits, the session service), a channel watcher on the client SDK and a
 * test publisher. Every panel has a fixed or minimum size, so data arriving never moves the layout.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { SwitchboardClient, type Channel, type Subscription } from '@switchboard/client';
import type uPlot from 'uplot';
import { ApiError, call, forgetLogin, logIn, savedLogin, wsUrl, type Login } from './api.js';
import { Chart } from './chart.js';
import {
  formatRate,
  formatSeconds,
  nodeRates,
  rate,
  rejectionTotals,
  type NodeRates,
  type NodeStats,
  type StatsAnswer,
} from './stats.js';

const POLL_MS = 1000;
/** Points kept per chart: two minutes at one a second. */
const HISTORY = 120;

/** The page: login until there is a login, then the dashboard. */
export function App() {
  const [login, setLogin] = useState<Login | null>(savedLogin);
  const [notice, setNotice] = useState<string | null>(null);
  const expired = useCallback((why: string) => {
    forgetLogin();
    setLogin(null);
    setNotice(why);
  }, []);
  // Stable, so the panels' polling effects do not restart when the App re-renders.
  const onLogout = useCallback(() => expired('Logged out.'), [expired]);
  const onUnauthorized = useCallback(
    () => expired('The edge refused the admin session: log in again.'),
    [expired],
  );
  useEffect(() => {
    if (!login) return undefined;
    const t = setTimeout(
      () => expired('Your admin session expired: log in again.'),
      Math.max(0, login.expiresAt - Date.now() - 5000),
    );
    return () => clearTimeout(t);
  }, [login, expired]);
  return login ? (
    <Dashboard login={login} onLogout={onLogout} onUnauthorized={onUnauthorized} />
  ) : (
    <LoginForm
      notice={notice}
      onLogin={(l) => {
        setNotice(null);
        setLogin(l);
      }}
    />
  );
}

function LoginForm({ notice, onLogin }: { notice: string | null; onLogin: (l: Login) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('admin-token') as HTMLInputElement;
    setBusy(true);
    setError(null);
    logIn(input.value.trim()).then(
      (l) => {
        input.value = '';
        onLogin(l);
      },
      (err: unknown) => {
        setBusy(false);
        setError(
          err instanceof ApiError && err.status === 401
            ? 'That admin token was refused.'
            : `Could not log in: ${String(err instanceof Error ? err.message : err)}`,
        );
      },
    );
  };
  return (
    <main class="login">
      <h1>Switchboard admin</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label for="admin-token">Admin token</label>
        <input
          id="admin-token"
          name="admin-token"
          type="password"
          autocomplete="off"
          required
          spellcheck={false}
        />
        <p id="login-help" class="help">
          The session service's admin token (<code>SWITCHBOARD_ADMIN_TOKEN</code>). It is exchanged for a
          15-minute admin session kept in this tab only.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p class="message" role="alert">
          {error ?? notice ?? ''}
        </p>
      </form>
    </main>
  );
}

interface Series {
  t: number[];
  /** Rejections per second by `dialect rule`. */
  rejections: Map<string, (number | null)[]>;
  byNode: Map<
    string,
    { d: (number | null)[]; p: (number | null)[]; f: (number | null)[]; l: (number | null)[] }
  >;
}

interface Polled {
  stats: StatsAnswer | null;
  rates: Map<string, NodeRates>;
  series: Series;
  /** Rejections per second by `dialect rule` over the last poll interval. */
  recent: Map<string, number>;
  error: string | null;
}

function useStats(login: Login, onUnauthorized: () => void): Polled {
  const [state, setState] = useState<Polled>({
    stats: null,
    rates: new Map(),
    series: { t: [], rejections: new Map(), byNode: new Map() },
    recent: new Map(),
    error: null,
  });
  const prev = useRef<StatsAnswer | null>(null);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const series: Series = { t: [], rejections: new Map(), byNode: new Map() };
    let lastPoll = 0;
    const tick = () => {
      call<StatsAnswer>(login, '/admin/stats')
        .then(
          (s) => {
            if (stop) return;
            const before = new Map((prev.current?.nodes ?? []).map((n) => [n.node, n]));
            const rates = new Map<string, NodeRates>();
            for (const n of s.nodes) {
              const b = before.get(n.node);
              if (b) rates.set(n.node, nodeRates(b, n));
            }
            const beforeTotals = rejectionTotals(prev.current?.nodes ?? []);
            const recent = new Map<string, number>();
            const now = Date.now();
            const seconds = (now - lastPoll) / 1000;
            lastPoll = now;
            // The first poll has nothing to compare with: its totals are history, not news.
            for (const [k, v] of rejectionTotals(s.nodes))
              recent.set(k, prev.current ? rate(beforeTotals.get(k)?.total ?? 0, v.total, seconds) : 0);
            if (prev.current) {
              series.t.push(Date.now() / 1000);
              for (const n of s.nodes) {
                if (!series.byNode.has(n.node))
                  series.byNode.set(n.node, {
                    d: series.t.slice(1).map(() => null),
                    p: series.t.slice(1).map(() => null),
                    f: series.t.slice(1).map(() => null),
                    l: series.t.slice(1).map(() => null),
                  });
              }
              for (const k of recent.keys())
                if (!series.rejections.has(k))
                  series.rejections.set(
                    k,
                    series.t.slice(1).map(() => null),
                  );
              for (const [k, values] of series.rejections) values.push(recent.get(k) ?? 0);
              for (const [node, arrays] of series.byNode) {
                const r = rates.get(node);
                arrays.d.push(r ? r.deliveriesPerSec : null);
                arrays.p.push(r ? r.publishedPerSec : null);
                arrays.f.push(r?.fanoutP99 != null && Number.isFinite(r.fanoutP99) ? r.fanoutP99 : null);
                arrays.l.push(r?.busLagP99 != null && Number.isFinite(r.busLagP99) ? r.busLagP99 : null);
              }
              if (series.t.length > HISTORY) {
                series.t.shift();
                for (const values of series.rejections.values()) values.shift();
                for (const a of series.byNode.values())
                  for (const k of ['d', 'p', 'f', 'l'] as const) a[k].shift();
              }
            }
            prev.current = s;
            setState({
              stats: s,
              rates,
              series: {
                t: series.t.slice(),
                rejections: new Map(series.rejections),
                byNode: new Map(series.byNode),
              },
              recent,
              error: null,
            });
          },
          (err: unknown) => {
            if (stop) return;
            if (err instanceof ApiError && err.status === 401) onUnauthorized();
            else setState((old) => ({ ...old, error: String(err instanceof Error ? err.message : err) }));
          },
        )
        .finally(() => {
          if (!stop) timer = setTimeout(tick, POLL_MS);
        });
    };
    tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [login, onUnauthorized]);
  return state;
}

function Dashboard({
  login,
  onLogout,
  onUnauthorized,
}: {
  login: Login;
  onLogout: () => void;
  onUnauthorized: () => void;
}) {
  const polled = useStats(login, onUnauthorized);
  return (
    <>
      <header class="top">
        <h1>Switchboard admin</h1>
        <p class="where">
          Served by <strong>{login.node}</strong>
          {polled.stats
            ? ` · ${polled.stats.nodes.length} edge${polled.stats.nodes.length === 1 ? '' : 's'} answering`
            : ''}
        </p>
        <button type="button" onClick={onLogout}>
          Log out
        </button>
      </header>
      <main class="grid">
        <NodesPanel polled={polled} />
        <RateLimitPanel polled={polled} />
        <SessionPanel polled={polled} />
        <ChannelsPanel login={login} onUnauthorized={onUnauthorized} />
        <WatchPanel login={login} />
        <PublishPanel login={login} onUnauthorized={onUnauthorized} />
      </main>
    </>
  );
}

const sumValues = (o: Readonly<Record<string, number>>) => Object.values(o).reduce((a, b) => a + b, 0);
const pairs = (o: Readonly<Record<string, number>>) =>
  Object.entries(o)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '–';

function NodesPanel({ polled }: { polled: Polled }) {
  const nodes: readonly NodeStats[] = polled.stats?.nodes ?? [];
  const names = [...polled.series.byNode.keys()];
  const data = (k: 'd' | 'p' | 'f' | 'l'): uPlot.AlignedData => [
    polled.series.t,
    ...names.map((n) => polled.series.byNode.get(n)![k]),
  ];
  return (
    <section class="panel wide" aria-labelledby="nodes-h">
      <h2 id="nodes-h">Edges</h2>
      <p class="status" role="status">
        {polled.error
          ? `Stats unavailable: ${polled.error}`
          : polled.stats && polled.stats.missing.length > 0
            ? `Not answering: ${polled.stats.missing.join(', ')}`
            : ''}
      </p>
      <div class="table-box">
        <table id="nodes-table">
          <caption class="sr-only">Edges with their connections and live rates</caption>
          <thead>
            <tr>
              <th scope="col">Edge</th>
              <th scope="col" class="num">
                Connections
              </th>
              <th scope="col">By dialect</th>
              <th scope="col" class="num">
                Deliveries/s
              </th>
              <th scope="col" class="num">
                Publishes/s
              </th>
              <th scope="col" class="num">
                Fan-out p99
              </th>
              <th scope="col" class="num">
                Bus read lag p99
              </th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((n) => {
              const r = polled.rates.get(n.node);
              return (
                <tr key={n.node} data-node={n.node}>
                  <th scope="row">{n.node}</th>
                  <td class="num">{sumValues(n.connections)}</td>
                  <td>{pairs(n.connections)}</td>
                  <td class="num">{r ? formatRate(r.deliveriesPerSec) : '–'}</td>
                  <td class="num">{r ? formatRate(r.publishedPerSec) : '–'}</td>
                  <td class="num">{formatSeconds(r?.fanoutP99 ?? null)}</td>
                  <td class="num">{formatSeconds(r?.busLagP99 ?? null)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div class="charts">
        <Chart
          id="c-deliveries"
          title="Deliveries per second, by edge"
          names={names}
          data={data('d')}
          format={formatRate}
        />
        <Chart
          id="c-publishes"
          title="Publishes per second, by edge"
          names={names}
          data={data('p')}
          format={formatRate}
        />
        <Chart
          id="c-fanout"
          title="Fan-out latency p99 (each second), by edge"
          names={names}
          data={data('f')}
          format={formatSeconds}
        />
        <Chart
          id="c-lag"
          title="Bus read lag p99 (each second), by edge"
          names={names}
          data={data('l')}
          format={formatSeconds}
        />
      </div>
    </section>
  );
}

function RateLimitPanel({ polled }: { polled: Polled }) {
  const totals = [...rejectionTotals(polled.stats?.nodes ?? []).entries()].sort(
    (a, b) => b[1].total - a[1].total,
  );
  // Series in a stable order (first seen first), so colours do not swap.
  const names = [...polled.series.rejections.keys()];
  return (
    <section class="panel" aria-labelledby="rl-h">
      <h2 id="rl-h">Rate-limit rejections</h2>
      <div class="table-box short">
        <table id="rate-limits">
          <caption class="sr-only">Rejections by dialect and rule, across the edges</caption>
          <thead>
            <tr>
              <th scope="col">Dialect</th>
              <th scope="col">Rule</th>
              <th scope="col" class="num">
                Per second
              </th>
              <th scope="col" class="num">
                Since start
              </th>
            </tr>
          </thead>
          <tbody>
            {totals.length === 0 ? (
              <tr>
                <td colSpan={4}>None since the edges started.</td>
              </tr>
            ) : (
              totals.map(([key, t]) => {
                const recent = polled.recent.get(key) ?? 0;
                return (
                  <tr key={key} class={recent > 0 ? 'hot' : ''} data-rule={t.rule} data-dialect={t.dialect}>
                    <td>{t.dialect}</td>
                    <td>{t.rule}</td>
                    <td class="num">{formatRate(recent)}</td>
                    <td class="num">{t.total}</td>
                  </tr>
                );
              })
            )}
          </tbody>
        </table>
      </div>
      <Chart
        id="c-rejections"
        title="Rejections per second, by dialect and rule"
        names={names}
        data={[polled.series.t, ...names.map((n) => polled.series.rejections.get(n)!)]}
        format={formatRate}
      />
    </section>
  );
}

function SessionPanel({ polled }: { polled: Polled }) {
  const s = polled.stats?.session ?? null;
  const refused = (o: Readonly<Record<string, number>>) => sumValues(o) - (o.ok ?? 0);
  return (
    <section class="panel" aria-labelledby="session-h">
      <h2 id="session-h">Session service</h2>
      <p class="status" role="status">
        {polled.stats && !s ? 'The session service did not answer.' : ''}
      </p>
      <dl class="figures" id="session-stats">
        <div>
          <dt>Logins</dt>
          <dd>{s ? (s.logins.ok ?? 0) : '–'}</dd>
        </div>
        <div>
          <dt>Failed logins</dt>
          <dd>{s ? (s.logins.invalid_credentials ?? 0) + (s.logins.invalid_message ?? 0) : '–'}</dd>
        </div>
        <div>
          <dt>Lockouts</dt>
          <dd>{s ? (s.logins.locked_out ?? 0) : '–'}</dd>
        </div>
        <div>
          <dt>Admissions</dt>
          <dd>{s ? (s.admissions.ok ?? 0) : '–'}</dd>
        </div>
        <div>
          <dt>Admissions refused</dt>
          <dd>{s ? refused(s.admissions) : '–'}</dd>
        </div>
        <div>
          <dt>Sessions resumed</dt>
          <dd>{s ? (s.sessions.resumed ?? 0) : '–'}</dd>
        </div>
      </dl>
      <p class="help">Counted by the session service replica the edge reached, since it started.</p>
    </section>
  );
}

interface ChannelRow {
  channel: string;
  subscribers: number;
  nodes: Record<string, number>;
}

interface ChannelDetail {
  channel: string;
  subscribers: number;
  nodes: Record<string, number>;
  members: { node: string; host: string; port: number; writable: boolean }[];
}

function ChannelsPanel({ login, onUnauthorized }: { login: Login; onUnauthorized: () => void }) {
  const [prefix, setPrefix] = useState('');
  const [rows, setRows] = useState<{ items: ChannelRow[]; channels: number; subscriptions: number } | null>(
    null,
  );
  const [detail, setDetail] = useState<ChannelDetail | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = () => {
      const q = new URLSearchParams({ limit: '20' });
      if (prefix) q.set('prefix', prefix);
      const jobs: Promise<unknown>[] = [
        call<{ items: ChannelRow[]; channels: number; subscriptions: number }>(
          login,
          `/admin/channels?${q.toString()}`,
        ).then((r) => !stop && setRows(r)),
      ];
      if (selected)
        jobs.push(
          call<ChannelDetail>(login, `/admin/channels/${encodeURIComponent(selected)}?members=20`).then(
            (d) => !stop && setDetail(d),
            (err: unknown) => {
              if (err instanceof ApiError && err.code === 'unknown_channel') {
                if (!stop) setDetail({ channel: selected, subscribers: 0, nodes: {}, members: [] });
              } else throw err;
            },
          ),
        );
      Promise.all(jobs)
        .then(
          () => !stop && setError(null),
          (err: unknown) => {
            if (stop) return;
            if (err instanceof ApiError && err.status === 401) onUnauthorized();
            else setError(String(err instanceof Error ? err.message : err));
          },
        )
        .finally(() => {
          if (!stop) timer = setTimeout(tick, 2000);
        });
    };
    tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [login, prefix, selected, onUnauthorized]);
  return (
    <section class="panel wide" aria-labelledby="channels-h">
      <h2 id="channels-h">Channels</h2>
      <form class="row" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="channel-prefix">Channel prefix</label>
        <input
          id="channel-prefix"
          type="search"
          value={prefix}
          placeholder="valtronics:default:"
          onInput={(e) => setPrefix(e.currentTarget.value)}
        />
        <span class="status" role="status">
          {error
            ? `Unavailable: ${error}`
            : rows
              ? `${rows.channels} channels, ${rows.subscriptions} subscriptions`
              : ''}
        </span>
      </form>
      <div class="split">
        <div class="table-box">
          <table id="channels-table">
            <caption class="sr-only">Busiest channels by subscribers</caption>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col" class="num">
                  Subscribers
                </th>
                <th scope="col">Edges</th>
              </tr>
            </thead>
            <tbody>
              {(rows?.items ?? []).map((c) => (
                <tr key={c.channel} class={c.channel === selected ? 'selected' : ''}>
                  <th scope="row">
                    <button
                      type="button"
                      class="link"
                      aria-pressed={c.channel === selected}
                      onClick={() => setSelected(c.channel === selected ? null : c.channel)}
                    >
                      {c.channel}
                    </button>
                  </th>
                  <td class="num">{c.subscribers}</td>
                  <td>{pairs(c.nodes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div class="detail" aria-live="polite">
          {selected && detail && detail.channel === selected ? (
            <>
              <h3>{selected}</h3>
              <p>
                {detail.subscribers} subscriber{detail.subscribers === 1 ? '' : 's'} on {pairs(detail.nodes)}
              </p>
              <ul class="members">
                {detail.members.map((m, i) => (
                  <li key={i}>
                    {m.node} · {m.host}:{m.port} {m.writable ? '' : '(backed up)'}
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p class="help">Choose a channel to see its subscribers per edge.</p>
          )}
        </div>
      </div>
    </section>
  );
}

const CHANNELS: readonly Channel[] = ['alerts', 'telemetry', 'devices', 'system'];

interface Received {
  key: number;
  offset: number;
  epoch: string;
  at: string;
  text: string;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function WatchPanel({ login }: { login: Login }) {
  const [channel, setChannel] = useState<Channel>('alerts');
  const [filters, setFilters] = useState('');
  const [watching, setWatching] = useState(false);
  const [state, setState] = useState('Not watching.');
  const [messages, setMessages] = useState<Received[]>([]);
  const client = useRef<SwitchboardClient | null>(null);
  const sub = useRef<Subscription<Channel> | null>(null);
  const seq = useRef(0);
  const tokenRef = useRef(login.token);
  tokenRef.current = login.token;

  const stop = () => {
    client.current?.close();
    client.current = null;
    sub.current = null;
    setWatching(false);
  };
  useEffect(() => stop, []);

  const start = (e: Event) => {
    e.preventDefault();
    let f: Record<string, unknown>;
    try {
      f = parseObject(filters, 'Filters');
    } catch (err) {
      setState(`Not watching: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    stop();
    setMessages([]);
    const c = new SwitchboardClient({ url: wsUrl(), token: () => tokenRef.current });
    client.current = c;
    c.on('state', (s) => {
      if (s.state === 'connected') setState(`Connected to ${s.url}; watching ${channel}.`);
      else if (s.state === 'connecting') setState(`Connecting to ${s.url}…`);
      else
        setState(
          `Disconnected (${s.reason ?? s.code ?? ''})${s.delayMs == null ? '' : `; retrying in ${Math.round(s.delayMs / 100) / 10} s`}.`,
        );
    });
    const s = c.subscribe(channel, f);
    sub.current = s;
    s.on('subscribed', () => setState(`Watching ${channel}.`));
    s.on('error', (err) => setState(`Refused: ${err.code}: ${err.message}`));
    s.on('recovered', (r) => {
      if (!r.recovered)
        setState(`Watching ${channel}; some messages may have been missed while disconnected.`);
    });
    s.on('update', (u) => {
      const { offset, epoch, ...rest } = u as unknown as { offset: number; epoch: string } & Record<
        string,
        unknown
      >;
      const item: Received = {
        key: ++seq.current,
        offset,
        epoch,
        at: new Date().toLocaleTimeString(),
        text: JSON.stringify(rest),
      };
      setMessages((old) => [item, ...old].slice(0, 100));
    });
    setWatching(true);
  };

  return (
    <section class="panel" aria-labelledby="watch-h">
      <h2 id="watch-h">Watch a channel</h2>
      <form class="stack" onSubmit={start}>
        <label for="watch-channel">Channel (valtronics, this tenant)</label>
        <select
          id="watch-channel"
          value={channel}
          onChange={(e) => setChannel(e.currentTarget.value as Channel)}
        >
          {CHANNELS.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <label for="watch-filters">Filters (JSON, optional)</label>
        <input
          id="watch-filters"
          type="text"
          value={filters}
          placeholder='{"device_id": [1, 2]}'
          spellcheck={false}
          onInput={(e) => setFilters(e.currentTarget.value)}
        />
        <div class="row">
          <button type="submit">{watching ? 'Watch again' : 'Watch'}</button>
          <button type="button" onClick={stop} disabled={!watching}>
            Stop
          </button>
        </div>
      </form>
      <p class="status" role="status" id="watch-state">
        {state}
      </p>
      <ol class="log" id="watch-log" aria-label="Messages received, newest first">
        {messages.map((m) => (
          <li key={m.key} data-offset={m.offset}>
            <span class="offset">#{m.offset}</span> <span class="time">{m.at}</span> <code>{m.text}</code>
          </li>
        ))}
      </ol>
    </section>
  );
}

const EXAMPLES: Readonly<Record<string, { attrs: string; data: string }>> = {
  alerts: {
    attrs: '{"device_id": 1, "severity": "info", "alert_type": "test"}',
    data: '{"alert_id": 1, "title": "Test alert", "message": "from the admin page"}',
  },
  telemetry: { attrs: '{"device_id": 1}', data: '{"temperature": {"value": 21.5, "unit": "°C"}}' },
  devices: { attrs: '{"device_id": 1}', data: '{"old_status": "offline", "new_status": "online"}' },
};

function PublishPanel({ login, onUnauthorized }: { login: Login; onUnauthorized: () => void }) {
  const [channel, setChannel] = useState('alerts');
  const [attrs, setAttrs] = useState(EXAMPLES.alerts!.attrs);
  const [data, setData] = useState(EXAMPLES.alerts!.data);
  const [result, setResult] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = (e: Event) => {
    e.preventDefault();
    let body: Record<string, unknown>;
    try {
      body = { channel, attrs: parseObject(attrs, 'Attributes'), data: parseObject(data, 'Data') };
    } catch (err) {
      setResult(`Not published: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    setBusy(true);
    call<{ channel: string; offset: number; epoch: string }>(login, '/admin/publish', body)
      .then(
        (r) => setResult(`Published to ${r.channel} at offset ${r.offset}.`),
        (err: unknown) => {
          if (err instanceof ApiError && err.status === 401) onUnauthorized();
          else setResult(`Not published: ${err instanceof Error ? err.message : String(err)}`);
        },
      )
      .finally(() => setBusy(false));
  };
  return (
    <section class="panel" aria-labelledby="publish-h">
      <h2 id="publish-h">Publish a test message</h2>
      <form class="stack" onSubmit={submit}>
        <label for="publish-channel">Channel (valtronics)</label>
        <select
          id="publish-channel"
          value={channel}
          onChange={(e) => {
            const c = e.currentTarget.value;
            setChannel(c);
            setAttrs(EXAMPLES[c]!.attrs);
            setData(EXAMPLES[c]!.data);
          }}
        >
          {Object.keys(EXAMPLES).map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <label for="publish-attrs">Attributes (JSON: flat values the filters match)</label>
        <input
          id="publish-attrs"
          type="text"
          value={attrs}
          spellcheck={false}
          onInput={(e) => setAttrs(e.currentTarget.value)}
        />
        <label for="publish-data">Data (JSON)</label>
        <textarea
          id="publish-data"
          rows={3}
          value={data}
          spellcheck={false}
          onInput={(e) => setData(e.currentTarget.value)}
        />
        <div class="row">
          <button type="submit" disabled={busy}>
            Publish
          </button>
        </div>
      </form>
      <p class="status" role="status" id="publish-result">
        {result}
      </p>
    </section>
  );
}
