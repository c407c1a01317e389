#!/usr/bin/env node
// The `xray` CLI. Production runs the compiled JavaScript (`npm run build` → dist/; the container
// images call dist/cli/index.js directly); a source checkout runs the TypeScript through tsx's loader.
// XRAY_COMPILED=1 runs dist/ from a checkout too (after `npm run build`).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/index.js', import.meta.url);
const sources = new URL('../src/cli/index.ts', import.meta.url);
if (existsSync(compiled) && (process.env.XRAY_COMPILED === '1' || !existsSync(sources))) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
}
