import { isAppError } from '../../core/errors.js';

/** Tag recorded on experiments the training service creates. */
export const CREATED_BY_TRAINING = { key: 'xray.created_by', value: 'training' } as const;

/**
 * Experiment ids by name for a run tracker (in-process or HTTP): looked up, created when missing
 * (a create that loses a race reads the winner's), remembered; a failed lookup is forgotten so the
 * next call retries.
 */
export function experimentIdCache(ops: { byName(name: string): Promise<string>; create(name: string): Promise<string> }): (name: string) => Promise<string> {
  const ids = new Map<string, Promise<string>>();
  return (name) => {
    let id = ids.get(name);
    if (!id) {
      id = (async () => {
        try {
          return await ops.byName(name);
        } catch (err) {
          if (!isAppError(err) || err.code !== 'NOT_FOUND') throw err;
        }
        try {
          return await ops.create(name);
        } catch (err) {
          if (isAppError(err) && err.code === 'ALREADY_EXISTS') return ops.byName(name);
          throw err;
        }
      })();
      id.catch(() => ids.delete(name));
      ids.set(name, id);
    }
    return id;
  };
}
