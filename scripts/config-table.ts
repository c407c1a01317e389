// Prints the README's configuration table from the zod schema (npm run config-table).
import { configSchema } from '../src/core/config/schema.js';
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
  console.log(`| \`${key}\` | \`${shown}\` | ${s.description ?? ''} |`);
}
