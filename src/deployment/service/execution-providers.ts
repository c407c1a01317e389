import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

let cached: string[] | null = null;

/**
 * Execution providers for new sessions: CUDA first when this install has the CUDA provider library
 * and the machine has an NVIDIA device, CPU always. Probed once; a failed CUDA session creation
 * falls back to CPU in the caller.
 */
export function executionProviders(): string[] {
  if (cached) return cached;
  cached = ['cpu'];
  try {
    const require = createRequire(import.meta.url);
    const root = path.dirname(path.dirname(require.resolve('onnxruntime-node')));
    const binDir = path.join(root, 'bin');
    const hasCudaLib = existsSync(binDir) && findFile(binDir, 'libonnxruntime_providers_cuda.so', 4);
    const hasDevice = existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
    if (hasCudaLib && hasDevice) cached = ['cuda', 'cpu'];
  } catch {
    // keep CPU only
  }
  return cached;
}

function findFile(dir: string, name: string, depth: number): boolean {
  if (depth < 0) return false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name === name) return true;
    if (entry.isDirectory() && findFile(path.join(dir, entry.name), name, depth - 1)) return true;
  }
  return false;
}
