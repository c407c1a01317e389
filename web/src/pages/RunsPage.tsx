import { useEffect, useId, useMemo, useState } from 'react';
import { listExperiments, metricHistory, searchRuns, type MetricPoint, type TrackedRun } from '../api/tracking.js';
import { Badge } from '../components/Badge.js';
import { LineChart, PALETTE } from '../components/Chart.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { Card, Loading, PageHeader } from '../components/Layout.js';
import { Table, type Column } from '../components/Table.js';
import { dateTime, duration, num, shortId } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';
import { useInterval } from '../hooks/useInterval.js';

const isLive = (r: TrackedRun) => r.info.status === 'RUNNING' || r.info.status === 'SCHEDULED';
const runLabel = (r: TrackedRun) => r.info.run_name || shortId(r.info.run_id, 8);
const metricOf = (r: TrackedRun, key: string): number | null => {
  const v = r.data.metrics.find((m) => m.key === key)?.value;
  return typeof v === 'number' ? v : null;
};
const paramOf = (r: TrackedRun, key: string): string | undefined => r.data.params.find((p) => p.key === key)?.value;
const keysOf = (runs: TrackedRun[], pick: (r: TrackedRun) => { key: string }[]) => [...new Set(runs.flatMap((r) => pick(r).map((x) => x.key)))].sort();
/** Numbers sort as numbers, the rest as text. */
const sortable = (v: string | undefined) => (v === undefined ? null : v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

/** Each selected run's full history of each metric, reloaded while a selected run is live. */
function useHistories(runs: TrackedRun[], keys: string[], live: boolean) {
  const ids = runs.map((r) => r.info.run_id).join(',');
  const state = useAsync(
    runs.length >= 2 ? async () => Object.fromEntries(await Promise.all(runs.flatMap((r) => keys.map(async (k) => [`${r.info.run_id}/${k}`, await metricHistory(r.info.run_id, k)] as const)))) : null,
    [ids, keys.join(',')],
  );
  useInterval(state.reload, live ? 5000 : null);
  return state;
}

function CompareRuns({ runs }: { runs: TrackedRun[] }) {
  const [all, setAll] = useState(false);
  const metricKeys = keysOf(runs, (r) => r.data.metrics);
  const histories = useHistories(runs, metricKeys, runs.some(isLive));
  const paramKeys = keysOf(runs, (r) => r.data.params);
  const differs = (k: string) => new Set(runs.map((r) => paramOf(r, k) ?? '—')).size > 1;
  const shown = all ? paramKeys : paramKeys.filter(differs);
  const colour = (i: number) => PALETTE[i % PALETTE.length];
  return (
    <div data-testid="run-compare">
      <h3>Parameters{all ? '' : ' that differ'}</h3>
      <label className="small">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> show all parameters
      </label>
      {shown.length === 0 ? (
        <p className="muted">The selected runs were logged with the same parameters.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="param-diff">
            <thead>
              <tr>
                <th scope="col">Parameter</th>
                {runs.map((r) => (
                  <th key={r.info.run_id} scope="col">
                    {runLabel(r)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {shown.map((k) => (
                <tr key={k} className={differs(k) ? 'differs' : undefined}>
                  <th scope="row">
                    <code>{k}</code>
                  </th>
                  {runs.map((r) => (
                    <td key={r.info.run_id}>{paramOf(r, k) ?? '—'}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3>Metrics per step</h3>
      <ErrorCard error={histories.error} title="Metric history unavailable" />
      {!histories.data && !histories.error ? (
        <Loading />
      ) : (
        <div className="plots">
          {metricKeys.map((k) => (
            <LineChart
              key={k}
              title={k}
              series={runs.map((r, i) => ({
                name: runLabel(r),
                color: colour(i),
                points: (histories.data?.[`${r.info.run_id}/${k}`] ?? ([] as MetricPoint[])).filter((p) => typeof p.value === 'number').map((p) => ({ x: p.step, y: p.value as number })),
              }))}
              xLabel="step"
              yLabel={k}
              xIntegers
              empty="Not logged by these runs."
            />
          ))}
        </div>
      )}
    </div>
  );
}

export function RunsPage() {
  const id = useId();
  const experiments = useAsync(listExperiments, []);
  const [experiment, setExperiment] = useState('');
  const [filterText, setFilterText] = useState('');
  const [filter, setFilter] = useState('');
  const [selected, setSelected] = useState<string[]>([]);
  const list = experiments.data?.experiments ?? [];
  const ids = experiment ? [experiment] : list.map((e) => e.experiment_id);
  const runs = useAsync(ids.length ? () => searchRuns(ids, filter) : null, [ids.join(','), filter]);
  const rows = useMemo(() => runs.data?.runs ?? [], [runs.data]);
  useInterval(runs.reload, rows.some(isLive) ? 5000 : null);
  // Keep only selections that are still listed (a new filter can hide them).
  useEffect(() => setSelected((s) => s.filter((x) => rows.some((r) => r.info.run_id === x))), [rows]);

  const paramKeys = keysOf(rows, (r) => r.data.params);
  const metricKeys = keysOf(rows, (r) => r.data.metrics);
  const experimentName = (eid: string) => list.find((e) => e.experiment_id === eid)?.name ?? eid;
  const toggle = (runId: string) => setSelected((s) => (s.includes(runId) ? s.filter((x) => x !== runId) : [...s, runId]));

  const columns: Column<TrackedRun>[] = [
    {
      key: 'select',
      header: 'Compare',
      render: (r) => <input type="checkbox" checked={selected.includes(r.info.run_id)} onChange={() => toggle(r.info.run_id)} aria-label={`Compare run ${runLabel(r)}`} />,
    },
    { key: 'name', header: 'Run', render: (r) => <code className="run-name" title={r.info.run_id}>{runLabel(r)}</code>, sortValue: runLabel },
    { key: 'status', header: 'Status', render: (r) => <Badge>{r.info.status.toLowerCase()}</Badge>, sortValue: (r) => r.info.status },
    ...(experiment ? [] : [{ key: 'experiment', header: 'Experiment', render: (r: TrackedRun) => experimentName(r.info.experiment_id), sortValue: (r: TrackedRun) => experimentName(r.info.experiment_id) }]),
    { key: 'start', header: 'Started', render: (r) => dateTime(r.info.start_time), sortValue: (r) => r.info.start_time },
    { key: 'duration', header: 'Duration', align: 'right', render: (r) => duration(((r.info.end_time ?? Date.now()) - r.info.start_time) / 1000), sortValue: (r) => (r.info.end_time ?? Date.now()) - r.info.start_time },
    ...paramKeys.map((k): Column<TrackedRun> => ({ key: `p:${k}`, header: <span className="param-col">{k}</span>, render: (r) => paramOf(r, k) ?? '—', sortValue: (r) => sortable(paramOf(r, k)) })),
    ...metricKeys.map((k): Column<TrackedRun> => ({ key: `m:${k}`, header: <span className="metric-col">{k}</span>, align: 'right', render: (r) => num(metricOf(r, k), 4), sortValue: (r) => metricOf(r, k) })),
  ];
  const chosen = selected.map((s) => rows.find((r) => r.info.run_id === s)).filter((r): r is TrackedRun => r !== undefined);

  return (
    <>
      <PageHeader title="Runs">Every tracked training run with its parameters and metrics: sort, filter, and select runs to compare their curves and parameters.</PageHeader>
      <Card title="Runs">
        <form
          className="row wrap"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setFilter(filterText);
          }}
        >
          <label htmlFor={`${id}-exp`}>Experiment</label>
          <select id={`${id}-exp`} value={experiment} onChange={(e) => setExperiment(e.target.value)}>
            <option value="">all experiments</option>
            {list.map((e) => (
              <option key={e.experiment_id} value={e.experiment_id}>
                {e.name}
              </option>
            ))}
          </select>
          <label htmlFor={`${id}-filter`}>Filter</label>
          <input id={`${id}-filter`} value={filterText} onChange={(e) => setFilterText(e.target.value)} placeholder="metrics.val_auc > 0.9 and params.model = 'compact_cnn'" size={40} />
          <button type="submit" className="btn">
            Apply
          </button>
          {filter && (
            <button
              type="button"
              className="btn"
              onClick={() => {
                setFilterText('');
                setFilter('');
              }}
            >
              Clear
            </button>
          )}
        </form>
        <p className="small muted">MLflow search syntax: metrics.&lt;key&gt;, params.&lt;key&gt;, tags.&lt;key&gt;, attributes.status; combine with “and”. Click a column header to sort.</p>
        {experiments.error || runs.error ? (
          <ErrorCard error={experiments.error ?? runs.error} title={runs.error ? 'Filter not applied' : 'Could not list experiments'} onRetry={runs.error ? undefined : experiments.reload} />
        ) : !runs.data && ids.length ? (
          <Loading />
        ) : (
          <Table columns={columns} rows={rows} rowKey={(r) => r.info.run_id} initialSort={{ key: 'start', dir: 'desc' }} empty={filter ? 'No run matches the filter.' : 'No runs tracked yet: start a training job.'} testId="runs-table" />
        )}
        {rows.some(isLive) && (
          <p className="small muted" role="status">
            Runs in progress: metrics refresh every 5 s (best_val_auc is the best so far).
          </p>
        )}
      </Card>
      <Card title={chosen.length >= 2 ? `Compare ${chosen.length} runs` : 'Compare runs'}>
        {chosen.length >= 2 ? <CompareRuns runs={chosen} /> : <p className="muted">Tick two or more runs in the table to compare them.</p>}
      </Card>
    </>
  );
}
