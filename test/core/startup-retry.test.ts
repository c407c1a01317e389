import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { testConfig } from '../../src/core/config/index.js';
import { dropPostgresSchema } from '../../src/core/db/postgres.js';
import { openPlatform } from '../../src/core/platform.js';
import { isTransientConnectError, withStartupRetry } from '../../src/core/startup-retry.js';
import { engineGate, POSTGRES_URL, postgresReachable, REDIS_URL, tempHome, uniqueName } from '../helpers/engines.js';
import { freePort } from '../helpers/process.js';

/** A port that refuses connections until `open()`, then forwards to PostgreSQL (a database that comes up late). */
async function lateGate(): Promise<{ port: number; open(): Promise<void>; close(): Promise<void> }> {
  const port = await freePort();
  const target = new URL(POSTGRES_URL);
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  return {
    port,
    open: () =>
      new Promise((resolve) => {
        server = net.createServer((client) => {
          const upstream = net.connect(Number(target.port || 5432), target.hostname);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => {});
          }
          client.pipe(upstream).pipe(client);
        });
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    },
  };
}

describe('start-up: engines that are not up yet are retried', () => {
  test('connection errors are transient; other errors are not', () => {
    assert.equal(isTransientConnectError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true);
    assert.equal(isTransientConnectError(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })])), true);
    assert.equal(isTransientConnectError(new Error('password authentication failed for user "x"')), false);
  });

  test('gives up after XRAY_STARTUP_TIMEOUT_S with a message saying so', async () => {
    const started = Date.now();
    await assert.rejects(
      withStartupRetry('the database', async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), { timeoutMs: 800 }),
      /the database still unreachable after \d+ attempts/,
    );
    assert.ok(Date.now() - started < 3000);
  });

  test('PostgreSQL that starts listening 1.5 s after the platform starts: the platform waits and opens', async (t) => {
    if (!(await engineGate('PostgreSQL (start-up retry)', await postgresReachable()))) return t.skip('PostgreSQL unreachable');
    const gate = await lateGate();
    const home = tempHome();
    const schema = uniqueName('late');
    const url = new URL(POSTGRES_URL);
    url.hostname = '127.0.0.1';
    url.port = String(gate.port);
    const timer = setTimeout(() => void gate.open(), 1500);
    const started = Date.now();
    try {
      const platform = await openPlatform(testConfig(home.dir, { XRAY_DATABASE_URL: url.toString(), XRAY_QUEUE_URL: REDIS_URL, XRAY_REDIS_NAMESPACE: schema, XRAY_STARTUP_TIMEOUT_S: '30' }), { schema });
      assert.ok(Date.now() - started >= 1400, 'it waited for the database');
      assert.equal(await platform.database.ping(), true);
      await platform.close();
    } finally {
      clearTimeout(timer);
      await gate.close();
      await dropPostgresSchema(POSTGRES_URL, schema).catch(() => {});
      home.cleanup();
    }
  });
});
