import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { preprocess } from '../api/dataPipeline.js';
import { heatmapBlob, loadedModels, predict, predictBatch, type Label, type LoadedModel, type Prediction } from '../api/deployment.js';
import { ApiError } from '../api/http.js';
import { explainPrediction, sendFeedback, type Explanation, type FeedbackResult } from '../api/monitoring.js';
import { Badge } from '../components/Badge.js';
import { DropZone } from '../components/DropZone.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { HeatmapViewer, type Overlay } from '../components/HeatmapViewer.js';
import { Card, KeyValues, Loading, PageHeader } from '../components/Layout.js';
import { ServingBanner } from '../components/ServingBanner.js';
import { ProbabilityBar } from '../components/ProbabilityBar.js';
import { Table, type Column } from '../components/Table.js';
import { ms, pct } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';
import { useObjectUrl } from '../hooks/useObjectUrl.js';
import { Link } from '../router.js';

interface Item {
  key: string;
  file: File;
  /** Object URL of the upload when the browser can show it (PNG/JPEG), else null (DICOM). */
  previewUrl: string | null;
  state: 'pending' | 'done' | 'error';
  prediction?: Prediction;
  error?: unknown;
}

let counter = 0;
/** Side of the preprocessed base image of DICOM uploads. */
const BASE_DISPLAY_SIZE = 512;

function browserCanShow(file: File): boolean {
  return /^image\/(png|jpeg)$/.test(file.type) || /\.(png|jpe?g)$/i.test(file.name);
}

function overlaySrc(p: Prediction | undefined): string | null {
  return p?.heatmap_png_base64 ? `data:image/png;base64,${p.heatmap_png_base64}` : null;
}

/** The overlay URL: inline base64 when the API sent it, else the heatmap endpoint. */
function useOverlay(p: Prediction | undefined): string | null {
  const inline = overlaySrc(p);
  const { data } = useAsync(p && !inline ? () => heatmapBlob(p.heatmap_url) : null, [p?.prediction_id, inline]);
  const fetched = useObjectUrl(data);
  return inline ?? fetched;
}

function modelFor(models: LoadedModel[] | undefined, p: Prediction | undefined): LoadedModel | undefined {
  if (!models || !p) return undefined;
  return models.find((m) => m.name === p.model.name && m.version === p.model.version) ?? models.find((m) => m.name === p.model.name);
}

function FeedbackBox({ prediction }: { prediction: Prediction }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<FeedbackResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const other: Label = prediction.label === 'PNEUMONIA' ? 'NORMAL' : 'PNEUMONIA';
  const send = async (label: Label) => {
    setBusy(true);
    setError(null);
    try {
      setResult(await sendFeedback(prediction.prediction_id, label));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="feedback" aria-live="polite">
      <h3>Confirm diagnosis</h3>
      <p className="muted small">Your confirmed diagnosis is recorded as ground truth for monitoring (rolling AUC, sensitivity).</p>
      <div className="row">
        <button type="button" className="btn primary" disabled={busy} onClick={() => void send(prediction.label)} data-testid="confirm">
          Confirm {prediction.label}
        </button>
        <button type="button" className="btn" disabled={busy} onClick={() => void send(other)}>
          Correct to {other}
        </button>
      </div>
      {result && (
        <p className="success" role="status" data-testid="feedback-result">
          ✓ Recorded {result.label === 1 ? 'PNEUMONIA' : 'NORMAL'} as the diagnosis{result.replaced ? ' (replacing an earlier one)' : ''}.
        </p>
      )}
      <ErrorCard error={error} title="Feedback not recorded" />
    </div>
  );
}

function ResultDetail({ item, models }: { item: Item; models: LoadedModel[] | undefined }) {
  const p = item.prediction;
  const model = modelFor(models, p);
  const spec = model?.preprocessing;
  const overlay = useOverlay(p);
  // PNG/JPEG: the upload itself, fitted as the model's preprocessing fits it. Other formats (DICOM):
  // the data pipeline's preprocessing with the model's mode and padding — the heatmap's geometry —
  // at a display size (the geometry does not depend on the size, so small model inputs stay sharp).
  const needsPreprocess = !!p && !item.previewUrl;
  const displaySize = Math.max(spec?.size ?? 0, BASE_DISPLAY_SIZE);
  const { data: base } = useAsync(needsPreprocess ? () => preprocess(item.file, { size: displaySize, mode: spec?.mode, pad: spec?.pad }) : null, [item.key, needsPreprocess, spec?.hash]);
  const baseUrl = useObjectUrl(base);
  const [explanation, setExplanation] = useState<Explanation | null>(null);
  const [explainError, setExplainError] = useState<unknown>(null);
  const [explaining, setExplaining] = useState(false);

  if (item.state === 'pending') return <Loading label={`Analysing ${item.file.name}…`} />;
  if (item.state === 'error' || !p) return <ErrorCard error={item.error} title={`Could not analyse ${item.file.name}`} />;

  const t = p.timings_ms;
  const overlays: Overlay[] = [];
  if (overlay) overlays.push({ label: p.heatmap_method === 'cam' ? 'Class activation' : 'Occlusion', url: overlay, method: p.heatmap_method });
  if (explanation && p.heatmap_method === 'cam') overlays.push({ label: 'Occlusion', url: `data:image/png;base64,${explanation.occlusion.png_base64}`, method: 'occlusion' });
  const secondOpinion = async () => {
    setExplaining(true);
    setExplainError(null);
    try {
      setExplanation(await explainPrediction(p.prediction_id));
    } catch (err) {
      setExplainError(err);
    } finally {
      setExplaining(false);
    }
  };
  return (
    <div className="result" data-testid="result">
      <div>
        <HeatmapViewer
          baseUrl={baseUrl ?? item.previewUrl}
          overlays={overlays}
          fit={baseUrl ? 'squash' : ((spec?.mode as 'letterbox' | 'crop' | 'squash' | undefined) ?? 'letterbox')}
          alt={`Chest X-ray ${item.file.name}`}
        />
        {p.heatmap_method === 'cam' && !explanation && (
          <button type="button" className="btn small second-opinion" onClick={() => void secondOpinion()} disabled={explaining}>
            {explaining ? 'Computing occlusion map…' : 'Second opinion: occlusion sensitivity'}
          </button>
        )}
        <ErrorCard error={explainError} title="No occlusion map" />
        <p className="small heatmap-caption" data-testid="heatmap-caption">
          Colour marks the regions that pushed the model towards pneumonia (red strongest, blue weakest). Its strength follows the probability, so a confident
          “normal” shows little or no colour. It shows where the model looked, not where disease is.
        </p>
        {explanation && <Agreement agreement={explanation.agreement} />}
      </div>
      <div className="result-side">
        <div className="result-label">
          <span className="muted">Model says</span>
          <span className={`verdict ${p.label === 'PNEUMONIA' ? 'positive' : 'negative'}`} data-testid="label">
            {p.label}
          </span>
        </div>
        <ProbabilityBar probability={p.probability} threshold={p.threshold} />
        <p className="small" data-testid="threshold-meaning">
          At or above the threshold of {pct(p.threshold)} the result reads PNEUMONIA. The threshold is the model&apos;s operating point, chosen on its validation
          data; the probability is the model&apos;s score for this image, not a diagnosis.
        </p>
        <p className="small decision-support" role="note">
          Decision support only: a clinician reviews every result.
        </p>
        <KeyValues
          items={[
            ['File', item.file.name],
            ['Model', <span data-testid="model">{`${p.model.name} v${p.model.version}`}</span>],
            ['Variant', p.variant],
            ['Heatmap', p.heatmap_method === 'cam' ? 'class activation map' : 'occlusion sensitivity'],
            ['Cached', p.cached ? 'yes (same image and model)' : 'no'],
          ]}
        />
        <table className="timings">
          <caption>Timings</caption>
          <tbody>
            {(['preprocess', 'queue', 'inference', 'heatmap', 'total'] as const).map((k) => (
              <tr key={k} className={k === 'total' ? 'total' : undefined}>
                <th scope="row">{k}</th>
                <td>{ms(t[k])}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <FeedbackBox key={p.prediction_id} prediction={p} />
      </div>
    </div>
  );
}

/** Whether CAM and occlusion point at the same regions; a low agreement is a warning. */
function Agreement({ agreement }: { agreement: Explanation['agreement'] }) {
  if (agreement.spearman === null) return <p className="small muted">One of the maps is flat: no agreement to measure.</p>;
  const rho = agreement.spearman.toFixed(2);
  if (agreement.level === 'low') {
    return (
      <p className="warning-box small" role="status" data-testid="agreement">
        The two maps disagree (rank correlation {rho}): neither is a reliable guide to what drove this result.
      </p>
    );
  }
  return (
    <p className="small" role="status" data-testid="agreement">
      Class activation and occlusion agree {agreement.level === 'high' ? 'well' : 'partly'} (rank correlation {rho}).
    </p>
  );
}

function Thumb({ item }: { item: Item }) {
  const [broken, setBroken] = useState(false);
  const src = (item.state === 'error' ? null : item.previewUrl) ?? overlaySrc(item.prediction);
  return src && !broken ? <img className="thumb" src={src} alt="" onError={() => setBroken(true)} /> : <span className="thumb thumb-empty" aria-hidden="true" />;
}

export function PredictPage() {
  const [items, setItems] = useState<Item[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [batchError, setBatchError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const models = useAsync(loadedModels, []);
  const urls = useRef<string[]>([]);

  useEffect(() => () => urls.current.forEach((u) => URL.revokeObjectURL(u)), []);

  const onFiles = useCallback(async (files: File[]) => {
    urls.current.forEach((u) => URL.revokeObjectURL(u));
    urls.current = [];
    const fresh: Item[] = files.map((file) => {
      const previewUrl = browserCanShow(file) ? URL.createObjectURL(file) : null;
      if (previewUrl) urls.current.push(previewUrl);
      return { key: `f${++counter}`, file, previewUrl, state: 'pending' };
    });
    setItems(fresh);
    setSelected(fresh[0]!.key);
    setBatchError(null);
    setBusy(true);
    try {
      if (fresh.length === 1) {
        try {
          const prediction = await predict(fresh[0]!.file);
          setItems([{ ...fresh[0]!, state: 'done', prediction }]);
        } catch (err) {
          setItems([{ ...fresh[0]!, state: 'error', error: err }]);
        }
      } else {
        try {
          const res = await predictBatch(fresh.map((i) => i.file));
          const done = fresh.map((item, index): Item => {
            const r = res.results.find((x) => x.index === index);
            if (r?.prediction) return { ...item, state: 'done', prediction: r.prediction };
            const e = r?.error ?? { code: 'MISSING', message: 'no result for this file' };
            return { ...item, state: 'error', error: new ApiError(422, e.code, e.message) };
          });
          setItems(done);
          setSelected(done.find((d) => d.state === 'done')?.key ?? done[0]!.key);
        } catch (err) {
          setBatchError(err);
          setItems(fresh.map((i) => ({ ...i, state: 'error', error: err })));
        }
      }
    } finally {
      setBusy(false);
      models.reload();
    }
  }, [models]);

  const columns = useMemo<Column<Item>[]>(
    () => [
      { key: 'thumb', header: <span className="visually-hidden">Thumbnail</span>, render: (i) => <Thumb item={i} /> },
      { key: 'file', header: 'File', render: (i) => i.file.name, sortValue: (i) => i.file.name.toLowerCase() },
      {
        key: 'label',
        header: 'Label',
        render: (i) => (i.state === 'pending' ? '…' : i.prediction ? <Badge>{i.prediction.label}</Badge> : <Badge tone="bad">error</Badge>),
        sortValue: (i) => i.prediction?.label ?? 'zz',
      },
      {
        key: 'probability',
        header: 'Probability',
        align: 'right',
        render: (i) =>
          i.prediction ? (
            <span className="mini-prob">
              <span className="mini-bar" aria-hidden="true">
                <span className={i.prediction.probability >= i.prediction.threshold ? 'positive' : 'negative'} style={{ width: `${i.prediction.probability * 100}%` }} />
              </span>
              {pct(i.prediction.probability)}
            </span>
          ) : i.state === 'error' ? (
            <span className="error-text">{(i.error as Error | undefined)?.message ?? 'failed'}</span>
          ) : (
            '…'
          ),
        sortValue: (i) => i.prediction?.probability ?? -1,
      },
      { key: 'model', header: 'Model', render: (i) => (i.prediction ? `${i.prediction.model.name} v${i.prediction.model.version}` : '—') },
      { key: 'time', header: 'Time', align: 'right', render: (i) => ms(i.prediction?.timings_ms.total), sortValue: (i) => i.prediction?.timings_ms.total ?? Infinity },
    ],
    [],
  );

  const current = items.find((i) => i.key === selected) ?? items[0];
  const served = models.data?.models ?? [];
  const defaultModel = served.find((m) => m.default);

  return (
    <>
      <PageHeader title="Predict">
        Upload chest X-rays to get the model's pneumonia probability with a heatmap of the regions that drove it.
      </PageHeader>
      <ServingBanner problems={models.data?.problems} />
      {models.data && served.length === 0 && (
        <div className="notice" role="status">
          No model is being served yet. Promote a version to Production on the <Link href="/models">Models</Link> page (the deployment service loads it), then try again.
        </div>
      )}
      <div className="predict-top">
        <DropZone onFiles={(f) => void onFiles(f)} disabled={busy} />
        <Card title="Serving" className="serving">
          {models.error ? (
            <ErrorCard error={models.error} title="Deployment service" />
          ) : defaultModel ? (
            <KeyValues
              items={[
                ['Model', `${defaultModel.name} v${defaultModel.version}`],
                ['Threshold', pct(defaultModel.threshold)],
                ['Input', `${defaultModel.preprocessing.size}px ${defaultModel.preprocessing.mode}`],
                ['Heatmap', defaultModel.heatmap_method === 'cam' ? 'class activation map' : 'occlusion sensitivity'],
              ]}
            />
          ) : (
            <p className="muted">{models.loading ? 'Checking…' : 'No default model.'}</p>
          )}
        </Card>
      </div>
      <ErrorCard error={batchError} title="The batch could not be analysed" />
      {items.length > 1 && (
        <Card title={`Batch · ${items.length} images`}>
          <Table
            columns={columns}
            rows={items}
            rowKey={(i) => i.key}
            onSelect={(i) => setSelected(i.key)}
            selectedKey={current?.key}
            testId="batch-table"
            caption={<span className="visually-hidden">Batch results; select a row to see its heatmap</span>}
          />
        </Card>
      )}
      {current && (
        <Card title={items.length > 1 ? current.file.name : 'Result'}>
          <ResultDetail key={current.key} item={current} models={models.data?.models} />
        </Card>
      )}
    </>
  );
}
