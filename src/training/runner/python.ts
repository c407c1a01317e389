import { execFile } from 'node:child_process';
import { AppError } from '../../core/errors.js';
import type { RuntimeInfo } from './runner.js';

/** The Debian packages the worker needs (torch 1.13+; pip's torch 2.x works as well). */
export const INSTALL_COMMAND = 'apt-get install -y python3-torch python3-torchvision python3-optuna python3-onnx';

/** Tried in order when XRAY_PYTHON is not set: Debian's interpreter first (pyenv shims rarely have torch). */
export const DEFAULT_CANDIDATES = ['/usr/bin/python3', 'python3'] as const;

const PROBE = [
  'import json, torch',
  'try:\n    import optuna; o = optuna.__version__\nexcept Exception:\n    o = None',
  'print(json.dumps({"torch": torch.__version__, "optuna": o}))',
].join('\n');

type Probe = { ok: true; info: RuntimeInfo } | { ok: false; reason: string };
const probes = new Map<string, Promise<Probe>>();

function probe(python: string): Promise<Probe> {
  let cached = probes.get(python);
  if (!cached) {
    cached = new Promise<Probe>((resolve) => {
      execFile(python, ['-c', PROBE], { timeout: 120_000, windowsHide: true }, (err, stdout, stderr) => {
        if (err) {
          const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : stderr.trim().split('\n').pop() || err.message;
          resolve({ ok: false, reason: `${python}: ${why}` });
          return;
        }
        try {
          const out = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { torch: string; optuna: string | null };
          resolve({ ok: true, info: { python, torch: out.torch, optuna: out.optuna } });
        } catch {
          resolve({ ok: false, reason: `${python}: unexpected probe output` });
        }
      });
    });
    probes.set(python, cached);
  }
  return cached;
}

/**
 * The interpreter that runs the worker: `configured` (XRAY_PYTHON) when set, else the first of
 * {@link DEFAULT_CANDIDATES} that can `import torch`. Answers are cached per interpreter for the
 * life of the process. Throws AppError TRAINER_RUNTIME_MISSING (with the install command) when
 * none qualifies; nothing else in the platform depends on it, so the platform still starts.
 */
export async function findPython(configured: string): Promise<RuntimeInfo> {
  const candidates = configured ? [configured] : [...DEFAULT_CANDIDATES];
  const reasons: string[] = [];
  for (const python of candidates) {
    const result = await probe(python);
    if (result.ok) return result.info;
    reasons.push(result.reason);
  }
  const where = configured ? `XRAY_PYTHON=${configured}` : `none of ${candidates.join(', ')}`;
  throw new AppError(
    'TRAINER_RUNTIME_MISSING',
    `no Python with PyTorch for the training worker (${where} can import torch: ${reasons.join('; ')}). ` +
      `Install it with: ${INSTALL_COMMAND} (or point XRAY_PYTHON at an interpreter that has torch)`,
    { install: INSTALL_COMMAND, tried: candidates },
  );
}

/** Forgets cached probes (after installing packages, or in tests). */
export function resetPythonCache(): void {
  probes.clear();
}
