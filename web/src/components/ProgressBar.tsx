export interface ProgressBarProps {
  value: number;
  max: number;
  label: string;
  detail?: string;
}

/** A labelled determinate progress bar. */
export function ProgressBar({ value, max, label, detail }: ProgressBarProps) {
  const f = max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  return (
    <div className="progress">
      <div className="progress-head">
        <span>{label}</span>
        <span>{detail ?? `${Math.round(f * 100)}%`}</span>
      </div>
      <div className="progress-track" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={max} aria-valuenow={value}>
        <div className="progress-fill" style={{ width: `${f * 100}%` }} />
      </div>
    </div>
  );
}
