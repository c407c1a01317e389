import { useEffect, useId, useState, type FormEvent } from 'react';
import { listVersions, type DatasetVersion } from '../api/dataPipeline.js';
import {
  cancelJob,
  cancelStudy,
  FINAL_STATES,
  getJob,
  getStudy,
  jobEvents,
  listJobs,
  listStudies,
  MODEL_NAMES,
  type ModelName,
  registerJob,
  resumeJob,
  runtime,
  submitJob,
  submitStudy,
  type EpochRecord,
  type Job,
  type Study,
} from '../api/training.js';
import { Badge } from '../components/Badge.js';
import { LineChart, type Series } from '../components/Chart.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { EvaluationPanel } from '../components/Evaluation.js';
import { Card, KeyValues, Loading, PageHeader } from '../components/Layout.js';
import { ProgressBar } from '../components/ProgressBar.js';
import { Table, type Column } from '../components/Table.js';
import { dateTime, duration, num, pct, shortId } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';
import { useInterval } from '../hooks/useInterval.js';

const isFinal = (state: string) => (FINAL_STATES as readonly string[]).includes(state);

function DatasetSelect({ id, value, onChange, versions }: { id: string; value: string; onChange: (v: string) => void; versions: DatasetVersion[] | undefined }) {
  return (
    <select id={id} required value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="" disabled>
        {versions === undefined ? 'Loading…' : versions.length ? 'Choose a version' : 'No dataset versions'}
      </option>
      {(versions ?? []).map((v) => (
        <option key={v.id} value={v.id}>
          {v.name} ({v.item_count} images)
        </option>
      ))}
    </select>
  );
}

function StartCard({ onStarted }: { onStarted: (kind: 'job' | 'study', id: string) => void }) {
  const id = useId();
  const versions = useAsync(listVersions, []);
  const [mode, setMode] = useState<'job' | 'study'>('job');
  const [dataset, setDataset] = useState('');
  // One dataset version: choose it, so "Start job" is not disabled for a choice there is none of.
  const only = versions.data?.items.length === 1 ? versions.data.items[0]!.id : null;
  useEffect(() => {
    if (only && !dataset) setDataset(only);
  }, [only, dataset]);
  const [model, setModel] = useState<ModelName>('compact_cnn');
  const [epochs, setEpochs] = useState('5');
  const [batch, setBatch] = useState('16');
  const [lr, setLr] = useState('0.001');
  const [inputSize, setInputSize] = useState('');
  const [registerAs, setRegisterAs] = useState('');
  const [trials, setTrials] = useState('4');
  const [lrLow, setLrLow] = useState('0.0001');
  const [lrHigh, setLrHigh] = useState('0.01');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const common = {
      dataset_version: dataset,
      model,
      ...(inputSize ? { input_size: Number(inputSize) } : {}),
      hyperparameters: { epochs: Number(epochs), batch_size: Number(batch), ...(mode === 'job' ? { lr: Number(lr) } : {}) },
    };
    try {
      if (mode === 'job') {
        const r = await submitJob({ ...common, ...(registerAs.trim() ? { register_as: registerAs.trim() } : {}) });
        onStarted('job', r.job_id);
      } else {
        const r = await submitStudy({ ...common, n_trials: Number(trials), search_space: { lr: { type: 'float', low: Number(lrLow), high: Number(lrHigh), log: true } } });
        onStarted('study', r.study_id);
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Start training">
      <div className="segmented" role="radiogroup" aria-label="What to start">
        <label className={mode === 'job' ? 'on' : ''}>
          <input type="radio" name={`${id}-mode`} checked={mode === 'job'} onChange={() => setMode('job')} /> Training job
        </label>
        <label className={mode === 'study' ? 'on' : ''}>
          <input type="radio" name={`${id}-mode`} checked={mode === 'study'} onChange={() => setMode('study')} /> Optuna study
        </label>
      </div>
      <form className="form-grid" onSubmit={submit}>
        <div className="field wide">
          <label htmlFor={`${id}-ds`}>Dataset version</label>
          <DatasetSelect id={`${id}-ds`} value={dataset} onChange={setDataset} versions={versions.data?.items} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-model`}>Architecture</label>
          <select id={`${id}-model`} value={model} onChange={(e) => setModel(e.target.value as ModelName)}>
            {MODEL_NAMES.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-epochs`}>Epochs</label>
          <input id={`${id}-epochs`} type="number" min={1} max={10000} value={epochs} onChange={(e) => setEpochs(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-batch`}>Batch size</label>
          <input id={`${id}-batch`} type="number" min={2} value={batch} onChange={(e) => setBatch(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-size`}>Input size (px)</label>
          <input id={`${id}-size`} type="number" min={16} max={1024} placeholder="from dataset" value={inputSize} onChange={(e) => setInputSize(e.target.value)} />
        </div>
        {mode === 'job' ? (
          <>
            <div className="field">
              <label htmlFor={`${id}-lr`}>Learning rate</label>
              <input id={`${id}-lr`} type="number" min={0} step="any" value={lr} onChange={(e) => setLr(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-reg`}>Register as (optional)</label>
              <input id={`${id}-reg`} value={registerAs} placeholder="pneumonia" onChange={(e) => setRegisterAs(e.target.value)} />
            </div>
          </>
        ) : (
          <>
            <div className="field">
              <label htmlFor={`${id}-trials`}>Trials</label>
              <input id={`${id}-trials`} type="number" min={1} max={1000} value={trials} onChange={(e) => setTrials(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-lrlo`}>LR from</label>
              <input id={`${id}-lrlo`} type="number" min={0} step="any" value={lrLow} onChange={(e) => setLrLow(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-lrhi`}>LR to (log scale)</label>
              <input id={`${id}-lrhi`} type="number" min={0} step="any" value={lrHigh} onChange={(e) => setLrHigh(e.target.value)} />
            </div>
          </>
        )}
        <div className="field">
          <button type="submit" className="btn primary" disabled={busy || !dataset} aria-describedby={dataset ? undefined : `${id}-needs-ds`}>
            {busy ? 'Starting…' : mode === 'job' ? 'Start job' : 'Start study'}
          </button>
          {!dataset && (
            <small id={`${id}-needs-ds`} className="muted">
              {versions.data?.items.length === 0 ? 'Create a dataset version on the Datasets page first.' : 'Choose a dataset version to start.'}
            </small>
          )}
        </div>
      </form>
      <ErrorCard error={error} title="Not started" />
    </Card>
  );
}

/** Last record per epoch (a resumed attempt repeats epochs). */
function epochsOf(history: EpochRecord[] | undefined): EpochRecord[] {
  const by = new Map<number, EpochRecord>();
  for (const r of history ?? []) by.set(r.epoch, r);
  return [...by.values()].sort((a, b) => a.epoch - b.epoch);
}

function curve(name: string, rows: EpochRecord[], key: string, color?: string, dashed?: boolean): Series {
  return {
    name,
    color,
    dashed,
    points: rows.filter((r) => typeof r[key] === 'number').map((r) => ({ x: r.epoch, y: r[key] as number })),
  };
}

/** Follows a job live: long-polls its events and reloads the job after each batch of them. */
function useJobFollower(jobId: string, active: boolean, onChange: () => void): void {
  useEffect(() => {
    if (!active) return;
    const abort = new AbortController();
    let after = 0;
    void (async () => {
      while (!abort.signal.aborted) {
        try {
          const r = await jobEvents(jobId, after, 20, abort.signal);
          after = r.next_after;
          if (r.events.length) onChange();
          if (r.done) {
            onChange();
            break;
          }
        } catch {
          if (abort.signal.aborted) break;
          await new Promise((res) => setTimeout(res, 3000));
        }
      }
    })();
    return () => abort.abort();
    // onChange is a stable reload function
  }, [jobId, active, onChange]);
}

function JobDetail({ jobId, onChanged }: { jobId: string; onChanged: () => void }) {
  const job = useAsync(() => getJob(jobId), [jobId]);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [regName, setRegName] = useState('pneumonia');
  const j = job.data;
  useJobFollower(jobId, !!j && !isFinal(j.state), job.reload);
  // Keep the jobs table in step with what the live view sees.
  const state = j?.state;
  useEffect(() => {
    if (state) onChanged();
  }, [state, onChanged]);

  if (job.error) return <ErrorCard error={job.error} onRetry={job.reload} />;
  if (!j) return <Loading />;

  const act = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setActionError(null);
    try {
      await fn();
      job.reload();
      onChanged();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };

  const rows = epochsOf(j.history);
  const p = j.progress;
  const canCancel = j.state === 'queued' || j.state === 'running';
  const canResume = j.state === 'cancelled' || j.state === 'interrupted' || j.state === 'failed';
  // Live while training: the best epoch so far from the history the charts draw (the job's own value once it has one).
  const liveBest = rows.reduce<EpochRecord | null>((b, r) => (typeof r.val_auc === 'number' && (!b || r.val_auc > (b.val_auc as number)) ? r : b), null);
  const best = j.best_epoch ?? liveBest?.epoch ?? null;
  const bestAuc = j.best_val_auc ?? (liveBest ? (liveBest.val_auc as number) : null);
  const hp = { ...((j.request.hyperparameters as Record<string, unknown> | undefined) ?? {}) };
  const settings = [
    `model ${String(j.request.model ?? j.model)}`,
    `input ${String(j.input_size ?? j.request.input_size ?? 'from dataset')}`,
    ...Object.entries(hp).map(([k, v]) => `${k} ${String(v)}`),
  ].join(' · ');
  const augmentation = j.request.augmentation ? Object.entries(j.request.augmentation as Record<string, unknown>).map(([k, v]) => `${k} ${String(v)}`).join(' · ') : 'dataset defaults';

  return (
    <div className="job" data-testid="job-detail">
      <div className="job-head">
        <Badge>{j.state}</Badge>
        <span>
          {j.model} on <code title={j.dataset_version ?? ''}>{shortId(j.dataset_version, 12)}</code> · attempt {j.attempt}
        </span>
        <div className="row push-right">
          {canCancel && (
            <button type="button" className="btn danger" disabled={busy} onClick={() => void act(() => cancelJob(j.job_id))}>
              Cancel
            </button>
          )}
          {canResume && (
            <button type="button" className="btn" disabled={busy} onClick={() => void act(() => resumeJob(j.job_id))}>
              Resume from checkpoint
            </button>
          )}
          {j.state === 'succeeded' && !j.registered && (
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                void act(() => registerJob(j.job_id, regName.trim()));
              }}
            >
              <label htmlFor={`reg-${j.job_id}`} className="visually-hidden">
                Model name
              </label>
              <input id={`reg-${j.job_id}`} value={regName} onChange={(e) => setRegName(e.target.value)} size={12} />
              <button type="submit" className="btn primary" disabled={busy || !regName.trim()}>
                Register model
              </button>
            </form>
          )}
        </div>
      </div>
      <ErrorCard error={actionError} title="Action failed" />
      {j.error && <ErrorCard error={new Error(j.error)} title="The job failed" />}
      {p && !isFinal(j.state) && (
        <ProgressBar value={p.fraction} max={1} label={`${p.phase} · epoch ${p.epoch}/${p.epochs}${p.steps ? ` · step ${p.step}/${p.steps}` : ''}`} detail={`${pct(p.fraction, 0)} · ETA ${duration(j.eta_seconds)}`} />
      )}
      <KeyValues
        items={[
          ['Best validation AUC', `${num(bestAuc)}${best !== null ? ` (epoch ${best}${j.best_val_auc === null && bestAuc !== null ? ', so far' : ''})` : ''}`],
          ['Hyper-parameters', <span data-testid="job-hyperparameters">{settings}</span>],
          ['Augmentation', augmentation],
          ['Throughput', j.images_per_sec ? `${num(j.images_per_sec, 1)} images/s` : '—'],
          ['Threshold', num(j.threshold)],
          ['Last checkpoint', j.last_checkpoint ? `epoch ${j.last_checkpoint.epoch}, step ${j.last_checkpoint.step}` : '—'],
          ['Created', `${dateTime(j.created_at)} by ${j.created_by}`],
          ['Finished', dateTime(j.finished_at)],
          ['Registered', j.registered ? `${String(j.registered.name ?? '')} v${String(j.registered.version ?? '')}` : '—'],
        ]}
      />
      <div className="plots">
        <LineChart
          title="Loss per epoch"
          series={[curve('train loss', rows, 'train_loss'), curve('validation loss', rows, 'val_loss', undefined, true)]}
          xLabel="epoch"
          yLabel="loss"
          xIntegers
          empty="No epoch finished yet."
        />
        <LineChart
          title="Validation AUC per epoch"
          series={[curve('validation AUC', rows, 'val_auc', '#2e7d32')]}
          xLabel="epoch"
          yLabel="AUC"
          xIntegers
          refLines={best !== null && bestAuc !== null ? [{ axis: 'x', value: best, label: `best ${num(bestAuc)}` }] : []}
          empty="No epoch finished yet."
        />
      </div>
      {j.metrics && <EvaluationPanel evaluation={j.metrics} title="Validation evaluation" />}
      {j.test_metrics &&
        Object.entries(j.test_metrics).map(([name, e]) => (e && typeof e === 'object' ? <EvaluationPanel key={name} evaluation={e} title={`External test: ${name}`} /> : null))}
    </div>
  );
}

function StudyDetail({ studyId }: { studyId: string }) {
  const study = useAsync(() => getStudy(studyId), [studyId]);
  const s = study.data;
  useInterval(study.reload, s && !isFinal(s.state) && s.state !== 'completed' ? 3000 : null);
  if (study.error) return <ErrorCard error={study.error} />;
  if (!s) return <Loading />;
  const trials = s.trials ?? [];
  return (
    <div className="study">
      <p>
        <Badge>{s.state}</Badge> {trials.length}/{s.n_trials} trials · pruner {s.pruner} · best {s.best ? `trial ${s.best.trial}: AUC ${num(s.best.value)}` : '—'}
        {!isFinal(s.state) && s.state !== 'completed' && (
          <button type="button" className="btn small danger push-left" onClick={() => void cancelStudy(s.study_id).then(study.reload, study.reload)}>
            Cancel study
          </button>
        )}
      </p>
      {s.error && <ErrorCard error={new Error(s.error)} title="The study failed" />}
      <LineChart
        title="Validation AUC per epoch, by trial"
        series={trials.map((t) => ({
          name: `trial ${t.trial}${t.state === 'pruned' ? ' (pruned)' : ''}`,
          dashed: t.state === 'pruned',
          points: t.history.filter((h) => typeof h.val_auc === 'number').map((h) => ({ x: Number(h.epoch), y: h.val_auc as number })),
        }))}
        xLabel="epoch"
        yLabel="AUC"
        xIntegers
        empty="No trial has finished an epoch yet."
      />
      <Table
        columns={[
          { key: 'trial', header: 'Trial', render: (t) => t.trial, sortValue: (t) => t.trial },
          { key: 'state', header: 'State', render: (t) => <Badge>{t.state}</Badge>, sortValue: (t) => t.state },
          { key: 'value', header: 'AUC', align: 'right', render: (t) => num(t.value), sortValue: (t) => t.value },
          { key: 'params', header: 'Parameters', render: (t) => Object.entries(t.params).map(([k, v]) => `${k}=${typeof v === 'number' ? num(v, 5) : String(v)}`).join(', ') },
        ]}
        rows={trials}
        rowKey={(t) => String(t.trial)}
        initialSort={{ key: 'value', dir: 'desc' }}
      />
    </div>
  );
}

export function TrainingPage() {
  const rt = useAsync(runtime, []);
  const jobs = useAsync(listJobs, []);
  const studies = useAsync(listStudies, []);
  const [selectedJob, setSelectedJob] = useState<string | null>(null);
  const [selectedStudy, setSelectedStudy] = useState<string | null>(null);
  const list = jobs.data?.jobs ?? [];
  const anyActive = list.some((j) => !isFinal(j.state)) || (studies.data?.studies ?? []).some((s) => !isFinal(s.state) && s.state !== 'completed');
  useInterval(
    () => {
      jobs.reload();
      studies.reload();
    },
    anyActive ? 4000 : null,
  );
  const currentJob = selectedJob ?? list[0]?.job_id ?? null;

  const columns: Column<Job>[] = [
    { key: 'id', header: 'Job', render: (j) => <code title={j.job_id}>{shortId(j.job_id, 10)}</code> },
    { key: 'state', header: 'State', render: (j) => <Badge>{j.state}</Badge>, sortValue: (j) => j.state },
    { key: 'model', header: 'Model', render: (j) => j.model, sortValue: (j) => j.model },
    {
      key: 'progress',
      header: 'Progress',
      render: (j) => (j.progress ? `${pct(j.progress.fraction, 0)} (epoch ${j.progress.epoch}/${j.progress.epochs})` : isFinal(j.state) ? '—' : 'waiting'),
      sortValue: (j) => j.progress?.fraction ?? 0,
    },
    { key: 'auc', header: 'Best AUC', align: 'right', render: (j) => num(j.best_val_auc), sortValue: (j) => j.best_val_auc },
    { key: 'created', header: 'Created', render: (j) => dateTime(j.created_at), sortValue: (j) => j.created_at },
  ];

  return (
    <>
      <PageHeader title="Training">Train a classifier on a dataset version or search hyper-parameters with Optuna; follow it live and read its evaluation.</PageHeader>
      {rt.data && !rt.data.available && (
        <div className="warning-box" role="status">
          <strong>The training worker is not available:</strong> {rt.data.error}
        </div>
      )}
      {rt.data?.available && (
        <p className="stat-line">
          Worker: Python {rt.data.python} · torch {rt.data.torch} · optuna {rt.data.optuna ?? '—'} · runner {rt.data.runner} · tracking {rt.data.tracking}
        </p>
      )}
      <StartCard
        onStarted={(kind, id) => {
          if (kind === 'job') {
            jobs.reload();
            setSelectedJob(id);
          } else {
            studies.reload();
            setSelectedStudy(id);
          }
        }}
      />
      <Card title="Jobs">
        {jobs.error ? (
          <ErrorCard error={jobs.error} title="Could not list training jobs" onRetry={jobs.reload} />
        ) : !jobs.data ? (
          <Loading />
        ) : (
          <Table columns={columns} rows={list} rowKey={(j) => j.job_id} onSelect={(j) => setSelectedJob(j.job_id)} selectedKey={currentJob} empty="No training jobs yet." testId="jobs-table" />
        )}
      </Card>
      {currentJob && (
        <Card title={`Job ${shortId(currentJob, 12)}`}>
          <JobDetail key={currentJob} jobId={currentJob} onChanged={jobs.reload} />
        </Card>
      )}
      <Card title="Hyper-parameter studies">
        {studies.error ? (
          <ErrorCard error={studies.error} title="Could not list studies" />
        ) : (
          <Table<Study>
            columns={[
              { key: 'id', header: 'Study', render: (s) => <code title={s.study_id}>{shortId(s.study_id, 10)}</code> },
              { key: 'state', header: 'State', render: (s) => <Badge>{s.state}</Badge>, sortValue: (s) => s.state },
              { key: 'trials', header: 'Trials', align: 'right', render: (s) => s.n_trials },
              { key: 'best', header: 'Best AUC', align: 'right', render: (s) => num(s.best?.value), sortValue: (s) => s.best?.value },
              { key: 'created', header: 'Created', render: (s) => dateTime(s.created_at), sortValue: (s) => s.created_at },
            ]}
            rows={studies.data?.studies ?? []}
            rowKey={(s) => s.study_id}
            onSelect={(s) => setSelectedStudy(s.study_id)}
            selectedKey={selectedStudy}
            empty="No studies yet."
          />
        )}
        {selectedStudy && <StudyDetail key={selectedStudy} studyId={selectedStudy} />}
      </Card>
    </>
  );
}
