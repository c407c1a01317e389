import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../../core/errors.js';
import { ID_PATTERN } from './ids.js';

export { ID_PATTERN };

export function newJobId(): string {
  return `t-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function newStudyId(): string {
  return `s-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

function checkedId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new AppError('INVALID_INPUT', `'${id.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)}' is not a training job or study id`);
  return id;
}

/** Where a job's files live under XRAY_HOME: specs per attempt, the worker log, the worker's output folder. */
export function jobPaths(home: string, id: string) {
  const dir = path.join(home, 'training', 'jobs', checkedId(id));
  return {
    dir,
    output: path.join(dir, 'output'),
    log: path.join(dir, 'worker.log'),
    spec: (attempt: number) => path.join(dir, `spec-attempt-${attempt}.json`),
    restoredCheckpoint: (attempt: number) => path.join(dir, `restored-checkpoint-${attempt}.pt`),
  };
}

export function studyPaths(home: string, id: string) {
  const dir = path.join(home, 'training', 'studies', checkedId(id));
  return { dir, output: path.join(dir, 'output'), log: path.join(dir, 'worker.log'), spec: path.join(dir, 'study.json') };
}

/** The cached export of a dataset version (reused by every job on that version). */
export function exportDir(home: string, versionId: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(versionId) || versionId.startsWith('.')) {
    throw new AppError('INVALID_INPUT', 'dataset version id has unexpected characters');
  }
  return path.join(home, 'exports', versionId);
}
