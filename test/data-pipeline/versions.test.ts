import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { generateChestXray, generateDataset, type SyntheticDataset } from '../../src/core/imaging/index.js';
import { exportDatasetVersion } from '../../src/data-pipeline/service/export.js';
import { dataPipelineService } from '../../src/data-pipeline/service/index.js';
import { openPipeline, storedImageObjects, waitForImport, type Pipeline } from './helpers.js';

/** An independent canonical JSON (sorted keys, no whitespace) to recompute a version id. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

describe('folder import, dataset versions, export', () => {
  let p: Pipeline;
  let ds: SyntheticDataset;
  before(async () => {
    p = await openPipeline();
    ds = await generateDataset(path.join(p.home, 'incoming', 'chest_xray'), { perClass: 12, seed: 5, size: 256 });
  });
  after(() => p.close());

  async function importFolder(body: Record<string, unknown>) {
    const res = await p.app.inject({ method: 'POST', url: '/import', payload: body });
    assert.equal(res.statusCode, 202, res.body);
    return waitForImport(p.app, res.json().job_id);
  }

  async function createVersion(body: Record<string, unknown>) {
    const res = await p.app.inject({ method: 'POST', url: '/version/create', payload: body });
    assert.ok(res.statusCode === 201 || res.statusCode === 200, res.body);
    return { status: res.statusCode, ...res.json() };
  }

  test('imports the Kermany layout; a second import adds nothing', async () => {
    const first = await importFolder({ path: 'incoming/chest_xray' });
    assert.equal(first.state, 'completed', first.error);
    assert.equal(first.total, ds.files.length);
    assert.equal(first.ingested, ds.files.length);
    assert.equal(first.rejected, 0);
    assert.equal(storedImageObjects(p.home).length, ds.files.length);

    const second = await importFolder({ path: path.join(p.home, 'incoming', 'chest_xray') });
    assert.equal(second.state, 'completed');
    assert.equal(second.ingested, 0);
    assert.equal(second.duplicates, ds.files.length);
    assert.equal(storedImageObjects(p.home).length, ds.files.length);

    const images = (await p.app.inject({ method: 'GET', url: '/images?page_size=1000' })).json();
    assert.equal(images.items.length, ds.files.length);
    const byName = new Map(images.items.map((i: { source_name: string }) => [i.source_name, i]));
    for (const f of ds.files) {
      const img = byName.get(path.basename(f.path)) as { label: string; patient_id: string; patient_source: string } | undefined;
      assert.ok(img, f.path);
      assert.equal(img.label, f.label);
      assert.equal(img.patient_id?.toLowerCase(), f.patientId.toLowerCase());
      assert.equal(img.patient_source, 'filename');
    }
    await p.platform.audit.flush();
    assert.equal((await p.platform.audit.query({ action: 'data.import' })).items.length, 2);

    // Pointed at a class folder directly: its name gives the label.
    const direct = await importFolder({ path: 'incoming/chest_xray/NORMAL' });
    assert.equal(direct.total, ds.files.filter((f) => f.label === 'NORMAL').length);
    assert.equal(direct.duplicates, direct.total);
  });

  test('refuses paths outside the import root; nothing is queued or stored', async () => {
    const before = storedImageObjects(p.home).length;
    for (const bad of ['../../etc/passwd', '/etc', 'incoming/../../..', 'missing-folder']) {
      const res = await p.app.inject({ method: 'POST', url: '/import', payload: { path: bad } });
      assert.ok([400, 404].includes(res.statusCode), `${bad}: ${res.statusCode}`);
      assert.ok(res.json().error.message.length > 10);
    }
    // A symlink inside the root pointing outside is refused per file.
    const linked = path.join(p.home, 'linked', 'NORMAL');
    mkdirSync(linked, { recursive: true });
    symlinkSync('/etc/hostname', path.join(linked, 'escape.png'));
    writeFileSync(path.join(linked, 'notes.txt'), 'not an image');
    const res = await importFolder({ path: 'linked' });
    assert.equal(res.rejected, 2);
    assert.deepEqual(res.rejections.map((r: { file: string }) => r.file).sort(), ['NORMAL/escape.png', 'NORMAL/notes.txt']);
    assert.equal(storedImageObjects(p.home).length, before);
    assert.equal((await p.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  });

  test('versions are deterministic, content-addressed and split by patient', async () => {
    const spec = { name: 'v1', val_fraction: 0.25, seed: 42, preprocessing: { size: 64, mode: 'letterbox' } };
    const a = await createVersion(spec);
    assert.equal(a.status, 201);
    assert.equal(a.created, true);
    const again = await createVersion({ ...spec, name: 'another name' });
    assert.equal(again.status, 200);
    assert.equal(again.created, false);
    assert.equal(again.version.id, a.version.id);
    assert.equal(again.version.name, 'v1');

    const id: string = a.version.id;
    const detail = (await p.app.inject({ method: 'GET', url: `/versions/${id}` })).json();
    const manifest = detail.manifest;
    assert.equal(createHash('sha256').update(canonical(manifest)).digest('hex'), id, 'id = sha256(canonical manifest)');
    const stored = await p.platform.objects.get(`datasets/manifests/${id.slice(0, 2)}/${id.slice(2, 4)}/${id}.json`);
    assert.equal(createHash('sha256').update(stored).digest('hex'), id, 'the stored manifest hashes to its id');

    assert.equal(manifest.items.length, ds.files.length);
    const hashes = manifest.items.map((i: { hash: string }) => i.hash);
    assert.deepEqual(hashes, [...hashes].sort(), 'items sorted by hash');
    const splitsOf = new Map<string, Set<string>>();
    for (const item of manifest.items) {
      const s = splitsOf.get(item.patient) ?? new Set<string>();
      s.add(item.split);
      splitsOf.set(item.patient, s);
    }
    for (const [patient, splits] of splitsOf) assert.equal(splits.size, 1, `patient ${patient} in ${[...splits]}`);
    for (const label of ['NORMAL', 'PNEUMONIA']) {
      assert.ok(a.version.counts.val[label] > 0 && a.version.counts.train[label] > 0, `${label} in both splits: ${JSON.stringify(a.version.counts)}`);
    }
    assert.equal(manifest.preprocessing.size, 64);
    assert.match(manifest.preprocessing.hash, /^[0-9a-f]{64}$/);
    assert.equal(manifest.augmentation.hflip, false);

    const other = await createVersion({ ...spec, name: 'v2', seed: 7 });
    assert.notEqual(other.version.id, id);
    const diff = (await p.app.inject({ method: 'GET', url: `/versions/${id}/diff/${other.version.id}` })).json();
    assert.equal(diff.added.length + diff.removed.length, 0);
    assert.equal(diff.changed.length + diff.unchanged, ds.files.length);
    assert.ok(diff.changed.every((c: { from: { split: string }; to: { split: string } }) => c.from.split !== c.to.split));
    assert.deepEqual(diff.settings_changed, ['seed']);

    const docs = await p.app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(docs.statusCode, 200);
    for (const route of ['/ingest', '/import', '/validate', '/version/create', '/versions/{id}/export', '/preprocess']) assert.ok(docs.json().paths[route], route);

    const list = (await p.app.inject({ method: 'GET', url: '/versions' })).json();
    assert.deepEqual(list.items.map((v: { id: string }) => v.id).sort(), [id, other.version.id].sort());
    assert.equal((await p.app.inject({ method: 'GET', url: `/versions/${'0'.repeat(64)}` })).statusCode, 404);

    const report = (await p.app.inject({ method: 'GET', url: `/validate?dataset=${id}` })).json();
    assert.equal(report.summary.images, ds.files.length);
    assert.equal(report.summary.patient_leaks, 0);

    await p.platform.audit.flush();
    assert.equal((await p.platform.audit.query({ action: 'data.version.create' })).items.length, 2);
  });

  test('held-out test rules: a file family (names) or the latest patients (period); refusals name the problem', async () => {
    const names = await createVersion({ name: 'leave-virus-out', test_by: 'names', test_names_containing: ['_virus_'] });
    assert.equal(names.status, 201);
    const m = (await p.app.inject({ method: 'GET', url: `/versions/${names.version.id}` })).json().manifest;
    assert.deepEqual(m.split.test_names_containing, ['_virus_']);
    assert.equal(m.split.test_by, 'names');
    const images = (await p.app.inject({ method: 'GET', url: '/images?page_size=1000' })).json().items as { hash: string; source_name: string }[];
    const nameOf = new Map(images.map((i) => [i.hash, i.source_name]));
    const testNames = m.items.filter((i: { split: string }) => i.split === 'test').map((i: { hash: string }) => nameOf.get(i.hash)!);
    assert.ok(testNames.length > 0);
    assert.ok(testNames.every((n: string) => n.includes('_virus_')), testNames.join(' '));
    assert.ok(
      m.items.filter((i: { split: string }) => i.split !== 'test').every((i: { hash: string }) => !nameOf.get(i.hash)!.includes('_virus_')),
      'no virus image outside test',
    );

    // a class without the family is topped up to test_fraction with seeded patients
    const topped = await createVersion({ name: 'virus-and-some-normals', test_by: 'names', test_names_containing: ['_virus_'], test_fraction: 0.25 });
    assert.ok(topped.version.counts.test.NORMAL > 0, JSON.stringify(topped.version.counts));
    assert.equal(topped.version.counts.test.PNEUMONIA, names.version.counts.test.PNEUMONIA);

    const period = await createVersion({ name: 'latest-out', test_by: 'period', test_fraction: 0.25 });
    assert.notEqual(period.version.id, names.version.id);
    assert.ok(period.version.counts.test.NORMAL > 0 && period.version.counts.test.PNEUMONIA > 0);
    // the default rule written out gives the default version (same id as without the field)
    const plain = await createVersion({ name: 'plain', test_fraction: 0.25 });
    const explicit = await createVersion({ name: 'plain again', test_fraction: 0.25, test_by: 'random' });
    assert.equal(explicit.version.id, plain.version.id);
    assert.equal(explicit.status, 200);

    for (const [body, phrase] of [
      [{ name: 'x', test_by: 'names' }, 'test_names_containing'],
      [{ name: 'x', test_by: 'period' }, 'test_fraction above 0'],
      [{ name: 'x', test_names_containing: ['_virus_'] }, "needs test_by 'names'"],
    ] as const) {
      const res = await p.app.inject({ method: 'POST', url: '/version/create', payload: body });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, 'INVALID_INPUT');
      assert.match(res.json().error.message, new RegExp(phrase.replace(/[()]/g, '.')));
    }
    const none = await p.app.inject({ method: 'POST', url: '/version/create', payload: { name: 'x', test_by: 'names', test_names_containing: ['no-such-family'] } });
    assert.equal(none.statusCode, 422, none.body);
  });

  test('export writes the trainer format; preprocessed PNGs are cached', async () => {
    const { version } = await createVersion({ name: 'export', val_fraction: 0.2, seed: 1, preprocessing: { size: 64 } });
    const dir = path.join(p.home, 'train-input');
    const first = await exportDatasetVersion(p.platform, version.id, dir);
    assert.equal(first.items, ds.files.length);
    assert.equal(first.preprocessed, ds.files.length);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.deepEqual(Object.keys(manifest).sort(), ['augmentation', 'classes', 'items', 'preprocessing', 'version_id']);
    assert.equal(manifest.version_id, version.id);
    assert.deepEqual(manifest.classes, ['NORMAL', 'PNEUMONIA']);
    assert.equal(manifest.preprocessing.size, 64);
    assert.equal(manifest.preprocessing.hash, version.preprocessing_hash);
    assert.deepEqual(manifest.augmentation.scale, [0.9, 1.1]);
    for (const item of manifest.items) {
      assert.deepEqual(Object.keys(item).sort(), ['file', 'hash', 'label', 'patient', 'split']);
      assert.equal(item.file, `images/${item.hash}.png`);
      const meta = await sharp(path.join(dir, item.file)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 64, 64, 1]);
    }
    assert.equal(readdirSync(path.join(dir, 'images')).length, ds.files.length);
    const key = `preprocessed/${version.preprocessing_hash}/${manifest.items[0].hash}.png`;
    assert.ok(await p.platform.objects.exists(key));

    const second = await dataPipelineService(p.platform).exportDatasetVersion(version.id, path.join(p.home, 'again'));
    assert.equal(second.preprocessed, 0, 'served from the cache');
    const viaApi = await p.app.inject({ method: 'POST', url: `/versions/${version.id}/export`, payload: { dir: 'run-1' } });
    assert.equal(viaApi.statusCode, 200, viaApi.body);
    assert.equal(viaApi.json().dir, path.join(p.home, 'exports', 'run-1'));
    const escape = await p.app.inject({ method: 'POST', url: `/versions/${version.id}/export`, payload: { dir: '../outside' } });
    assert.equal(escape.statusCode, 400);
    const png = await p.app.inject({ method: 'GET', url: `/versions/${version.id}/images/${manifest.items[0].hash}` });
    assert.equal(png.headers['content-type'], 'image/png');
    assert.deepEqual(png.rawPayload, readFileSync(path.join(dir, manifest.items[0].file)));
  });
});

describe('leakage and split folders', () => {
  test('a patient in train and val, and a near-duplicate across splits, are reported', async () => {
    const p = await openPipeline();
    try {
      const root = path.join(p.home, 'split-layout');
      for (const s of ['train', 'val']) mkdirSync(path.join(root, s, 'NORMAL'), { recursive: true });
      writeFileSync(path.join(root, 'train', 'NORMAL', 'IM-0001-0001.jpeg'), await generateChestXray({ seed: 1, patientSeed: 'a', size: 256, format: 'jpeg' }));
      writeFileSync(path.join(root, 'val', 'NORMAL', 'IM-0001-0002.jpeg'), await generateChestXray({ seed: 2, patientSeed: 'a', size: 256, format: 'jpeg' }));
      const b = await generateChestXray({ seed: 3, patientSeed: 'b', size: 256, format: 'png' });
      writeFileSync(path.join(root, 'train', 'NORMAL', 'IM-0002-0001.png'), b);
      writeFileSync(path.join(root, 'val', 'NORMAL', 'IM-0003-0001.jpeg'), await sharp(b).jpeg({ quality: 90 }).toBuffer());
      copyFileSync(path.join(root, 'train', 'NORMAL', 'IM-0002-0001.png'), path.join(root, 'train', 'NORMAL', 'IM-0002-0001-copy.png'));

      const res = await p.app.inject({ method: 'POST', url: '/import', payload: { path: 'split-layout', split_from_folders: true } });
      const status = await waitForImport(p.app, res.json().job_id);
      assert.equal(status.ingested, 4);
      assert.equal(status.duplicates, 1);

      const report = (await p.app.inject({ method: 'GET', url: '/validate?dataset=all' })).json();
      assert.equal(report.ok, false);
      assert.deepEqual(report.leakage.patients.map((l: { patient: string }) => l.patient), ['IM-0001']);
      assert.equal(report.summary.near_duplicate_leaks, 1);
      assert.deepEqual([...report.leakage.near_duplicates[0].splits].sort(), ['train', 'val']);

      // A version re-splits by patient: no leak left.
      const v = (await p.app.inject({ method: 'POST', url: '/version/create', payload: { name: 'clean', val_fraction: 0.3 } })).json();
      const clean = (await p.app.inject({ method: 'GET', url: `/validate?dataset=${v.version.id}` })).json();
      assert.equal(clean.summary.patient_leaks, 0);
      const kept = (await p.app.inject({ method: 'POST', url: '/version/create', payload: { name: 'as-recorded', use_recorded_splits: true } })).json();
      assert.equal(kept.version.counts.val.NORMAL + kept.version.counts.train.NORMAL, 4);
    } finally {
      await p.close();
    }
  });
});
