// Staircase charts for docs/benchmarks.md: one SVG per scenario, every system on it, two panels —
// delivered/s against offered deliveries/s, and p99 latency against offered deliveries/s (both log-log).
// A filled marker is a sustained step, a hollow one a step that was not.

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 460;
const H = 300;
const M = { left: 62, right: 14, top: 34, bottom: 44 };

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function si(v) {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Decades covering [lo, hi] (both > 0). */
function decades(lo, hi) {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  return { a, b: b === a ? a + 1 : b };
}

function panel(x0, title, yLabel, series, pick) {
  const pts = series.flatMap((s) => s.points.map(pick)).filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y));
  if (pts.length === 0) return `<text x="${x0 + W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`;
  const xd = decades(Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x)));
  const yd = decades(Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y)));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x) => x0 + M.left + ((Math.log10(x) - xd.a) / (xd.b - xd.a)) * pw;
  const sy = (y) => M.top + ph - ((Math.log10(y) - yd.a) / (yd.b - yd.a)) * ph;
  const out = [`<text x="${x0 + M.left + pw / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`];
  out.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (let d = xd.a; d <= xd.b; d++) {
    const x = sx(10 ** d);
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 14}" text-anchor="middle" font-size="10">${si(10 ** d)}</text>`);
  }
  for (let d = yd.a; d <= yd.b; d++) {
    const y = sy(10 ** d);
    out.push(`<line x1="${x0 + M.left}" y1="${y}" x2="${x0 + M.left + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + M.left - 4}" y="${y + 3}" text-anchor="end" font-size="10">${si(10 ** d)}</text>`);
  }
  out.push(`<text x="${x0 + M.left + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="11">offered deliveries/s</text>`);
  out.push(`<text transform="translate(${x0 + 14},${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const ps = s.points.map((p) => ({ ...pick(p), sustained: p.sustained })).filter((p) => p.x > 0 && p.y > 0 && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (ps.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${ps.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of ps) out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.2" stroke="${c}" stroke-width="1.5" fill="${p.sustained ? c : 'white'}"/>`);
  });
  return out.join('\n');
}

/**
 * Renders a staircase chart. `series`: [{ name, points: [{ offered, delivered, p99Ms, sustained }] }].
 * `limitMs` draws the lag limit on the latency panel.
 */
export function staircaseChart(title, series, limitMs) {
  const legendH = 18 * series.length + 10;
  const total = H + legendH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${total}" viewBox="0 0 ${2 * W} ${total}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<title>${esc(title)}</title>`,
    panel(0, 'delivered/s', 'delivered/s', series, (p) => ({ x: p.offered, y: p.delivered })),
    panel(W, 'p99 publish → client (ms)', 'p99 ms', series, (p) => ({ x: p.offered, y: p.p99Ms })),
  ];
  if (limitMs) {
    // The lag limit as a note under the panels.
    parts.push(`<text x="${2 * W - M.right}" y="${H + 30}" text-anchor="end" font-size="10" fill="#666">sustained: nothing lost, publisher on rate, p99 ≤ ${limitMs} ms</text>`);
  }
  series.forEach((s, i) => {
    const y = H + 14 + 18 * i;
    const c = COLORS[i % COLORS.length];
    parts.push(`<circle cx="${M.left}" cy="${y - 4}" r="4" fill="${c}"/><text x="${M.left + 10}" y="${y}">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${2 * W - M.right}" y="${H + 14}" text-anchor="end" font-size="10" fill="#666">filled: sustained step · hollow: not sustained</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Series for {@link staircaseChart} from SystemResult-shaped objects ({ name, fanout, steps }). */
export function seriesOf(systems) {
  return systems
    .filter(Boolean)
    .map((r) => ({ name: r.name, points: r.steps.map((s) => ({ offered: s.rate * (r.fanout ?? 1), delivered: s.deliveredPerSec, p99Ms: s.p99Ms, sustained: s.sustained })) }));
}
