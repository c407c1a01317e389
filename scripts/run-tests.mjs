#!/usr/bin/env node
// Runs every test file (test/**/*.test.ts) with node's built-in runner and tsx.
// First the typecheck and the linter (any error fails the run), then the tests.
// `--fast` sets XRAY_FAST=1 so slow suites (real training, browser) skip; CI runs everything.
// Extra arguments that are paths narrow the run: `npm test -- test/core`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const fast = args.includes('--fast');
const targets = args.filter((a) => !a.startsWith('--'));

function collect(p, out) {
  const s = statSync(p);
  if (s.isDirectory()) {
    for (const e of readdirSync(p).sort()) if (e !== 'node_modules' && e !== 'fixtures') collect(path.join(p, e), out);
  } else if (p.endsWith('.test.ts')) out.push(path.relative(root, p));
  return out;
}

const files = [];
for (const t of targets.length ? targets : ['test']) {
  const p = path.resolve(root, t);
  if (!existsSync(p)) {
    console.error(`no such test path: ${t}`);
    process.exit(2);
  }
  collect(p, files);
}
if (files.length === 0) {
  console.error('no test files found');
  process.exit(2);
}

// The checks a TypeScript project runs, before any test: a type error or a lint error fails `npm test`.
// `--no-checks` skips them (a narrowed run while iterating).
if (!args.includes('--no-checks')) {
  const bin = (name) => path.join(root, 'node_modules', '.bin', name);
  const checks = [
    ['typecheck (src, test, bench)', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']],
    ['typecheck (web)', bin('tsc'), ['--noEmit', '-p', 'web/tsconfig.json']],
    ['lint (typescript-eslint)', bin('eslint'), ['--max-warnings=0', 'src', 'web/src', 'bench', 'test']],
    ['service boundaries (dependency-cruiser)', bin('depcruise'), ['src', '--config', '.dependency-cruiser.cjs']],
  ];
  for (const [what, cmd, cmdArgs] of checks) {
    const started = Date.now();
    const c = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
    if (c.status !== 0) {
      console.error(`npm test: ${what} failed`);
      process.exit(c.status ?? 1);
    }
    console.error(`[checks] ${what}: ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}

const env = { ...process.env, XRAY_LOG_LEVEL: process.env.XRAY_LOG_LEVEL ?? 'silent' };
if (fast) env.XRAY_FAST = '1';
if (process.env.CI) env.XRAY_REQUIRE_ENGINES = env.XRAY_REQUIRE_ENGINES ?? '1';
const concurrency = Math.max(1, Math.min(4, os.availableParallelism()));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
