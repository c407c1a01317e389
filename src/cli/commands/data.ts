import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { readErrorEnvelope } from '../../core/http/error-envelope.js';
import { ApiError, ServiceClient } from '../client.js';
import { planImport, type ImportFile } from '../../data-pipeline/service/import-files.js';
import { isLabel, type Label } from '../../data-pipeline/store/types.js';
import type { ExportManifest } from '../../data-pipeline/service/export.js';

const POLL_MS = 300;
const UPLOAD_BATCH = 16;
const DOWNLOAD_CONCURRENCY = 4;

function client(): ServiceClient {
  return new ServiceClient('data-pipeline');
}

function progressBar(label: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {detail}`, hideCursor: true, stream: process.stderr, noTTYOutput: false },
    cliProgress.Presets.shades_classic,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseLabel(value: string | undefined): Label | undefined {
  if (value === undefined) return undefined;
  if (!isLabel(value)) throw new Error(`--label must be NORMAL, PNEUMONIA or unlabelled, got '${value}'`);
  return value;
}

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${value}'`);
  return n;
}

interface ImportSummary {
  total: number;
  done: number;
  ingested: number;
  duplicates: number;
  rejected: number;
  rejections: { file: string; code: string; message: string }[];
}

function printSummary(s: ImportSummary, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(s, null, 2));
    return;
  }
  console.log(`imported ${s.done}/${s.total}: ${s.ingested} ingested, ${s.duplicates} duplicates, ${s.rejected} rejected`);
  for (const r of s.rejections.slice(0, 20)) console.log(`  rejected ${r.file}: ${r.code} ${r.message}`);
  if (s.rejections.length > 20) console.log(`  … ${s.rejections.length - 20} more (use --json)`);
}

/** Server-side import: the platform reads the folder itself (it must be under XRAY_IMPORT_ROOT). */
async function importOnServer(dir: string, o: { label?: string; splitFromFolders?: boolean; json?: boolean }): Promise<void> {
  const api = client();
  const { job_id } = await api.post<{ job_id: string }>('/import', {
    path: path.resolve(dir),
    split_from_folders: o.splitFromFolders ?? false,
    ...(o.label ? { label: parseLabel(o.label) } : {}),
  });
  const bar = progressBar('import');
  let started = false;
  for (;;) {
    const s = await api.get<ImportSummary & { state: string; error: string | null }>(`/import/${encodeURIComponent(job_id)}`);
    if (s.total > 0) {
      if (!started) {
        bar.start(s.total, 0, { detail: '' });
        started = true;
      }
      bar.update(s.done, { detail: `${s.ingested} new, ${s.duplicates} dup, ${s.rejected} rejected` });
    }
    if (s.state === 'completed' || s.state === 'failed') {
      if (started) bar.stop();
      if (s.state === 'failed') throw new Error(`import job ${job_id} failed: ${s.error}`);
      printSummary(s, o.json ?? false);
      return;
    }
    await sleep(POLL_MS);
  }
}

/** Client-side import: the CLI reads the folder and uploads it in batches (for a remote platform). */
async function importByUpload(dir: string, o: { label?: string; splitFromFolders?: boolean; json?: boolean }): Promise<void> {
  const api = client();
  const root = path.resolve(dir);
  const plan = await planImport(root, { root, label: parseLabel(o.label), splitFromFolders: o.splitFromFolders });
  const summary: ImportSummary = { total: plan.files.length + plan.rejected.length, done: plan.rejected.length, ingested: 0, duplicates: 0, rejected: plan.rejected.length, rejections: [...plan.rejected] };
  const bar = progressBar('upload');
  bar.start(summary.total, summary.done, { detail: '' });
  // One request per (label, split) group and batch: the fields precede the files they describe.
  for (let i = 0; i < plan.files.length; ) {
    const first = plan.files[i]!;
    const batch: ImportFile[] = [];
    while (i < plan.files.length && batch.length < UPLOAD_BATCH && plan.files[i]!.label === first.label && plan.files[i]!.split === first.split) batch.push(plan.files[i++]!);
    const form = new FormData();
    form.append('label', first.label);
    if (first.split) form.append('split', first.split);
    for (const f of batch) form.append('file', new Blob([await readFile(f.path)]), path.basename(f.relative));
    const res = await api.request<{ results: { file: string; status: string; error?: { code: string; message: string } }[] }>('POST', '/ingest', form);
    res.results.forEach((r, k) => {
      if (r.status === 'ingested') summary.ingested++;
      else if (r.status === 'duplicate') summary.duplicates++;
      else {
        summary.rejected++;
        summary.rejections.push({ file: batch[k]?.relative ?? r.file, code: r.error?.code ?? 'REJECTED', message: r.error?.message ?? '' });
      }
    });
    summary.done += batch.length;
    bar.update(summary.done, { detail: `${summary.ingested} new, ${summary.duplicates} dup, ${summary.rejected} rejected` });
  }
  bar.stop();
  printSummary(summary, o.json ?? false);
}

async function fetchBytes(api: ServiceClient, urlPath: string): Promise<Buffer> {
  const headers: Record<string, string> = {};
  if (api.apiKey) headers.authorization = `Bearer ${api.apiKey}`;
  let res: Response;
  try {
    res = await fetch(api.url(urlPath), { headers });
  } catch (err) {
    throw new ApiError(0, 'UNREACHABLE', `cannot reach ${api.baseUrl}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const e = readErrorEnvelope(res.status, res.statusText, await res.text().catch(() => ''));
    throw new ApiError(res.status, e.code, e.message);
  }
  return Buffer.from(await res.arrayBuffer());
}

/** Downloads a version in the trainer's format: manifest.json (written last) + images/<hash>.png. */
async function exportVersion(version: string, dir: string): Promise<void> {
  const api = client();
  const manifest = await api.get<ExportManifest>(`/versions/${encodeURIComponent(version)}/manifest`);
  const target = path.resolve(dir);
  await mkdir(path.join(target, 'images'), { recursive: true });
  const bar = progressBar('export');
  bar.start(manifest.items.length, 0, { detail: '' });
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < manifest.items.length) {
      const item = manifest.items[next++]!;
      const png = await fetchBytes(api, `/versions/${manifest.version_id}/images/${item.hash}`);
      const file = path.join(target, item.file);
      await writeFile(`${file}.tmp`, png);
      await rename(`${file}.tmp`, file);
      bar.update(++done, { detail: item.hash.slice(0, 12) });
    }
  };
  await Promise.all(Array.from({ length: DOWNLOAD_CONCURRENCY }, worker));
  bar.stop();
  await writeFile(path.join(target, 'manifest.json.tmp'), JSON.stringify(manifest, null, 1));
  await rename(path.join(target, 'manifest.json.tmp'), path.join(target, 'manifest.json'));
  console.log(`exported ${manifest.items.length} images of ${manifest.version_id} to ${target}`);
}

interface VersionView {
  id: string;
  name: string;
  created_at: number;
  item_count: number;
  counts: Record<'train' | 'val' | 'test', Record<'NORMAL' | 'PNEUMONIA', number>>;
}

function countsText(c: VersionView['counts']): string {
  return (['train', 'val', 'test'] as const)
    .filter((s) => c[s].NORMAL + c[s].PNEUMONIA > 0)
    .map((s) => `${s} ${c[s].NORMAL}N/${c[s].PNEUMONIA}P`)
    .join(', ');
}

export function registerData(program: Command): void {
  const data = program.command('data').description('ingest chest X-rays, validate them, and make versioned datasets');

  data
    .command('import')
    .argument('<dir>', 'folder in the layout <dir>/<split?>/{NORMAL,PNEUMONIA}/*.{jpeg,jpg,png,dcm}')
    .option('--split-from-folders', 'record train/ val/ test/ folder names as the images\' split')
    .option('--label <label>', 'force NORMAL | PNEUMONIA | unlabelled on every file')
    .option('--upload', 'read the files here and upload them (for a platform on another machine); default: the platform reads the folder (under XRAY_IMPORT_ROOT)')
    .option('--json', 'print the full result as JSON')
    .description('import a folder of images; identical files already stored are reported as duplicates')
    .action(async (dir: string, o: { splitFromFolders?: boolean; label?: string; upload?: boolean; json?: boolean }) => {
      if (o.upload) await importByUpload(dir, o);
      else await importOnServer(dir, o);
    });

  data
    .command('validate')
    .option('--dataset <id>', "'all' or a dataset version id", 'all')
    .option('--threshold <bits>', 'perceptual-hash distance for near-duplicates (0–16)')
    .option('--json', 'print the whole report')
    .description('check quality, duplicates, near-duplicates and train/val leakage; the report is stored')
    .action(async (o: { dataset: string; threshold?: string; json?: boolean }) => {
      const q = new URLSearchParams({ dataset: o.dataset });
      if (o.threshold !== undefined) q.set('threshold', String(number('--threshold', o.threshold)));
      const report = await client().get<{ ok: boolean; summary: Record<string, unknown>; report_key: string; leakage: { patients: unknown[] } }>(`/validate?${q}`);
      if (o.json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(`${report.ok ? 'OK' : 'PROBLEMS FOUND'} — report stored at ${report.report_key}`);
        console.log(JSON.stringify(report.summary, null, 2));
      }
      if (!report.ok) process.exitCode = 2;
    });

  const version = data.command('version').description('dataset versions');
  version
    .command('create')
    .requiredOption('--name <name>', 'display name (not part of the id)')
    .option('--val-fraction <f>', 'share of images (by patient) for validation', '0.15')
    .option('--test-fraction <f>', 'share of images (by patient) for test', '0')
    .option('--seed <n>', 'split seed', '42')
    .option('--size <px>', 'model input side', '224')
    .option('--mode <mode>', 'letterbox | crop | squash', 'letterbox')
    .option('--pad <grey>', 'letterbox padding grey level')
    .option('--labels <list>', 'comma list of classes to include (default NORMAL,PNEUMONIA)')
    .option('--exclude-flags <list>', 'comma list of quality flags to leave out (e.g. LOW_CONTRAST)')
    .option('--use-recorded-splits', 'keep the splits recorded at import (--split-from-folders)')
    .option('--test-by <rule>', 'random | period (the latest file names per class, by natural order) | names (see --test-names)', 'random')
    .option('--test-names <list>', "with --test-by names: comma list of file-name substrings whose patients form the test split (e.g. 'NORMAL2-,_virus_')")
    .option('--augmentation <json>', 'augmentation overrides as JSON, e.g. \'{"hflip":false,"rotation_deg":5}\'')
    .description('create an immutable, content-addressed dataset version (patient-level, stratified, seeded split)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      let augmentation: unknown = {};
      if (typeof o.augmentation === 'string') {
        try {
          augmentation = JSON.parse(o.augmentation);
        } catch {
          throw new Error('--augmentation must be JSON');
        }
      }
      const body = {
        name: o.name,
        val_fraction: number('--val-fraction', o.valFraction as string),
        test_fraction: number('--test-fraction', o.testFraction as string),
        seed: number('--seed', o.seed as string),
        preprocessing: { size: number('--size', o.size as string), mode: o.mode, ...(o.pad !== undefined ? { pad: number('--pad', o.pad as string) } : {}) },
        augmentation,
        ...(typeof o.labels === 'string' ? { labels: o.labels.split(',').map((s) => s.trim().toUpperCase()) } : {}),
        ...(typeof o.excludeFlags === 'string' ? { exclude_quality_flags: o.excludeFlags.split(',').map((s) => s.trim()) } : {}),
        use_recorded_splits: o.useRecordedSplits === true,
        test_by: o.testBy,
        ...(typeof o.testNames === 'string' ? { test_names_containing: o.testNames.split(',').map((s) => s.trim()) } : {}),
      };
      const res = await client().post<{ version: VersionView; created: boolean; excluded: Record<string, number> }>('/version/create', body);
      console.log(`${res.created ? 'created' : 'exists '} ${res.version.id}  ${res.version.name}  ${res.version.item_count} images (${countsText(res.version.counts)})`);
      if (Object.keys(res.excluded).length) console.log(`excluded: ${JSON.stringify(res.excluded)}`);
    });

  data
    .command('versions')
    .option('--json', 'print JSON')
    .description('list dataset versions, newest first')
    .action(async (o: { json?: boolean }) => {
      const items: VersionView[] = [];
      let token: string | undefined;
      do {
        const page: { items: VersionView[]; next_page_token?: string } = await client().get(`/versions?page_size=1000${token ? `&page_token=${encodeURIComponent(token)}` : ''}`);
        items.push(...page.items);
        token = page.next_page_token;
      } while (token);
      if (o.json) console.log(JSON.stringify(items, null, 2));
      else if (items.length === 0) console.log('no dataset versions yet (xray data version create --name …)');
      else for (const v of items) console.log(`${v.id}  ${new Date(v.created_at).toISOString()}  ${v.name}  ${v.item_count} images (${countsText(v.counts)})`);
    });

  data
    .command('export')
    .argument('<version>', 'dataset version id')
    .argument('<dir>', 'folder to write manifest.json and images/<hash>.png into')
    .description('download a dataset version in the trainer\'s format (preprocessed PNGs + manifest.json)')
    .action(async (versionId: string, dir: string) => exportVersion(versionId, dir));
}
