import { sql, type Kysely } from 'kysely';

/**
 * At most one active (open or acknowledged) alert per fingerprint, guaranteed by the database, so
 * monitoring replicas raising the same alert at once cannot both open it. Older duplicates that
 * slipped in before are resolved first (the newest active one stays).
 */
export async function up(db: Kysely<any>): Promise<void> {
  const now = Date.now();
  await sql`
    update alerts set status = 'resolved', resolved_by = 'system:deduplicated', resolved_at = ${now}
    where status in ('open', 'acknowledged')
      and exists (
        select 1 from alerts newer
        where newer.fingerprint = alerts.fingerprint
          and newer.status in ('open', 'acknowledged')
          and (newer.first_seen > alerts.first_seen or (newer.first_seen = alerts.first_seen and newer.id > alerts.id))
      )`.execute(db);
  await db.schema
    .createIndex('alerts_one_active')
    .unique()
    .on('alerts')
    .column('fingerprint')
    .where(sql.ref('status'), 'in', sql`('open', 'acknowledged')`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('alerts_one_active').execute();
}
