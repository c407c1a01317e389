import type { Command } from 'commander';
import { ServiceClient } from '../client.js';

/**
 * Checks the audit chain through the API (XRAY_URL, with the caller's admin key XRAY_API_KEY):
 * the monitoring service walks the platform's own trail — no local database is opened, so the
 * answer is about the platform the URL names.
 * @returns the process exit code: 0 intact, 1 broken or nothing verified.
 */
export async function verifyAuditChain(client: ServiceClient = new ServiceClient('monitoring'), out: (line: string) => void = console.log): Promise<number> {
  const result = await client.get<{ ok: boolean; checked: number; first_broken_seq?: number; reason?: string }>('/audit/verify');
  if (result.ok && result.checked === 0) {
    // A check that passes on nothing is no check: most likely the wrong platform.
    out(`nothing verified: the audit trail at ${client.baseUrl} has no records — is XRAY_URL this platform's?`);
    return 1;
  }
  if (result.ok) {
    out(`chain intact (${result.checked} records)`);
    return 0;
  }
  out(`chain broken at record ${result.first_broken_seq}: ${result.reason} (${result.checked} records before it verified)`);
  return 1;
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

interface ListOptions {
  actor?: string;
  action?: string;
  resource?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
}

interface DetectOptions {
  model: string;
  version?: string;
  lastN?: string;
  since?: string;
  until?: string;
  reference?: string;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('check the hash chain of the platform at XRAY_URL (admin key); exit 1 naming the first broken record, or when nothing was verified')
    .action(async () => {
      process.exitCode = await verifyAuditChain();
    });
  audit
    .command('list')
    .description('search the audit trail (newest first) through the monitoring service')
    .option('--actor <actor>')
    .option('--action <action>')
    .option('--resource <resource>')
    .option('--since <time>', 'epoch ms or ISO 8601')
    .option('--until <time>', 'epoch ms or ISO 8601')
    .option('--limit <n>', 'records to show', '50')
    .option('--json', 'print JSON')
    .action(async (o: ListOptions) => {
      const params = new URLSearchParams({ page_size: String(Math.min(Math.max(Number(o.limit) || 50, 1), 1000)) });
      for (const key of ['actor', 'action', 'resource', 'since', 'until'] as const) if (o[key]) params.set(key, o[key]!);
      const page = await new ServiceClient('monitoring').get<{ items: Record<string, unknown>[] }>(`/audit?${params}`);
      if (o.json) {
        console.log(JSON.stringify(page, null, 2));
        return;
      }
      const rows = page.items.map((r) => ({ ...r, time: new Date(Number(r.time)).toISOString() }));
      console.log(table(rows, ['seq', 'time', 'actor', 'action', 'resource', 'outcome', 'service', 'request_id']));
    });

  const drift = program.command('drift').description('drift detection');
  drift
    .command('detect')
    .description('run a drift check of a model version now (default: the last 1000 predictions of the newest version)')
    .requiredOption('--model <name>')
    .option('--version <version>')
    .option('--last-n <n>', 'the most recent n predictions')
    .option('--since <time>', 'epoch ms or ISO 8601')
    .option('--until <time>', 'epoch ms or ISO 8601')
    .option('--reference <id>', 'reference id (default: the newest of the version)')
    .option('--json', 'print the whole report')
    .action(async (o: DetectOptions) => {
      const window: Record<string, unknown> = {};
      if (o.lastN) window.last_n = Number(o.lastN);
      if (o.since) window.since = /^\d+$/.test(o.since) ? Number(o.since) : o.since;
      if (o.until) window.until = /^\d+$/.test(o.until) ? Number(o.until) : o.until;
      const report = await new ServiceClient('monitoring').post<{
        id: string;
        model: string;
        version: string;
        verdict: string;
        n_reference: number;
        n_current: number;
        checks: { detector: string; method: string; statistic: number | null; p_value: number | null; threshold: number; drifted: boolean; skipped?: string }[];
      }>('/drift/detect', {
        model: o.model,
        ...(o.version ? { version: o.version } : {}),
        ...(o.reference ? { reference_id: o.reference } : {}),
        ...(Object.keys(window).length ? { window } : {}),
      });
      if (o.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(`${report.model} v${report.version}: ${report.verdict.toUpperCase()} (${report.n_current} predictions vs ${report.n_reference} reference rows; report ${report.id})`);
      const fmt = (v: number | null) => (v === null ? '' : Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(4) : v.toExponential(2));
      console.log(
        table(
          report.checks.map((c) => ({
            detector: c.detector,
            method: c.method,
            statistic: fmt(c.statistic),
            p_value: fmt(c.p_value),
            threshold: fmt(c.threshold),
            result: c.skipped ? `skipped: ${c.skipped}` : c.drifted ? 'DRIFT' : 'ok',
          })),
          ['detector', 'method', 'statistic', 'p_value', 'threshold', 'result'],
        ),
      );
    });
}
