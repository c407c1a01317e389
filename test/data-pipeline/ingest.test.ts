import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { sql } from 'kysely';
import { decodeDicom, generateChestXray, makeDicom } from '../../src/core/imaging/index.js';
import { anyFileContains, form, openPipeline, storedImageObjects, type Pipeline } from './helpers.js';

const DICOM_DIR = path.resolve(import.meta.dirname, '../../../shared/data/dicom');
const FIXTURE_MONO2 = path.join(DICOM_DIR, '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
const FIXTURE_MONO1 = path.join(DICOM_DIR, 'Fake_MONOHR1.dcm');

async function countRows(p: Pipeline, table: string): Promise<number> {
  const row = await p.platform.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

async function allRowsText(p: Pipeline): Promise<string> {
  const parts: string[] = [];
  for (const table of ['data_images', 'data_image_sources', 'data_versions', 'audit_log', 'queue_jobs']) {
    parts.push(JSON.stringify(await p.platform.database.db.selectFrom(table).selectAll().execute()));
  }
  await p.platform.audit.flush();
  return parts.join('\n');
}

describe('POST /ingest', () => {
  let p: Pipeline;
  let png: Buffer;
  before(async () => {
    p = await openPipeline();
    png = await generateChestXray({ seed: 11, size: 256 });
  });
  after(() => p.close());

  test('ingests, reports duplicates idempotently, records label conflicts, audits', async () => {
    let res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL', patient_id: 'p-1' }, [{ name: 'one.png', bytes: png }]) });
    assert.equal(res.statusCode, 200, res.body);
    const first = res.json();
    assert.equal(first.ingested, 1);
    const r0 = first.results[0];
    assert.equal(r0.status, 'ingested');
    assert.match(r0.hash, /^[0-9a-f]{64}$/);
    assert.equal(r0.patient_id, 'p-1');
    assert.equal(storedImageObjects(p.home).length, 1);

    res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'again.png', bytes: png }]) });
    assert.equal(res.json().results[0].status, 'duplicate');
    assert.equal(res.json().results[0].hash, r0.hash);
    assert.equal(storedImageObjects(p.home).length, 1, 'not stored twice');
    assert.equal(await countRows(p, 'data_images'), 1);

    res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'PNEUMONIA' }, [{ name: 'other-label.png', bytes: png }]) });
    assert.equal(res.json().results[0].status, 'duplicate');
    assert.equal(res.json().results[0].label_conflict_with, 'NORMAL');

    const image = (await p.app.inject({ method: 'GET', url: `/images/${r0.hash}` })).json();
    assert.equal(image.width, 256);
    assert.equal(image.bit_depth, 8);
    assert.match(image.phash, /^[0-9a-f]{16}$/);
    assert.equal(typeof image.stats.mean, 'number');
    assert.equal(image.label, 'NORMAL');

    const report = (await p.app.inject({ method: 'GET', url: '/validate' })).json();
    assert.equal(report.summary.label_conflicts, 1);
    assert.deepEqual(report.label_conflicts[0].labels, ['NORMAL', 'PNEUMONIA']);
    assert.equal(report.ok, false);
    assert.ok(await p.platform.objects.exists(report.report_key), 'the report is stored');

    await p.platform.audit.flush();
    const audit = await p.platform.audit.query({ action: 'data.ingest' });
    assert.equal(audit.items.length, 3);
  });

  test('raw body ingest and near-duplicate detection across classes', async () => {
    const jpeg = await sharp(png).jpeg({ quality: 92 }).toBuffer();
    const res = await p.app.inject({ method: 'POST', url: '/ingest?label=PNEUMONIA&filename=reencoded.jpg', headers: { 'content-type': 'image/jpeg' }, payload: jpeg });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json().results[0];
    assert.equal(r.status, 'ingested');
    const report = (await p.app.inject({ method: 'GET', url: '/validate?dataset=all&threshold=4' })).json();
    const pair = report.near_duplicates.find((n: { a: string; b: string }) => [n.a, n.b].includes(r.hash));
    assert.ok(pair, 'the re-encoded copy is a near-duplicate');
    assert.equal(pair.cross_class, true);
  });

  test('a corpus of bad inputs: each a clear per-file error, nothing stored, service up', async () => {
    const objectsBefore = storedImageObjects(p.home).length;
    const rowsBefore = await countRows(p, 'data_images');
    const jpeg = await generateChestXray({ seed: 12, size: 256, format: 'jpeg' });
    const onePixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toBuffer();
    const noPixels = makeDicom({ width: 64, height: 64, pixels: new Uint8Array(64 * 64), bitsAllocated: 8, photometric: 'MONOCHROME2', withPixelData: false });
    const noise = randomBytes(50 * 1024 * 1024);
    noise[0] = 0; // never a magic number
    const corpus = [
      { name: 'empty.png', bytes: Buffer.alloc(0), code: 'INVALID_INPUT' },
      { name: 'truncated.jpeg', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)), code: 'UNPROCESSABLE' },
      { name: 'notes.dcm', bytes: Buffer.from('this is a text file, not DICOM\n'), code: 'UNSUPPORTED_MEDIA_TYPE' },
      { name: 'nopixels.dcm', bytes: noPixels, code: 'UNPROCESSABLE' },
      { name: 'tiny.png', bytes: onePixel, code: 'UNPROCESSABLE' },
      { name: 'noise.bin', bytes: noise, code: 'UNSUPPORTED_MEDIA_TYPE' },
    ];
    const res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, corpus) });
    assert.equal(res.statusCode, 200, res.body.slice(0, 500));
    const body = res.json();
    assert.equal(body.rejected, corpus.length);
    corpus.forEach((c, i) => {
      const r = body.results[i];
      assert.equal(r.file, c.name);
      assert.equal(r.status, 'rejected', `${c.name} should be rejected`);
      assert.equal(r.error.code, c.code, `${c.name}: ${r.error.message}`);
      assert.ok(r.error.message.length > 10, `${c.name} has a readable reason`);
      assert.equal(r.hash, undefined);
    });
    assert.equal(storedImageObjects(p.home).length, objectsBefore, 'nothing stored');
    assert.equal(await countRows(p, 'data_images'), rowsBefore);

    // A PNG named .jpg is accepted: formats are sniffed from the bytes, never from the name.
    const misnamed = await generateChestXray({ seed: 13, size: 256, format: 'png' });
    const ok = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'really-a-png.jpg', bytes: misnamed }]) });
    assert.equal(ok.json().results[0].status, 'ingested');
    assert.equal(ok.json().results[0].format, 'png');

    const missingLabel = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({}, [{ name: 'x.png', bytes: misnamed }]) });
    assert.equal(missingLabel.json().results[0].error.code, 'INVALID_INPUT');
    const badLabel = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'COVID' }, [{ name: 'x.png', bytes: misnamed }]) });
    assert.equal(badLabel.statusCode, 400);
    assert.equal(badLabel.json().error.code, 'INVALID_INPUT');

    assert.equal((await p.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    const metrics = (await p.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /xray_data_ingest_files_total\{[^}]*status="rejected"[^}]*\} [1-9]/);
  });

  test('POST /preprocess returns the model input PNG', async () => {
    const jpeg = await generateChestXray({ seed: 14, width: 320, height: 256, format: 'jpeg' });
    const res = await p.app.inject({ method: 'POST', url: '/preprocess?size=64&mode=letterbox', headers: { 'content-type': 'image/jpeg' }, payload: jpeg });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/png');
    assert.match(String(res.headers['x-preprocessing-hash']), /^[0-9a-f]{64}$/);
    const meta = await sharp(res.rawPayload).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [64, 64, 1]);
    const bad = await p.app.inject({ method: 'POST', url: '/preprocess', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('nope') });
    assert.equal(bad.statusCode, 415);
  });
});

describe('upload limit', () => {
  test('a body over XRAY_MAX_UPLOAD_MB gets the 413 envelope; nothing stored; service up', async () => {
    const p = await openPipeline({ XRAY_MAX_UPLOAD_MB: '1' });
    try {
      const big = randomBytes(2 * 1024 * 1024);
      const res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'big.png', bytes: big }]) });
      assert.equal(res.statusCode, 413);
      assert.equal(res.json().error.code, 'PAYLOAD_TOO_LARGE');
      const raw = await p.app.inject({ method: 'POST', url: '/ingest?label=NORMAL', headers: { 'content-type': 'image/png' }, payload: big });
      assert.equal(raw.statusCode, 413);
      assert.equal(raw.json().error.code, 'PAYLOAD_TOO_LARGE');
      assert.equal(storedImageObjects(p.home).length, 0);
      assert.equal((await p.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    } finally {
      await p.close();
    }
  });
});

describe('DICOM ingest', () => {
  test('the MONOCHROME1/MONOCHROME2 fixtures render consistently; identifying tags never reach storage', async (t) => {
    if (!existsSync(FIXTURE_MONO2) || !existsSync(FIXTURE_MONO1)) return t.skip(`DICOM fixtures absent under ${DICOM_DIR}`);
    const p = await openPipeline();
    t.after(() => p.close());
    const mono2 = readFileSync(FIXTURE_MONO2);
    const mono1 = readFileSync(FIXTURE_MONO1);

    // The two files differ in one byte only (MONOCHROME2 → MONOCHROME1): the stored values are the
    // same, so a correct reader renders the relabelled file as the exact negative (SOURCE.md: "a
    // correct reader must invert it"). Through the pipeline's preprocessing: mono1 = 255 - mono2.
    const pictures = [];
    for (const bytes of [mono2, mono1]) {
      const res = await p.app.inject({ method: 'POST', url: '/preprocess?size=256', headers: { 'content-type': 'application/dicom' }, payload: bytes });
      assert.equal(res.statusCode, 200, res.body);
      pictures.push(await sharp(res.rawPayload).raw().toBuffer());
    }
    let fromNegative = 0;
    let direct = 0;
    for (let i = 0; i < pictures[0]!.length; i++) {
      fromNegative += Math.abs(255 - pictures[0]![i]! - pictures[1]![i]!);
      direct += Math.abs(pictures[0]![i]! - pictures[1]![i]!);
    }
    // (≤ 1 grey level of 255: each picture is rounded to 8 bits after resizing)
    assert.ok(fromNegative / pictures[0]!.length < 1.5, `mean abs difference to the negative ${fromNegative / pictures[0]!.length}`);
    assert.ok(direct / pictures[0]!.length > 50, 'MONOCHROME1 was inverted');

    const made = makeDicom({
      width: 128,
      height: 128,
      pixels: Uint16Array.from({ length: 128 * 128 }, (_, i) => 1000 + ((i * 37) % 2000)),
      bitsAllocated: 16,
      bitsStored: 12,
      photometric: 'MONOCHROME2',
      rescaleSlope: 1,
      rescaleIntercept: -1024,
      windowCenter: 500,
      windowWidth: 2000,
      patientName: 'DOE^JOHN',
      patientId: 'MRN-0042-XYZ',
      modality: 'DX',
      attributes: { InstitutionName: 'St Elsewhere General', PatientBirthDate: '19700101', AccessionNumber: 'ACC-99887766' },
    });
    const res = await p.app.inject({
      method: 'POST',
      url: '/ingest',
      payload: form({ label: 'unlabelled' }, [
        { name: path.basename(FIXTURE_MONO2), bytes: mono2 },
        { name: path.basename(FIXTURE_MONO1), bytes: mono1 },
        { name: 'made.dcm', bytes: made },
      ]),
    });
    assert.equal(res.statusCode, 200, res.body);
    const results = res.json().results;
    for (const r of results) assert.equal(r.status, 'ingested', JSON.stringify(r));
    assert.equal(results[0].patient_id, results[1].patient_id, 'the same PatientID gives the same salted pseudonym');
    assert.match(results[0].patient_id, /^[0-9a-f]{16}$/);
    for (const [k, original] of [mono2, mono1].entries()) {
      const stored = await p.app.inject({ method: 'GET', url: `/images/${results[k].hash}/content` });
      assert.equal(stored.headers['content-type'], 'application/dicom');
      assert.notDeepEqual(stored.rawPayload, original, 'the anonymised file is stored, not the original');
      const [a, b] = await Promise.all([decodeDicom(stored.rawPayload), decodeDicom(original)]);
      assert.deepEqual(a.pixels, b.pixels, 'anonymisation keeps the pixels');
    }
    const image = (await p.app.inject({ method: 'GET', url: `/images/${results[2].hash}` })).json();
    assert.equal(image.format, 'dicom');
    assert.equal(image.modality, 'DX');
    assert.equal(image.bit_depth, 12);
    assert.equal(image.photometric, 'MONOCHROME2');
    assert.equal(image.patient_source, 'dicom');
    assert.equal(image.source_name, `${results[2].hash.slice(0, 16)}.dcm`);

    const fixtureId = '16d7f894-55d7-4d95-8957-d18987f0e981';
    const sopInstanceUid = '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819';
    const secrets = [fixtureId, sopInstanceUid, 'DOE^JOHN', 'MRN-0042-XYZ', 'St Elsewhere General', '19700101', 'ACC-99887766'];
    assert.ok(mono2.includes(Buffer.from(fixtureId)), 'the fixture does carry the id');
    assert.ok(made.includes(Buffer.from('DOE^JOHN')));
    const rows = await allRowsText(p);
    await p.platform.close(); // flush SQLite (WAL) so its files hold everything written
    for (const s of secrets) {
      assert.equal(rows.includes(s), false, `'${s}' found in a DB row`);
      assert.equal(anyFileContains(p.home, s), null, `'${s}' found in a stored file`);
    }
  });
});

describe('no partial writes', () => {
  test('when the database insert fails, the stored object is removed and the file is rejected', async () => {
    const p = await openPipeline();
    try {
      // A real failure inside the engine (not a mock): the insert aborts.
      await sql`CREATE TRIGGER refuse_images BEFORE INSERT ON data_images BEGIN SELECT RAISE(ABORT, 'simulated disk full'); END`.execute(p.platform.database.db);
      const png = await generateChestXray({ seed: 21, size: 256 });
      const res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'x.png', bytes: png }]) });
      assert.equal(res.statusCode, 200);
      const r = res.json().results[0];
      assert.equal(r.status, 'rejected');
      assert.equal(r.error.code, 'INTERNAL');
      assert.equal(storedImageObjects(p.home).length, 0);
      assert.equal(await countRows(p, 'data_image_sources'), 0);

      await sql`DROP TRIGGER refuse_images`.execute(p.platform.database.db);
      const retry = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'x.png', bytes: png }]) });
      assert.equal(retry.json().results[0].status, 'ingested');
      assert.equal(storedImageObjects(p.home).length, 1);
    } finally {
      await p.close();
    }
  });
});

describe('the patient-pseudonym salt from a secret file (XRAY_PATIENT_SALT_FILE)', () => {
  test('two installations with the same salt file give the same pseudonym; nothing is kept in the database; a short salt is refused', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'xray-salt-'));
    const saltFile = path.join(dir, 'patient-salt');
    writeFileSync(saltFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const shortFile = path.join(dir, 'short');
    writeFileSync(shortFile, 'too-short');
    const pixels = new Uint8Array(96 * 96).map((_, i) => (i * 7 + (i >> 5) * 13) % 251);
    const dicom = makeDicom({ width: 96, height: 96, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', patientId: 'MRN-7788', patientName: 'ROE^JANE' });
    const ids: string[] = [];
    const pipelines: Pipeline[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const p = await openPipeline({ XRAY_PATIENT_SALT_FILE: saltFile });
        pipelines.push(p);
        const res = await p.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'a.dcm', bytes: dicom }]) });
        assert.equal(res.statusCode, 200, res.body);
        ids.push(res.json().results[0].patient_id);
        const kept = await sql<{ n: number }>`select count(*) as n from data_settings where key = 'patient_salt'`.execute(p.platform.database.db);
        assert.equal(Number(kept.rows[0]!.n), 0, 'the salt is not stored in the database');
      }
      assert.match(ids[0]!, /^[0-9a-f]{16}$/);
      assert.equal(ids[0], ids[1], 'the same salt gives the same pseudonym on another installation');
      const other = await openPipeline();
      pipelines.push(other);
      const res = await other.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'a.dcm', bytes: dicom }]) });
      assert.notEqual(res.json().results[0].patient_id, ids[0], 'another salt, another pseudonym');
      const short = await openPipeline({ XRAY_PATIENT_SALT_FILE: shortFile });
      pipelines.push(short);
      const refused = await short.app.inject({ method: 'POST', url: '/ingest', payload: form({ label: 'NORMAL' }, [{ name: 'a.dcm', bytes: dicom }]) });
      assert.match(refused.body, /needs at least 32/);
    } finally {
      for (const p of pipelines) await p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
