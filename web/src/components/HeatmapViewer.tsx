import { useEffect, useId, useState } from 'react';

/** Same polynomial (Turbo) as src/core/ml/cam.ts heatmapColormap, for the legend. */
function turbo(value: number): string {
  const x = 0.1 + 0.9 * Math.min(Math.max(value, 0), 1);
  const r = 0.13572138 + x * (4.6153926 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))));
  const g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))));
  const b = 0.1066733 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))));
  const byte = (v: number) => Math.round(Math.min(Math.max(v, 0), 1) * 255);
  return `rgb(${byte(r)} ${byte(g)} ${byte(b)})`;
}

const LEGEND = `linear-gradient(to right, ${Array.from({ length: 11 }, (_, i) => `${turbo(i / 10)} ${i * 10}%`).join(', ')})`;

export interface Overlay {
  label: string;
  url: string;
  method: 'cam' | 'occlusion';
}

export interface HeatmapViewerProps {
  /** The image the model saw (preprocessed square) or the original upload. */
  baseUrl: string | null;
  /** Heatmap overlay PNGs (drawn over the preprocessed image by the server); a picker shows when there are several. */
  overlays: Overlay[];
  /** How the base is fitted into the square: the model's preprocessing mode. */
  fit?: 'letterbox' | 'crop' | 'squash';
  alt: string;
}

/** The X-ray with its class-activation heatmap on top: a toggle and an opacity slider. */
export function HeatmapViewer({ baseUrl, overlays, fit = 'letterbox', alt }: HeatmapViewerProps) {
  const [show, setShow] = useState(true);
  const [opacity, setOpacity] = useState(0.8);
  const [which, setWhich] = useState(0);
  const id = useId();
  // A newly added map (e.g. the occlusion second opinion) is shown at once.
  useEffect(() => setWhich(Math.max(0, overlays.length - 1)), [overlays.length]);
  const current = overlays[Math.min(which, overlays.length - 1)];
  const overlayUrl = current?.url ?? null;
  const method = current?.method;
  const objectFit = fit === 'crop' ? 'cover' : fit === 'squash' ? 'fill' : 'contain';
  return (
    <div className="heatmap">
      <div className="heatmap-stage">
        {baseUrl && <img className="heatmap-base" src={baseUrl} alt={alt} style={{ objectFit }} />}
        {overlayUrl && (
          <img
            className="heatmap-overlay"
            src={overlayUrl}
            alt={`${method === 'occlusion' ? 'Occlusion sensitivity' : 'Class activation'} heatmap of ${alt}`}
            data-testid="heatmap"
            style={{ opacity: show ? opacity : 0 }}
          />
        )}
        {!baseUrl && !overlayUrl && <div className="heatmap-missing">No image</div>}
      </div>
      <div className="heatmap-controls">
        <label className="check">
          <input type="checkbox" checked={show} onChange={(e) => setShow(e.target.checked)} disabled={!overlayUrl} /> Heatmap
        </label>
        <label htmlFor={`${id}-opacity`}>Opacity</label>
        <input
          id={`${id}-opacity`}
          type="range"
          min={0}
          max={1}
          step={0.05}
          value={opacity}
          onChange={(e) => setOpacity(Number(e.target.value))}
          disabled={!overlayUrl || !show}
          aria-valuetext={`${Math.round(opacity * 100)}%`}
        />
        <output htmlFor={`${id}-opacity`}>{Math.round(opacity * 100)}%</output>
      </div>
      {overlays.length > 1 && (
        <div className="segmented heatmap-source" role="radiogroup" aria-label="Heatmap method">
          {overlays.map((o, i) => (
            <label key={o.label} className={i === which ? 'on' : ''}>
              <input type="radio" name={`${id}-source`} checked={i === which} onChange={() => setWhich(i)} /> {o.label}
            </label>
          ))}
        </div>
      )}
      <div className="heatmap-legend" aria-hidden="true">
        <span>low</span>
        <span className="heatmap-gradient" style={{ background: LEGEND }} />
        <span>high {method === 'occlusion' ? 'sensitivity' : 'activation'}</span>
      </div>
    </div>
  );
}
