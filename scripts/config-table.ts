// Prints the README's configuration table from the zod schema (npm run config-table).
import { configSchema, SECRET_SETTINGS } from '../src/core/config/schema.js';
import { monitoringSettingsSchema } from '../src/core/config/monitoring.js';

console.log('| variable | default | meaning |\n|---|---|---|');
for (const [key, schema] of Object.entries({ ...configSchema.shape, ...monitoringSettingsSchema.shape })) {
  const s = schema as unknown as { description?: string; parse(v: unknown): unknown };
  let def: unknown;
  try {
    def = s.parse(undefined);
  } catch {
    def = '';
  }
  const shown = def === '' ? '(empty)' : typeof def === 'boolean' ? (def ? 'on' : 'off') : String(def);
  const secret = (SECRET_SETTINGS as readonly string[]).includes(key) ? ` Secret: may be given as \`${key}_FILE\` (a file holding it).` : '';
  console.log(`| \`${key}\` | \`${shown}\` | ${s.description ?? ''}${secret} |`);
}
