import { InvalidArgumentError, Option, type Command } from 'commander';
import type { z } from 'zod';
import type { comparison, gcResult, modelDetail, modelSummary, stageResult } from '../../model-registry/routes/schemas.js';
import { ServiceClient } from '../client.js';

/** `xray models …`: the model registry over HTTP (through the gateway at XRAY_URL). */

type Row = Record<string, unknown>;

function table(rows: Row[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

const f3 = (x: unknown) => (typeof x === 'number' ? x.toFixed(3) : '');
const date = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') : '');
const enc = encodeURIComponent;

export async function modelsList(client: ServiceClient, json = false): Promise<string> {
  const res = await client.get<{ models: z.infer<typeof modelSummary>[] }>('/models?page_size=1000');
  if (json) return JSON.stringify(res.models, null, 2);
  if (res.models.length === 0) return 'no registered models';
  return table(
    res.models.map((m) => ({
      NAME: m.name,
      LATEST: m.latest_version,
      PRODUCTION: m.production ? `v${m.production.version} (AUC ${f3(m.production.val_auc) || 'n/a'})` : '-',
      STAGING: m.staging ? `v${m.staging.version} (AUC ${f3(m.staging.val_auc) || 'n/a'})` : '-',
      ALIASES: m.aliases.map((a) => `${a.alias}→v${a.version}`).join(' '),
      UPDATED: date(m.updated),
    })),
    ['NAME', 'LATEST', 'PRODUCTION', 'STAGING', 'ALIASES', 'UPDATED'],
  );
}

export async function modelsShow(client: ServiceClient, name: string, json = false): Promise<string> {
  const res = await client.get<z.infer<typeof modelDetail>>(`/models/${enc(name)}`);
  if (json) return JSON.stringify(res, null, 2);
  const lines = [`${res.model.name}${res.model.description ? ` — ${res.model.description}` : ''}`, ''];
  lines.push(
    table(
      res.versions.map((v) => ({
        VERSION: v.version,
        STAGE: v.stage,
        ALIASES: v.aliases.join(','),
        'VAL AUC': f3(v.val_auc),
        'AUC 95% CI': Array.isArray(v.metrics?.auc_ci) ? `${f3(v.metrics.auc_ci[0])}–${f3(v.metrics.auc_ci[1])}` : '',
        THRESHOLD: v.threshold === null ? '' : `${f3(v.threshold)} (${v.threshold_method ?? '?'})`,
        DATASET: v.dataset_version,
        RUN: v.run_id ? String(v.run_id).slice(0, 8) : '',
        PARENT: v.parent ? `${v.parent.name}/v${v.parent.version}` : '',
        CREATED: date(v.created),
      })),
      ['VERSION', 'STAGE', 'ALIASES', 'VAL AUC', 'AUC 95% CI', 'THRESHOLD', 'DATASET', 'RUN', 'PARENT', 'CREATED'],
    ),
  );
  if (res.stage_events.length) {
    lines.push('', 'recent stage changes:');
    for (const e of res.stage_events.slice(0, 10)) {
      const extra = [e.forced ? 'FORCED' : '', e.reason ? `reason: ${e.reason}` : '', e.outcome === 'refused' ? e.verdict?.message ?? '' : ''].filter(Boolean).join('; ');
      lines.push(`  ${date(e.created_at)}  v${e.version} ${e.from_stage} → ${e.to_stage}  ${e.outcome} by ${e.actor}${extra ? `  (${extra})` : ''}`);
    }
  }
  return lines.join('\n');
}

export async function modelsPromote(client: ServiceClient, name: string, version: string, opts: { stage: string; force?: boolean; reason?: string }): Promise<string> {
  const res = await client.post<z.infer<typeof stageResult>>(`/models/${enc(name)}/stage`, {
    version: Number(version),
    stage: opts.stage,
    force: Boolean(opts.force),
    ...(opts.reason ? { reason: opts.reason } : {}),
  });
  const lines = [res.changed ? `${name} v${res.model_version.version} is now ${res.model_version.stage}` : `${name} v${res.model_version.version} was already ${res.model_version.stage}`];
  if (res.gate) lines.push(`gate: ${res.gate.passed ? 'passed' : res.gate.forced ? 'FAILED, forced by ' + res.gate.decided_by : 'failed'} — ${res.gate.message}`);
  for (const d of res.demoted) lines.push(`v${d.version} moved to ${d.stage}`);
  return lines.join('\n');
}

export async function modelsCompare(client: ServiceClient, name: string, versions: string[], json = false): Promise<string> {
  const res = await client.get<z.infer<typeof comparison>>(`/models/compare?name=${enc(name)}&versions=${versions.map((v) => enc(v)).join(',')}`);
  if (json) return JSON.stringify(res, null, 2);
  const metricRows = (['auc', 'sensitivity', 'specificity', 'ppv', 'npv', 'f1', 'accuracy'] as const).map((m) => ({
    METRIC: m,
    ...Object.fromEntries(res.versions.map((v) => [`v${v.version}`, f3(v.metrics?.[m])])),
  }));
  const columns = ['METRIC', ...res.versions.map((v) => `v${v.version}`)];
  const info = [
    { METRIC: 'stage', ...Object.fromEntries(res.versions.map((v) => [`v${v.version}`, v.stage])) },
    { METRIC: 'threshold', ...Object.fromEntries(res.versions.map((v) => [`v${v.version}`, `${f3(v.threshold)} ${v.threshold_method ?? ''}`.trim()])) },
    { METRIC: 'dataset', ...Object.fromEntries(res.versions.map((v) => [`v${v.version}`, v.dataset_version ?? ''])) },
    { METRIC: 'confusion tp/fp/tn/fn', ...Object.fromEntries(res.versions.map((v) => [`v${v.version}`, v.confusion ? `${v.confusion.tp}/${v.confusion.fp}/${v.confusion.tn}/${v.confusion.fn}` : ''])) },
  ];
  const lines = [table([...metricRows, ...info], columns)];
  const diffs = Object.entries(res.params_diff);
  if (diffs.length) {
    lines.push('', 'params that differ:');
    for (const [k, values] of diffs) lines.push(`  ${k}: ${values.map((v, i) => `v${res.versions[i]?.version}=${v ?? '-'}`).join('  ')}`);
  }
  return lines.join('\n');
}

export async function modelsGc(client: ServiceClient, dryRun = false, minAgeS?: number): Promise<string> {
  const res = await client.post<z.infer<typeof gcResult>>('/artifacts/gc', {
    dry_run: dryRun,
    ...(minAgeS !== undefined ? { min_age_s: minAgeS } : {}),
  });
  const kept = res.kept_recent ? `; kept ${res.kept_recent} unreferenced one(s) younger than ${res.min_age_s} s` : '';
  return `${res.dry_run ? 'would remove' : 'removed'} ${res.removed.length} unreferenced artifact(s) of ${res.scanned} scanned${kept}${res.removed.length ? `:\n  ${res.removed.join('\n  ')}` : ''}`;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('the model registry: list, show, promote, compare, garbage-collect');
  const client = () => new ServiceClient('model-registry');
  models
    .command('list')
    .description('registered models with their production and staging versions')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => console.log(await modelsList(client(), o.json)));
  models
    .command('show')
    .argument('<name>')
    .description('versions (metrics, threshold, dataset, run, parent) and recent stage changes of a model')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => console.log(await modelsShow(client(), name, o.json)));
  models
    .command('promote')
    .argument('<name>')
    .argument('<version>')
    .description('move a version to a stage; Production passes the validation-AUC gate unless an admin forces it')
    .addOption(new Option('--stage <stage>', 'target stage').choices(['None', 'Staging', 'Production', 'Archived']).default('Production'))
    .option('--force', 'override a failed gate (admin key required; give --reason)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .action(async (name: string, version: string, o: { stage: string; force?: boolean; reason?: string }) => console.log(await modelsPromote(client(), name, version, o)));
  models
    .command('compare')
    .argument('<name>')
    .argument('<v1>')
    .argument('<v2>')
    .argument('[more...]')
    .description('metrics, thresholds, datasets, confusion matrices and differing params side by side')
    .option('--json', 'print JSON (includes the ROC curves)')
    .action(async (name: string, v1: string, v2: string, more: string[], o: { json?: boolean }) => console.log(await modelsCompare(client(), name, [v1, v2, ...(more ?? [])], o.json)));
  models
    .command('gc')
    .description('remove stored artifacts no run or model version references (admin)')
    .option('--dry-run', 'only list what would go')
    .option('--min-age <seconds>', 'keep unreferenced objects written or reused this recently (default 3600)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('--min-age takes whole seconds ≥ 0');
      return n;
    })
    .action(async (o: { dryRun?: boolean; minAge?: number }) => console.log(await modelsGc(client(), o.dryRun, o.minAge)));
}
