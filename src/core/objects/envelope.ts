import { createCipheriv, createDecipheriv, createHash, randomBytes, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppError } from '../errors.js';

/**
 * Envelope encryption of stored objects (AES-256-GCM). Each object gets its own random data key;
 * the data key is wrapped (AES-256-GCM) by a master key from a secret file and stored, with the
 * master key's id, in the object's header:
 *
 *   magic "XRAYENC1" (8) | key id (16, hex ascii) | wrap iv (12) | wrapped data key (32) | wrap tag (16) | data iv (12) | ciphertext | data tag (16)
 *
 * The data is authenticated together with its iv and its object key (a file moved to another key
 * does not decrypt); the wrapped data key by its own tag. Rotating the master key rewrites only the
 * wrapped data key.
 */
export const MAGIC = Buffer.from('XRAYENC1', 'ascii');
const KID_LEN = 16;
const IV_LEN = 12;
const TAG_LEN = 16;
const DEK_LEN = 32;
export const HEADER_LEN = MAGIC.length + KID_LEN + IV_LEN + DEK_LEN + TAG_LEN + IV_LEN; // 96
/** Bytes an encrypted object takes beyond its plaintext. */
export const OVERHEAD = HEADER_LEN + TAG_LEN;

export interface MasterKey {
  /** 16 hex characters derived from the key (not secret). */
  id: string;
  key: Buffer;
}

/** Key id of a master key: the first 8 bytes of a domain-separated sha256, hex. */
export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('xray-object-master-key\0').update(key).digest('hex').slice(0, KID_LEN);
}

/**
 * The master keys: the first is current (wraps new data keys and `reencrypt` targets), the others
 * only unwrap objects written before a rotation.
 */
export class ObjectKeyring {
  readonly current: MasterKey;
  readonly #byId: Map<string, MasterKey>;

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new AppError('INVALID_INPUT', 'an object keyring needs at least one master key');
    const masters = keys.map((key) => {
      if (key.length !== 32) throw new AppError('INVALID_INPUT', `object master keys are 32 bytes (got ${key.length})`);
      return { id: masterKeyId(key), key };
    });
    this.current = masters[0]!;
    this.#byId = new Map(masters.map((m) => [m.id, m]));
  }

  /**
   * Reads a key file: one master key per line, base64 or hex of 32 random bytes
   * (`openssl rand -base64 32`); the first line is current, later lines are older keys kept for
   * reading; blank lines and `#` comments are ignored.
   */
  static fromFile(file: string): ObjectKeyring {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new AppError('INVALID_INPUT', `XRAY_OBJECT_KEY_FILE: cannot read '${file}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const keys = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((line, i) => {
        const key = /^[0-9a-fA-F]{64}$/.test(line) ? Buffer.from(line, 'hex') : Buffer.from(line, 'base64');
        if (key.length !== 32) throw new AppError('INVALID_INPUT', `XRAY_OBJECT_KEY_FILE: key ${i + 1} is not 32 bytes of base64 or hex (make one with: openssl rand -base64 32)`);
        return key;
      });
    if (keys.length === 0) throw new AppError('INVALID_INPUT', `XRAY_OBJECT_KEY_FILE: '${file}' holds no key`);
    return new ObjectKeyring(keys);
  }

  get(id: string): MasterKey | undefined {
    return this.#byId.get(id);
  }
}

/** true when the bytes start like an encrypted object. */
export function isEncrypted(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

function wrapAad(kid: string): Buffer {
  return Buffer.from(`xray-dek\0${kid}`, 'utf8');
}

/** The data is bound to its format, iv and object key — not to the wrapped key, so a rotation can re-wrap it. */
function dataAad(header: Buffer, objectKey: string): Buffer {
  return Buffer.concat([MAGIC, header.subarray(HEADER_LEN - IV_LEN, HEADER_LEN), Buffer.from(`\0${objectKey}`, 'utf8')]);
}

/** A header with a fresh data key wrapped by `master`; returns the header and the data key. */
function newHeader(master: MasterKey, dek: Buffer = randomBytes(DEK_LEN)): { header: Buffer; dek: Buffer } {
  const wrapIv = randomBytes(IV_LEN);
  const wrap = createCipheriv('aes-256-gcm', master.key, wrapIv);
  wrap.setAAD(wrapAad(master.id));
  const wrapped = Buffer.concat([wrap.update(dek), wrap.final()]);
  const header = Buffer.concat([MAGIC, Buffer.from(master.id, 'ascii'), wrapIv, wrapped, wrap.getAuthTag(), randomBytes(IV_LEN)]);
  return { header, dek };
}

/** Unwraps the data key of a header with the keyring; typed errors for an unknown key or a damaged header. */
export function openHeader(keyring: ObjectKeyring, header: Buffer, objectKey: string): { dek: Buffer; kid: string; iv: Buffer } {
  if (header.length < HEADER_LEN || !isEncrypted(header)) throw new AppError('UNPROCESSABLE', `object '${objectKey}' is not an encrypted object (damaged header)`);
  let o = MAGIC.length;
  const kid = header.subarray(o, (o += KID_LEN)).toString('ascii');
  const wrapIv = header.subarray(o, (o += IV_LEN));
  const wrapped = header.subarray(o, (o += DEK_LEN));
  const wrapTag = header.subarray(o, (o += TAG_LEN));
  const iv = header.subarray(o, (o += IV_LEN));
  const master = keyring.get(kid);
  if (!master) throw new AppError('UNPROCESSABLE', `object '${objectKey}' is encrypted with master key ${kid}, which XRAY_OBJECT_KEY_FILE does not hold`);
  try {
    const unwrap = createDecipheriv('aes-256-gcm', master.key, wrapIv);
    unwrap.setAAD(wrapAad(kid));
    unwrap.setAuthTag(wrapTag);
    return { dek: Buffer.concat([unwrap.update(wrapped), unwrap.final()]), kid, iv };
  } catch {
    throw new AppError('UNPROCESSABLE', `object '${objectKey}': its data key does not unwrap with master key ${kid} (damaged)`);
  }
}

/** A cipher for a new object under the keyring's current master key: write `header`, then the cipher's output, then its tag. */
export function encryptor(keyring: ObjectKeyring, objectKey: string): { header: Buffer; cipher: CipherGCM } {
  const { header, dek } = newHeader(keyring.current);
  const cipher = createCipheriv('aes-256-gcm', dek, header.subarray(HEADER_LEN - IV_LEN));
  cipher.setAAD(dataAad(header, objectKey));
  return { header, cipher };
}

/** A decipher for an object whose header and tag are known. */
export function decryptor(keyring: ObjectKeyring, header: Buffer, tag: Buffer, objectKey: string): DecipherGCM {
  const { dek, iv } = openHeader(keyring, header, objectKey);
  const decipher = createDecipheriv('aes-256-gcm', dek, iv);
  decipher.setAAD(dataAad(header, objectKey));
  decipher.setAuthTag(tag);
  return decipher;
}

/** Encrypts a whole object. */
export function encryptBuffer(keyring: ObjectKeyring, objectKey: string, data: Buffer): Buffer {
  const { header, cipher } = encryptor(keyring, objectKey);
  return Buffer.concat([header, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
}

/** Decrypts and authenticates a whole object; UNPROCESSABLE when it was altered. */
export function decryptBuffer(keyring: ObjectKeyring, objectKey: string, stored: Buffer): Buffer {
  if (stored.length < OVERHEAD) throw new AppError('UNPROCESSABLE', `object '${objectKey}' is truncated`);
  const header = stored.subarray(0, HEADER_LEN);
  const tag = stored.subarray(stored.length - TAG_LEN);
  const decipher = decryptor(keyring, header, tag, objectKey);
  try {
    return Buffer.concat([decipher.update(stored.subarray(HEADER_LEN, stored.length - TAG_LEN)), decipher.final()]);
  } catch {
    throw new AppError('UNPROCESSABLE', `object '${objectKey}' failed authentication: it was altered or damaged`);
  }
}

/**
 * The same data key under the keyring's current master key: a new header for an existing object
 * (rotation rewrites only this; the ciphertext and its tag stay). The data iv is kept.
 */
export function rewrapHeader(keyring: ObjectKeyring, header: Buffer, objectKey: string): Buffer {
  const { dek, iv } = openHeader(keyring, header, objectKey);
  const fresh = newHeader(keyring.current, dek).header;
  return Buffer.concat([fresh.subarray(0, HEADER_LEN - IV_LEN), iv]);
}

export const TAG_LENGTH = TAG_LEN;
