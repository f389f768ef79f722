/**
 * A small live line chart (uPlot on a canvas). The canvas is decorative for assistive technology: the
 * figure's caption says what it shows, and the same figures are in the tables as text. Its height is
 * fixed, so live data never moves the layout.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** Distinct colours with at least 4.5:1 contrast on white. */
export const PALETTE = ['#1f5fbf', '#b3261e', '#1e7a34', '#7a3fb3', '#8a5a00', '#00727a'];

const HEIGHT = 150;

/** Props of {@link Chart}. */
export interface ChartProps {
  readonly id: string;
  readonly title: string;
  /** One name per series (the edges). */
  readonly names: readonly string[];
  /** x (seconds since the epoch), then one array per series. */
  readonly data: uPlot.AlignedData;
  /** Formats a value of the y axis. */
  readonly format: (v: number) => string;
}

/** A uPlot chart in a figure with a caption. */
export function Chart({ id, title, names, data, format }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = names.join('\n');

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ stroke: '#333' }, { stroke: '#333', size: 64, values: (_u, splits) => splits.map(format) }],
      series: [
        {},
        ...names.map((n, i) => ({
          label: n,
          stroke: PALETTE[i % PALETTE.length]!,
          width: 2,
          spanGaps: true,
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : format(v)),
        })),
      ],
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change; data updates go through setData below.
  }, [key]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure class="chart" aria-labelledby={`${id}-caption`}>
      <figcaption id={`${id}-caption`}>{title}</figcaption>
      <div ref={box} class="chart-canvas" aria-hidden="true" />
    </figure>
  );
}
