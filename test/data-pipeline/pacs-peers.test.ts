/**
 * PACS connectivity against real peers, started here: Orthanc (+ its DICOMweb plugin) pushes
 * studies to the data pipeline over STOW-RS and over C-STORE and receives the auto-predict SR and
 * heatmap Secondary Capture back; dcmtk echoscu/storescu talk to the C-STORE SCP; dicom3tools'
 * dciodvfy validates what came back. Skips loudly when a tool is missing
 * (`node scripts/setup.mjs --test` installs orthanc, orthanc-dicomweb, dcmtk, dicom3tools).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { renderChestXray } from '../../src/core/imaging/synthetic.js';
import { loadModel, startDeployment, type Harness } from '../deployment/helpers.js';
import { testConfig } from '../../src/core/config/index.js';
import { openPlatform, type Platform } from '../../src/core/platform.js';
import { buildDataPipelineApp } from '../../src/data-pipeline/app.js';
import { provideLocalClients } from '../helpers/service-harness.js';
import { anyFileContains, openPipeline, storedImageObjects, type Pipeline } from './helpers.js';
import { chestDicom, freePort, missing, uidsOf, waitFor } from './pacs-helpers.js';
import sharp from 'sharp';

const TOOLS = ['Orthanc', 'echoscu', 'storescu', 'img2dcm', 'dciodvfy'];
const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';
const skip = missing(TOOLS) || (spawnSync('test', ['-f', DICOMWEB_PLUGIN]).status !== 0 ? `SKIPPING: ${DICOMWEB_PLUGIN} missing (Debian orthanc-dicomweb)` : false);
if (skip) console.warn(skip);
// CI installs the peers (scripts/setup.mjs --test): there a missing tool is a failure, not a skip.
const ciMissing = skip && process.env.CI === 'true' ? skip : false;

const AET = 'XRAY_MLOPS';
const SR_CLASS = '1.2.840.10008.5.1.4.1.1.88.22';
const SC_CLASS = '1.2.840.10008.5.1.4.1.1.7';

class Orthanc {
  proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(tmpdir(), 'xray-orthanc-'));
  constructor(
    readonly httpPort: number,
    readonly dicomPort: number,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }
  async start(platformScpPort: number, platformHttp: string): Promise<void> {
    const config = {
      Name: 'xray-test-orthanc',
      StorageDirectory: path.join(this.dir, 'storage'),
      IndexDirectory: path.join(this.dir, 'index'),
      HttpPort: this.httpPort,
      DicomPort: this.dicomPort,
      DicomAet: 'ORTHANC',
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      HttpBindAddress: '127.0.0.1',
      DicomCheckCalledAet: false,
      DicomAlwaysAllowStore: true,
      StableAge: 1,
      Plugins: [DICOMWEB_PLUGIN],
      DicomModalities: { xray: [AET, '127.0.0.1', platformScpPort] },
      DicomWeb: { Enable: true, Root: '/dicom-web/', Servers: { xray: { Url: `${platformHttp}/dicomweb/` } } },
    };
    const file = path.join(this.dir, 'orthanc.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    this.proc = spawn('Orthanc', [file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
    await waitFor(
      'Orthanc to answer',
      async () => {
        if (this.proc!.exitCode !== null) throw new Error(`Orthanc exited ${this.proc!.exitCode}: ${stderr}`);
        return fetch(`${this.url}/system`).then((r) => r.ok).catch(() => false);
      },
      60_000,
    );
  }
  async rest<T = any>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${p}`, {
      method,
      ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Orthanc ${method} ${p}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }
  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc!.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs a tool without blocking the event loop (the SCP under test answers in this process). */
function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** dciodvfy's complaints: lines starting with Error (warnings are allowed). */
function dciodvfyErrors(bytes: Uint8Array, dir: string, name: string): string[] {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^Error/.test(l));
}

/** Logs of a pipeline, captured to check that no identifier is ever logged. */
function captureLogs(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _e, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream) as unknown as Logger, text: () => lines.join('') };
}

if (ciMissing) {
  test('PACS peers are installed in CI', () => assert.fail(ciMissing));
}

describe('PACS peers: Orthanc, dcmtk, dicom3tools', { skip }, () => {
  let deployment: Harness;
  let deploymentUrl: string;
  let orthanc: Orthanc;
  const work = mkdtempSync(path.join(tmpdir(), 'xray-pacs-'));

  before(async () => {
    deployment = await startDeployment();
    await loadModel(deployment.app, { name: 'pacs-model', version: '1' });
    await deployment.app.listen({ port: 0, host: '127.0.0.1' });
    deploymentUrl = `http://127.0.0.1:${(deployment.app.server.address() as { port: number }).port}`;
    orthanc = new Orthanc(await freePort(), await freePort());
  });
  after(async () => {
    await orthanc?.stop();
    await deployment?.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** A pipeline listening on HTTP and DIMSE, auto-predicting to `destination`. */
  async function pipeline(destination: string, logs = captureLogs(), env: Record<string, string> = {}): Promise<{ p: Pipeline; http: string; scpPort: number; logs: ReturnType<typeof captureLogs> }> {
    const scpPort = await freePort();
    const p = await openPipeline(
      {
        XRAY_DIMSE_PORT: String(scpPort),
        XRAY_DICOM_AUTOPREDICT_MODEL: 'pacs-model',
        XRAY_DICOM_RESULT_DESTINATION: destination,
        XRAY_SERVICE_URLS: `deployment=${deploymentUrl}`,
        XRAY_DECODE_THREADS: '1',
        ...env,
      },
      { logger: logs.logger },
    );
    await p.app.listen({ port: 0, host: '127.0.0.1' });
    return { p, http: `http://127.0.0.1:${(p.app.server.address() as { port: number }).port}`, scpPort, logs };
  }

  /** The instances Orthanc holds in a study, with their SOP class and main tags. */
  async function orthancInstances(studyId: string): Promise<{ id: string; sopClass: string; tags: Record<string, string> }[]> {
    const list = await orthanc.rest<{ ID: string }[]>('GET', `/studies/${studyId}/instances`);
    return Promise.all(
      list.map(async (i) => {
        const tags = await orthanc.rest<Record<string, string>>('GET', `/instances/${i.ID}/simplified-tags`);
        return { id: i.ID, sopClass: tags.SOPClassUID!, tags };
      }),
    );
  }

  async function checkResults(studyId: string, sourceSop: string, patientName: string): Promise<void> {
    const all = await waitFor('the SR and SC to reach Orthanc', async () => {
      const list = await orthancInstances(studyId);
      return list.length >= 3 ? list : null;
    }, 60_000);
    const sr = all.find((i) => i.sopClass === SR_CLASS);
    const sc = all.find((i) => i.sopClass === SC_CLASS && i.tags.SOPInstanceUID !== sourceSop);
    assert.ok(sr, `no Enhanced SR in ${JSON.stringify(all.map((i) => i.sopClass))}`);
    assert.ok(sc, 'no heatmap Secondary Capture');
    for (const [obj, name] of [
      [sr!, 'sr.dcm'],
      [sc!, 'sc.dcm'],
    ] as const) {
      const bytes = Buffer.from(await (await fetch(`${orthanc.url}/instances/${obj.id}/file`)).arrayBuffer());
      assert.deepEqual(dciodvfyErrors(bytes, work, name), [], `dciodvfy errors in the ${name}`);
      // Back in the sender's study, with the sender's patient (kept in memory for the round trip only).
      assert.equal(obj.tags.PatientName, patientName);
    }
    const srBytes = Buffer.from(await (await fetch(`${orthanc.url}/instances/${sr!.id}/file`)).arrayBuffer());
    const text = srBytes.toString('latin1');
    assert.match(text, /NOT FOR PRIMARY DIAGNOSIS/);
    assert.match(text, /pacs-model/);
    assert.ok(srBytes.includes(Buffer.from(sourceSop)), 'the SR references the source image');
    const content = await orthanc.rest<any>('GET', `/instances/${sr!.id}/tags?simplify`);
    const items = content.ContentSequence as any[];
    const prob = items.find((i) => i.ConceptNameCodeSequence?.[0]?.CodeMeaning === 'Probability of pneumonia');
    const p = Number(prob.MeasuredValueSequence[0].NumericValue);
    assert.ok(p >= 0 && p <= 1, `probability ${p}`);
    const finding = items.find((i) => i.ConceptNameCodeSequence?.[0]?.CodeMeaning === 'Finding');
    const threshold = Number(items.find((i) => i.ConceptNameCodeSequence?.[0]?.CodeMeaning === 'Decision threshold').MeasuredValueSequence[0].NumericValue);
    assert.equal(finding.ConceptCodeSequence[0].CodeMeaning, p >= threshold ? 'Pneumonia' : 'Normal');
  }

  function assertNothingIdentifying(p: Pipeline, logs: string, needles: string[]): void {
    for (const needle of needles) {
      assert.equal(anyFileContains(p.home, needle), null, `'${needle}' stored under XRAY_HOME`);
      assert.ok(!logs.includes(needle), `'${needle}' logged`);
    }
  }

  test('Orthanc pushes a study over STOW-RS; the SR + heatmap SC come back over STOW-RS and validate', async () => {
    const { p, http, scpPort, logs } = await pipeline(`${'http://127.0.0.1'}:${orthanc.httpPort}/dicom-web`);
    try {
      await orthanc.start(scpPort, http);
      // The study: a synthetic radiograph, JPEG, wrapped by dcmtk's img2dcm.
      const jpg = path.join(work, 'chest.jpg');
      const img = renderChestXray({ seed: 'orthanc-stow', size: 256 });
      writeFileSync(jpg, await sharp(Buffer.from(img.pixels), { raw: { width: img.width, height: img.height, channels: 1 } }).jpeg({ quality: 92 }).toBuffer());
      const dcm = path.join(work, 'chest.dcm');
      const name = 'STOWRIGHT^OTTO';
      const made = spawnSync('img2dcm', ['-i', 'JPEG', jpg, dcm, '-k', `PatientName=${name}`, '-k', 'PatientID=MRN-ORTH-77', '-k', 'Modality=CR', '-k', 'AccessionNumber=ACC-77'], { encoding: 'utf8' });
      assert.equal(made.status, 0, made.stderr);
      const source = readFileSync(dcm);
      const sent = uidsOf(source);
      const up = await orthanc.rest<{ ParentStudy: string }>('POST', '/instances', source);
      const t0 = Date.now();
      await orthanc.rest('POST', '/dicom-web/servers/xray/stow', { Resources: [up.ParentStudy], Synchronous: true });
      const stowMs = Date.now() - t0;
      assert.equal(storedImageObjects(p.home).length, 1, 'the pushed image is stored');
      const qido = await p.app.inject({ method: 'GET', url: '/dicomweb/studies' });
      assert.equal(qido.json().length, 1);
      const t1 = Date.now();
      await checkResults(up.ParentStudy, sent.sop, name);
      console.log(`# STOW-RS push ${stowMs} ms; SR+SC back in Orthanc after ${Date.now() - t1} ms more`);
      await p.platform.audit.flush();
      const audit = await p.platform.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'dicom.autopredict').execute();
      assert.equal(audit.length, 1);
      assert.equal((audit[0] as any).outcome, 'success');
      const details = JSON.stringify(audit[0]);
      assertNothingIdentifying(p, logs.text() + details, [name, 'MRN-ORTH-77', 'ACC-77', sent.study, sent.sop]);
    } finally {
      await p.close();
    }
  });

  test('Orthanc pushes a study over C-STORE; results come back by C-STORE; dcmtk echoscu/storescu talk to the SCP', async () => {
    const { p, scpPort, logs } = await pipeline(`ORTHANC@127.0.0.1:${orthanc.dicomPort}`);
    try {
      await orthanc.rest('PUT', '/modalities/xray', { AET, Host: '127.0.0.1', Port: scpPort });
      const echo = await orthanc.rest<Record<string, unknown>>('POST', '/modalities/xray/echo', {});
      assert.ok(echo !== undefined);
      const name = 'STORER^CLARA';
      const source = chestDicom('orthanc-cstore', { patientName: name, patientId: 'MRN-CS-88' });
      const sent = uidsOf(source);
      const up = await orthanc.rest<{ ParentStudy: string }>('POST', '/instances', source);
      const t0 = Date.now();
      const store = await orthanc.rest<{ FailedInstancesCount?: number; InstancesCount?: number }>('POST', '/modalities/xray/store', { Resources: [up.ParentStudy], Synchronous: true });
      const storeMs = Date.now() - t0;
      assert.equal(Number(store.FailedInstancesCount ?? 0), 0, JSON.stringify(store));
      assert.equal(storedImageObjects(p.home).length, 1);
      await checkResults(up.ParentStudy, sent.sop, name);
      console.log(`# C-STORE push ${storeMs} ms`);

      // dcmtk against the SCP: C-ECHO, a wrong called AE, a good and a broken C-STORE.
      const echoOk = await run('echoscu', ['-aec', AET, '127.0.0.1', String(scpPort)]);
      assert.equal(echoOk.status, 0, echoOk.stderr);
      const echoBad = await run('echoscu', ['-aec', 'NOT_ME', '127.0.0.1', String(scpPort)]);
      assert.notEqual(echoBad.status, 0, 'an association to another AE title is rejected');
      const file = path.join(work, 'dcmtk.dcm');
      writeFileSync(file, chestDicom('dcmtk-storescu', { patientName: name }));
      const stored = await run('storescu', ['-v', '-aec', AET, '127.0.0.1', String(scpPort), file]);
      assert.equal(stored.status, 0, stored.stderr);
      assert.match(stored.stderr + stored.stdout, /Received Store Response \(Success\)/);
      assert.equal(storedImageObjects(p.home).length, 2);
      const broken = path.join(work, 'broken.dcm');
      const good = readFileSync(file);
      // Rows says 4096: the Pixel Data is far shorter than the header promises.
      const bad = Buffer.from(good);
      const rowsAt = bad.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]));
      assert.ok(rowsAt > 0);
      bad.writeUInt16LE(4096, rowsAt + 8);
      writeFileSync(broken, bad);
      const refused = await run('storescu', ['-v', '-aec', AET, '127.0.0.1', String(scpPort), broken]);
      assert.match(refused.stderr + refused.stdout, /Received Store Response \((Error|Failure)|Cannot understand|0xc000/i);
      assert.equal(storedImageObjects(p.home).length, 2, 'nothing stored for the broken file');
      const health = await p.app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200);
      await p.platform.audit.flush();
      const rows = await p.platform.database.db.selectFrom('audit_log').selectAll().execute();
      assert.ok(rows.some((r: any) => r.action === 'data.ingest' && r.outcome === 'failure' && String(r.actor).startsWith('dimse:')));
      assert.ok(rows.some((r: any) => r.action === 'dicom.associate' && r.outcome === 'denied'));
      assertNothingIdentifying(p, logs.text() + JSON.stringify(rows), [name, 'MRN-CS-88', sent.study, sent.sop]);
    } finally {
      await p.close();
    }
  });

  test('the destination is down when a study arrives: the job waits with backoff (visible, audited), and the SR + SC arrive once it is up', async () => {
    const late = new Orthanc(await freePort(), await freePort());
    const { p, http, scpPort, logs } = await pipeline(`http://127.0.0.1:${late.httpPort}/dicom-web`, captureLogs(), { XRAY_DICOM_AUTOPREDICT_BACKOFF_MS: '300', XRAY_DICOM_AUTOPREDICT_ATTEMPTS: '10' });
    try {
      const name = 'LATER^LOTTE';
      const file = path.join(work, 'late.dcm');
      const source = chestDicom('destination-down', { patientName: name, patientId: 'MRN-LATE-31' });
      writeFileSync(file, source);
      const sent = uidsOf(source);
      const stored = await run('storescu', ['-aec', AET, '127.0.0.1', String(scpPort), file]);
      assert.equal(stored.status, 0, stored.stderr);

      // Nothing listens at the destination: the job fails a try, is audited, and waits for a retry.
      const auditRows = async () => {
        await p.platform.audit.flush();
        return (await p.platform.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'dicom.autopredict').execute()) as any[];
      };
      const firstFailure = await waitFor('a failed try to be audited', async () => (await auditRows()).find((r) => r.outcome === 'failure'));
      const details = typeof firstFailure.details === 'string' ? JSON.parse(firstFailure.details) : firstFailure.details;
      assert.equal(details.retrying, true);
      assert.equal(details.error, 'SERVICE_UNAVAILABLE');
      assert.match(details.message, /unreachable/);
      const jobUrl = `/dicom/auto-predict/jobs/${details.job}`;
      const waiting = (await p.app.inject({ method: 'GET', url: jobUrl })).json();
      assert.equal(waiting.state, 'waiting', JSON.stringify(waiting));
      assert.ok(waiting.attempts >= 1);
      assert.match(waiting.error ?? '', /unreachable/);
      const status = (await p.app.inject({ method: 'GET', url: '/dicom/auto-predict' })).json();
      assert.equal(status.jobs.completed, 0);
      assert.equal(status.pending, 1);

      await late.start(scpPort, http);
      const done = await waitFor('the job to complete once the destination is up', async () => {
        const job = (await p.app.inject({ method: 'GET', url: jobUrl })).json();
        assert.notEqual(job.state, 'failed', JSON.stringify(job));
        return job.state === 'completed' ? job : null;
      }, 60_000);
      assert.ok(done.attempts >= 2, `delivered on try ${done.attempts}`);
      const instances = await late.rest<string[]>('GET', '/instances');
      assert.equal(instances.length, 2, 'the SR and the SC, once each');
      const tags = await Promise.all(instances.map((id) => late.rest<Record<string, string>>('GET', `/instances/${id}/simplified-tags`)));
      assert.deepEqual(tags.map((t) => t.SOPClassUID).sort(), [SC_CLASS, SR_CLASS].sort());
      for (const t of tags) {
        assert.equal(t.StudyInstanceUID, sent.study, 'in the sender\'s study');
        assert.equal(t.PatientName, name);
      }
      assert.deepEqual(tags.map((t) => t.SOPInstanceUID).sort(), [done.result.sr_sop_instance_uid, done.result.sc_sop_instance_uid].sort());
      const rows = await auditRows();
      assert.equal(rows.filter((r) => r.outcome === 'success').length, 1);
      assert.ok(rows.filter((r) => r.outcome === 'failure').length >= 1);
      assert.equal((await p.app.inject({ method: 'GET', url: '/dicom/auto-predict' })).json().pending, 0);
      const jobsTable = JSON.stringify(await p.platform.database.db.selectFrom('queue_jobs').selectAll().execute());
      assertNothingIdentifying(p, logs.text() + JSON.stringify(rows) + jobsTable, [name, 'MRN-LATE-31', sent.study, sent.sop]);
    } finally {
      await p.close();
      await late.stop();
    }
  });

  test('a restart while a job waits for its retry: the job fails on the next start, audited, since its context was in memory only', async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'xray-pacs-restart-'));
    const deadPort = await freePort(); // nothing listens here: every delivery fails
    const env = async () => ({
      XRAY_IMPORT_ROOT: home,
      XRAY_DIMSE_PORT: String(await freePort()),
      XRAY_DICOM_AUTOPREDICT_MODEL: 'pacs-model',
      XRAY_DICOM_RESULT_DESTINATION: `http://127.0.0.1:${deadPort}/dicom-web`,
      XRAY_DICOM_AUTOPREDICT_BACKOFF_MS: '1500',
      XRAY_SERVICE_URLS: `deployment=${deploymentUrl}`,
      XRAY_DECODE_THREADS: '1',
    });
    const open = async () => {
      const config = await env();
      const platform = await openPlatform(testConfig(home, config));
      provideLocalClients(platform);
      const app = await buildDataPipelineApp(platform);
      return { platform, app, scpPort: Number(config.XRAY_DIMSE_PORT), close: async () => (await app.close(), await platform.close()) };
    };
    const audits = async (platform: Platform) => {
      await platform.audit.flush();
      return ((await platform.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'dicom.autopredict').execute()) as any[])
        .map((r) => ({ ...r, details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details }));
    };
    try {
      const first = await open();
      let job: string;
      try {
        const file = path.join(work, 'restart.dcm');
        writeFileSync(file, chestDicom('restart', { patientName: 'RESTART^RUTH', patientId: 'MRN-RS-12' }));
        const stored = await run('storescu', ['-aec', AET, '127.0.0.1', String(first.scpPort), file]);
        assert.equal(stored.status, 0, stored.stderr);
        job = (await waitFor('a failed try', async () => (await audits(first.platform)).find((r) => r.outcome === 'failure'))).details.job;
      } finally {
        await first.close();
      }
      const second = await open();
      try {
        const failed = await waitFor('the job to fail after the restart', async () => {
          const rec = (await second.app.inject({ method: 'GET', url: `/dicom/auto-predict/jobs/${job}` })).json();
          return rec.state === 'failed' ? rec : null;
        });
        assert.match(failed.error, /memory only/);
        const last = (await audits(second.platform)).filter((r) => r.details.job === job).at(-1);
        assert.equal(last.outcome, 'failure');
        assert.equal(last.details.retrying, false);
        assert.equal(last.details.error, 'CONTEXT_LOST');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
