import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { loadedModels } from '../api/deployment.js';
import { ApiError } from '../api/http.js';
import { acknowledgeAlert, alerts, audit, detectDrift, driftReports, monitoringMetricsText, resolveAlert, traffic, type Alert, type AuditQuery, type AuditRecord, type DriftReport } from '../api/monitoring.js';
import { parsePrometheus } from '../api/prometheus.js';
import { Badge } from '../components/Badge.js';
import { BarChart, LineChart } from '../components/Chart.js';
import { ErrorCard } from '../components/ErrorCard.js';
import { Card, KeyValues, Loading, PageHeader } from '../components/Layout.js';
import { Table, type Column } from '../components/Table.js';
import { dateTime, ms, num, pct, shortId } from '../format.js';
import { useAsync } from '../hooks/useAsync.js';
import { useInterval } from '../hooks/useInterval.js';

// ————— traffic over time (GET /traffic: aggregated from the prediction records) —————

const RANGES = {
  '1h': { span: 3600_000, bucket: 60, label: 'last hour' },
  '24h': { span: 24 * 3600_000, bucket: 900, label: 'last 24 hours' },
  '7d': { span: 7 * 24 * 3600_000, bucket: 3 * 3600, label: 'last 7 days' },
} as const;
type RangeKey = keyof typeof RANGES;

const interval = (s: number): string => (s % 3600 === 0 ? `${s / 3600}-hour` : `${Math.round(s / 60)}-minute`);

function TrafficCard() {
  const id = useId();
  const [range, setRange] = useState<RangeKey>('24h');
  const timeline = useAsync(() => {
    const { span, bucket } = RANGES[range];
    const until = Date.now();
    return traffic({ since: until - span, until, bucket_s: bucket });
  }, [range]);
  const buckets = timeline.data?.buckets ?? [];
  const withData = buckets.filter((b) => b.count > 0);
  const xDomain: [number, number] | undefined = buckets.length ? [buckets[0]!.t, buckets[buckets.length - 1]!.t] : undefined;
  return (
    <Card
      title="Prediction volume, positive rate and latency"
      actions={
        <>
          <label htmlFor={`${id}-range`} className="visually-hidden">
            Time range
          </label>
          <select id={`${id}-range`} value={range} onChange={(e) => setRange(e.target.value as RangeKey)}>
            {Object.entries(RANGES).map(([k, r]) => (
              <option key={k} value={k}>
                {r.label}
              </option>
            ))}
          </select>
        </>
      }
    >
      {timeline.error ? (
        <ErrorCard error={timeline.error} onRetry={timeline.reload} />
      ) : !timeline.data ? (
        <Loading />
      ) : (
        <>
          <p className="stat-line">
            {timeline.data.total} predictions in the {RANGES[range].label}
            {timeline.data.total > 0 ? `, ${pct(timeline.data.positives / timeline.data.total)} flagged PNEUMONIA` : ''} · {interval(timeline.data.bucket_s)} intervals.
          </p>
          <div className="plots">
            <LineChart
              title="Predictions per interval"
              series={[{ name: 'predictions', points: buckets.map((b) => ({ x: b.t, y: b.count })) }]}
              xTime
              yDomain={[0, Math.max(1, ...buckets.map((b) => b.count)) * 1.1]}
              yLabel="count"
              height={200}
            />
            <LineChart
              title="Positive rate (PNEUMONIA share)"
              series={[{ name: 'positive rate', color: '#c2540a', points: withData.map((b) => ({ x: b.t, y: b.positive_rate ?? 0 })) }]}
              xTime
              xDomain={xDomain}
              yDomain={[0, 1]}
              yFormat={(v) => `${Math.round(v * 100)}%`}
              height={200}
              empty="No predictions in this range."
            />
            <LineChart
              title="Latency per interval (mean and max)"
              series={[
                { name: 'mean', points: withData.map((b) => ({ x: b.t, y: b.latency_mean_ms ?? 0 })) },
                { name: 'max', color: '#8a8f98', points: withData.map((b) => ({ x: b.t, y: b.latency_max_ms ?? 0 })) },
              ]}
              xTime
              xDomain={xDomain}
              yDomain={[0, Math.max(1, ...withData.map((b) => b.latency_max_ms ?? 0)) * 1.1]}
              yFormat={(v) => ms(v)}
              height={200}
              empty="No predictions in this range."
            />
          </div>
        </>
      )}
    </Card>
  );
}

// ————— live latency, sampled from the monitoring service's Prometheus gauges —————

interface LiveRow {
  key: string;
  model: string;
  version: string;
  variant: string;
  rate: number | null;
  window: number | null;
  positive: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

const MAX_SAMPLES = 120;

function LiveCard() {
  const [rows, setRows] = useState<LiveRow[]>([]);
  const [error, setError] = useState<unknown>(null);
  const history = useRef<{ t: number; p50: number; p90: number; p99: number }[]>([]);
  const [, force] = useState(0);

  const sample = useCallback(() => {
    monitoringMetricsText().then(
      (text) => {
        const by = new Map<string, LiveRow>();
        const row = (l: Record<string, string>) => {
          const key = `${l.model}|${l.version}|${l.variant ?? ''}`;
          let r = by.get(key);
          if (!r) by.set(key, (r = { key, model: l.model ?? '', version: l.version ?? '', variant: l.variant ?? '', rate: null, window: null, positive: null, p50: null, p90: null, p99: null }));
          return r;
        };
        for (const s of parsePrometheus(text)) {
          if (!s.labels.model) continue;
          if (s.name === 'xray_model_prediction_rate') row(s.labels).rate = s.value;
          else if (s.name === 'xray_model_predictions_window') row(s.labels).window = s.value;
          else if (s.name === 'xray_model_positive_rate') row(s.labels).positive = s.value;
          else if (s.name === 'xray_model_latency_seconds') {
            const r = row(s.labels);
            if (s.labels.quantile === '0.5') r.p50 = s.value * 1000;
            if (s.labels.quantile === '0.9') r.p90 = s.value * 1000;
            if (s.labels.quantile === '0.99') r.p99 = s.value * 1000;
          }
        }
        const list = [...by.values()].filter((r) => (r.window ?? 0) > 0 || r.p50 !== null);
        setRows(list);
        setError(null);
        const busiest = [...list].sort((a, b) => (b.window ?? 0) - (a.window ?? 0))[0];
        if (busiest?.p50 !== null && busiest?.p50 !== undefined) {
          history.current = [...history.current, { t: Date.now(), p50: busiest.p50, p90: busiest.p90 ?? busiest.p50, p99: busiest.p99 ?? busiest.p50 }].slice(-MAX_SAMPLES);
          force((x) => x + 1);
        }
      },
      (err: unknown) => setError(err),
    );
  }, []);

  useEffect(sample, [sample]);
  useInterval(sample, 10_000);
  const h = history.current;

  const columns: Column<LiveRow>[] = [
    { key: 'model', header: 'Model', render: (r) => `${r.model} v${r.version}${r.variant && r.variant !== 'default' ? ` (${r.variant})` : ''}`, sortValue: (r) => r.model },
    { key: 'window', header: 'Predictions (window)', align: 'right', render: (r) => num(r.window, 0), sortValue: (r) => r.window },
    { key: 'rate', header: 'Per second', align: 'right', render: (r) => num(r.rate, 3), sortValue: (r) => r.rate },
    { key: 'pos', header: 'Positive rate', align: 'right', render: (r) => pct(r.positive), sortValue: (r) => r.positive },
    { key: 'p50', header: 'p50', align: 'right', render: (r) => ms(r.p50), sortValue: (r) => r.p50 },
    { key: 'p90', header: 'p90', align: 'right', render: (r) => ms(r.p90), sortValue: (r) => r.p90 },
    { key: 'p99', header: 'p99', align: 'right', render: (r) => ms(r.p99), sortValue: (r) => r.p99 },
  ];

  return (
    <Card title="Latency and traffic now">
      <ErrorCard error={error} title="Metrics unavailable" />
      <Table columns={columns} rows={rows} rowKey={(r) => r.key} empty="No predictions in the metrics window." />
      <LineChart
        title="Latency while this page is open (busiest model, sampled every 10 s)"
        series={[
          { name: 'p50', points: h.map((s) => ({ x: s.t, y: s.p50 })) },
          { name: 'p90', points: h.map((s) => ({ x: s.t, y: s.p90 })), dashed: true },
          { name: 'p99', points: h.map((s) => ({ x: s.t, y: s.p99 })), dashed: true },
        ]}
        xTime
        xDomain={h.length ? [Math.min(h[0]!.t, Date.now() - 5 * 60_000), Date.now()] : undefined}
        yLabel="ms"
        height={190}
        empty="Collecting samples…"
      />
    </Card>
  );
}

// ————— drift —————

/** Bin labels for interior edges e0 < e1 < …: "< e0", "e0–e1", …, "≥ e_last". */
function binLabels(edges: number[]): string[] {
  const f = (v: number) => num(v, Math.abs(v) >= 100 ? 0 : 2);
  if (edges.length === 0) return ['all'];
  return [`< ${f(edges[0]!)}`, ...edges.slice(1).map((e, i) => `${f(edges[i]!)}–${f(e)}`), `≥ ${f(edges[edges.length - 1]!)}`];
}

function FeatureDistribution({ features }: { features: DriftReport['features'] }) {
  const id = useId();
  const withBins = features.filter((f) => f.histogram);
  const [name, setName] = useState(withBins[0]?.feature ?? '');
  const f = withBins.find((x) => x.feature === name) ?? withBins[0];
  if (!f?.histogram) return null;
  const labels = binLabels(f.histogram.edges);
  return (
    <div className="feature-distribution" data-testid="feature-distribution">
      <label htmlFor={`${id}-feature`}>Distribution of </label>
      <select id={`${id}-feature`} value={f.feature} onChange={(e) => setName(e.target.value)}>
        {withBins.map((x) => (
          <option key={x.feature} value={x.feature}>
            {x.feature}
          </option>
        ))}
      </select>
      <BarChart
        title={`${f.feature}: share of images per reference decile — reference vs current`}
        groups={labels.map((label, i) => ({ label, values: [f.histogram!.reference[i] ?? 0, f.histogram!.current[i] ?? 0] }))}
        seriesNames={['reference', 'current']}
        yFormat={(v) => `${Math.round(v * 100)}%`}
        height={240}
      />
    </div>
  );
}

function DriftDetail({ r }: { r: DriftReport }) {
  const rate = r.checks.find((c) => c.detector === 'prediction_positive_rate');
  const ref = rate?.details?.reference_positive_rate;
  const cur = rate?.details?.current_positive_rate;
  const features = [...r.features].sort((a, b) => b.psi - a.psi);
  return (
    <div className="drift-detail" data-testid="drift-detail">
      <KeyValues
        items={[
          ['Verdict', <Badge>{r.verdict}</Badge>],
          ['Model', `${r.model} v${r.version}`],
          ['Reference rows', r.n_reference],
          ['Current rows', r.n_current],
          ['Observed', `${dateTime(r.observed.first)} – ${dateTime(r.observed.last)}`],
          ['Drifted detectors', r.drifted_detectors.join(', ') || 'none'],
        ]}
      />
      <Table
        caption="Checks"
        columns={[
          { key: 'd', header: 'Detector', render: (c) => c.detector.replace(/_/g, ' ') },
          { key: 'm', header: 'Method', render: (c) => c.method },
          { key: 's', header: 'Statistic', align: 'right', render: (c) => num(c.statistic) },
          { key: 'p', header: 'p-value', align: 'right', render: (c) => num(c.p_value, 4) },
          { key: 'rule', header: 'Rule', render: (c) => c.rule },
          { key: 'v', header: 'Result', render: (c) => (c.skipped ? <span className="muted small">skipped: {c.skipped}</span> : <Badge tone={c.drifted ? 'bad' : 'good'}>{c.drifted ? 'drift' : 'ok'}</Badge>) },
        ]}
        rows={r.checks}
        rowKey={(c) => c.detector}
      />
      <div className="plots two">
        {features.length > 0 && (
          <BarChart
            title="Per-feature shift (PSI) — reference vs current"
            groups={features.slice(0, 10).map((f) => ({ label: f.feature, values: [f.psi] }))}
            seriesNames={['PSI']}
            refLines={[{ axis: 'y', value: 0.2, label: 'PSI 0.2: notable shift' }]}
            yFormat={(v) => num(v, 2)}
          />
        )}
        {typeof ref === 'number' && typeof cur === 'number' && (
          <BarChart
            title="Positive rate: reference vs current"
            groups={[{ label: 'positive rate', values: [ref, cur] }]}
            seriesNames={['reference', 'current']}
            yDomain={[0, 1]}
            yFormat={(v) => `${Math.round(v * 100)}%`}
          />
        )}
      </div>
      {features.length > 0 && <FeatureDistribution key={r.id} features={features} />}
      {features.length > 0 && (
        <Table
          caption="Image statistics"
          columns={[
            { key: 'f', header: 'Feature', render: (f) => f.feature, sortValue: (f) => f.feature },
            { key: 'm', header: 'Test', render: (f) => f.method },
            { key: 's', header: 'Statistic', align: 'right', render: (f) => num(f.statistic), sortValue: (f) => f.statistic },
            { key: 'p', header: 'p-value', align: 'right', render: (f) => num(f.p_value, 4), sortValue: (f) => f.p_value },
            { key: 't', header: 'Threshold', align: 'right', render: (f) => num(f.threshold) },
            { key: 'psi', header: 'PSI', align: 'right', render: (f) => num(f.psi), sortValue: (f) => f.psi },
            { key: 'n', header: 'n ref / cur', align: 'right', render: (f) => `${f.n_reference} / ${f.n_current}` },
            { key: 'd', header: 'Drift', render: (f) => <Badge tone={f.drifted ? 'bad' : 'good'}>{f.drifted ? 'yes' : 'no'}</Badge>, sortValue: (f) => (f.drifted ? 1 : 0) },
          ]}
          rows={r.features}
          rowKey={(f) => f.feature}
          initialSort={{ key: 'psi', dir: 'desc' }}
        />
      )}
    </div>
  );
}

function DriftCard({ onChecked }: { onChecked?: () => void }) {
  const id = useId();
  const reports = useAsync(() => driftReports({ page_size: 50 }), []);
  const served = useAsync(loadedModels, []);
  const [selected, setSelected] = useState<string | null>(null);
  const [model, setModel] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const list = reports.data?.items ?? [];
  const current = list.find((r) => r.id === selected) ?? list[0];
  const modelName = model || served.data?.default_model || 'pneumonia';

  const run = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await detectDrift({ model: modelName });
      reports.reload();
      setSelected(r.id);
      onChecked?.(); // a drift check raises or clears alerts: show them now, not at the next poll
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Drift reports">
      <form className="row" onSubmit={run}>
        <label htmlFor={`${id}-model`}>Model</label>
        <input id={`${id}-model`} value={model} placeholder={modelName} onChange={(e) => setModel(e.target.value)} size={14} />
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Checking…' : 'Run drift check now'}
        </button>
        <span className="muted small">Compares the last 1000 predictions with the model's reference data.</span>
      </form>
      <ErrorCard error={error} title="Drift check failed" />
      {reports.error ? (
        <ErrorCard error={reports.error} onRetry={reports.reload} />
      ) : (
        <Table
          columns={[
            { key: 't', header: 'When', render: (r) => dateTime(r.created_at), sortValue: (r) => r.created_at },
            { key: 'm', header: 'Model', render: (r) => `${r.model} v${r.version}` },
            { key: 'v', header: 'Verdict', render: (r) => <Badge>{r.verdict}</Badge>, sortValue: (r) => r.verdict },
            { key: 'd', header: 'Drifted', render: (r) => r.drifted_detectors.join(', ') || '—' },
            { key: 'n', header: 'Rows ref / cur', align: 'right', render: (r) => `${r.n_reference} / ${r.n_current}` },
            { key: 'trigger', header: 'Trigger', render: (r) => r.trigger },
          ]}
          rows={list}
          rowKey={(r) => r.id}
          onSelect={(r) => setSelected(r.id)}
          selectedKey={current?.id}
          empty="No drift reports yet."
        />
      )}
      {current && <DriftDetail key={current.id} r={current} />}
    </Card>
  );
}

// ————— alerts —————

function AlertsCard({ refresh = 0 }: { refresh?: number }) {
  const id = useId();
  const [status, setStatus] = useState<'active' | 'open' | 'acknowledged' | 'resolved'>('active');
  const list = useAsync(() => alerts({ status, page_size: 100 }), [status, refresh]);
  const [error, setError] = useState<unknown>(null);
  useInterval(list.reload, 10_000);
  const act = (fn: () => Promise<unknown>) => {
    setError(null);
    fn().then(list.reload, setError);
  };
  const columns: Column<Alert>[] = [
    { key: 'sev', header: 'Severity', render: (a) => <Badge>{a.severity}</Badge>, sortValue: (a) => ['critical', 'warning', 'info'].indexOf(a.severity) },
    { key: 'summary', header: 'Alert', render: (a) => (<><strong>{a.rule}</strong> <span className="small">{a.summary}</span></>) },
    { key: 'model', header: 'Model', render: (a) => `${a.model} v${a.version}` },
    { key: 'n', header: 'Seen', align: 'right', render: (a) => `${a.occurrences}×`, sortValue: (a) => a.occurrences },
    { key: 'last', header: 'Last seen', render: (a) => dateTime(a.last_seen), sortValue: (a) => a.last_seen },
    { key: 'status', header: 'Status', render: (a) => (<><Badge>{a.status}</Badge>{a.acknowledged_by && <span className="small muted"> by {a.acknowledged_by}</span>}</>) },
    {
      key: 'actions',
      header: 'Actions',
      render: (a) => (
        <div className="row nowrap">
          {a.status === 'open' && (
            <button type="button" className="btn small" onClick={() => act(() => acknowledgeAlert(a.id))} aria-label={`Acknowledge ${a.rule} alert`}>
              Acknowledge
            </button>
          )}
          {a.status !== 'resolved' && (
            <button type="button" className="btn small" onClick={() => act(() => resolveAlert(a.id))} aria-label={`Resolve ${a.rule} alert`}>
              Resolve
            </button>
          )}
        </div>
      ),
    },
  ];
  return (
    <Card
      title="Alerts"
      actions={
        <>
          <label htmlFor={`${id}-status`} className="visually-hidden">
            Status
          </label>
          <select id={`${id}-status`} value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="active">Open and acknowledged</option>
            <option value="open">Open</option>
            <option value="acknowledged">Acknowledged</option>
            <option value="resolved">Resolved</option>
          </select>
        </>
      }
    >
      <ErrorCard error={error} title="Action failed" />
      {list.error ? <ErrorCard error={list.error} onRetry={list.reload} /> : <Table columns={columns} rows={list.data?.items ?? []} rowKey={(a) => a.id} empty={list.loading ? 'Loading…' : 'No alerts. All quiet.'} testId="alerts-table" />}
    </Card>
  );
}

// ————— audit —————

function AuditCard() {
  const id = useId();
  const [form, setForm] = useState<AuditQuery>({});
  const [rows, setRows] = useState<AuditRecord[] | null>(null);
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const search = async (token?: string) => {
    setBusy(true);
    setError(null);
    try {
      const q: AuditQuery = { page_size: 50, page_token: token };
      for (const [k, v] of Object.entries(form) as [keyof AuditQuery, string | undefined][]) if (v) (q as Record<string, unknown>)[k] = k === 'since' || k === 'until' ? new Date(v).toISOString() : v.trim();
      const page = await audit(q);
      setRows((cur) => (token && cur ? [...cur, ...page.items] : page.items));
      setNext(page.next_page_token);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  // First page on open; later searches come from the form.
  useEffect(() => {
    void search();
  }, []);

  const field = (key: keyof AuditQuery, label: string, type = 'text', placeholder = '') => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input id={`${id}-${key}`} type={type} placeholder={placeholder} value={(form[key] as string | undefined) ?? ''} onChange={(e) => setForm({ ...form, [key]: e.target.value })} />
    </div>
  );

  return (
    <Card title="Audit trail">
      <form
        className="form-grid"
        onSubmit={(e) => {
          e.preventDefault();
          void search();
        }}
      >
        {field('actor', 'Actor', 'text', 'local-admin')}
        {field('action', 'Action', 'text', 'model.stage')}
        {field('resource', 'Resource', 'text', 'prediction:…')}
        {field('since', 'Since', 'datetime-local')}
        {field('until', 'Until', 'datetime-local')}
        <div className="field">
          <button type="submit" className="btn primary" disabled={busy}>
            Search
          </button>
        </div>
      </form>
      {error instanceof ApiError && error.status === 403 ? <p className="muted">Searching the audit trail needs the admin role.</p> : <ErrorCard error={error} title="Search failed" />}
      {rows && (
        <>
          <Table
            columns={[
              { key: 'time', header: 'Time', render: (r) => <span className="nowrap">{dateTime(r.time)}</span> },
              { key: 'actor', header: 'Actor', render: (r) => <span className="nowrap">{r.actor}</span> },
              { key: 'action', header: 'Action', render: (r) => <code>{r.action}</code> },
              { key: 'resource', header: 'Resource', render: (r) => <span title={r.resource} className="nowrap">{shortId(r.resource, 30)}</span> },
              { key: 'outcome', header: 'Outcome', render: (r) => <Badge tone={r.outcome === 'success' ? 'good' : r.outcome === 'denied' || r.outcome === 'failure' ? 'bad' : 'neutral'}>{r.outcome}</Badge> },
              { key: 'service', header: 'Service', render: (r) => <span className="nowrap">{r.service ?? '—'}</span> },
              { key: 'details', header: 'Details', render: (r) => <span className="small details-cell">{r.details ? JSON.stringify(r.details) : ''}</span> },
            ]}
            rows={rows}
            rowKey={(r) => r.id}
            empty="No matching records."
            testId="audit-table"
          />
          {next && (
            <button type="button" className="btn" disabled={busy} onClick={() => void search(next)}>
              Load more
            </button>
          )}
        </>
      )}
    </Card>
  );
}

export function MonitoringPage() {
  const [alertsChanged, setAlertsChanged] = useState(0);
  return (
    <>
      <PageHeader title="Monitoring">How the served models behave: traffic, latency, data drift, alerts, and who did what.</PageHeader>
      <TrafficCard />
      <LiveCard />
      <DriftCard onChecked={() => setAlertsChanged((n) => n + 1)} />
      <AlertsCard refresh={alertsChanged} />
      <AuditCard />
    </>
  );
}
