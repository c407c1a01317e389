import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TrainingService } from '../service/training-service.js';
import { eventView } from '../service/views.js';

/** Whether the client asked for a server-sent event stream. */
export function wantsEventStream(req: FastifyRequest): boolean {
  return String(req.headers.accept ?? '').includes('text/event-stream');
}

/**
 * Streams a job's or study's events as server-sent events: `id: <seq>`, `event: <name>`,
 * `data: <json>`; resumes after Last-Event-ID (or `after`); a comment every 15 s keeps proxies
 * from closing the connection; ends with `event: end` once the owner is final.
 */
export async function streamEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  service: TrainingService,
  ownerId: string,
  after: number,
  finalState: () => Promise<string | null>,
): Promise<void> {
  const lastId = Number(req.headers['last-event-id']);
  let cursor = Number.isInteger(lastId) && lastId >= 0 ? lastId : after;
  const abort = new AbortController();
  reply.raw.once('close', () => abort.abort());
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': req.id,
  });
  res.write(': connected\n\n');
  try {
    while (!abort.signal.aborted) {
      const { events, done } = await service.waitForEvents(ownerId, cursor, 15_000, abort.signal);
      for (const e of events) {
        res.write(`id: ${e.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(eventView(e))}\n\n`);
        cursor = e.seq;
      }
      if (done || service.closed) {
        res.write(`event: end\ndata: ${JSON.stringify({ state: await finalState() })}\n\n`);
        break;
      }
      if (events.length === 0) res.write(': keep-alive\n\n');
    }
  } catch (err) {
    req.log.warn({ err }, 'training event stream failed');
  } finally {
    res.end();
  }
}
