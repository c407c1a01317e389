import type { Command } from 'commander';
import { ROLES } from '../../core/auth/roles.js';
import { ServiceClient } from '../client.js';

interface KeyView {
  id: string;
  name: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
  status: string;
  key?: string;
}

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/**
 * `xray keys …`: through the API (XRAY_URL, the gateway) with the caller's own key
 * (XRAY_API_KEY, an admin's) — never by opening a database, so the keys land in the platform the
 * URL names and every change is audited under the caller's name.
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys for machines (admin; through the API at XRAY_URL with XRAY_API_KEY)');
  const client = () => new ServiceClient('monitoring');
  keys
    .command('create')
    .requiredOption('--name <name>', 'who or what uses the key')
    .requiredOption('--role <role>', ROLES.join('|'))
    .option('--expires-in-days <days>', 'the key stops working after this many days')
    .action(async (o: { name: string; role: string; expiresInDays?: string }) => {
      const body = { name: o.name, role: o.role, ...(o.expiresInDays ? { expires_in_days: Number(o.expiresInDays) } : {}) };
      const created = await client().post<KeyView>('/keys', body);
      console.log(JSON.stringify(created, null, 2));
      console.error('Store this key now: only its hash is kept.');
    });
  keys
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().get<{ items: KeyView[] }>('/keys');
      if (o.json) return console.log(JSON.stringify(items, null, 2));
      const rows = items.map((k) => [k.id, k.name, k.role, k.status, when(k.created_at), when(k.expires_at), when(k.last_used_at)]);
      const head = ['id', 'name', 'role', 'status', 'created', 'expires', 'last used'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
    });
  keys
    .command('rotate')
    .argument('<id>')
    .option('--grace-seconds <s>', 'how long the old key keeps working', '0')
    .action(async (id: string, o: { graceSeconds: string }) => {
      const rotated = await client().post<KeyView & { previous: KeyView }>(`/keys/${encodeURIComponent(id)}/rotate`, { grace_seconds: Number(o.graceSeconds) });
      console.log(JSON.stringify(rotated, null, 2));
      console.error(`Store the new key now. The old key ${rotated.previous.revoked_at && rotated.previous.revoked_at > Date.now() ? `works until ${when(rotated.previous.revoked_at)}` : 'is revoked'}.`);
    });
  keys
    .command('revoke')
    .argument('<id>')
    .action(async (id: string) => {
      await client().request('DELETE', `/keys/${encodeURIComponent(id)}`);
      console.log(`revoked ${id}`);
    });
}
