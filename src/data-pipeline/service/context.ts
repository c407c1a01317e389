import { AppError } from '../../core/errors.js';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { sharedImagePool, type ImagePool } from '../../core/imaging/image-pool.js';
import type { Platform } from '../../core/platform.js';
import { KyselyImageStore, type ImageStore } from '../store/image-store.js';
import { KyselyVersionStore, type VersionStore } from '../store/version-store.js';
import { KyselySettingsStore, type SettingsStore } from '../store/settings-store.js';
import { KyselyDicomInstanceStore, type DicomInstanceStore } from '../store/dicom-store.js';
import type { DatasetManifest } from './manifest.js';

export const SERVICE_NAME = 'data-pipeline';
/** Object store namespaces of this service. */
export const NAMESPACES = {
  images: 'images',
  manifests: 'datasets/manifests',
  preprocessed: 'preprocessed',
  reports: 'reports/validation',
} as const;

/** Everything the data pipeline's functions need: the platform plus this service's stores. */
export interface DataContext {
  readonly platform: Platform;
  readonly images: ImageStore;
  readonly versions: VersionStore;
  readonly settings: SettingsStore;
  /** De-identified study/series/SOP UIDs of stored DICOM images (QIDO-RS). */
  readonly dicom: DicomInstanceStore;
  /** Where uploaded bytes are parsed, anonymised and decoded: never on the event loop. */
  readonly pool: ImagePool;
  /**
   * The per-installation secret salting DICOM patient pseudonyms and UIDs: from XRAY_PATIENT_SALT_FILE
   * (a secret file, production), else created on first use and kept in the database.
   */
  patientSalt(): Promise<string>;
  /** Recently read manifests (immutable, so never stale), with their item hashes; a few entries. */
  readonly manifests: Map<string, { manifest: DatasetManifest; hashes: Set<string> }>;
  /** Called with the status and format of every ingested file (metrics). */
  readonly ingestListeners: Set<(status: 'ingested' | 'duplicate' | 'rejected', format: string | undefined) => void>;
}

const contexts = new WeakMap<Platform, DataContext>();

/** The data pipeline context of a platform (one per platform, created on first use). */
export function dataContext(platform: Platform): DataContext {
  let ctx = contexts.get(platform);
  if (!ctx) {
    const settings = new KyselySettingsStore(platform.database);
    let salt: Promise<string> | null = null;
    ctx = {
      platform,
      images: new KyselyImageStore(platform.database),
      versions: new KyselyVersionStore(platform.database),
      settings,
      dicom: new KyselyDicomInstanceStore(platform.database),
      pool: sharedImagePool(platform),
      ingestListeners: new Set(),
      manifests: new Map(),
      patientSalt() {
        const file = platform.config.patientSaltFile;
        salt ??= (file ? readSaltFile(file) : settings.getOrCreate('patient_salt', () => randomBytes(32).toString('hex'))).catch((err) => {
          salt = null;
          throw err;
        });
        return salt;
      },
    };
    contexts.set(platform, ctx);
  }
  return ctx;
}

/** The salt from its secret file: trimmed, at least 32 characters. */
async function readSaltFile(file: string): Promise<string> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new AppError('SERVICE_UNAVAILABLE', `XRAY_PATIENT_SALT_FILE ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); DICOM cannot be de-identified without it`);
  }
  if (text.length < 32) throw new AppError('SERVICE_UNAVAILABLE', `XRAY_PATIENT_SALT_FILE ${file} holds ${text.length} characters; the salt needs at least 32`);
  return text;
}
