// `npm run bench`: every benchmark in turn; each prints its own figures and ratios to targets.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const only = process.argv.slice(2);
const BENCHES = ['startup', 'data-import', 'dicom', 'registry-search', 'serve', 'serve-stages', 'drift', 'trainer', 'backup', 'scaled'];

for (const name of BENCHES) {
  if (only.length && !only.includes(name)) continue;
  const file = path.join(root, 'bench', `${name}.ts`);
  if (!existsSync(file)) continue;
  console.log(`\n=== ${name} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, stdio: 'inherit', env: { ...process.env, XRAY_LOG_LEVEL: 'warn' } });
  if (r.status !== 0) console.log(`(${name} exited with ${r.status ?? r.signal})`);
}
