import { execFile } from 'node:child_process';

let cached: Promise<string | null> | null = null;

/**
 * The git commit of the code this process runs (`git rev-parse HEAD` in the project root), or null
 * when git or the repository is absent (containers). Asked once per process.
 */
export function currentCodeVersion(projectRoot: string): Promise<string | null> {
  cached ??= new Promise((resolve) => {
    execFile('git', ['rev-parse', 'HEAD'], { cwd: projectRoot, timeout: 2000 }, (err, stdout) => {
      const sha = String(stdout ?? '').trim();
      resolve(!err && /^[0-9a-f]{40}$/.test(sha) ? sha : null);
    });
  });
  return cached;
}
