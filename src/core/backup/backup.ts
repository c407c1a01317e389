import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { AuditLog } from '../audit/index.js';
import { resolveSecretFiles, type Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { openDatabase } from '../db/index.js';
import { AppError } from '../errors.js';
import type { ObjectStore } from '../objects/index.js';
import { manifestSignatureValid, signManifest, type BackupManifest } from './manifest.js';

/** The stores a backup reads (or a restore writes). */
export interface BackupSource {
  config: Config;
  database: Database;
  objects: ObjectStore;
}

export interface Progress {
  (phase: 'database' | 'objects' | 'verify' | 'restore', done: number, total: number): void;
}

const MANIFESTS = 'backups/';
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The key that signs manifests: XRAY_BACKUP_KEY, else `$XRAY_HOME/backup.key` (made on first use,
 * mode 0600). A restore or verify on another site needs the same key.
 */
export function backupKey(config: Config, create = true, env: NodeJS.ProcessEnv = process.env): Buffer {
  // XRAY_BACKUP_KEY or XRAY_BACKUP_KEY_FILE (a secret file).
  const configured = resolveSecretFiles(env).XRAY_BACKUP_KEY;
  if (configured && configured.length >= 16) return Buffer.from(configured, 'utf8');
  const file = path.join(config.home, 'backup.key');
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
  if (!create) throw new AppError('INVALID_INPUT', `no backup key: set XRAY_BACKUP_KEY (the key of the site that made the backup), or keep ${file}`);
  mkdirSync(config.home, { recursive: true });
  const key = randomBytes(32).toString('hex');
  writeFileSync(file, key + '\n', { mode: 0o600 });
  return Buffer.from(key, 'utf8');
}

async function sha256OfStream(stream: NodeJS.ReadableStream): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function listAll(store: ObjectStore, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  let pageToken: string | undefined;
  do {
    const page = await store.list(prefix, { pageSize: 1000, pageToken });
    out.push(...page.items.map((i) => ({ key: i.key, size: i.size })));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}

async function schemaVersion(database: Database): Promise<string | null> {
  try {
    const rows = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(database.db);
    return rows.rows[0]?.name ?? null;
  } catch {
    return null;
  }
}

function platformVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Manifest keys in the target, newest first (ids start with their UTC time, so key order is time order). */
async function manifestKeys(target: ObjectStore): Promise<string[]> {
  return (await listAll(target, MANIFESTS)).map((o) => o.key).filter((k) => k.endsWith('/manifest.json')).sort().reverse();
}

async function manifestAt(target: ObjectStore, key: string): Promise<BackupManifest> {
  return JSON.parse((await target.get(key)).toString('utf8')) as BackupManifest;
}

/** Backups in the target, newest first. */
export async function listBackups(target: ObjectStore): Promise<BackupManifest[]> {
  return Promise.all((await manifestKeys(target)).map((k) => manifestAt(target, k)));
}

/** The newest backup's manifest, or null (reads one manifest, not all of them). */
async function latestManifest(target: ObjectStore): Promise<BackupManifest | null> {
  const [newest] = await manifestKeys(target);
  return newest ? manifestAt(target, newest) : null;
}

/** A backup's manifest by id ('latest' for the newest). @throws AppError NOT_FOUND */
export async function readManifest(target: ObjectStore, id: string): Promise<BackupManifest> {
  if (id === 'latest') {
    const newest = await latestManifest(target);
    if (!newest) throw new AppError('NOT_FOUND', 'the backup target holds no backup');
    return newest;
  }
  if (!/^[0-9TZ-]+[0-9a-f]*$/.test(id)) throw new AppError('INVALID_INPUT', `'${id}' is not a backup id`);
  return JSON.parse((await target.get(`${MANIFESTS}${id}/manifest.json`)).toString('utf8')) as BackupManifest;
}

/**
 * A consistent backup of everything the platform owns, taken online: the database by the engine's
 * own tool (its snapshot also counts the rows), then every object copied content-addressed to
 * `objects/<key>` in the target — only those the target lacks (incremental) — and a signed
 * manifest listing the sha256 of every object and of the dump, written last.
 */
export async function createBackup(src: BackupSource, target: ObjectStore, opts: { key: Buffer; progress?: Progress; now?: Date } = { key: Buffer.alloc(0) }): Promise<BackupManifest> {
  const now = opts.now ?? new Date();
  const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  const scratch = await mkdtemp(path.join(tmpdir(), 'xray-backup-'));
  try {
    const engine = src.database.capabilities.engine;
    const dumpFile = path.join(scratch, engine === 'sqlite' ? 'database.sqlite' : 'database.pgdump');
    opts.progress?.('database', 0, 1);
    const { tables } = await src.database.snapshot(dumpFile);
    const dumpHash = await sha256OfStream(createReadStream(dumpFile));
    const dbKey = `${MANIFESTS}${id}/${path.basename(dumpFile)}`;
    await target.putStream(dbKey, createReadStream(dumpFile), 'application/octet-stream');
    opts.progress?.('database', 1, 1);

    // Objects already in the target with the same size reuse the previous manifest's hash.
    const previous = new Map((await latestManifest(target))?.objects.map((o) => [o.key, o]) ?? []);
    const objects = await listAll(src.objects, '');
    const listed: BackupManifest['objects'] = [];
    let copied = 0;
    for (const [i, o] of objects.entries()) {
      const known = previous.get(o.key);
      const there = await target.stat(`objects/${o.key}`);
      if (known && known.bytes === o.size && there?.size === o.size) {
        listed.push(known);
      } else {
        const data = await src.objects.get(o.key);
        const sha256 = createHash('sha256').update(data).digest('hex');
        if (!there || there.size !== data.length) {
          await target.put(`objects/${o.key}`, data);
          copied++;
        }
        listed.push({ key: o.key, sha256, bytes: data.length });
      }
      opts.progress?.('objects', i + 1, objects.length);
    }
    const manifest = signManifest(
      {
        format: 'xray-backup/1',
        id,
        created_at: now.toISOString(),
        platform_version: platformVersion(),
        schema_version: await schemaVersion(src.database),
        engine,
        database: { key: dbKey, sha256: dumpHash.sha256, bytes: dumpHash.bytes },
        tables,
        objects: listed,
        copied,
      },
      opts.key,
    );
    await target.put(`${MANIFESTS}${id}/manifest.json`, JSON.stringify(manifest, null, 1), 'application/json');
    return manifest;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A backup restored into scratch stores, as a {@link ReproduceCheck} sees it. */
export interface RestoredBackup {
  manifest: BackupManifest;
  /** The restored database (a scratch copy; closed after the check). */
  database: Database;
  /** An object of the platform's store, read from the backup (`objects/<key>` in the target). */
  readObject(key: string): Promise<Buffer>;
}

/**
 * A check run on the restored backup: that a stored prediction reproduces from the restored model
 * and image. It runs the platform's own serving code, which src/core may not import, so the
 * caller (the CLI) passes it in. `ok: null` = nothing to check (no such prediction).
 */
export type ReproduceCheck = (restored: RestoredBackup) => Promise<{ ok: boolean | null; message: string }>;

export interface VerifyReport {
  ok: boolean;
  id: string;
  checks: { name: string; ok: boolean; message: string }[];
}

/**
 * Proves a backup restores: the manifest's signature, the dump's and every object's sha256, and —
 * restored into a scratch database — the row count of every table and the audit chain.
 * PostgreSQL dumps are restored into a scratch database on `postgresUrl`'s server (then dropped).
 */
export async function verifyBackup(target: ObjectStore, id: string, opts: { key: Buffer; postgresUrl?: string; progress?: Progress; reproduce?: ReproduceCheck }): Promise<VerifyReport> {
  const checks: VerifyReport['checks'] = [];
  const check = (name: string, ok: boolean, message: string) => void checks.push({ name, ok, message });
  const manifest = await readManifest(target, id);
  const signed = manifestSignatureValid(manifest, opts.key);
  check('signature', signed, signed ? "manifest signed with this site's backup key" : 'manifest signature does not match (altered, or another key)');

  let bad = 0;
  for (const [i, o] of manifest.objects.entries()) {
    try {
      const h = await sha256OfStream(await target.getStream(`objects/${o.key}`));
      if (h.sha256 !== o.sha256 || h.bytes !== o.bytes) {
        bad++;
        if (bad <= 5) check('object', false, `objects/${o.key}: sha256 ${h.sha256.slice(0, 12)}… (${h.bytes} bytes) != manifest ${o.sha256.slice(0, 12)}… (${o.bytes} bytes)`);
      }
    } catch (err) {
      bad++;
      if (bad <= 5) check('object', false, `objects/${o.key}: ${err instanceof Error ? err.message : String(err)}`);
    }
    opts.progress?.('verify', i + 1, manifest.objects.length);
  }
  check('objects', bad === 0, bad === 0 ? `${manifest.objects.length} objects match their sha256` : `${bad} of ${manifest.objects.length} objects are missing or altered`);

  const scratch = await mkdtemp(path.join(tmpdir(), 'xray-verify-'));
  try {
    const dumpFile = path.join(scratch, path.basename(manifest.database.key));
    await pipeline(await target.getStream(manifest.database.key), createWriteStream(dumpFile));
    const h = await sha256OfStream(createReadStream(dumpFile));
    const dumpOk = h.sha256 === manifest.database.sha256;
    check('database', dumpOk, dumpOk ? `database dump matches its sha256 (${h.bytes} bytes)` : `database dump sha256 ${h.sha256.slice(0, 12)}… != manifest ${manifest.database.sha256.slice(0, 12)}…`);
    if (dumpOk) await verifyRestoredDatabase(manifest, dumpFile, scratch, opts.postgresUrl, check, opts.reproduce ? { target, check: opts.reproduce } : undefined);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { ok: checks.every((c) => c.ok), id: manifest.id, checks };
}

async function verifyRestoredDatabase(
  manifest: BackupManifest,
  dumpFile: string,
  scratch: string,
  postgresUrl: string | undefined,
  check: (name: string, ok: boolean, message: string) => void,
  reproduce?: { target: ObjectStore; check: ReproduceCheck },
): Promise<void> {
  let database: Database;
  let cleanup = async (): Promise<void> => {};
  try {
    if (manifest.engine === 'sqlite') {
      database = await openDatabase(`sqlite:${dumpFile}`, { migrate: false });
    } else {
      if (!postgresUrl) return check('restore', false, 'a PostgreSQL backup needs a server to restore into for verification (the platform\'s XRAY_DATABASE_URL)');
      const restored = await restoreIntoScratchPostgres(postgresUrl, dumpFile);
      database = restored.database;
      cleanup = restored.drop;
    }
  } catch (err) {
    return check('restore', false, `the dump does not restore: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const counts = await tableCounts(database);
    const wrong = Object.entries(manifest.tables).filter(([t, n]) => counts[t] !== n);
    check('tables', wrong.length === 0, wrong.length === 0 ? `${Object.keys(manifest.tables).length} tables restored with the recorded row counts` : `row counts differ: ${wrong.slice(0, 5).map(([t, n]) => `${t} ${counts[t] ?? 'missing'} != ${n}`).join(', ')}`);
    const audit = await new AuditLog(database).verify();
    check('audit', audit.ok, audit.ok ? `audit chain intact (${audit.checked} records)` : `audit chain broken at ${audit.firstBrokenSeq}: ${audit.reason}`);
    if (reproduce) {
      const listed = new Set(manifest.objects.map((o) => o.key));
      const readObject = async (key: string): Promise<Buffer> => {
        if (!listed.has(key)) throw new AppError('NOT_FOUND', `object ${key} is not in backup ${manifest.id}`);
        return reproduce.target.get(`objects/${key}`);
      };
      try {
        const r = await reproduce.check({ manifest, database, readObject });
        check('prediction', r.ok !== false, r.ok === null ? `skipped: ${r.message}` : r.message);
      } catch (err) {
        check('prediction', false, `a stored prediction could not be reproduced: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await database.close();
    await cleanup();
    void scratch;
  }
}

async function tableCounts(database: Database): Promise<Record<string, number>> {
  const tables = await database.db.introspection.getTables({ withInternalKyselyTables: true });
  // PostgreSQL's introspection lists every schema's tables: count only this handle's.
  const schema = database.capabilities.engine === 'postgres' ? (database.schema ?? 'public') : undefined;
  const out: Record<string, number> = {};
  for (const t of tables) {
    if (t.isView || (schema !== undefined && t.schema !== schema)) continue;
    out[t.name] = Number((await sql<{ n: number }>`select count(*) as n from ${sql.id(t.name)}`.execute(database.db)).rows[0]!.n);
  }
  return out;
}

async function restoreIntoScratchPostgres(url: string, dumpFile: string): Promise<{ database: Database; drop: () => Promise<void> }> {
  const pg = (await import('pg')).default;
  const { runPgTool } = await import('../db/postgres.js');
  const name = `xray_verify_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const scratchUrl = withDatabase(url, name);
  const drop = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`).catch(() => {});
    await c.end();
  };
  try {
    await runPgTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--dbname', scratchUrl, dumpFile]);
    // The dump may hold one schema (the platform's search_path): count there.
    const probe = new pg.Client({ connectionString: scratchUrl });
    await probe.connect();
    const schemas = (await probe.query("select schema_name from information_schema.schemata where schema_name not in ('pg_catalog','information_schema','pg_toast') and schema_name not like 'pg_%'")).rows.map((r: { schema_name: string }) => r.schema_name);
    await probe.end();
    const schema = schemas.find((s: string) => s !== 'public');
    const database = await openDatabase(scratchUrl, { migrate: false, ...(schema ? { schema } : {}) });
    return { database, drop };
  } catch (err) {
    await drop();
    throw err;
  }
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Restores a backup into this platform's (empty) database and object store; refuses a non-empty
 * one unless `force`. SQLite: the snapshot file becomes the database file (the platform must be
 * stopped). PostgreSQL: `pg_restore --clean`. Objects are copied back and checked against the
 * manifest. The signature is checked first.
 */
export async function restoreBackup(
  target: ObjectStore,
  id: string,
  into: { config: Config; objects: ObjectStore; schema?: string },
  opts: { key: Buffer; force?: boolean; progress?: Progress },
): Promise<BackupManifest> {
  const manifest = await readManifest(target, id);
  if (!manifestSignatureValid(manifest, opts.key)) throw new AppError('UNPROCESSABLE', `backup ${manifest.id}: the manifest signature does not match this key; refusing to restore it`);
  const url = into.config.databaseUrl;
  const engine = url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
  if (engine !== manifest.engine) throw new AppError('INVALID_INPUT', `backup ${manifest.id} is a ${manifest.engine} backup; this platform's database is ${engine}`);
  if (!opts.force) {
    const existing = await listAll(into.objects, '');
    if (existing.length > 0) throw new AppError('CONFLICT', `the object store already holds ${existing.length} objects; restore into an empty one, or pass --force`);
    const database = await openDatabase(url, { migrate: false, ...(into.schema ? { schema: into.schema } : {}) });
    try {
      const counts = await tableCounts(database);
      const rows = Object.entries(counts).filter(([t]) => !t.startsWith('kysely_')).reduce((a, [, n]) => a + n, 0);
      if (rows > 0) throw new AppError('CONFLICT', `the database already holds ${rows} rows; restore into an empty one, or pass --force`);
    } finally {
      await database.close();
    }
  }
  const scratch = await mkdtemp(path.join(tmpdir(), 'xray-restore-'));
  try {
    const dumpFile = path.join(scratch, path.basename(manifest.database.key));
    await pipeline(await target.getStream(manifest.database.key), createWriteStream(dumpFile));
    const h = await sha256OfStream(createReadStream(dumpFile));
    if (h.sha256 !== manifest.database.sha256) throw new AppError('UNPROCESSABLE', `backup ${manifest.id}: the database dump does not match its sha256; it is damaged`);
    opts.progress?.('restore', 0, manifest.objects.length + 1);
    if (engine === 'sqlite') {
      const file = sqliteFile(url);
      mkdirSync(path.dirname(file), { recursive: true });
      for (const suffix of ['', '-wal', '-shm']) await rm(file + suffix, { force: true });
      await copyFile(dumpFile, file);
    } else {
      const { runPgTool } = await import('../db/postgres.js');
      await runPgTool('pg_restore', ['--no-owner', '--no-privileges', '--clean', '--if-exists', '--exit-on-error', '--dbname', url, dumpFile]);
    }
    for (const [i, o] of manifest.objects.entries()) {
      const data = await target.get(`objects/${o.key}`);
      if (createHash('sha256').update(data).digest('hex') !== o.sha256) throw new AppError('UNPROCESSABLE', `backup ${manifest.id}: object ${o.key} does not match its sha256; it is damaged`);
      await into.objects.put(o.key, data);
      opts.progress?.('restore', i + 2, manifest.objects.length + 1);
    }
    return manifest;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function sqliteFile(url: string): string {
  const target = url.slice('sqlite:'.length);
  return target.startsWith('//') ? fileURLToPath(`file:${target}`) : target;
}


/**
 * Which backups a retention policy keeps: the newest of each of the last `daily` days and of the
 * last `weekly` ISO weeks (UTC) that have one, and always the newest backup.
 */
export function backupsToKeep(manifests: BackupManifest[], policy: { daily: number; weekly: number }): Set<string> {
  const sorted = [...manifests].sort((a, b) => b.created_at.localeCompare(a.created_at));
  const keep = new Set<string>();
  if (sorted[0]) keep.add(sorted[0].id);
  const pick = (bucketOf: (d: Date) => string, count: number) => {
    const seen = new Set<string>();
    for (const m of sorted) {
      const bucket = bucketOf(new Date(m.created_at));
      if (seen.has(bucket)) continue;
      if (seen.size >= count) break;
      seen.add(bucket);
      keep.add(m.id);
    }
  };
  pick((d) => d.toISOString().slice(0, 10), policy.daily);
  pick(isoWeek, policy.weekly);
  return keep;
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  return `${t.getUTCFullYear()}-W${Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7)}`;
}

/**
 * Applies a retention policy: deletes the backups it does not keep, then the objects no kept
 * backup lists (objects are shared between backups, so only those).
 */
export async function pruneBackups(target: ObjectStore, policy: { daily: number; weekly: number }): Promise<{ removed: string[]; objectsRemoved: number }> {
  const manifests = await listBackups(target);
  const keep = backupsToKeep(manifests, policy);
  const removed = manifests.filter((m) => !keep.has(m.id));
  for (const m of removed) {
    for (const o of await listAll(target, `${MANIFESTS}${m.id}/`)) {
      if (!o.key.endsWith('/manifest.json')) await target.delete(o.key);
    }
    await target.delete(`${MANIFESTS}${m.id}/manifest.json`); // last: a half-pruned backup is never listed as whole
  }
  const referenced = new Set(manifests.filter((m) => keep.has(m.id)).flatMap((m) => m.objects.map((o) => `objects/${o.key}`)));
  let objectsRemoved = 0;
  for (const o of await listAll(target, 'objects/')) {
    if (!referenced.has(o.key)) {
      await target.delete(o.key);
      objectsRemoved++;
    }
  }
  return { removed: removed.map((m) => m.id), objectsRemoved };
}
