import { Fragment, useEffect, useId, useState, type ReactNode } from 'react';
import { loadedModels, loadModel } from '../api/deployment.js';
import { ApiError } from '../api/http.js';
import { calibrate, card, compare, describeTrainedOn, getModel, lineage, listModels, measureLungFields, setStage, type CalibrateResult, type LungFieldReport, type Comparison, type EvaluationSummary, type GateVerdict, type ModelCard, type ModelVersion, type Stage } from '../api/registry.js';
import type { Evaluation } from '../api/training.js';
import { Badge } from '../components/Badge.js';
import { PALETTE } from '../components/Chart.js';
import { ConfusionMatrix } from '../components/ConfusionMatrix.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { ServingBanner } from '../components/ServingBanner.js';
import { MetricsTable, RocChart, rocSeries } from '../components/Evaluation.js';
import { Card, KeyValues, Loading, PageHeader } from '../components/Layout.js';
import { Table, type Column } from '../components/Table.js';
import { dateTime, num, shortId } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';

function toEvaluation(s: EvaluationSummary | null | undefined): Evaluation | null {
  if (!s) return null;
  return { ...s, n: s.n ?? undefined, positives: s.positives ?? undefined, threshold: s.threshold ?? undefined, confusion: s.confusion ?? undefined };
}

function GateBox({ verdict, title }: { verdict: GateVerdict; title?: string }) {
  const outcome = verdict.forced ? `forced by ${verdict.decided_by}${verdict.reason ? `: ${verdict.reason}` : ''}` : verdict.passed ? 'passed' : 'refused';
  const s = verdict.servability;
  return (
    <div className={`gate ${verdict.passed ? 'gate-pass' : 'gate-fail'}`} role="status" data-testid="gate">
      <strong>
        {title ?? 'Promotion gate'}: {outcome}
      </strong>
      <p>{verdict.message}</p>
      {s && (
        <p data-testid="servability">
          <strong>Servability:</strong> {s.checked ? (s.servable ? 'the deployment loaded it and it serves' : 'the deployment cannot serve it') : 'not checked'} — {s.message}
        </p>
      )}
      <p className="small muted">
        Candidate AUC {num(verdict.candidate_auc)} · production {verdict.production_version !== null ? `v${verdict.production_version} AUC ${num(verdict.production_auc)}` : 'none'} · delta{' '}
        {verdict.delta === null ? '—' : `${verdict.delta >= 0 ? '+' : ''}${num(verdict.delta, 4)}`} · allowed drop {verdict.margin}
        {verdict.reason && !verdict.forced ? ` · reason: ${verdict.reason}` : ''}
      </p>
    </div>
  );
}

function Value({ v }: { v: unknown }): ReactNode {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'number') return num(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') {
    if (/^[0-9a-f]{24,}$/i.test(v) || /^sha256:/.test(v)) return <code title={v}>{shortId(v, 16)}</code>;
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) return dateTime(v);
    return v;
  }
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? v.map(String).join(', ') : <code className="json">{JSON.stringify(v)}</code>;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return '—';
  return (
    <dl className="kv nested">
      {entries.map(([k, x]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, ' ')}</dt>
          <dd>
            <Value v={x} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

function RecordView({ data }: { data: Record<string, unknown> }) {
  return <KeyValues items={Object.entries(data).map(([k, v]) => [k.replace(/_/g, ' '), <Value v={v} />])} />;
}

const ciText = (p: { value: number; ci: [number, number]; k: number; n: number }) => `${p.value.toFixed(3)} (${p.ci[0].toFixed(3)}–${p.ci[1].toFixed(3)}; ${p.k}/${p.n})`;

/** The images of a picked folder whose path has a NORMAL or PNEUMONIA segment, with that label. */
function labelledFiles(files: FileList | null): { file: File; label: 'NORMAL' | 'PNEUMONIA'; path: string }[] {
  const out: { file: File; label: 'NORMAL' | 'PNEUMONIA'; path: string }[] = [];
  for (const file of Array.from(files ?? [])) {
    const path = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
    const label = path.split('/').map((s) => s.toUpperCase()).find((s) => s === 'NORMAL' || s === 'PNEUMONIA') as 'NORMAL' | 'PNEUMONIA' | undefined;
    if (label && /\.(png|jpe?g|dcm|dicom)$/i.test(path)) out.push({ file, label, path });
  }
  return out;
}

/** Site calibration of one version: a labelled folder (or a stored dataset version) → a calibrated child version. */
function CalibrateView({ name, version, onDone }: { name: string; version: number; onDone: () => void }) {
  const id = useId();
  const [files, setFiles] = useState<ReturnType<typeof labelledFiles>>([]);
  const [dataset, setDataset] = useState('');
  const [method, setMethod] = useState<'sensitivity' | 'youden'>('sensitivity');
  const [target, setTarget] = useState('0.95');
  const [minCases, setMinCases] = useState('30');
  const [promote, setPromote] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<CalibrateResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const counts = { PNEUMONIA: files.filter((f) => f.label === 'PNEUMONIA').length, NORMAL: files.filter((f) => f.label === 'NORMAL').length };
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    const options = { method, target_sensitivity: target, min_cases: minCases, ci_method: 'wilson', promote: String(promote) };
    try {
      let body: FormData | Record<string, unknown>;
      if (dataset.trim()) body = { ...options, target_sensitivity: Number(target), min_cases: Number(minCases), promote, dataset_version: dataset.trim() };
      else {
        body = new FormData();
        for (const [k, v] of Object.entries(options)) body.append(k, v);
        for (const f of files) body.append(f.label, f.file, f.path);
      }
      setResult(await calibrate(name, version, body));
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const c = result?.calibration;
  return (
    <div data-testid="calibrate">
      <p className="small">
        Fit a decision threshold and a temperature on <strong>your site's own labelled cases</strong>, scored through the serving path; the result is registered as a child
        version with the same weights. Nothing of the shipped model was tuned on data outside its training split — this calibration is, by definition, on yours.
      </p>
      <form onSubmit={(e) => void submit(e)} className="form-grid">
        <label htmlFor={`${id}-folder`}>Labelled folder ({'{NORMAL,PNEUMONIA}'}/…)</label>
        <input id={`${id}-folder`} type="file" multiple {...{ webkitdirectory: '' }} onChange={(e) => setFiles(labelledFiles(e.target.files))} />
        {files.length > 0 && (
          <p className="small" role="status">
            {counts.PNEUMONIA} PNEUMONIA and {counts.NORMAL} NORMAL images picked
          </p>
        )}
        <label htmlFor={`${id}-dataset`}>or a dataset version id</label>
        <input id={`${id}-dataset`} value={dataset} onChange={(e) => setDataset(e.target.value)} placeholder="64 hex digits" />
        <label htmlFor={`${id}-method`}>Threshold</label>
        <select id={`${id}-method`} value={method} onChange={(e) => setMethod(e.target.value as 'sensitivity' | 'youden')}>
          <option value="sensitivity">target sensitivity</option>
          <option value="youden">Youden's J</option>
        </select>
        {method === 'sensitivity' && (
          <>
            <label htmlFor={`${id}-target`}>Target sensitivity</label>
            <input id={`${id}-target`} type="number" min="0.5" max="0.999" step="0.01" value={target} onChange={(e) => setTarget(e.target.value)} />
          </>
        )}
        <label htmlFor={`${id}-min`}>Minimum cases per class</label>
        <input id={`${id}-min`} type="number" min="10" step="1" value={minCases} onChange={(e) => setMinCases(e.target.value)} />
        <label>
          <input type="checkbox" checked={promote} onChange={(e) => setPromote(e.target.checked)} /> then promote to Production through the gate (on this site's data)
        </label>
        <button type="submit" className="btn primary" disabled={busy || (files.length === 0 && !dataset.trim())}>
          {busy ? 'Calibrating…' : `Calibrate v${version}`}
        </button>
      </form>
      <ErrorCard error={error} title="Calibration refused" />
      {result && c && (
        <div className="outcome" aria-live="polite" data-testid="calibration-result">
          <p className="success" role="status">
            Registered v{result.model_version.version} (child of v{c.parent.version}, same weights).
          </p>
          <KeyValues
            items={[
              ['site data', <code title={c.data.manifest_sha256}>{shortId(c.data.manifest_sha256, 16)}</code>],
              ['cases', `${c.data.n}: ${c.data.positives} PNEUMONIA, ${c.data.negatives} NORMAL${c.data.failed ? ` (${c.data.failed} not scored)` : ''}`],
              ['threshold', `${num(c.threshold)} (${c.method === 'sensitivity' ? `target sensitivity ${c.target_sensitivity}` : "Youden's J"})`],
              ['temperature', `${num(c.temperature)} (ECE ${num(c.ece_before)} → ${num(c.ece_after)})`],
              ['sensitivity', ciText(c.sensitivity)],
              ['specificity', ciText(c.specificity)],
              ['AUC', num(c.auc)],
              [
                'sample size',
                `±${c.sample_size.half_width} needs ~${c.sample_size.positives_needed} PNEUMONIA and ~${c.sample_size.negatives_needed} NORMAL — ${c.sample_size.sufficient ? 'enough' : 'not enough yet'}`,
              ],
            ]}
          />
          {result.promotion.gate && <GateBox verdict={result.promotion.gate} title={`v${result.model_version.version} → Production`} />}
          {result.promotion.error && <p className="error">Not promoted: {result.promotion.error.message}</p>}
        </div>
      )}
    </div>
  );
}

const share = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);

/** Where the heatmaps fall relative to the lung fields on validation, and the button that measures it. */
function HeatmapLocation({ name, version, report, onMeasured }: { name: string; version: number; report: LungFieldReport | null; onMeasured: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const measure = async () => {
    setBusy(true);
    setError(null);
    try {
      await measureLungFields(name, version);
      onMeasured();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const r = report;
  const low = r?.mean_inside !== null && r?.mean_inside !== undefined && r.mean_inside < 0.5;
  return (
    <div data-testid="heatmap-location">
      {r ? (
        <>
          <p className={low ? 'warning-box' : undefined}>
            On {r.n} validation images, <strong>{share(r.mean_inside)}</strong> of the heatmap mass falls inside the lung fields on average (median {share(r.median_inside)}, 10th percentile{' '}
            {share(r.p10_inside)}); {share(r.share_mostly_outside)} of the maps put most of their mass outside. A map spread evenly would put {share(r.atlas.coverage)} inside.
            {low && ' The model may be using cues outside the lungs.'}
          </p>
          {r.regions && (
            <KeyValues
              items={[
                ['inside the lung fields', share(r.regions.inside)],
                ['above (neck, shoulders)', share(r.regions.above)],
                ['below (diaphragm, abdomen)', share(r.regions.below)],
                ['between (mediastinum, heart)', share(r.regions.between)],
                ['lateral (image edges, markers)', share(r.regions.lateral)],
                ...Object.entries(r.by_label).map(([label, b]): [string, string] => [`${label} images (${b.n})`, `${share(b.mean_inside)} inside on average`]),
              ]}
            />
          )}
          <p className="small muted">
            Lung-field proxy, from {r.atlas.train_images} training images: {r.atlas.description} {r.failed ? `${r.failed} images could not be scored. ` : ''}
            {r.empty ? `${r.empty} maps had no activation. ` : ''}Measured by {r.measured_by}, {dateTime(r.measured_at)}.
          </p>
        </>
      ) : (
        <p className="muted">Not measured yet: how much of the heatmap falls inside the lung fields on the validation split.</p>
      )}
      <button type="button" className="btn small" disabled={busy} onClick={() => void measure()}>
        {busy ? 'Measuring…' : r ? 'Measure again' : 'Measure on the validation split'}
      </button>
      <ErrorCard error={error} title="Not measured" />
    </div>
  );
}

/** Candidate recipes on held-out splits of the training data, each at its own validation threshold. */
function ShiftEvidenceView({ e }: { e: ModelCard['shift_evidence'] }) {
  if (!e) return <p className="muted">Not recorded.</p>;
  return (
    <>
      {e.protocol && <p>{e.protocol}</p>}
      {e.rows.length === 0 ? (
        <p className="muted">No rows recorded.</p>
      ) : (
        <table className="table" data-testid="shift-evidence">
          <thead>
            <tr>
              <th>Candidate</th>
              <th>Split</th>
              <th>n (pos/neg)</th>
              <th>AUC (95% CI)</th>
              <th>Sensitivity</th>
              <th>Specificity</th>
              <th>Threshold</th>
            </tr>
          </thead>
          <tbody>
            {e.rows.map((r, i) => (
              <tr key={i}>
                <td>{r.shipped ? <strong>{r.candidate} (shipped)</strong> : r.candidate}</td>
                <td title={r.description || undefined}>{r.split}</td>
                <td>
                  {r.n ?? '—'} ({r.positives ?? '?'}/{r.negatives ?? '?'})
                </td>
                <td>
                  {num(r.auc)}
                  {r.auc_ci ? ` (${r.auc_ci[0].toFixed(3)}–${r.auc_ci[1].toFixed(3)})` : ''}
                </td>
                <td>{num(r.sensitivity)}</td>
                <td>{num(r.specificity)}</td>
                <td>{num(r.threshold)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function ModelCardView({ c, onChanged }: { c: ModelCard; onChanged: () => void }) {
  const { trained_on: trainedOn, ...training } = c.training;
  return (
    <article className="model-card" data-testid="model-card">
      <h3>Model</h3>
      <RecordView data={c.model} />
      <h3>Intended use</h3>
      <p>{c.intended_use.summary}</p>
      <p>
        <strong>Users:</strong> {c.intended_use.users}
      </p>
      {c.intended_use.out_of_scope.length > 0 && (
        <>
          <p>
            <strong>Out of scope:</strong>
          </p>
          <ul>
            {c.intended_use.out_of_scope.map((x) => (
              <li key={x}>{x}</li>
            ))}
          </ul>
        </>
      )}
      <h3>Data</h3>
      <RecordView data={c.data} />
      <h3>Evaluation</h3>
      {c.evaluation.length ? <MetricsTable evaluations={c.evaluation.map((e) => ({ name: e.split, e: toEvaluation(e) }))} /> : <p className="muted">No evaluation recorded.</p>}
      <h3>Shift evidence</h3>
      <ShiftEvidenceView e={c.shift_evidence} />
      <h3>Decision threshold</h3>
      <p>
        {num(c.threshold.value)} {c.threshold.method ? `(${c.threshold.method})` : ''} — {c.threshold.how_chosen}
      </p>
      <h3>Training</h3>
      <RecordView data={training} />
      <p data-testid="trained-on">
        <strong>Where it was trained:</strong> {trainedOn ? describeTrainedOn(trainedOn) : 'Not recorded.'}
      </p>
      <h3>What was tried</h3>
      {c.tried ? (
        <table className="table" data-testid="tried">
          <thead>
            <tr>
              <th>What</th>
              <th>Result</th>
              <th>Kept</th>
            </tr>
          </thead>
          <tbody>
            {c.tried.map((t, i) => (
              <tr key={i}>
                <td>{t.what}</td>
                <td>{t.result}</td>
                <td>{t.kept ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">Not recorded.</p>
      )}
      <h3>Heatmap location</h3>
      <HeatmapLocation name={c.model.name} version={c.model.version} report={c.heatmap_location} onMeasured={onChanged} />
      <h3>Site calibrations</h3>
      {c.site_calibrations.length === 0 ? (
        <p className="muted">None: no site has calibrated these weights on its own labelled cases yet.</p>
      ) : (
        <table className="table" data-testid="site-calibrations">
          <thead>
            <tr>
              <th>Version</th>
              <th>Site data</th>
              <th>n (pos/neg)</th>
              <th>Method</th>
              <th>Threshold</th>
              <th>Temperature</th>
              <th>Sensitivity (95% CI)</th>
              <th>Specificity (95% CI)</th>
              <th>By, when</th>
            </tr>
          </thead>
          <tbody>
            {c.site_calibrations.map((s) => (
              <tr key={s.version}>
                <td>
                  v{s.version}
                  {s.this_version ? ' (this)' : ''} from v{s.parent.version}
                </td>
                <td>
                  <code title={s.data_hash}>{shortId(s.data_hash, 12)}</code> {s.data_kind === 'folder' ? 'folder' : 'dataset'}
                  {s.split ? ` ${s.split}` : ''}
                </td>
                <td>
                  {s.n} ({s.positives}/{s.negatives})
                </td>
                <td>{s.method === 'sensitivity' ? `sensitivity ≥ ${s.target_sensitivity}` : "Youden's J"}</td>
                <td>{num(s.threshold)}</td>
                <td>{num(s.temperature)}</td>
                <td>{ciText(s.sensitivity)}</td>
                <td>{ciText(s.specificity)}</td>
                <td>
                  {s.by}, {dateTime(s.at)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Limitations</h3>
      <ul>
        {c.limitations.map((x) => (
          <li key={x}>{x}</li>
        ))}
      </ul>
      <p className="small muted">Card generated {dateTime(c.generated_at)}.</p>
    </article>
  );
}

function LineageView({ name, version }: { name: string; version: number }) {
  const l = useAsync(() => lineage(name, version), [name, version]);
  if (l.error) return <ErrorCard error={l.error} title="Lineage unavailable" />;
  if (!l.data) return <Loading />;
  const chain = l.data.chain;
  return (
    <div>
      <ol className="lineage" aria-label="Lineage chain" data-testid="lineage">
        {chain.map((n, i) => (
          <Fragment key={`${n.kind}-${n.id}-${i}`}>
            <li className={`lineage-node kind-${n.kind.replace(/[^a-z_]/gi, '')}`}>
              <span className="lineage-kind">{n.kind.replace(/_/g, ' ')}</span>
              <code title={n.id}>{shortId(n.id, 18)}</code>
              {Object.entries(n.details)
                .filter(([, v]) => v !== null && v !== undefined && typeof v !== 'object')
                .slice(0, 3)
                .map(([k, v]) => (
                  <span key={k} className="small muted">
                    {k.replace(/_/g, ' ')}: {typeof v === 'number' ? num(v) : shortId(String(v), 18)}
                  </span>
                ))}
            </li>
            {i < chain.length - 1 && (
              <li className="lineage-arrow" aria-hidden="true">
                →
              </li>
            )}
          </Fragment>
        ))}
      </ol>
      {chain.length === 0 && <p className="muted">No lineage recorded.</p>}
      {l.data.artifacts.length > 0 && <p className="small muted">Artifacts: {l.data.artifacts.map((a) => a.path).join(', ')}</p>}
    </div>
  );
}

function CompareView({ name, versions }: { name: string; versions: number[] }) {
  const cmp = useAsync(() => compare(name, versions), [name, versions.join(',')]);
  if (cmp.error) return <ErrorCard error={cmp.error} title="Comparison failed" />;
  if (!cmp.data) return <Loading label="Comparing…" />;
  const c: Comparison = cmp.data;
  const diffs = Object.entries(c.params_diff);
  return (
    <div className="compare" data-testid="compare">
      <div className="compare-grid">
        <MetricsTable caption="Validation metrics" evaluations={c.versions.map((v) => ({ name: `v${v.version}`, e: toEvaluation(v.metrics) }))} />
        <RocChart title="ROC curves" series={c.versions.map((v, i) => rocSeries(`v${v.version} (AUC ${num(v.metrics?.auc)})`, v.roc, PALETTE[i], i > 0))} />
      </div>
      <div className="compare-cms">
        {c.versions.map((v) => (
          <ConfusionMatrix key={v.version} confusion={v.confusion ?? v.metrics?.confusion} title={`v${v.version} confusion matrix`} />
        ))}
      </div>
      {c.metric_deltas.length > 0 && (
        <p className="small">
          {c.metric_deltas.map((d) => (
            <span key={`${d.version}-${d.against}`}>
              v{d.version} vs v{d.against}:{' '}
              {Object.entries(d.deltas)
                .filter(([, x]) => x !== null)
                .map(([k, x]) => `${k} ${x! >= 0 ? '+' : ''}${num(x, 3)}`)
                .join(', ')}
              .{' '}
            </span>
          ))}
        </p>
      )}
      <Table
        caption="What differs"
        columns={[
          { key: 'k', header: 'Setting', render: (r: [string, (string | null)[]]) => r[0] },
          ...c.versions.map((v, i) => ({ key: `v${v.version}`, header: `v${v.version}`, render: (r: [string, (string | null)[]]) => r[1][i] ?? '—' })),
        ]}
        rows={[
          ['dataset version', c.versions.map((v) => shortId(v.dataset_version, 12))] as [string, (string | null)[]],
          ['preprocessing', c.versions.map((v) => shortId(v.preprocessing_hash, 12))] as [string, (string | null)[]],
          ['threshold', c.versions.map((v) => `${num(v.threshold)} ${v.threshold_method ?? ''}`)] as [string, (string | null)[]],
          ...diffs,
        ]}
        rowKey={(r) => r[0]}
      />
    </div>
  );
}

function StageButtons({ v, busy, onMove }: { v: ModelVersion; busy: boolean; onMove: (stage: Stage) => void }) {
  const targets = (['Staging', 'Production', 'Archived'] as const).filter((s) => s !== v.stage);
  return (
    <div className="row nowrap">
      {targets.map((s) => (
        <button
          key={s}
          type="button"
          className={`btn small${s === 'Production' ? ' primary' : ''}`}
          disabled={busy}
          onClick={(e) => {
            e.stopPropagation();
            onMove(s);
          }}
          aria-label={`${VERB[s]} version ${v.version}${s === 'Archived' ? '' : ` to ${s}`}`}
        >
          {VERB[s]}
        </button>
      ))}
    </div>
  );
}

/**
 * Moving the Production version out of Production leaves Production empty while the deployment
 * keeps serving it: say so, and let an admin go ahead with a reason (the API refuses otherwise).
 */
function ConfirmLeaveProduction({ v, stage, serving, onCancel, onConfirm }: { v: ModelVersion; stage: Stage; serving: boolean; onCancel: () => void; onConfirm: (reason: string) => void }) {
  const id = useId();
  const [reason, setReason] = useState('');
  return (
    <form
      className="confirm-box"
      role="alertdialog"
      aria-labelledby={`${id}-title`}
      data-testid="confirm-leave-production"
      onSubmit={(e) => {
        e.preventDefault();
        onConfirm(reason.trim());
      }}
    >
      <p id={`${id}-title`}>
        <strong>
          {VERB[stage as keyof typeof VERB] ?? 'Move'} v{v.version}, the Production version?
        </strong>
      </p>
      <p>
        Production will be empty: no version behind the <code>@production</code> alias.{' '}
        {serving ? <>The deployment keeps serving v{v.version} for every prediction until another version is promoted.</> : <>Nothing new will be loaded for predictions.</>} Usually you want to promote
        the replacement instead (the current version is archived automatically).
      </p>
      <div className="row">
        <label htmlFor={`${id}-reason`}>Admin — reason</label>
        <input id={`${id}-reason`} required value={reason} onChange={(e) => setReason(e.target.value)} size={30} />
        <button type="submit" className="btn danger" disabled={!reason.trim()}>
          {VERB[stage as keyof typeof VERB] ?? 'Move'} anyway
        </button>
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Button text of each stage move; the accessible name starts with it (WCAG 2.5.3). */
const VERB = { Staging: 'Stage', Production: 'Promote', Archived: 'Archive' } as const;

function ForceForm({ name, version, onDone }: { name: string; version: number; onDone: (r: { verdict?: GateVerdict | null; error?: unknown }) => void }) {
  const id = useId();
  const [reason, setReason] = useState('');
  return (
    <form
      className="row"
      onSubmit={(e) => {
        e.preventDefault();
        setStage(name, { version, stage: 'Production', force: true, reason: reason.trim() }).then(
          (r) => onDone({ verdict: r.gate }),
          (err: unknown) => onDone({ error: err }),
        );
      }}
    >
      <label htmlFor={`${id}-reason`}>Admin override — reason</label>
      <input id={`${id}-reason`} required value={reason} onChange={(e) => setReason(e.target.value)} size={30} />
      <button type="submit" className="btn danger" disabled={!reason.trim()}>
        Force promotion
      </button>
    </form>
  );
}

function ModelDetailView({ name, onChanged }: { name: string; onChanged?: () => void }) {
  const detail = useAsync(() => getModel(name), [name]);
  const serving = useAsync(loadedModels, []);
  const [checked, setChecked] = useState<number[] | null>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const [outcome, setOutcome] = useState<{ verdict?: GateVerdict | null; error?: unknown; version: number; stage: Stage } | null>(null);
  const [tab, setTab] = useState<'lineage' | 'card' | 'calibrate'>('lineage');
  const [loadError, setLoadError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<{ v: ModelVersion; stage: Stage } | null>(null);

  const versions = (detail.data?.versions ?? []).filter((v) => !v.deleted).sort((a, b) => b.version - a.version);
  // Default: compare the two newest versions.
  const compareSet = checked ?? versions.slice(0, 2).map((v) => v.version);
  const current = selected ?? versions[0]?.version ?? null;
  const cardData = useAsync(current !== null && tab === 'card' ? () => card(name, current) : null, [name, current, tab]);

  useEffect(() => setOutcome(null), [name]);

  const move = async (v: ModelVersion, stage: Stage, force?: { reason: string }) => {
    setBusy(true);
    setConfirm(null);
    try {
      const r = await setStage(v.name, { version: v.version, stage, ...(force ? { force: true, reason: force.reason } : {}) });
      setOutcome({ verdict: r.gate, version: v.version, stage });
    } catch (err) {
      setOutcome({ error: err, version: v.version, stage });
    } finally {
      setBusy(false);
      // Show the server's state after every action: stages, aliases, serving badges, history.
      detail.reload();
      serving.reload();
      onChanged?.();
    }
  };
  const requestMove = (v: ModelVersion, stage: Stage) => {
    if (v.stage === 'Production' && stage !== 'Production') setConfirm({ v, stage });
    else void move(v, stage);
  };

  if (detail.error) return <ErrorCard error={detail.error} onRetry={detail.reload} />;
  if (!detail.data) return <Loading />;

  const servingHere = (serving.data?.models ?? []).filter((m) => m.name === name);
  const currentVersion = versions.find((v) => v.version === current) ?? null;
  // A variant whose parity gate did not pass never serves: say why instead of offering to load it.
  const unservableVariant = currentVersion?.variant && !currentVersion.variant.gate_passed ? currentVersion.variant : null;
  const toggle = (v: number) => setChecked((cur) => {
    const base = cur ?? compareSet;
    return base.includes(v) ? base.filter((x) => x !== v) : [...base, v].slice(-2);
  });

  const columns: Column<ModelVersion>[] = [
    {
      key: 'cmp',
      header: 'Compare',
      render: (v) => (
        <input
          type="checkbox"
          checked={compareSet.includes(v.version)}
          onChange={() => toggle(v.version)}
          onClick={(e) => e.stopPropagation()}
          aria-label={`Compare version ${v.version}`}
        />
      ),
    },
    {
      key: 'version',
      header: 'Version',
      render: (v) => (
        <>
          <strong>v{v.version}</strong>
          {v.variant && <VariantBadge variant={v.variant} />}
        </>
      ),
      sortValue: (v) => v.version,
    },
    { key: 'stage', header: 'Stage', render: (v) => <Badge>{v.stage}</Badge>, sortValue: (v) => v.stage },
    {
      key: 'aliases',
      header: 'Aliases',
      render: (v) => (
        <span className="aliases">
          {v.aliases.map((a) => (
            <Badge key={a} tone="info">
              @{a}
            </Badge>
          ))}
          {servingHere.some((m) => m.version === String(v.version)) && <Badge tone="good">serving</Badge>}
        </span>
      ),
    },
    { key: 'auc', header: 'Val AUC', align: 'right', render: (v) => num(v.val_auc), sortValue: (v) => v.val_auc },
    { key: 'dataset', header: 'Dataset', render: (v) => <code title={v.dataset_version ?? ''}>{shortId(v.dataset_version, 10)}</code> },
    { key: 'created', header: 'Registered', render: (v) => dateTime(v.created), sortValue: (v) => v.created },
    { key: 'gate', header: 'Last gate', render: (v) => (v.gate ? <Badge tone={v.gate.passed ? 'good' : 'bad'}>{v.gate.forced ? 'forced' : v.gate.passed ? 'passed' : 'refused'}</Badge> : '—') },
    {
      key: 'actions',
      header: 'Actions',
      render: (v) => (
        <StageButtons v={v} busy={busy} onMove={(stage) => requestMove(v, stage)} />
      ),
    },
  ];

  const refusedCode = outcome?.error instanceof ApiError && (outcome.error.code === 'GATE_FAILED' || outcome.error.code === 'NOT_SERVABLE') ? outcome.error.code : null;
  const gateError = refusedCode ? ((outcome!.error as ApiError).details as { verdict?: GateVerdict } | undefined)?.verdict ?? null : null;
  const sorted = [...compareSet].sort((a, b) => a - b);

  return (
    <>
      <ServingBanner problems={serving.data?.problems} model={name} />
      <Card title={`${name} · versions`}>
        {detail.data.model.description && <p>{detail.data.model.description}</p>}
        <p className="stat-line">
          Aliases: {detail.data.model.aliases.map((a) => `@${a.alias} → v${a.version}`).join(', ') || 'none'} · Serving:{' '}
          {servingHere.length ? servingHere.map((m) => `v${m.version}${m.default ? ' (default)' : ''}`).join(', ') : 'not loaded'}
        </p>
        <Table columns={columns} rows={versions} rowKey={(v) => String(v.version)} onSelect={(v) => setSelected(v.version)} selectedKey={current !== null ? String(current) : null} testId="model-versions" />
        {confirm && (
          <ConfirmLeaveProduction
            v={confirm.v}
            stage={confirm.stage}
            serving={servingHere.some((m) => m.version === String(confirm.v.version))}
            onCancel={() => setConfirm(null)}
            onConfirm={(reason) => void move(confirm.v, confirm.stage, { reason })}
          />
        )}
        {outcome && (
          <div className="outcome" aria-live="polite">
            {outcome.verdict && <GateBox verdict={outcome.verdict} title={`v${outcome.version} → ${outcome.stage}`} />}
            {gateError && <GateBox verdict={gateError} title={`v${outcome.version} → ${outcome.stage}`} />}
            {outcome.error !== undefined && !gateError && <ErrorCard error={outcome.error} title={`v${outcome.version} → ${outcome.stage} failed`} />}
            {gateError && refusedCode === 'GATE_FAILED' && (
              <ForceForm
                name={name}
                version={outcome.version}
                onDone={(r) => {
                  setOutcome({ ...r, version: outcome.version, stage: 'Production' });
                  detail.reload();
                  serving.reload();
                }}
              />
            )}
            {refusedCode === 'NOT_SERVABLE' && <NotServableHint refused={versions.find((v) => v.version === outcome.version) ?? null} />}
            {!outcome.error && outcome.stage !== 'Production' && !outcome.verdict && (
              <p className="success" role="status">
                v{outcome.version} moved to {outcome.stage}.
              </p>
            )}
          </div>
        )}
        {unservableVariant && (
          <p className="small" data-testid="variant-not-servable">
            v{current} cannot serve: {unservableVariant.message}
          </p>
        )}
        {current !== null && !servingHere.some((m) => m.version === String(current)) && !unservableVariant && (
          <p className="small">
            <button
              type="button"
              className="btn small"
              onClick={() => {
                setLoadError(null);
                loadModel({ name, version: String(current), default: false }).then(serving.reload, setLoadError);
              }}
            >
              Load v{current} for pinned predictions
            </button>{' '}
            <span className="muted">(serves it alongside the default; requests name it with ?version=)</span>
          </p>
        )}
        <ErrorCard error={loadError} title="Load failed" />
      </Card>
      <Card title={sorted.length === 2 ? `Compare v${sorted[0]} and v${sorted[1]}` : 'Compare versions'}>
        {sorted.length === 2 ? <CompareView name={name} versions={sorted} /> : <p className="muted">Tick two versions in the table to compare them side by side.</p>}
      </Card>
      {current !== null && (
        <Card
          title={`v${current}`}
          actions={
            <div className="segmented" role="tablist" aria-label="Version details">
              <button type="button" role="tab" aria-selected={tab === 'lineage'} className={tab === 'lineage' ? 'on' : ''} onClick={() => setTab('lineage')}>
                Lineage
              </button>
              <button type="button" role="tab" aria-selected={tab === 'card'} className={tab === 'card' ? 'on' : ''} onClick={() => setTab('card')}>
                Model card
              </button>
              <button type="button" role="tab" aria-selected={tab === 'calibrate'} className={tab === 'calibrate' ? 'on' : ''} onClick={() => setTab('calibrate')}>
                Site calibration
              </button>
            </div>
          }
        >
          {tab === 'lineage' ? (
            <LineageView name={name} version={current} />
          ) : tab === 'calibrate' ? (
            <CalibrateView
              name={name}
              version={current}
              onDone={() => {
                detail.reload();
                serving.reload();
                onChanged?.();
              }}
            />
          ) : cardData.error ? (
            <ErrorCard error={cardData.error} title="Model card unavailable" />
          ) : cardData.data ? (
            <ModelCardView c={cardData.data} onChanged={cardData.reload} />
          ) : (
            <Loading />
          )}
        </Card>
      )}
      {detail.data.stage_events.length > 0 && (
        <Card title="Stage history">
          <Table
            columns={[
              { key: 'time', header: 'When', render: (e) => dateTime(e.created_at), sortValue: (e) => e.created_at },
              { key: 'v', header: 'Version', render: (e) => `v${e.version}`, sortValue: (e) => e.version },
              { key: 'move', header: 'Change', render: (e) => `${e.from_stage} → ${e.to_stage}` },
              { key: 'outcome', header: 'Outcome', render: (e) => <Badge tone={e.outcome === 'applied' ? 'good' : 'bad'}>{e.forced ? 'forced' : e.outcome}</Badge> },
              { key: 'actor', header: 'By', render: (e) => e.actor },
              { key: 'why', header: 'Gate / reason', render: (e) => e.reason ?? e.verdict?.message ?? '—' },
            ]}
            rows={detail.data.stage_events}
            rowKey={(e) => e.id}
            initialSort={{ key: 'time', dir: 'desc' }}
          />
        </Card>
      )}
    </>
  );
}

export function ModelsPage() {
  const models = useAsync(listModels, []);
  const [selected, setSelected] = useState<string | null>(null);
  const list = models.data?.models ?? [];
  const current = selected ?? list[0]?.name ?? null;
  return (
    <>
      <PageHeader title="Models">Registered models and their versions: compare them, promote through the AUC gate, trace their lineage and read their model cards.</PageHeader>
      {models.error ? (
        <ErrorCard error={models.error} title="Could not list models" onRetry={models.reload} />
      ) : !models.data ? (
        <Loading />
      ) : list.length === 0 ? (
        <div className="notice">No models registered yet. Train one on the Training page (with “Register as”), or register an ONNX file with <code>xray models register</code>.</div>
      ) : (
        <nav className="model-tabs" aria-label="Registered models">
          {list.map((m) => (
            <button key={m.name} type="button" className={`model-tab${m.name === current ? ' on' : ''}`} aria-current={m.name === current ? 'true' : undefined} onClick={() => setSelected(m.name)}>
              <strong>{m.name}</strong>
              <span className="small">
                {m.latest_version !== null ? `latest v${m.latest_version}` : 'no versions'}
                {m.production ? ` · prod v${m.production.version}` : ''}
                {m.staging ? ` · staging v${m.staging.version}` : ''}
              </span>
            </button>
          ))}
        </nav>
      )}
      {current && <ModelDetailView key={current} name={current} onChanged={models.reload} />}
    </>
  );
}

/** A variant (an INT8 quantization of another version): what it is a form of, and whether its parity gate let it serve. */
function VariantBadge({ variant }: { variant: NonNullable<ModelVersion['variant']> }) {
  const kind = variant.kind === 'unknown' ? 'variant' : variant.kind.toUpperCase();
  const label = variant.gate_passed ? `${kind} of v${variant.of?.version ?? '?'}` : `${kind} · gate failed`;
  return (
    <span title={variant.message} data-testid="variant-badge">
      {' '}
      <Badge tone={variant.gate_passed ? 'info' : 'bad'}>{label}</Badge>
    </span>
  );
}

/** What to do about a version the deployment cannot serve (promotion refused, no override). */
function NotServableHint({ refused }: { refused: ModelVersion | null }) {
  const variant = refused?.variant;
  if (variant && !variant.gate_passed) {
    return (
      <p className="small">
        A variant whose parity gate did not pass never serves; no override exists.{' '}
        {variant.of ? `Promote the version it was made from (v${variant.of.version}) instead, or train again with --int8.` : 'Register the INT8 file through a training job (xray train --int8) so its gate is measured.'}
      </p>
    );
  }
  return <p className="small">A version the deployment cannot load is never promoted; no override exists. Fix the model (or its recorded preprocessing) and register it again.</p>;
}
