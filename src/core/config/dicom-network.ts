import { ConfigError } from './errors.js';
import type { RawConfig } from './schema.js';

/** Where auto-predict results are sent: a STOW-RS endpoint or a C-STORE peer. */
export type DicomDestination =
  | { readonly kind: 'stow'; readonly url: string }
  | { readonly kind: 'c-store'; readonly aeTitle: string; readonly host: string; readonly port: number };

/** The data pipeline's PACS connectivity (XRAY_DIMSE_*, XRAY_DICOM_*). */
export interface DicomNetworkSettings {
  /** C-STORE SCP port; 0 = off. */
  readonly dimsePort: number;
  readonly aeTitle: string;
  /** Calling AE titles allowed to associate; empty = any. */
  readonly allowedCallingAes: readonly string[];
  /** Model run on every DICOM arrival ('' = off). */
  readonly autoPredictModel: string;
  readonly resultDestination: DicomDestination | null;
  /** API key for the deployment call when auth is on ('' = the STOW caller's). */
  readonly autoPredictKey: string;
  /** Tries per auto-predict job, and the first retry's delay (doubled after each try). */
  readonly autoPredictAttempts: number;
  readonly autoPredictBackoffMs: number;
}

/**
 * `AE@host:port` (C-STORE) or an http(s) URL (STOW-RS; `/studies` is appended unless present).
 * @throws ConfigError naming XRAY_DICOM_RESULT_DESTINATION.
 */
export function parseDicomDestination(value: string): DicomDestination | null {
  const v = value.trim();
  if (!v) return null;
  if (/^https?:\/\//i.test(v)) {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw new ConfigError(`XRAY_DICOM_RESULT_DESTINATION: '${v}' is not a valid URL`);
    }
    const base = url.toString().replace(/\/+$/, '');
    return Object.freeze({ kind: 'stow', url: /\/studies$/.test(url.pathname.replace(/\/+$/, '')) ? base : `${base}/studies` });
  }
  const m = /^([A-Za-z0-9 _.-]{1,16})@([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(`XRAY_DICOM_RESULT_DESTINATION: '${v}' is neither an http(s) STOW-RS URL nor AE@host:port`);
  }
  return Object.freeze({ kind: 'c-store', aeTitle: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port });
}

export function dicomNetworkSettings(raw: RawConfig): DicomNetworkSettings {
  const destination = parseDicomDestination(raw.XRAY_DICOM_RESULT_DESTINATION);
  if (raw.XRAY_DICOM_AUTOPREDICT_MODEL && !destination) {
    throw new ConfigError('XRAY_DICOM_AUTOPREDICT_MODEL needs XRAY_DICOM_RESULT_DESTINATION (a STOW-RS URL or AE@host:port) to send results to');
  }
  return Object.freeze({
    dimsePort: raw.XRAY_DIMSE_PORT,
    aeTitle: raw.XRAY_DIMSE_AE_TITLE.trim(),
    allowedCallingAes: Object.freeze(raw.XRAY_DIMSE_ALLOWED_AES.split(',').map((s) => s.trim()).filter(Boolean)),
    autoPredictModel: raw.XRAY_DICOM_AUTOPREDICT_MODEL,
    resultDestination: destination,
    autoPredictKey: raw.XRAY_DICOM_AUTOPREDICT_KEY,
    autoPredictAttempts: raw.XRAY_DICOM_AUTOPREDICT_ATTEMPTS,
    autoPredictBackoffMs: raw.XRAY_DICOM_AUTOPREDICT_BACKOFF_MS,
  });
}
