import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { makeDicom } from '../../src/core/imaging/dicom-writer.js';
import { ConfigError, testConfig } from '../../src/core/config/index.js';
import { anyFileContains, form, openPipeline, storedImageObjects, type Pipeline } from './helpers.js';
import { parseMultipartRelated } from '../../src/data-pipeline/service/dicomweb.js';
import { chestDicom, related, uidsOf } from './pacs-helpers.js';

const STUDY = '1.2.826.0.1.3680043.8.498.4242';
const NAME = 'STOWSON^ADA';
const MRN = 'MRN-STOW-1234';

describe('DICOMweb STOW-RS and QIDO-RS on the data pipeline', () => {
  let p: Pipeline;
  const a = chestDicom('stow-a', { patientName: NAME, patientId: MRN, studyUid: STUDY });
  const b = chestDicom('stow-b', { patientName: NAME, patientId: MRN, studyUid: STUDY });
  const sentA = uidsOf(a);
  const sentB = uidsOf(b);
  // A Basic Text SR: a non-image SOP class the ingest rules refuse.
  const sr = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2', withPixelData: false, attributes: { SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.11' } });

  before(async () => {
    p = await openPipeline();
  });
  after(async () => {
    await p.close();
  });

  test('a study with one refused part: 202, Referenced SOP Sequence for the two stored, Failed SOP Sequence with a reason for the third', async () => {
    const body = related([a, b, sr]);
    const res = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', ...body });
    assert.equal(res.statusCode, 202, res.body);
    assert.match(String(res.headers['content-type']), /^application\/dicom\+json/);
    const json = res.json();
    const refd = json['00081199'].Value as Record<string, { Value: unknown[] }>[];
    assert.equal(json['00081199'].vr, 'SQ');
    assert.deepEqual(refd.map((i) => i['00081155']!.Value[0]).sort(), [sentA.sop, sentB.sop].sort());
    assert.ok(refd.every((i) => i['00081150']!.Value[0] === '1.2.840.10008.5.1.4.1.1.1'));
    const failedItems = json['00081198'].Value as Record<string, { vr: string; Value: unknown[] }>[];
    assert.equal(failedItems.length, 1);
    assert.equal(failedItems[0]!['00081197']!.vr, 'US');
    assert.ok([0x0122, 0xc000].includes(failedItems[0]!['00081197']!.Value[0] as number), JSON.stringify(failedItems[0]));
    assert.equal(storedImageObjects(p.home).length, 2);
    // De-identified before storage: neither the name nor the MRN nor the sent UIDs are kept.
    for (const needle of [NAME, MRN, sentA.sop, STUDY]) assert.equal(anyFileContains(p.home, needle), null, `${needle} found in storage`);
  });

  test('the same bytes over POST /ingest are a duplicate of what STOW-RS stored (one ingest path)', async () => {
    const res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'unlabelled' }, [{ name: 'a.dcm', bytes: a }]) });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().results[0].status, 'duplicate');
    const again = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', ...related([a]) });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json()['00081198'], undefined);
    assert.equal(storedImageObjects(p.home).length, 2);
  });

  test('nothing stored: 409 with the Failed SOP Sequence; a truncated file is refused with a reason', async () => {
    const cut = a.subarray(0, Math.floor(a.length * 0.6));
    const res = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', ...related([cut, sr]) });
    assert.equal(res.statusCode, 409, res.body);
    const failedItems = res.json()['00081198'].Value as Record<string, { Value: number[] }>[];
    assert.equal(failedItems.length, 2);
    for (const f of failedItems) assert.ok(f['00081197']!.Value[0]! > 0);
    assert.equal(res.json()['00081199'], undefined);
  });

  test('bad requests get a typed 4xx error envelope, never 500', async () => {
    const good = related([a]);
    const cases: { name: string; headers: Record<string, string>; payload: Buffer; status: number }[] = [
      { name: 'no boundary', headers: { 'content-type': 'multipart/related; type="application/dicom"' }, payload: good.payload, status: 400 },
      { name: 'boundary absent from the body', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=nothere' }, payload: good.payload, status: 400 },
      { name: 'truncated body (no closing delimiter)', headers: good.headers, payload: good.payload.subarray(0, good.payload.length - 200), status: 400 },
      { name: 'no part', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=x' }, payload: Buffer.from('--x--\r\n'), status: 400 },
      { name: 'garbage after a boundary', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=x' }, payload: Buffer.from('--xGARBAGE'), status: 400 },
      { name: 'unsupported type parameter', headers: { 'content-type': 'multipart/related; type="application/dicom+xml"; boundary=x' }, payload: good.payload, status: 415 },
      { name: 'not multipart/related', headers: { 'content-type': 'application/json' }, payload: Buffer.from('{}'), status: 415 },
    ];
    for (const c of cases) {
      const res = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', headers: c.headers, payload: c.payload });
      assert.equal(res.statusCode, c.status, `${c.name}: ${res.body}`);
      const err = res.json().error;
      assert.equal(typeof err?.code, 'string', c.name);
      assert.equal(typeof err?.message, 'string', c.name);
    }
    const other = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', ...related([{ type: 'application/pdf', bytes: Buffer.from('%PDF-1.4') }]) });
    assert.equal(other.statusCode, 409, other.body);
    assert.equal(other.json()['00081198'].Value[0]['00081197'].Value[0], 0x0122);
  });

  test('QIDO-RS lists the held study, series and instances by de-identified UIDs only', async () => {
    const studies = await p.app.inject({ method: 'GET', url: '/dicomweb/studies' });
    assert.equal(studies.statusCode, 200, studies.body);
    assert.match(String(studies.headers['content-type']), /^application\/dicom\+json/);
    const list = studies.json() as Record<string, { Value: unknown[] }>[];
    assert.equal(list.length, 1);
    const study = list[0]!['0020000D']!.Value[0] as string;
    assert.notEqual(study, STUDY);
    assert.match(study, /^2\.25\.\d+$/);
    assert.equal(list[0]!['00201208']!.Value[0], 2);
    assert.deepEqual(list[0]!['00080061']!.Value, ['CR']);
    for (const needle of [STUDY, sentA.sop, sentA.series, NAME, MRN]) assert.ok(!studies.body.includes(needle));

    const series = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}/series` });
    assert.equal(series.statusCode, 200, series.body);
    const seriesList = series.json() as Record<string, { Value: unknown[] }>[];
    assert.equal(seriesList.length, 2, 'each synthetic image has its own series');
    let instances = 0;
    for (const s of seriesList) {
      const uid = s['0020000E']!.Value[0] as string;
      assert.ok(uid !== sentA.series && uid !== sentB.series);
      const res = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}/series/${uid}/instances` });
      assert.equal(res.statusCode, 200, res.body);
      for (const i of res.json() as Record<string, { Value: unknown[] }>[]) {
        instances++;
        assert.ok(![sentA.sop, sentB.sop].includes(i['00080018']!.Value[0] as string));
        assert.equal(i['00080016']!.Value[0], '1.2.840.10008.5.1.4.1.1.1');
      }
    }
    assert.equal(instances, 2);
    const filtered = await p.app.inject({ method: 'GET', url: `/dicomweb/studies?StudyInstanceUID=${STUDY}` });
    assert.deepEqual(filtered.json(), [], 'the original Study UID is unknown to the platform');
    const paged = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}/series?limit=1&offset=1` });
    assert.equal(paged.json().length, 1);
    const bad = await p.app.inject({ method: 'GET', url: '/dicomweb/studies/not-a-uid/series' });
    assert.equal(bad.statusCode, 400);
    assert.equal(typeof bad.json().error.code, 'string');
  });

  test('WADO-RS retrieves the stored, de-identified files of a study, a series and one instance as multipart/related', async () => {
    const study = (await p.app.inject({ method: 'GET', url: '/dicomweb/studies' })).json()[0]['0020000D'].Value[0] as string;
    const parts = (res: { headers: Record<string, unknown>; rawPayload: Buffer }) => {
      const type = String(res.headers['content-type']);
      assert.match(type, /^multipart\/related; type="application\/dicom"; boundary=/);
      return parseMultipartRelated(res.rawPayload, type);
    };
    const all = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}` });
    assert.equal(all.statusCode, 200, all.body);
    const files = parts(all);
    assert.equal(files.length, 2);
    const stored = storedImageObjects(p.home).map((f) => readFileSync(f));
    for (const f of files) {
      assert.equal(f.headers['content-type'], 'application/dicom');
      assert.ok(stored.some((s) => s.equals(f.body)), 'each part is a stored file, byte for byte');
      for (const needle of [NAME, MRN, STUDY, sentA.sop, sentB.sop]) assert.ok(!f.body.includes(Buffer.from(needle)), `${needle} in a retrieved file`);
      assert.equal(uidsOf(f.body).study, study);
    }
    const one = uidsOf(files[0]!.body);
    const series = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}/series/${one.series}` });
    assert.equal(parts(series).length, 1);
    const instance = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}/series/${one.series}/instances/${one.sop}` });
    const only = parts(instance);
    assert.equal(only.length, 1);
    assert.ok(only[0]!.body.equals(files[0]!.body));
    for (const url of [`/dicomweb/studies/${STUDY}`, `/dicomweb/studies/${study}/series/${one.series}/instances/${sentA.sop}`]) {
      const missing = await p.app.inject({ method: 'GET', url });
      assert.equal(missing.statusCode, 404, 'the original UIDs are unknown to the platform');
      assert.equal(missing.json().error.code, 'NOT_FOUND');
    }
    await p.platform.audit.flush();
    const audited = (await p.platform.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'dicom.retrieve').execute()) as any[];
    assert.equal(audited.length, 3);
  });

  test('STOW-RS arrivals are audited per file and per request, without identifiers', async () => {
    await p.platform.audit.flush();
    const rows = await p.platform.database.db.selectFrom('audit_log').selectAll().execute();
    const stow = rows.filter((r: any) => r.action === 'dicom.stow');
    assert.ok(stow.length >= 3);
    assert.ok(rows.filter((r: any) => r.action === 'data.ingest').length >= 7);
    const text = JSON.stringify(rows);
    for (const needle of [NAME, MRN]) assert.ok(!text.includes(needle), `${needle} in the audit trail`);
  });
});

describe('DICOMweb with XRAY_AUTH=on', () => {
  let p: Pipeline;
  const admin = 'admin-key-for-dicomweb-tests-0123456789';
  before(async () => {
    p = await openPipeline({ XRAY_AUTH: 'on', XRAY_ADMIN_KEY: admin });
  });
  after(async () => {
    await p.close();
  });

  test('STOW-RS needs an ml-engineer key; QIDO-RS a viewer key', async () => {
    const viewer = await p.platform.keys.create('viewer-1', 'viewer');
    const body = related([chestDicom('auth-a')]);
    const none = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', ...body });
    assert.equal(none.statusCode, 401, none.body);
    const low = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', payload: body.payload, headers: { ...body.headers, authorization: `Bearer ${viewer.key}` } });
    assert.equal(low.statusCode, 403, low.body);
    assert.equal(storedImageObjects(p.home).length, 0);
    const ok = await p.app.inject({ method: 'POST', url: '/dicomweb/studies', payload: body.payload, headers: { ...body.headers, authorization: `Bearer ${admin}` } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await p.app.inject({ method: 'GET', url: '/dicomweb/studies' })).statusCode, 401);
    const q = await p.app.inject({ method: 'GET', url: '/dicomweb/studies', headers: { authorization: `Bearer ${viewer.key}` } });
    assert.equal(q.statusCode, 200);
    assert.equal(q.json().length, 1);
    // WADO-RS serves pixels: a clinician key, like GET /images/:hash/content.
    const study = q.json()[0]['0020000D'].Value[0];
    const wado = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}`, headers: { authorization: `Bearer ${viewer.key}` } });
    assert.equal(wado.statusCode, 403, wado.body);
    const clinician = await p.platform.keys.create('clinician-1', 'clinician');
    const allowed = await p.app.inject({ method: 'GET', url: `/dicomweb/studies/${study}`, headers: { authorization: `Bearer ${clinician.key}` } });
    assert.equal(allowed.statusCode, 200, allowed.body);
  });
});

describe('PACS configuration', () => {
  test('destinations parse as STOW-RS URL or AE@host:port; bad values stop the start naming the variable', () => {
    const stow = testConfig('/tmp/x', { XRAY_DICOM_AUTOPREDICT_MODEL: 'pneumonia', XRAY_DICOM_RESULT_DESTINATION: 'http://pacs:8042/dicom-web/' }).dicomNetwork;
    assert.deepEqual(stow.resultDestination, { kind: 'stow', url: 'http://pacs:8042/dicom-web/studies' });
    const cstore = testConfig('/tmp/x', { XRAY_DICOM_RESULT_DESTINATION: 'ORTHANC@10.0.0.5:4242', XRAY_DIMSE_PORT: '11112', XRAY_DIMSE_ALLOWED_AES: 'A, B' }).dicomNetwork;
    assert.deepEqual(cstore.resultDestination, { kind: 'c-store', aeTitle: 'ORTHANC', host: '10.0.0.5', port: 4242 });
    assert.equal(cstore.dimsePort, 11112);
    assert.deepEqual(cstore.allowedCallingAes, ['A', 'B']);
    assert.equal(testConfig('/tmp/x').dicomNetwork.dimsePort, 0, 'the SCP is off by default');
    for (const [env, pattern] of [
      [{ XRAY_DICOM_RESULT_DESTINATION: 'pacs:4242' }, /XRAY_DICOM_RESULT_DESTINATION/],
      [{ XRAY_DICOM_RESULT_DESTINATION: 'AE@host:70000' }, /XRAY_DICOM_RESULT_DESTINATION/],
      [{ XRAY_DICOM_AUTOPREDICT_MODEL: 'pneumonia' }, /XRAY_DICOM_RESULT_DESTINATION/],
      [{ XRAY_DIMSE_AE_TITLE: 'A_TITLE_FAR_TOO_LONG' }, /XRAY_DIMSE_AE_TITLE/],
    ] as const) {
      assert.throws(() => testConfig('/tmp/x', env as Record<string, string>), (err: unknown) => err instanceof ConfigError && pattern.test((err as Error).message));
    }
  });
});
