/**
 * Minimal typings for the parts of `dcmjs` (which ships none) used by src/core/imaging.
 * Only what this folder calls is declared; extend it when you use more.
 */
declare module 'dcmjs' {
  /** One element of a denaturalised dataset, keyed by 8-hex-digit tag (`'00100010'`). */
  export interface DcmjsElement {
    vr: string;
    Value?: unknown[];
    _rawValue?: unknown;
    [key: string]: unknown;
  }

  /** A denaturalised dataset: tag → element. */
  export type DcmjsDataset = Record<string, DcmjsElement>;

  export interface DcmjsReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  export interface DcmjsWriteOptions {
    allowInvalidVRLength?: boolean;
    fragmentMultiframe?: boolean;
  }

  export class DicomDict {
    constructor(meta: DcmjsDataset);
    meta: DcmjsDataset;
    dict: DcmjsDataset;
    write(options?: DcmjsWriteOptions): ArrayBuffer;
  }

  export interface DicomMessageStatic {
    readFile(buffer: ArrayBuffer, options?: DcmjsReadOptions): DicomDict;
  }

  export interface DictionaryEntry {
    tag: string;
    vr: string;
    name: string;
    vm: string;
    version: string;
  }

  export interface DicomMetaDictionaryStatic {
    naturalizeDataset(dataset: DcmjsDataset): Record<string, unknown>;
    denaturalizeDataset(dataset: Record<string, unknown>): DcmjsDataset;
    punctuateTag(rawTag: string): string;
    unpunctuateTag(tag: string): string;
    /** Keyed by punctuated tag, e.g. `'(0010,0010)'`. */
    dictionary: Record<string, DictionaryEntry>;
    /** Keyed by keyword, e.g. `'PatientName'`. */
    nameMap: Record<string, DictionaryEntry>;
  }

  export interface DcmjsLogger {
    getLevel(): number;
    setLevel(level: number | 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent', persist?: boolean): void;
    getLogger(name: string): DcmjsLogger;
  }

  export const data: {
    DicomDict: typeof DicomDict;
    DicomMessage: DicomMessageStatic;
    DicomMetaDictionary: DicomMetaDictionaryStatic;
  };

  export const log: DcmjsLogger;

  /** dcmjs's anonymiser: the keywords of its PS3.15 list. */
  export const anonymizer: { getTagsNameToEmpty(): string[] };
  const dcmjs: { data: typeof data; log: DcmjsLogger; anonymizer: typeof anonymizer };
  export default dcmjs;
}
