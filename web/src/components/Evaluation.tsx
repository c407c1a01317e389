import type { CalibrationBin, Evaluation } from '../api/training.js';
import { num, pct } from '../format.js';
import { LineChart, type Series } from './Chart.js';
import { ConfusionMatrix } from './ConfusionMatrix.js';

/** Evaluation plots and numbers shared by the Training and Models pages. */

export function rocSeries(name: string, roc: { fpr: number; tpr: number; threshold: number | null }[] | undefined, color?: string, dashed?: boolean): Series {
  return {
    name,
    color,
    dashed,
    markers: (roc?.length ?? 0) <= 12,
    points: (roc ?? []).map((p) => ({ x: p.fpr, y: p.tpr, label: `${name}: FPR ${num(p.fpr, 3)}, TPR ${num(p.tpr, 3)}${p.threshold !== null ? `, threshold ${num(p.threshold, 3)}` : ''}` })),
  };
}

export function RocChart({ series, title = 'ROC curve' }: { series: Series[]; title?: string }) {
  return (
    <LineChart
      title={title}
      series={series}
      xLabel="False positive rate (1 − specificity)"
      yLabel="True positive rate (sensitivity)"
      xDomain={[0, 1]}
      yDomain={[0, 1]}
      diagonal
      square
      empty="No ROC curve recorded."
    />
  );
}

export function CalibrationChart({ bins, ece }: { bins: CalibrationBin[] | undefined; ece: number | null | undefined }) {
  const points = (bins ?? [])
    .filter((b) => b.count > 0 && b.mean_pred !== null && b.frac_pos !== null)
    .map((b) => ({ x: b.mean_pred!, y: b.frac_pos!, label: `${num(b.lo, 1)}–${num(b.hi, 1)}: predicted ${pct(b.mean_pred)}, observed ${pct(b.frac_pos)} (n=${b.count})` }));
  return (
    <LineChart
      title="Calibration (reliability)"
      series={[{ name: 'model', points, markers: true }]}
      xLabel="Mean predicted probability"
      yLabel="Observed share positive"
      xDomain={[0, 1]}
      yDomain={[0, 1]}
      diagonal
      square
      empty="No calibration bins recorded."
      caption={ece !== undefined && ece !== null ? `Expected calibration error ${num(ece, 3)}` : undefined}
    />
  );
}

/** A metrics table (AUC with its confidence interval, sensitivity, specificity…) for one or more evaluations. */
export function MetricsTable({ evaluations, caption }: { evaluations: { name: string; e: Evaluation | null | undefined }[]; caption?: string }) {
  const rows: [string, (e: Evaluation) => string][] = [
    ['Images (positives)', (e) => (e.n !== undefined ? `${e.n} (${e.positives ?? '—'})` : '—')],
    ['AUC', (e) => `${num(e.auc)}${e.auc_ci ? ` [${num(e.auc_ci[0])}, ${num(e.auc_ci[1])}]` : ''}`],
    ['Sensitivity', (e) => pct(e.sensitivity)],
    ['Specificity', (e) => pct(e.specificity)],
    ['PPV', (e) => pct(e.ppv)],
    ['NPV', (e) => pct(e.npv)],
    ['F1', (e) => num(e.f1)],
    ['Accuracy', (e) => pct(e.accuracy)],
    ['Threshold', (e) => `${num(e.threshold)}${e.threshold_method ? ` (${e.threshold_method})` : ''}`],
  ];
  return (
    <div className="table-wrap">
      <table className="table metrics">
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            <th scope="col">Metric</th>
            {evaluations.map((x) => (
              <th scope="col" key={x.name} style={{ textAlign: 'right' }}>
                {x.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(([label, f]) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              {evaluations.map((x) => (
                <td key={x.name} style={{ textAlign: 'right' }}>
                  {x.e ? f(x.e) : '—'}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted small">AUC in brackets: bootstrap confidence interval.</p>
    </div>
  );
}

/** ROC, confusion matrix, calibration and metrics of one evaluation. */
export function EvaluationPanel({ evaluation, title }: { evaluation: Evaluation; title: string }) {
  return (
    <div className="evaluation">
      <h3>{title}</h3>
      <div className="plots">
        <RocChart series={[rocSeries(`AUC ${num(evaluation.auc)}`, evaluation.roc)]} />
        <CalibrationChart bins={evaluation.calibration?.bins} ece={evaluation.calibration?.ece} />
        <div>
          <ConfusionMatrix confusion={evaluation.confusion} title={`Confusion matrix at threshold ${num(evaluation.threshold)}`} />
          <MetricsTable evaluations={[{ name: 'value', e: evaluation }]} />
        </div>
      </div>
    </div>
  );
}
