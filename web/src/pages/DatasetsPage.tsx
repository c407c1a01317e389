import { useId, useRef, useState, type FormEvent } from 'react';
import {
  createVersion,
  diffVersions,
  getVersion,
  imageCounts,
  importStatus,
  listVersions,
  startImport,
  validate,
  versionImage,
  type ClassName,
  type DatasetVersion,
  type DatasetVersionDetail,
  type ImportStatus,
  type NearDuplicate,
  type SplitName,
  type ValidationReport,
  type VersionDiff,
} from '../api/dataPipeline.js';
import { AuthImage } from '../components/AuthImage.js';
import { Badge } from '../components/Badge.js';
import { BarChart } from '../components/Chart.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { Card, KeyValues, Loading, PageHeader } from '../components/Layout.js';
import { ProgressBar } from '../components/ProgressBar.js';
import { Table, type Column } from '../components/Table.js';
import { dateTime, shortId } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';
import { useInterval } from '../hooks/useInterval.js';

const SPLITS: SplitName[] = ['train', 'val', 'test'];
const CLASSES: ClassName[] = ['NORMAL', 'PNEUMONIA'];
const SAMPLES_PER_CLASS = 8;

const IMPORT_JOB_KEY = 'xray.import.job';

/** "120 / 5216 files · 31.4 files/s · about 2 min 42 s left" from the job's own timestamps. */
function importDetail(job: ImportStatus): string {
  const base = `${job.done} / ${job.total} files`;
  const seconds = (job.updated_at - job.created_at) / 1000;
  if (job.done === 0 || seconds <= 0) return base;
  const rate = job.done / seconds;
  const left = (job.total - job.done) / rate;
  const eta = job.state === 'active' && job.total > job.done ? ` · about ${left >= 60 ? `${Math.floor(left / 60)} min ${Math.round(left % 60)} s` : `${Math.max(1, Math.round(left))} s`} left` : '';
  return `${base} · ${rate.toFixed(1)} files/s${eta}`;
}

function ImportCard({ onFinished }: { onFinished: () => void }) {
  const id = useId();
  const [path, setPath] = useState('');
  const [label, setLabel] = useState<'' | ClassName>('');
  const [splits, setSplits] = useState(true);
  const [job, setJob] = useState<ImportStatus | null>(null);
  // The job survives navigating away and back (and a reload): its id is kept for the session.
  const [jobId, setJobIdState] = useState<string | null>(() => sessionStorage.getItem(IMPORT_JOB_KEY));
  const setJobId = (v: string | null) => {
    if (v) sessionStorage.setItem(IMPORT_JOB_KEY, v);
    else sessionStorage.removeItem(IMPORT_JOB_KEY);
    setJobIdState(v);
  };
  const [error, setError] = useState<unknown>(null);
  const running = jobId !== null && (!job || job.state === 'waiting' || job.state === 'active');
  const finishedOnce = useRef(false);

  useInterval(
    () => {
      if (!jobId) return;
      importStatus(jobId).then(
        (s) => {
          setJob(s);
          if ((s.state === 'completed' || s.state === 'failed') && !finishedOnce.current) {
            finishedOnce.current = true;
            onFinished();
          }
        },
        (err: unknown) => {
          // A job the server no longer knows (queue cleared, another instance) is forgotten, not an error loop.
          if ((err as { status?: number }).status === 404) setJobId(null);
          else setError(err);
        },
      );
    },
    running ? 700 : null,
  );

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setJob(null);
    finishedOnce.current = false;
    try {
      const { job_id } = await startImport({ path: path.trim(), label: label || undefined, split_from_folders: splits });
      setJobId(job_id);
    } catch (err) {
      setJobId(null);
      setError(err);
    }
  };

  return (
    <Card title="Import a server-side folder">
      <form className="form-grid" onSubmit={submit}>
        <div className="field wide">
          <label htmlFor={`${id}-path`}>Folder on the server</label>
          <input id={`${id}-path`} required value={path} onChange={(e) => setPath(e.target.value)} placeholder="shared/data/chest_xray" aria-describedby={`${id}-path-help`} />
          <small id={`${id}-path-help`}>
            Inside the import root; layout <code>&lt;folder&gt;/[train|val|test]/NORMAL|PNEUMONIA/*.jpeg|png|dcm</code>.
          </small>
        </div>
        <div className="field">
          <label htmlFor={`${id}-label`}>Label</label>
          <select id={`${id}-label`} value={label} onChange={(e) => setLabel(e.target.value as '' | ClassName)}>
            <option value="">From folder names</option>
            <option value="NORMAL">All NORMAL</option>
            <option value="PNEUMONIA">All PNEUMONIA</option>
          </select>
        </div>
        <label className="check field">
          <input type="checkbox" checked={splits} onChange={(e) => setSplits(e.target.checked)} /> Keep train/val/test folders as splits
        </label>
        <div className="field">
          <button type="submit" className="btn primary" disabled={running}>
            {running ? 'Importing…' : 'Import'}
          </button>
        </div>
      </form>
      <ErrorCard error={error} title="Import failed" />
      {jobId && !job && <Loading label="Import queued…" />}
      {job && (
        <div className="import-status" aria-live="polite">
          <ProgressBar value={job.done} max={Math.max(job.total, 1)} label={`Import ${job.state}`} detail={importDetail(job)} />
          <KeyValues
            items={[
              ['Ingested', job.ingested],
              ['Duplicates', job.duplicates],
              ['Rejected', job.rejected],
              ['Label conflicts', job.label_conflicts],
            ]}
          />
          {job.error && <ErrorCard error={new Error(job.error)} title="The import job failed" />}
          {job.rejections.length > 0 && (
            <details>
              <summary>Rejected files ({job.rejections.length})</summary>
              <Table
                columns={[
                  { key: 'file', header: 'File', render: (r) => r.file, sortValue: (r) => r.file },
                  { key: 'code', header: 'Code', render: (r) => <code>{r.code}</code>, sortValue: (r) => r.code },
                  { key: 'message', header: 'Reason', render: (r) => r.message },
                ]}
                rows={job.rejections.slice(0, 200)}
                rowKey={(r) => r.file}
              />
            </details>
          )}
        </div>
      )}
    </Card>
  );
}

function CreateVersionCard({ onCreated }: { onCreated: (v: DatasetVersion) => void }) {
  const id = useId();
  const [name, setName] = useState('');
  const [val, setVal] = useState('0.15');
  const [test, setTest] = useState('0');
  const [seed, setSeed] = useState('42');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      const r = await createVersion({ name: name.trim(), val_fraction: Number(val), test_fraction: Number(test), seed: Number(seed) });
      setNote(r.created ? `Created ${r.version.name} (${r.version.item_count} images).` : `Same images and settings as existing version ${r.version.name}: nothing new created.`);
      onCreated(r.version);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Create a version">
      <p className="muted small">An immutable snapshot of the stored images, split by patient and stratified by label.</p>
      <form className="form-grid" onSubmit={submit}>
        <div className="field wide">
          <label htmlFor={`${id}-name`}>Name</label>
          <input id={`${id}-name`} required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} placeholder="kermany-2024-06" />
        </div>
        <div className="field">
          <label htmlFor={`${id}-val`}>Validation share</label>
          <input id={`${id}-val`} type="number" min={0} max={0.9} step={0.01} value={val} onChange={(e) => setVal(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-test`}>Test share</label>
          <input id={`${id}-test`} type="number" min={0} max={0.9} step={0.01} value={test} onChange={(e) => setTest(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-seed`}>Seed</label>
          <input id={`${id}-seed`} type="number" min={0} step={1} value={seed} onChange={(e) => setSeed(e.target.value)} />
        </div>
        <div className="field">
          <button type="submit" className="btn primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create version'}
          </button>
        </div>
      </form>
      {note && (
        <p className="success" role="status">
          {note}
        </p>
      )}
      <ErrorCard error={error} title="Version not created" />
    </Card>
  );
}

function countCell(v: DatasetVersion, split: SplitName) {
  const c = v.counts[split];
  return (
    <span className="counts">
      <span title="NORMAL">{c.NORMAL}</span> / <span title="PNEUMONIA">{c.PNEUMONIA}</span>
    </span>
  );
}

function VersionDetail({ version }: { version: DatasetVersionDetail }) {
  const items = version.manifest?.items ?? [];
  const spec = version.manifest?.preprocessing ?? {};
  return (
    <div className="version-detail" data-testid="version-detail">
      <div className="two-col">
        <BarChart
          title="Images per split and class"
          groups={SPLITS.map((s) => ({ label: s, values: CLASSES.map((c) => version.counts[s][c]) }))}
          seriesNames={CLASSES}
          colors={['#1f5fbf', '#c2540a']}
          yLabel="images"
        />
        <KeyValues
          items={[
            ['Id', <code title={version.id}>{shortId(version.id, 16)}</code>],
            ['Created', `${dateTime(version.created_at)} by ${version.created_by}`],
            ['Images', version.item_count],
            ['Seed', version.seed],
            ['Split', version.manifest ? `${version.manifest.split.algorithm}, val ${version.manifest.split.val_fraction}, test ${version.manifest.split.test_fraction}` : '—'],
            ['Preprocessing', Object.entries(spec).filter(([k]) => k !== 'hash').map(([k, v]) => `${k}=${String(v)}`).join(', ') || '—'],
            ['Preprocessing hash', <code title={version.preprocessing_hash}>{shortId(version.preprocessing_hash, 16)}</code>],
          ]}
        />
      </div>
      {CLASSES.map((cls) => {
        const samples = items.filter((i) => i.label === cls).slice(0, SAMPLES_PER_CLASS);
        return (
          <div key={cls} className="samples">
            <h3>
              {cls} <span className="muted small">({items.filter((i) => i.label === cls).length} images; first {samples.length} shown, as the model sees them)</span>
            </h3>
            {samples.length === 0 ? (
              <p className="muted">None.</p>
            ) : (
              <ul className="thumb-grid">
                {samples.map((s) => (
                  <li key={s.hash}>
                    <AuthImage load={() => versionImage(version.id, s.hash)} cacheKey={`${version.id}/${s.hash}`} alt={`${cls} sample ${shortId(s.hash, 8)}`} className="sample" />
                    <span className="small muted">
                      {s.split}
                      {s.patient ? ` · ${s.patient}` : ''}
                    </span>
                  </li>
                ))}
              </ul>
            )}
          </div>
        );
      })}
    </div>
  );
}

function nearDupRows(rows: NearDuplicate[]) {
  return (
    <Table
      columns={[
        { key: 'a', header: 'Image A', render: (r) => <code title={r.a}>{shortId(r.a, 10)}</code> },
        { key: 'b', header: 'Image B', render: (r) => <code title={r.b}>{shortId(r.b, 10)}</code> },
        { key: 'd', header: 'Distance', align: 'right', render: (r) => r.distance, sortValue: (r) => r.distance },
        { key: 'labels', header: 'Labels', render: (r) => r.labels.join(' / ') },
        { key: 'splits', header: 'Splits', render: (r) => r.splits.map((s) => s ?? '—').join(' / ') },
        { key: 'flags', header: 'Problem', render: (r) => [r.cross_class && 'different labels', r.cross_split && 'across splits'].filter(Boolean).join(', ') || '—' },
      ]}
      rows={rows.slice(0, 100)}
      rowKey={(r) => `${r.a}-${r.b}`}
    />
  );
}

function ValidationCard({ versions }: { versions: DatasetVersion[] }) {
  const id = useId();
  const [dataset, setDataset] = useState('all');
  const [report, setReport] = useState<ValidationReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setReport(await validate(dataset));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const s = report?.summary;
  return (
    <Card title="Validation report">
      <form className="row" onSubmit={run}>
        <label htmlFor={`${id}-ds`}>Dataset</label>
        <select id={`${id}-ds`} value={dataset} onChange={(e) => setDataset(e.target.value)}>
          <option value="all">All stored images</option>
          {versions.map((v) => (
            <option key={v.id} value={v.id}>
              {v.name}
            </option>
          ))}
        </select>
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Validating…' : 'Validate'}
        </button>
      </form>
      <ErrorCard error={error} title="Validation failed" />
      {report && s && (
        <div className="validation" data-testid="validation">
          <p>
            <Badge tone={report.ok ? 'good' : 'bad'}>{report.ok ? 'OK' : 'Problems found'}</Badge> {s.images} images checked · near-duplicate threshold {report.near_duplicate_threshold} bits
          </p>
          <KeyValues
            items={[
              ['By label', Object.entries(s.by_label).map(([k, v]) => `${k} ${v}`).join(', ') || '—'],
              ['By split', Object.entries(s.by_split).map(([k, v]) => `${k} ${v}`).join(', ') || '—'],
              ['Quality flagged', s.quality_flagged],
              ['Label conflicts', s.label_conflicts],
              ['Near-duplicates', `${s.near_duplicates} (${s.near_duplicates_cross_class} with different labels)`],
              ['Patients in several splits', s.patient_leaks],
              ['Near-duplicates across splits', s.near_duplicate_leaks],
            ]}
          />
          {(report.leakage.patients.length > 0 || report.leakage.near_duplicates.length > 0) && (
            <div className="warning-box" role="note">
              <strong>Leakage warning:</strong> {report.leakage.patients.length} patient(s) and {report.leakage.near_duplicates.length} near-duplicate pair(s) appear in more than one split; evaluation
              numbers would be optimistic.
            </div>
          )}
          {report.quality.length > 0 && (
            <details open>
              <summary>Files with quality flags ({report.quality.length})</summary>
              <Table
                columns={[
                  { key: 'file', header: 'File', render: (r) => r.file, sortValue: (r) => r.file },
                  { key: 'flags', header: 'Reasons', render: (r) => r.flags.join(', ') },
                ]}
                rows={report.quality.slice(0, 200)}
                rowKey={(r) => r.hash}
              />
            </details>
          )}
          {report.label_conflicts.length > 0 && (
            <details>
              <summary>Same image, different labels ({report.label_conflicts.length})</summary>
              <ul>
                {report.label_conflicts.slice(0, 100).map((c) => (
                  <li key={c.hash}>
                    <code>{shortId(c.hash, 12)}</code>: {c.labels.join(', ')}
                  </li>
                ))}
              </ul>
            </details>
          )}
          {report.near_duplicates.length > 0 && (
            <details>
              <summary>Near-duplicates ({report.near_duplicates.length})</summary>
              {nearDupRows(report.near_duplicates)}
            </details>
          )}
          {report.leakage.patients.length > 0 && (
            <details>
              <summary>Patients in several splits ({report.leakage.patients.length})</summary>
              <ul>
                {report.leakage.patients.slice(0, 100).map((p) => (
                  <li key={p.patient}>
                    {p.patient}: {Object.entries(p.splits).map(([k, v]) => `${k} ${v}`).join(', ')}
                  </li>
                ))}
              </ul>
            </details>
          )}
        </div>
      )}
    </Card>
  );
}

function DiffCard({ versions }: { versions: DatasetVersion[] }) {
  const id = useId();
  const [a, setA] = useState(versions[1]?.id ?? '');
  const [b, setB] = useState(versions[0]?.id ?? '');
  const [diff, setDiff] = useState<VersionDiff | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const name = (vid: string) => versions.find((v) => v.id === vid)?.name ?? shortId(vid);
  const run = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setDiff(await diffVersions(a, b));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (versions.length < 2) return null;
  return (
    <Card title="Compare two versions">
      <form className="row" onSubmit={run}>
        <label htmlFor={`${id}-a`}>From</label>
        <select id={`${id}-a`} value={a} onChange={(e) => setA(e.target.value)}>
          {versions.map((v) => (
            <option key={v.id} value={v.id}>
              {v.name}
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-b`}>to</label>
        <select id={`${id}-b`} value={b} onChange={(e) => setB(e.target.value)}>
          {versions.map((v) => (
            <option key={v.id} value={v.id}>
              {v.name}
            </option>
          ))}
        </select>
        <button type="submit" className="btn primary" disabled={busy || !a || !b}>
          Diff
        </button>
      </form>
      <ErrorCard error={error} title="Diff failed" />
      {diff && (
        <div data-testid="diff">
          <p>
            From <strong>{name(diff.a)}</strong> to <strong>{name(diff.b)}</strong>: <span className="added">+{diff.added.length} added</span>, <span className="removed">−{diff.removed.length} removed</span>,{' '}
            {diff.changed.length} changed, {diff.unchanged} unchanged.
            {diff.settings_changed.length > 0 && <> Settings changed: {diff.settings_changed.join(', ')}.</>}
          </p>
          {diff.changed.length > 0 && (
            <Table
              caption="Changed items"
              columns={[
                { key: 'hash', header: 'Image', render: (r) => <code title={r.hash}>{shortId(r.hash, 10)}</code> },
                { key: 'from', header: 'Before', render: (r) => `${r.from.label} · ${r.from.split}` },
                { key: 'to', header: 'After', render: (r) => `${r.to.label} · ${r.to.split}` },
              ]}
              rows={diff.changed.slice(0, 100)}
              rowKey={(r) => r.hash}
            />
          )}
          {[
            ['Added', diff.added],
            ['Removed', diff.removed],
          ].map(([title, rows]) =>
            (rows as VersionDiff['added']).length > 0 ? (
              <details key={title as string}>
                <summary>
                  {title as string} ({(rows as VersionDiff['added']).length})
                </summary>
                <Table
                  columns={[
                    { key: 'hash', header: 'Image', render: (r) => <code title={r.hash}>{shortId(r.hash, 10)}</code> },
                    { key: 'label', header: 'Label', render: (r) => r.label, sortValue: (r) => r.label },
                    { key: 'split', header: 'Split', render: (r) => r.split, sortValue: (r) => r.split },
                    { key: 'patient', header: 'Patient', render: (r) => r.patient ?? '—' },
                  ]}
                  rows={(rows as VersionDiff['added']).slice(0, 100)}
                  rowKey={(r) => r.hash}
                />
              </details>
            ) : null,
          )}
        </div>
      )}
    </Card>
  );
}

export function DatasetsPage() {
  const versions = useAsync(listVersions, []);
  const counts = useAsync(imageCounts, []);
  const [selected, setSelected] = useState<string | null>(null);
  const list = versions.data?.items ?? [];
  const current = selected ?? list[0]?.id ?? null;
  const detail = useAsync(current ? () => getVersion(current) : null, [current]);

  const columns: Column<DatasetVersion>[] = [
    { key: 'name', header: 'Name', render: (v) => <strong>{v.name}</strong>, sortValue: (v) => v.name.toLowerCase() },
    { key: 'id', header: 'Id', render: (v) => <code title={v.id}>{shortId(v.id, 8)}</code> },
    { key: 'created', header: 'Created', render: (v) => dateTime(v.created_at), sortValue: (v) => v.created_at },
    { key: 'items', header: 'Images', align: 'right', render: (v) => v.item_count, sortValue: (v) => v.item_count },
    ...SPLITS.map((s) => ({ key: s, header: `${s} N / P`, align: 'right' as const, render: (v: DatasetVersion) => countCell(v, s), sortValue: (v: DatasetVersion) => v.counts[s].NORMAL + v.counts[s].PNEUMONIA })),
  ];

  return (
    <>
      <PageHeader title="Datasets">Import X-rays, freeze them into versions with patient-level splits, and check them for duplicates and leakage before training.</PageHeader>
      {counts.data && (
        <p className="stat-line" data-testid="image-counts">
          Stored images:{' '}
          {Object.entries(counts.data.counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(' · ') || 'none yet'}
        </p>
      )}
      <div className="two-col">
        <ImportCard
          onFinished={() => {
            counts.reload();
          }}
        />
        <CreateVersionCard
          onCreated={(v) => {
            versions.reload();
            setSelected(v.id);
          }}
        />
      </div>
      <Card title="Versions">
        {versions.error ? (
          <ErrorCard error={versions.error} title="Could not list dataset versions" onRetry={versions.reload} />
        ) : !versions.data ? (
          <Loading />
        ) : (
          <Table
            columns={columns}
            rows={list}
            rowKey={(v) => v.id}
            onSelect={(v) => setSelected(v.id)}
            selectedKey={current}
            testId="versions-table"
            empty="No dataset versions yet: import images, then create a version."
          />
        )}
      </Card>
      {current && (
        <Card title={`Version ${list.find((v) => v.id === current)?.name ?? shortId(current)}`}>
          {detail.error ? <ErrorCard error={detail.error} /> : detail.data && detail.data.id === current ? <VersionDetail version={detail.data} /> : <Loading />}
        </Card>
      )}
      <ValidationCard versions={list} />
      <DiffCard key={list.map((v) => v.id).join(',')} versions={list} />
    </>
  );
}
