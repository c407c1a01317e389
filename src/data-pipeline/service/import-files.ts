import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../core/errors.js';
import { CLASSES, type Label, type Split } from '../store/types.js';

/** Extensions a folder import picks up (case-insensitive). Formats are still sniffed from the bytes. */
export const IMPORT_EXTENSIONS = ['.jpeg', '.jpg', '.png', '.dcm'] as const;

const SPLIT_FOLDERS: Readonly<Record<string, Split>> = { train: 'train', val: 'val', validation: 'val', test: 'test' };

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolves a server-side folder for import, refusing anything outside `importRoot`: NUL bytes,
 * any `..` segment, absolute paths elsewhere, and symlinks whose target leaves the root.
 * Relative paths are taken relative to the root.
 * @returns the real (symlink-free) absolute path of an existing directory.
 * @throws AppError INVALID_INPUT (outside the root, not a directory), NOT_FOUND (missing).
 */
export async function resolveImportDir(importRoot: string, requested: string): Promise<string> {
  if (typeof requested !== 'string' || requested.trim() === '') throw new AppError('INVALID_INPUT', 'import path is empty');
  if (requested.includes('\0')) throw new AppError('INVALID_INPUT', 'import path contains a NUL byte');
  if (requested.split(/[\\/]+/).includes('..')) {
    throw new AppError('INVALID_INPUT', `import path '${requested}' contains '..'; give a folder under the import root`);
  }
  const root = await realpath(importRoot).catch(() => {
    throw new AppError('INVALID_INPUT', `the configured import root '${importRoot}' does not exist`);
  });
  const candidate = path.resolve(root, requested);
  if (!isInside(root, candidate) && !isInside(path.resolve(importRoot), candidate)) {
    throw new AppError('INVALID_INPUT', `import path '${requested}' is outside the import root (XRAY_IMPORT_ROOT)`);
  }
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new AppError('NOT_FOUND', `import folder '${requested}' does not exist`);
  }
  if (!isInside(root, real)) throw new AppError('INVALID_INPUT', `import path '${requested}' leads outside the import root (symlink)`);
  const s = await stat(real);
  if (!s.isDirectory()) throw new AppError('INVALID_INPUT', `import path '${requested}' is not a folder`);
  return real;
}

export interface ImportFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the import folder, '/'-separated (what reports show). */
  relative: string;
  label: Label;
  split: Split | null;
}

export interface ImportPlan {
  files: ImportFile[];
  /** Entries that will not be ingested, with the reason. */
  rejected: { file: string; code: string; message: string }[];
}

export interface PlanOptions {
  /** Force this label on every file (files directly in the folder are then taken too). */
  label?: Label;
  /** Record `train/`, `val/`, `test/` folder names as the images' split. */
  splitFromFolders?: boolean;
  /** Root the files must stay in (symlinks pointing out are refused). */
  root: string;
}

async function sortedEntries(dir: string) {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Lists the files of the standard layout `<dir>/<split?>/{NORMAL,PNEUMONIA}/*.{jpeg,jpg,png,dcm}`
 * (or of `<dir>` itself when it is named NORMAL or PNEUMONIA) in a stable order. Hidden entries are ignored; other extensions and symlinks leaving the root are
 * listed as rejected. Only paths are held in memory, never file contents.
 */
export async function planImport(dir: string, options: PlanOptions): Promise<ImportPlan> {
  const plan: ImportPlan = { files: [], rejected: [] };
  const root = await realpath(options.root);
  const rel = (p: string) => path.relative(dir, p).split(path.sep).join('/');

  const addFile = async (file: string, label: Label, split: Split | null) => {
    const ext = path.extname(file).toLowerCase();
    if (!(IMPORT_EXTENSIONS as readonly string[]).includes(ext)) {
      plan.rejected.push({ file: rel(file), code: 'UNSUPPORTED_MEDIA_TYPE', message: `file extension '${ext || '(none)'}' is not one of ${IMPORT_EXTENSIONS.join(' ')}` });
      return;
    }
    const info = await lstat(file);
    if (info.isSymbolicLink()) {
      const target = await realpath(file).catch(() => null);
      if (!target || !isInside(root, target)) {
        plan.rejected.push({ file: rel(file), code: 'INVALID_INPUT', message: 'symlink points outside the import root' });
        return;
      }
      if (!(await stat(target)).isFile()) return;
    } else if (!info.isFile()) return;
    plan.files.push({ path: file, relative: rel(file), label, split });
  };

  const classOf = (name: string): Label | null => {
    const upper = name.toUpperCase();
    return (CLASSES as readonly string[]).includes(upper) ? (upper as Label) : null;
  };

  const walkClassDir = async (classDir: string, label: Label, split: Split | null) => {
    for (const e of await sortedEntries(classDir)) {
      if (e.isDirectory()) continue;
      await addFile(path.join(classDir, e.name), options.label ?? label, split);
    }
  };

  const walkLevel = async (level: string, split: Split | null, allowSplitFolders: boolean) => {
    for (const e of await sortedEntries(level)) {
      const full = path.join(level, e.name);
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        const target = await realpath(full).catch(() => null);
        if (!target || !isInside(root, target)) {
          plan.rejected.push({ file: rel(full), code: 'INVALID_INPUT', message: 'symlink points outside the import root' });
          continue;
        }
        isDir = (await stat(target)).isDirectory();
      }
      if (isDir) {
        const label = classOf(e.name);
        const splitName = SPLIT_FOLDERS[e.name.toLowerCase()];
        if (label) await walkClassDir(full, label, split);
        else if (allowSplitFolders && splitName) await walkLevel(full, options.splitFromFolders ? splitName : null, false);
      } else if (options.label) {
        await addFile(full, options.label, split);
      }
    }
  };

  // Pointed straight at a class folder (…/NORMAL): take its files with that label.
  const own = classOf(path.basename(dir));
  if (own) await walkClassDir(dir, own, null);
  else await walkLevel(dir, null, true);
  return plan;
}
