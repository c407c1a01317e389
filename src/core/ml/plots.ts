/**
 * Small chart renderers for evaluation reports and the model registry: SVG
 * strings (usable directly in the web UI) and PNGs rasterised by sharp.
 */
import sharp from 'sharp';
import { invalidInput } from '../errors.js';
import type { Calibration } from './metrics.js';

/** One ROC curve to draw. */
export interface RocCurveInput {
  label: string;
  roc: ReadonlyArray<{ fpr: number; tpr: number }>;
  /** Shown in the legend when finite. */
  auc?: number | null;
}

/** Size and title of a chart. */
export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const FONT = "font-family=\"DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif\"";

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

interface Frame {
  svgStart: string;
  /** Data (0..1, 0..1) → pixel coordinates. */
  px: (x: number) => number;
  py: (y: number) => number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Canvas, title, unit-square axes with grid, ticks and labels. */
function frame(width: number, height: number, title: string, xLabel: string, yLabel: string): Frame {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 120 || height < 120 || width > 4096 || height > 4096) {
    throw invalidInput('plot width and height must be integers in [120, 4096]');
  }
  const left = 58;
  const right = width - 16;
  const top = 34;
  const bottom = height - 48;
  const px = (x: number): number => left + Math.min(Math.max(x, 0), 1) * (right - left);
  const py = (y: number): number => bottom - Math.min(Math.max(y, 0), 1) * (bottom - top);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold" ${FONT} fill="#222">${escapeXml(title)}</text>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const v = k / 5;
    const x = px(v);
    const y = py(v);
    parts.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#e6e6e6" stroke-width="1"/>`,
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#e6e6e6" stroke-width="1"/>`,
      `<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333"/>`,
      `<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="#333"/>`,
      `<text x="${x}" y="${bottom + 18}" text-anchor="middle" font-size="11" ${FONT} fill="#333">${v.toFixed(1)}</text>`,
      `<text x="${left - 8}" y="${y + 4}" text-anchor="end" font-size="11" ${FONT} fill="#333">${v.toFixed(1)}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333" stroke-width="1"/>`,
    `<text x="${(left + right) / 2}" y="${height - 12}" text-anchor="middle" font-size="12" ${FONT} fill="#222">${escapeXml(xLabel)}</text>`,
    `<text x="16" y="${(top + bottom) / 2}" text-anchor="middle" font-size="12" ${FONT} fill="#222" transform="rotate(-90 16 ${(top + bottom) / 2})">${escapeXml(yLabel)}</text>`,
    // Chance / perfect-calibration diagonal.
    `<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#888" stroke-width="1.2" stroke-dasharray="5 4"/>`,
  );
  return { svgStart: parts.join('\n'), px, py, left, right, top, bottom };
}

interface LegendEntry {
  label: string;
  color: string;
  dashed?: boolean;
}

/** Legend box anchored in the lower-right corner of the plot area. */
function legend(f: Frame, entries: LegendEntry[]): string {
  const lineH = 18;
  const maxChars = Math.max(...entries.map((e) => e.label.length));
  const boxW = Math.min(f.right - f.left - 12, 34 + maxChars * 6.6);
  const boxH = entries.length * lineH + 8;
  const x0 = f.right - boxW - 8;
  const y0 = f.bottom - boxH - 8;
  const parts = [
    `<rect x="${x0}" y="${y0}" width="${boxW}" height="${boxH}" fill="#ffffff" fill-opacity="0.9" stroke="#bbb"/>`,
  ];
  entries.forEach((e, k) => {
    const y = y0 + 4 + lineH * k + lineH / 2;
    parts.push(
      `<line x1="${x0 + 6}" y1="${y}" x2="${x0 + 26}" y2="${y}" stroke="${e.color}" stroke-width="2.5"${e.dashed ? ' stroke-dasharray="5 4"' : ''}/>`,
      `<text x="${x0 + 32}" y="${y + 4}" font-size="11" ${FONT} fill="#222">${escapeXml(e.label)}</text>`,
    );
  });
  return parts.join('\n');
}

/**
 * ROC curves as SVG: one line per curve, chance diagonal, legend with AUCs.
 * @throws AppError INVALID_INPUT on no curves or an invalid size.
 */
export function rocCurveSvg(curves: readonly RocCurveInput[], options: PlotOptions = {}): string {
  if (curves.length === 0) throw invalidInput('rocCurveSvg needs at least one curve');
  const width = options.width ?? 480;
  const height = options.height ?? 480;
  const f = frame(width, height, options.title ?? 'ROC curve', 'False positive rate (1 − specificity)', 'True positive rate (sensitivity)');
  const parts = [f.svgStart];
  const entries: LegendEntry[] = [];
  curves.forEach((c, k) => {
    const color = PALETTE[k % PALETTE.length] as string;
    const pts = c.roc
      .filter((p) => Number.isFinite(p.fpr) && Number.isFinite(p.tpr))
      .map((p) => `${f.px(p.fpr).toFixed(1)},${f.py(p.tpr).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2.2" stroke-linejoin="round"/>`);
    const auc = typeof c.auc === 'number' && Number.isFinite(c.auc) ? ` (AUC ${c.auc.toFixed(3)})` : '';
    entries.push({ label: `${c.label}${auc}`, color });
  });
  entries.push({ label: 'Chance', color: '#888', dashed: true });
  parts.push(legend(f, entries), '</svg>');
  return parts.join('\n');
}

/**
 * Reliability diagram as SVG: per-bin observed positive fraction as bars over
 * the bin's probability range, the mean prediction per bin as points, the
 * perfect-calibration diagonal, and the ECE in the legend. Empty bins are skipped.
 * @throws AppError INVALID_INPUT on an invalid size.
 */
export function reliabilitySvg(cal: Calibration, options: PlotOptions = {}): string {
  const width = options.width ?? 480;
  const height = options.height ?? 480;
  const f = frame(width, height, options.title ?? 'Reliability diagram', 'Mean predicted probability', 'Observed fraction of positives');
  const parts = [f.svgStart];
  const filled = cal.bins.filter((b) => b.count > 0);
  for (const b of filled) {
    const x = f.px(b.lo);
    const y = f.py(b.frac_pos);
    parts.push(
      `<rect x="${(x + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, f.px(b.hi) - x - 2).toFixed(1)}" height="${(f.bottom - y).toFixed(1)}" fill="#1f77b4" fill-opacity="0.25" stroke="#1f77b4" stroke-opacity="0.6"/>`,
    );
  }
  if (filled.length > 0) {
    const pts = filled.map((b) => `${f.px(b.mean_pred).toFixed(1)},${f.py(b.frac_pos).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="#d62728" stroke-width="2"/>`);
    for (const b of filled) {
      parts.push(`<circle cx="${f.px(b.mean_pred).toFixed(1)}" cy="${f.py(b.frac_pos).toFixed(1)}" r="3.5" fill="#d62728"/>`);
    }
  }
  const ece = Number.isFinite(cal.ece) ? ` (ECE ${fmt(cal.ece * 100)}%)` : '';
  parts.push(
    legend(f, [
      { label: `Model${ece}`, color: '#d62728' },
      { label: 'Perfectly calibrated', color: '#888', dashed: true },
    ]),
    '</svg>',
  );
  return parts.join('\n');
}

async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg, 'utf8')).png().toBuffer();
}

/**
 * ROC curves as a PNG (default 480×480).
 * @example
 * await rocCurvePng([{ label: 'resnet18 v3', roc: evaluation.roc, auc: evaluation.auc }])
 */
export async function rocCurvePng(curves: readonly RocCurveInput[], options: PlotOptions = {}): Promise<Buffer> {
  return svgToPng(rocCurveSvg(curves, options));
}

/** Reliability diagram of a {@link Calibration} as a PNG (default 480×480). */
export async function reliabilityPng(cal: Calibration, options: PlotOptions = {}): Promise<Buffer> {
  return svgToPng(reliabilitySvg(cal, options));
}
