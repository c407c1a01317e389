/**
 * DICOM C-STORE SCP (DIMSE, dcmjs-dimse) so modalities and PACS can push images; C-ECHO answered.
 * Listens on XRAY_HOST:XRAY_DIMSE_PORT under XRAY_DIMSE_AE_TITLE. The received data set is never
 * parsed on the event loop: its bytes are collected as they arrive (capped at XRAY_MAX_UPLOAD_MB),
 * wrapped in a Part 10 meta header built from the C-STORE command (SOP class/instance, accepted
 * transfer syntax), and handed to `ingestFile` — the same worker-pool parse, header rules,
 * de-identification, decode, quality gates and storage as POST /ingest. The C-STORE response
 * waits until the file and its audit record are stored.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { DataContext } from './context.js';
import { SERVICE_NAME } from './context.js';
import type { Arrival } from './dicomweb.js';
import { ingestFile, type IngestResult } from './ingest.js';

const { Scp, Dataset: DatasetClass } = dimse;
const { CEchoResponse: CEchoResponseClass, CStoreResponse: CStoreResponseClass } = dimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason, SopClass, TransferSyntax } = dimse.constants;

dimse.log.setLevel('silent');

type Association = InstanceType<typeof dimse.association.Association>;
type PresentationContext = InstanceType<typeof dimse.association.PresentationContext>;
type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type CEchoResponse = InstanceType<typeof dimse.responses.CEchoResponse>;
type CStoreResponse = InstanceType<typeof dimse.responses.CStoreResponse>;
type Dataset = InstanceType<typeof dimse.Dataset>;

/** Transfer syntaxes the image decoder reads (see src/core/imaging/decode.ts), in our order of preference. */
const ACCEPTED_SYNTAXES = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.DeflatedExplicitVRLittleEndian,
  TransferSyntax.ExplicitVRBigEndian,
  TransferSyntax.RleLossless,
  TransferSyntax.JpegBaseline,
  '1.2.840.10008.1.2.4.51',
  '1.2.840.10008.1.2.4.57',
  TransferSyntax.JpegLossless,
  TransferSyntax.JpegLsLossless,
  TransferSyntax.JpegLsLossy,
  TransferSyntax.Jpeg2000Lossless,
  TransferSyntax.Jpeg2000Lossy,
  '1.2.840.10008.1.2.4.201',
  '1.2.840.10008.1.2.4.202',
  '1.2.840.10008.1.2.4.203',
];

/** Storage SOP classes (PS3.4 B.5) are accepted; non-image ones are then refused per instance by ingest's rules. */
const STORAGE_PREFIX = '1.2.840.10008.5.1.4.1.1.';
const IMPLEMENTATION_CLASS_UID = '2.25.163387279374962347542713939145386540547';

export interface DimseScpOptions {
  host: string;
  port: number;
  aeTitle: string;
  /** Calling AE titles allowed; empty = any. */
  allowedCallingAes: readonly string[];
  /** Called with each stored instance (auto-predict). */
  onArrival?: (arrival: Arrival, callingAe: string) => void;
  /** Keep the sender's patient/study context in memory for onArrival (auto-predict round trip). */
  keepOriginal?: boolean;
}

export interface DimseScp {
  readonly port: number;
  close(): Promise<void>;
}

/** A DICOM element in explicit VR little endian (meta header only: short VRs, even length). */
function metaElement(element: number, vr: 'UI' | 'SH' | 'AE' | 'OB' | 'UL', value: Buffer): Buffer {
  let v = value;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const long = vr === 'OB';
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(v.length, 8);
  else head.writeUInt16LE(v.length, 6);
  return Buffer.concat([head, v]);
}

/** Preamble, DICM and a File Meta Information group for a data set received over the network. */
export function partTenHeader(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string, sourceAe: string): Buffer {
  const body = Buffer.concat([
    metaElement(0x0001, 'OB', Buffer.from([0, 1])),
    metaElement(0x0002, 'UI', Buffer.from(sopClassUid, 'latin1')),
    metaElement(0x0003, 'UI', Buffer.from(sopInstanceUid, 'latin1')),
    metaElement(0x0010, 'UI', Buffer.from(transferSyntaxUid, 'latin1')),
    metaElement(0x0012, 'UI', Buffer.from(IMPLEMENTATION_CLASS_UID, 'latin1')),
    metaElement(0x0013, 'SH', Buffer.from('XRAY_MLOPS', 'latin1')),
    metaElement(0x0016, 'AE', Buffer.from(sourceAe.slice(0, 16), 'latin1')),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), metaElement(0x0000, 'UL', length), body]);
}

/** Collects the data set bytes of one C-STORE; past `limit` it keeps counting but drops them. */
class CappedCollector extends Writable {
  readonly chunks: Buffer[] = [];
  size = 0;
  readonly limit: number;
  constructor(limit: number) {
    super();
    this.limit = limit;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.size += chunk.length;
    if (this.size <= this.limit) this.chunks.push(Buffer.from(chunk));
    else this.chunks.length = 0;
    cb();
  }
  get overflow(): boolean {
    return this.size > this.limit;
  }
}

/** Raw received bytes, by the placeholder Dataset handed to cStoreRequest (never parsed here). */
const received = new WeakMap<object, { collector: CappedCollector; transferSyntaxUid: string }>();

/** C-STORE status for an ingest refusal (PS3.4 B.2.3). */
function storeStatus(result: IngestResult): { status: number; comment: string } {
  const code = result.error?.code;
  const message = (result.error?.message ?? 'refused').replace(/[^\x20-\x7e]/g, ' ').slice(0, 64);
  if (code === 'PAYLOAD_TOO_LARGE' || code === 'QUEUE_FULL' || code === 'SERVICE_UNAVAILABLE') return { status: 0xa700, comment: message };
  if (code === 'UNPROCESSABLE' || code === 'INVALID_INPUT' || code === 'UNSUPPORTED_MEDIA_TYPE') return { status: 0xc000, comment: message };
  return { status: Status.ProcessingFailure, comment: message };
}

/**
 * Starts the SCP. Resolves once listening (port 0 picks a free port).
 * @throws Error when the port cannot be bound.
 */
export async function startDimseScp(ctx: DataContext, opts: DimseScpOptions): Promise<DimseScp> {
  const maxBytes = ctx.platform.config.maxUploadBytes;
  const calledAe = opts.aeTitle.trim();
  const allowed = new Set(opts.allowedCallingAes.map((a) => a.trim()));
  const logger = ctx.platform.logger.child({ service: SERVICE_NAME, component: 'dimse-scp' });

  class XrayScp extends Scp {
    #association: Association | undefined;

    override associationRequested(association: Association): void {
      this.#association = association;
      const calling = association.getCallingAeTitle().trim();
      if (association.getCalledAeTitle().trim() !== calledAe) {
        this.#audit(calling, 'dicom.associate', 'denied', { reason: 'called AE title not recognised' });
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
        return;
      }
      if (allowed.size && !allowed.has(calling)) {
        this.#audit(calling, 'dicom.associate', 'denied', { reason: 'calling AE title not allowed (XRAY_DIMSE_ALLOWED_AES)' });
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
        return;
      }
      for (const c of association.getPresentationContexts()) {
        const context = association.getPresentationContext(c.id);
        const abstract = context.getAbstractSyntaxUid();
        if (abstract !== SopClass.Verification && !abstract.startsWith(STORAGE_PREFIX)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const proposed = context.getTransferSyntaxUids();
        const pick = ACCEPTED_SYNTAXES.find((ts) => proposed.includes(ts));
        if (pick) context.setResult(PresentationContextResult.Accept, pick);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      this.sendAssociationAccept();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
      const response = CEchoResponseClass.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    override createStoreWritableStream(_context: PresentationContext, _request: CStoreRequest): Writable {
      return new CappedCollector(maxBytes);
    }

    override createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: Dataset) => void): void {
      // A placeholder: dcmjs-dimse would parse the data set here, on the event loop. The bytes
      // go to the image worker pool instead (cStoreRequest).
      const transferSyntaxUid = context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVRLittleEndian;
      const placeholder = new DatasetClass({}, transferSyntaxUid);
      received.set(placeholder, { collector: writable as CappedCollector, transferSyntaxUid });
      callback(placeholder);
    }

    override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
      const calling = this.#association?.getCallingAeTitle().trim() ?? '?';
      void this.#store(request, calling).then(
        ({ status, comment }) => {
          const response = CStoreResponseClass.fromRequest(request);
          response.setStatus(status);
          if (comment) response.setErrorComment(comment);
          callback(response);
        },
        (err: unknown) => {
          logger.error({ err }, 'C-STORE handling failed');
          const response = CStoreResponseClass.fromRequest(request);
          response.setStatus(Status.ProcessingFailure);
          callback(response);
        },
      );
    }

    async #store(request: CStoreRequest, calling: string): Promise<{ status: number; comment: string }> {
      const dataset = request.getDataset();
      const raw = dataset ? received.get(dataset) : undefined;
      const actor = `dimse:${calling}`;
      const mark = ctx.platform.durability.mark();
      let result: IngestResult;
      let dicom: Arrival['dicom'] = null;
      if (!raw) {
        result = { file: 'c-store', status: 'rejected', error: { code: 'INVALID_INPUT', message: 'no data set in the C-STORE request' } };
      } else if (raw.collector.overflow) {
        result = { file: 'c-store', status: 'rejected', error: { code: 'PAYLOAD_TOO_LARGE', message: `data set above the ${maxBytes}-byte limit (XRAY_MAX_UPLOAD_MB)` } };
      } else {
        const header = partTenHeader(request.getAffectedSopClassUid(), request.getAffectedSopInstanceUid(), raw.transferSyntaxUid, calling);
        const bytes = Buffer.concat([header, ...raw.collector.chunks]);
        raw.collector.chunks.length = 0;
        result = await ingestFile(ctx, {
          bytes,
          fileName: 'c-store.dcm',
          label: 'unlabelled',
          actor,
          audit: {},
          keepOriginal: opts.keepOriginal === true,
          onDicom: (d) => {
            dicom = d;
          },
        });
      }
      if (!raw || raw.collector.overflow) {
        ctx.platform.audit.record({ actor, action: 'data.ingest', resource: 'c-store', outcome: 'failure', requestId: null, service: SERVICE_NAME, details: { status: 'rejected', error: result.error?.code, channel: 'c-store' } });
      }
      // The response confirms storage only once the audit record is stored too.
      await ctx.platform.durability.settle(mark);
      if (result.status === 'rejected') return storeStatus(result);
      opts.onArrival?.({ result, dicom }, calling);
      return { status: Status.Success, comment: '' };
    }

    #audit(calling: string, action: string, outcome: 'denied' | 'success', details: Record<string, unknown>): void {
      ctx.platform.audit.record({ actor: `dimse:${calling}`, action, resource: `dimse:${calledAe}`, outcome, requestId: null, service: SERVICE_NAME, details });
    }
  }

  const server = net.createServer((socket) => {
    const scp = new XrayScp(socket, { associationTimeout: 30_000, pduTimeout: 60_000 });
    (scp as unknown as { connected: boolean }).connected = true;
    scp.on('networkError', (e: Error) => {
      logger.debug({ err: e.message }, 'DIMSE connection error');
      socket.destroy();
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  logger.info({ port, aeTitle: calledAe }, 'DICOM C-STORE SCP listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Associations in progress get a moment to finish their current store, then go.
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 2000).unref();
      }),
  };
}
