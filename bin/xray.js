#!/usr/bin/env node
// The `xray` CLI: TypeScript sources run through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/index.ts');
