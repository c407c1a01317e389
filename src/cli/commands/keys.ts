import type { Command } from 'commander';
import { loadConfig } from '../../core/config/index.js';
import { openDatabase } from '../../core/db/index.js';
import { ApiKeyStore, ROLES, type Role } from '../../core/auth/index.js';

async function withKeys<T>(fn: (keys: ApiKeyStore) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl);
  try {
    return await fn(new ApiKeyStore(db));
  } finally {
    await db.close();
  }
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (stored hashed; used when XRAY_AUTH=on)');
  keys
    .command('create')
    .requiredOption('--name <name>', 'who or what uses the key')
    .requiredOption('--role <role>', ROLES.join('|'))
    .action(async (o: { name: string; role: string }) => {
      const { key, info } = await withKeys((k) => k.create(o.name, o.role as Role));
      console.log(JSON.stringify({ ...info, key }, null, 2));
      console.error('Store this key now: only its hash is kept.');
    });
  keys.command('list').action(async () => console.log(JSON.stringify(await withKeys((k) => k.list()), null, 2)));
  keys
    .command('revoke')
    .argument('<id>')
    .action(async (id: string) => {
      await withKeys((k) => k.revoke(id));
      console.log(`revoked ${id}`);
    });
}
