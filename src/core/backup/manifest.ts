import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson as canonical } from '../canonical-json.js';

/** What a backup holds; signed (HMAC-SHA256) so a verify on another site knows it is whole and ours. */
export interface BackupManifest {
  format: 'xray-backup/1';
  id: string;
  created_at: string;
  platform_version: string;
  /** The newest migration applied to the database that was backed up. */
  schema_version: string | null;
  engine: 'sqlite' | 'postgres';
  /** The database snapshot, stored at `key` in the backup target. */
  database: { key: string; sha256: string; bytes: number };
  /** Rows per table, counted in the snapshot itself. */
  tables: Record<string, number>;
  /** Every object of the platform's store; copies live at `objects/<key>` in the target (shared by backups). */
  objects: { key: string; sha256: string; bytes: number }[];
  /** Objects this backup had to copy (the others were already in the target). */
  copied: number;
  signature?: string;
}

export function signManifest(m: Omit<BackupManifest, 'signature'>, key: Buffer): BackupManifest {
  return { ...m, signature: createHmac('sha256', key).update(canonical(m)).digest('hex') };
}

/** true when the manifest carries a signature made with `key` over exactly its content. */
export function manifestSignatureValid(m: BackupManifest, key: Buffer): boolean {
  const { signature, ...rest } = m;
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/.test(signature)) return false;
  const expected = createHmac('sha256', key).update(canonical(rest)).digest();
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}
