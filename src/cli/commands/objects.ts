import type { Command } from 'commander';
import { AuditLog } from '../../core/audit/index.js';
import { loadConfig } from '../../core/config/index.js';
import { openDatabase } from '../../core/db/index.js';
import { FsObjectStore, objectStoreSettings, openObjectStore } from '../../core/objects/index.js';

/**
 * `xray objects reencrypt`: rewrites every object of the filesystem store that is not under the
 * current master key of XRAY_OBJECT_KEY_FILE (plain objects are encrypted, older ones re-wrapped).
 * Safe while the platform runs (each object is replaced atomically). Returns the exit code.
 */
export async function reencryptObjects(env: NodeJS.ProcessEnv = process.env, out: (line: string) => void = console.log): Promise<number> {
  const config = loadConfig(env);
  if (!config.objectStoreUrl.startsWith('file:')) {
    out(`the object store is ${config.objectStoreUrl.split(':')[0]}: encryption at rest there is the server's (XRAY_S3_SSE); nothing to re-encrypt here`);
    return 1;
  }
  if (!config.objectKeyFile) {
    out('XRAY_OBJECT_KEY_FILE is not set: there is no master key to encrypt with');
    return 1;
  }
  const objects = (await openObjectStore(config.objectStoreUrl, objectStoreSettings(config))) as FsObjectStore;
  const database = await openDatabase(config.databaseUrl);
  try {
    const started = performance.now();
    const result = await objects.reencrypt((done) => {
      if (process.stderr.isTTY && done % 200 === 0) process.stderr.write(`\r${done} objects`);
    });
    if (process.stderr.isTTY) process.stderr.write('\r');
    out(`re-encrypted under the current master key: ${result.encrypted} plain objects encrypted, ${result.rewrapped} re-wrapped, ${result.unchanged} already current (${((performance.now() - started) / 1000).toFixed(1)} s). Older keys may now leave ${config.objectKeyFile}.`);
    await new AuditLog(database).append({ actor: 'cli', action: 'objects.reencrypt', resource: 'objects', service: 'cli', details: { ...result } });
    return 0;
  } finally {
    await Promise.all([objects.close(), database.close()]);
  }
}

export function registerObjects(program: Command): void {
  const objects = program.command('objects').description('the object store (images, models, reports)');
  objects
    .command('reencrypt')
    .description('encrypt plain objects and re-wrap older ones under the first key of XRAY_OBJECT_KEY_FILE (key rotation); run on the host holding the filesystem store')
    .action(async () => {
      process.exitCode = await reencryptObjects();
    });
}
