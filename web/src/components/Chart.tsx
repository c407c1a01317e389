import { useId, type ReactNode } from 'react';
import { useElementWidth } from '../hooks/useElementWidth.js';

/** Small SVG charts drawn by hand (no chart library): lines (curves, ROC, time series) and bars. */

export const PALETTE = ['#1f5fbf', '#c2540a', '#2e7d32', '#7b3fa0', '#b0003a', '#00796b'];

export interface Point {
  x: number;
  y: number;
  /** Native tooltip text of the marker. */
  label?: string;
}

export interface Series {
  name: string;
  points: Point[];
  color?: string;
  dashed?: boolean;
  /** Draw a dot per point (default: when there are few points). */
  markers?: boolean;
}

export interface RefLine {
  axis: 'x' | 'y';
  value: number;
  label: string;
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min];
  const span = max - min;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

const MINUTE = 60_000;
const TIME_STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, 60 * MINUTE, 3 * 60 * MINUTE, 6 * 60 * MINUTE, 12 * 60 * MINUTE, 24 * 60 * MINUTE, 2 * 24 * 60 * MINUTE, 7 * 24 * 60 * MINUTE];

/** Ticks at round clock times (epoch ms) covering [min, max]. */
export function timeTicks(min: number, max: number, count = 6): { ticks: number[]; step: number } {
  const span = Math.max(1, max - min);
  const step = TIME_STEPS.find((s) => span / s <= count) ?? TIME_STEPS[TIME_STEPS.length - 1]!;
  // Align to the local clock (whole minutes/hours/days in this time zone).
  const offset = new Date(min).getTimezoneOffset() * MINUTE;
  const ticks: number[] = [];
  for (let t = Math.ceil((min - offset) / step) * step + offset; t <= max; t += step) ticks.push(t);
  return { ticks, step };
}

function timeFormat(step: number): (v: number) => string {
  return (v) => {
    const d = new Date(v);
    if (step >= 24 * 60 * MINUTE) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  };
}

function defaultFormat(v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString(undefined, { maximumFractionDigits: 0 });
  return String(Math.round(v * 1000) / 1000);
}

function extent(values: number[], pad = 0): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const d = Math.abs(lo) > 1e9 ? 5 * MINUTE : Math.abs(lo) * 0.1 || 1;
    lo -= d;
    hi += d;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function Legend({ items }: { items: { name: string; color: string; dashed?: boolean }[] }) {
  if (items.length < 2) return null;
  return (
    <ul className="legend">
      {items.map((s) => (
        <li key={s.name}>
          <svg width="22" height="10" aria-hidden="true">
            <line x1="1" y1="5" x2="21" y2="5" stroke={s.color} strokeWidth="3" strokeDasharray={s.dashed ? '5 3' : undefined} />
          </svg>
          {s.name}
        </li>
      ))}
    </ul>
  );
}

export interface LineChartProps {
  title: string;
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  xDomain?: [number, number];
  yDomain?: [number, number];
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  /** Dashed y = x line (ROC, calibration). */
  diagonal?: boolean;
  refLines?: RefLine[];
  /** Square plot (ROC, calibration). */
  square?: boolean;
  /** x values are epoch milliseconds: clock-time ticks and labels. */
  xTime?: boolean;
  /** x values are counts (epochs): whole-number ticks only. */
  xIntegers?: boolean;
  height?: number;
  /** Shown instead of the plot when there is nothing to draw. */
  empty?: ReactNode;
  caption?: ReactNode;
}

/** A line chart with axes, ticks, an optional diagonal and reference lines. */
export function LineChart(props: LineChartProps) {
  const { title, series, xLabel, yLabel, diagonal, refLines = [], square, caption, xTime } = props;
  const titleId = useId();
  const [ref, width] = useElementWidth<HTMLElement>(square ? 340 : 520);
  const W = square ? Math.min(width, 360) : Math.max(260, width);
  const H = square ? W : (props.height ?? 240);
  const m = { left: 52, right: 14, top: 12, bottom: xLabel ? 44 : 28 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points);
  const hasData = all.length > 0;
  const [x0, x1] = props.xDomain ?? extent(all.map((p) => p.x));
  const [y0, y1] = props.yDomain ?? extent([...all.map((p) => p.y), ...refLines.filter((r) => r.axis === 'y').map((r) => r.value)], 0.05);
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const time = xTime ? timeTicks(x0, x1, Math.max(3, Math.floor(pw / 110))) : null;
  const fx = props.xFormat ?? (time ? timeFormat(time.step) : defaultFormat);
  const fy = props.yFormat ?? defaultFormat;
  const xt = time ? time.ticks : niceTicks(x0, x1, square ? 5 : Math.max(3, Math.min(8, Math.floor(pw / 80)))).filter((v) => !props.xIntegers || Number.isInteger(v));
  const yt = niceTicks(y0, y1, 5);
  const colored = series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]! }));
  const summary = `${title}: ${series.map((s) => `${s.name} (${s.points.length} points${s.points.length ? `, last ${fy(s.points[s.points.length - 1]!.y)}` : ''})`).join('; ')}`;

  return (
    <figure className={`chart${square ? ' chart-square' : ''}`} ref={ref}>
      <figcaption id={titleId}>{title}</figcaption>
      {!hasData ? (
        <div className="chart-empty">{props.empty ?? 'No data yet.'}</div>
      ) : (
        <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId}>
          <title>{summary}</title>
          {yt.map((v) => (
            <g key={`y${v}`}>
              <line x1={m.left} x2={W - m.right} y1={sy(v)} y2={sy(v)} className="grid" />
              <text x={m.left - 6} y={sy(v)} className="tick" textAnchor="end" dominantBaseline="middle">
                {fy(v)}
              </text>
            </g>
          ))}
          {xt.map((v) => (
            <text key={`x${v}`} x={sx(v)} y={H - m.bottom + 16} className="tick" textAnchor="middle">
              {fx(v)}
            </text>
          ))}
          <line x1={m.left} x2={W - m.right} y1={m.top + ph} y2={m.top + ph} className="axis" />
          <line x1={m.left} x2={m.left} y1={m.top} y2={m.top + ph} className="axis" />
          {xLabel && (
            <text x={m.left + pw / 2} y={H - 6} className="axis-label" textAnchor="middle">
              {xLabel}
            </text>
          )}
          {yLabel && (
            <text x={12} y={m.top + ph / 2} className="axis-label" textAnchor="middle" transform={`rotate(-90 12 ${m.top + ph / 2})`}>
              {yLabel}
            </text>
          )}
          {diagonal && <line x1={sx(Math.max(x0, y0))} y1={sy(Math.max(x0, y0))} x2={sx(Math.min(x1, y1))} y2={sy(Math.min(x1, y1))} className="diagonal" />}
          {refLines.map((r) =>
            r.axis === 'y' ? (
              <g key={`r${r.label}`}>
                <line x1={m.left} x2={W - m.right} y1={sy(r.value)} y2={sy(r.value)} className="refline" />
                <text x={W - m.right - 4} y={sy(r.value) - 4} className="reflabel" textAnchor="end">
                  {r.label}
                </text>
              </g>
            ) : (
              <g key={`r${r.label}`}>
                <line x1={sx(r.value)} x2={sx(r.value)} y1={m.top} y2={m.top + ph} className="refline" />
                <text x={sx(r.value) + 4} y={m.top + 10} className="reflabel">
                  {r.label}
                </text>
              </g>
            ),
          )}
          {colored.map((s) => {
            const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
            const d = pts.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join('');
            const markers = s.markers ?? pts.length <= 40;
            return (
              <g key={s.name}>
                <path d={d} fill="none" stroke={s.color} strokeWidth="2.2" strokeDasharray={s.dashed ? '6 4' : undefined} strokeLinejoin="round" />
                {markers &&
                  pts.map((p, i) => (
                    <circle key={i} cx={sx(p.x)} cy={sy(p.y)} r="3.2" fill={s.color}>
                      <title>{p.label ?? `${s.name}: ${fx(p.x)} → ${fy(p.y)}`}</title>
                    </circle>
                  ))}
              </g>
            );
          })}
        </svg>
      )}
      <Legend items={colored} />
      {caption && <div className="chart-caption">{caption}</div>}
    </figure>
  );
}

export interface BarGroup {
  label: string;
  values: number[];
}

export interface BarChartProps {
  title: string;
  groups: BarGroup[];
  seriesNames: string[];
  colors?: string[];
  yLabel?: string;
  yFormat?: (v: number) => string;
  yDomain?: [number, number];
  refLines?: RefLine[];
  height?: number;
  caption?: ReactNode;
}

/** Vertical grouped bars with value labels. */
export function BarChart(props: BarChartProps) {
  const { title, groups, seriesNames, yLabel, refLines = [], caption } = props;
  const titleId = useId();
  const [ref, width] = useElementWidth<HTMLElement>(520);
  const colors = props.colors ?? PALETTE;
  const W = Math.max(240, Math.min(width, 160 + groups.length * Math.max(90, seriesNames.length * 60)));
  const H = props.height ?? 220;
  const m = { left: 52, right: 12, top: 16, bottom: 40 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const values = groups.flatMap((g) => g.values);
  const max = Math.max(0, ...values.filter(Number.isFinite), ...refLines.map((r) => r.value));
  const [y0, y1] = props.yDomain ?? [0, max > 0 ? max * 1.12 : 1];
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const fy = props.yFormat ?? defaultFormat;
  const gw = pw / Math.max(1, groups.length);
  const bw = Math.min(46, (gw * 0.76) / Math.max(1, seriesNames.length));
  const summary = `${title}: ${groups.map((g) => `${g.label} ${g.values.map((v, i) => `${seriesNames[i]} ${fy(v)}`).join(', ')}`).join('; ')}`;
  return (
    <figure className="chart" ref={ref}>
      <figcaption id={titleId}>{title}</figcaption>
      {groups.length === 0 ? (
        <div className="chart-empty">No data yet.</div>
      ) : (
        <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId}>
          <title>{summary}</title>
          {niceTicks(y0, y1, 4).map((v) => (
            <g key={v}>
              <line x1={m.left} x2={W - m.right} y1={sy(v)} y2={sy(v)} className="grid" />
              <text x={m.left - 6} y={sy(v)} className="tick" textAnchor="end" dominantBaseline="middle">
                {fy(v)}
              </text>
            </g>
          ))}
          <line x1={m.left} x2={W - m.right} y1={sy(y0)} y2={sy(y0)} className="axis" />
          {yLabel && (
            <text x={12} y={m.top + ph / 2} className="axis-label" textAnchor="middle" transform={`rotate(-90 12 ${m.top + ph / 2})`}>
              {yLabel}
            </text>
          )}
          {groups.map((g, gi) => {
            const cx = m.left + gw * gi + gw / 2;
            const start = cx - (bw * g.values.length) / 2;
            return (
              <g key={g.label}>
                {g.values.map((v, si) => {
                  const y = sy(Math.max(y0, Math.min(y1, v)));
                  return (
                    <g key={si}>
                      <rect x={start + si * bw + 1} y={y} width={bw - 2} height={Math.max(0, sy(y0) - y)} fill={colors[si % colors.length]} rx="2">
                        <title>{`${g.label} · ${seriesNames[si]}: ${fy(v)}`}</title>
                      </rect>
                      <text x={start + si * bw + bw / 2} y={y - 4} className="bar-value" textAnchor="middle">
                        {fy(v)}
                      </text>
                    </g>
                  );
                })}
                <text x={cx} y={H - m.bottom + 16} className="tick" textAnchor="middle">
                  {g.label.length > 18 ? `${g.label.slice(0, 17)}…` : g.label}
                </text>
              </g>
            );
          })}
          {refLines.map((r) => (
            <g key={r.label}>
              <line x1={m.left} x2={W - m.right} y1={sy(r.value)} y2={sy(r.value)} className="refline" />
              <text x={W - m.right - 4} y={sy(r.value) - 4} className="reflabel" textAnchor="end">
                {r.label}
              </text>
            </g>
          ))}
        </svg>
      )}
      <Legend items={seriesNames.map((name, i) => ({ name, color: colors[i % colors.length]! }))} />
      {caption && <div className="chart-caption">{caption}</div>}
    </figure>
  );
}
