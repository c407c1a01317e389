import { pct } from '../format.js';

export interface ProbabilityBarProps {
  probability: number;
  threshold: number;
  label?: string;
}

/** The pneumonia probability as a bar, with the model's decision threshold marked on it. */
export function ProbabilityBar({ probability, threshold, label = 'Pneumonia probability' }: ProbabilityBarProps) {
  const above = probability >= threshold;
  const p = Math.min(1, Math.max(0, probability));
  const t = Math.min(1, Math.max(0, threshold));
  return (
    <div className="probability">
      <div className="probability-head">
        <span>{label}</span>
        <strong className="probability-value" data-testid="probability">
          {pct(probability)}
        </strong>
      </div>
      <div
        className="probability-track"
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(p * 1000) / 10}
        aria-valuetext={`${pct(probability)}, ${above ? 'at or above' : 'below'} the threshold ${pct(threshold)}`}
      >
        <div className={`probability-fill ${above ? 'positive' : 'negative'}`} style={{ width: `${p * 100}%` }} />
        <div className="probability-threshold" style={{ left: `${t * 100}%` }} aria-hidden="true" />
      </div>
      <div className="probability-scale" aria-hidden="true">
        <span>0%</span>
        <span
          className="probability-threshold-label"
          // Near an end the label is anchored at that end, so it never runs over 0% / 100% or off the card.
          style={{ left: `${t * 100}%`, transform: t < 0.2 ? 'none' : t > 0.8 ? 'translateX(-100%)' : 'translateX(-50%)' }}
        >
          threshold {pct(threshold)}
        </span>
        <span>100%</span>
      </div>
    </div>
  );
}
