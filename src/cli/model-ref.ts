import { AppError } from '../core/errors.js';

/** A registered model by name and version or alias: `pneumonia@production`, `pneumonia@3`. */
export interface ModelRef {
  name: string;
  ref: string;
}

/** Parses `name[@alias|version]` (the alias defaults to production). @throws AppError INVALID_INPUT. */
export function parseModelRef(value: string): ModelRef {
  const at = value.lastIndexOf('@');
  const name = (at === -1 ? value : value.slice(0, at)).trim();
  const ref = (at === -1 ? 'production' : value.slice(at + 1)).trim();
  if (!name || !ref) throw new AppError('INVALID_INPUT', `--model '${value}' must be name@alias or name@version, e.g. pneumonia@production or pneumonia@3`);
  return { name, ref };
}
