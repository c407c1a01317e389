import type { Confusion } from '../api/training.js';

/** A 2×2 confusion matrix (rows: actual, columns: predicted), cells shaded by their share. */
export function ConfusionMatrix({ confusion, title = 'Confusion matrix' }: { confusion: Confusion | null | undefined; title?: string }) {
  if (!confusion) return <p className="muted">{title}: not recorded.</p>;
  const { tp, fp, tn, fn } = confusion;
  const total = tp + fp + tn + fn || 1;
  const cell = (v: number, correct: boolean, name: string) => (
    <td className={correct ? 'cm-correct' : 'cm-wrong'} style={{ ['--share' as string]: String(v / total) }} aria-label={`${name}: ${v}`}>
      <strong>{v}</strong>
      <span>{name}</span>
    </td>
  );
  return (
    <table className="confusion">
      <caption>{title}</caption>
      <thead>
        <tr>
          <td />
          <th scope="col">Predicted NORMAL</th>
          <th scope="col">Predicted PNEUMONIA</th>
        </tr>
      </thead>
      <tbody>
        <tr>
          <th scope="row">Actual NORMAL</th>
          {cell(tn, true, 'true negative')}
          {cell(fp, false, 'false positive')}
        </tr>
        <tr>
          <th scope="row">Actual PNEUMONIA</th>
          {cell(fn, false, 'false negative')}
          {cell(tp, true, 'true positive')}
        </tr>
      </tbody>
    </table>
  );
}
