import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import dicomParser from 'dicom-parser';
import { anonymiseDicom, hashPatientId, hashUid } from '../../../src/core/imaging/anonymise.js';
import { decodeDicom } from '../../../src/core/imaging/dicom.js';
import { makeDicom } from '../../../src/core/imaging/dicom-writer.js';
import { renderChestXray } from '../../../src/core/imaging/synthetic.js';
import { haveTool, missingTool, scratch } from './codec-fixtures.js';
import { DICOM_SKIP, dicomFixtures, expectAppError } from './fixtures.js';

const SALT = 'unit-test-salt-0001';

function contains(buf: Buffer, text: string): boolean {
  return buf.includes(Buffer.from(text, 'latin1')) || buf.includes(Buffer.from(text, 'utf16le'));
}

function identifiedDicom(transferSyntax: 'explicit' | 'implicit' = 'explicit'): Buffer {
  const { width, height, pixels } = renderChestXray({ seed: 'anon', size: 64 });
  return makeDicom({
    width, height, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', transferSyntax,
    patientName: 'DOE^JANE', patientId: 'MRN-778899',
    attributes: {
      PatientBirthDate: '19800214',
      PatientSex: 'F',
      PatientAge: '044Y',
      StudyDate: '20240311',
      StudyTime: '101530',
      SeriesDate: '20240311',
      AccessionNumber: 'ACC-5566',
      InstitutionName: 'St Elsewhere Hospital',
      InstitutionAddress: '12 Harbour Road',
      ReferringPhysicianName: 'HOUSE^GREGORY',
      PerformingPhysicianName: 'QUINN^MICHAELA',
      OperatorsName: 'SMITH^RADTECH',
      StudyID: 'STUDY-9',
      StudyDescription: 'Chest of Jane Doe',
      ImageComments: 'Patient Jane Doe, bed 4',
      OtherPatientIDsSequence: [{ PatientID: 'OTHER-4242', IssuerOfPatientID: 'CityClinic' }],
      ReferencedImageSequence: [{ ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.1', ReferencedSOPInstanceUID: '1.2.826.0.1.3680043.99.777' }],
      BurnedInAnnotation: 'NO',
    },
    elements: {
      '00290010': { vr: 'LO', Value: ['ACME PRIVATE'] },
      '00291001': { vr: 'LO', Value: ['jane.doe@example.org'] },
    },
  });
}

const IDENTIFIERS = [
  'DOE^JANE', 'MRN-778899', '19800214', '20240311', '101530', 'ACC-5566', 'St Elsewhere', 'Harbour Road',
  'HOUSE^GREGORY', 'QUINN^MICHAELA', 'SMITH^RADTECH', 'STUDY-9', 'Jane Doe', 'OTHER-4242', 'CityClinic',
  'ACME PRIVATE', 'jane.doe@example.org', '1.2.826.0.1.3680043.99.777',
];

describe('anonymiseDicom', () => {
  test('removes every identifying value from a generated file, bytes and all', async () => {
    const original = identifiedDicom();
    for (const id of IDENTIFIERS) assert.ok(contains(original, id), `fixture should contain ${id}`);
    const { buffer, patientHash, removedTags, warnings } = anonymiseDicom(original, { salt: SALT });
    for (const id of IDENTIFIERS) assert.ok(!contains(buffer, id), `${id} still present`);
    assert.equal(patientHash, createHash('sha256').update(SALT + 'MRN-778899').digest('hex').slice(0, 16));
    for (const kw of ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'PatientAge', 'OtherPatientIDsSequence',
      'AccessionNumber', 'InstitutionName', 'InstitutionAddress', 'ReferringPhysicianName', 'PerformingPhysicianName',
      'OperatorsName', 'StudyID', 'StudyDate', 'StudyTime', 'SeriesDate']) {
      assert.ok(removedTags.some((t) => t.startsWith(`${kw} (`)), `${kw} not reported`);
    }
    assert.ok(removedTags.includes('private (0029,0010)'));
    assert.ok(removedTags.includes('private (0029,1001)'));
    assert.deepEqual(warnings, []);
  });

  test('output is valid DICOM with the de-identification attributes and the same pixels', async () => {
    const original = identifiedDicom();
    const { buffer, patientHash } = anonymiseDicom(original, { salt: SALT });
    const ds = dicomParser.parseDicom(new Uint8Array(buffer));
    assert.equal(ds.string('x00120062'), 'YES');
    assert.match(ds.string('x00120063') ?? '', /PS3\.15/);
    assert.equal(ds.elements.x00120064?.items?.[0]?.dataSet?.string('x00080100'), '113100');
    assert.equal(ds.string('x00100020'), patientHash);
    assert.equal(ds.elements.x00100010?.length, 0, 'Patient Name kept as an empty type 2 element');
    assert.equal(ds.elements.x00080080, undefined, 'Institution Name removed');
    // UIDs: replaced under 2.25, consistently (the media storage UID matches the SOP instance UID).
    const sop = ds.string('x00080018') ?? '';
    assert.match(sop, /^2\.25\.\d+$/);
    assert.ok(sop.length <= 64);
    assert.equal(ds.string('x00020003'), sop);
    assert.equal(ds.string('x00080016'), '1.2.840.10008.5.1.4.1.1.1', 'SOP Class UID kept');
    const ref = ds.elements.x00081140?.items?.[0]?.dataSet;
    assert.equal(ref?.string('x00081155'), hashUid(SALT, '1.2.826.0.1.3680043.99.777'), 'UIDs inside sequences replaced');
    assert.equal(ref?.string('x00081150'), '1.2.840.10008.5.1.4.1.1.1');

    const before = await decodeDicom(original);
    const after = await decodeDicom(buffer);
    assert.deepEqual(after.pixels, before.pixels);
  });

  test('is deterministic per salt; another salt gives other UIDs and pseudonym', () => {
    const original = identifiedDicom();
    const a = anonymiseDicom(original, { salt: SALT });
    const b = anonymiseDicom(original, { salt: SALT });
    const c = anonymiseDicom(original, { salt: `${SALT}-other` });
    assert.ok(a.buffer.equals(b.buffer));
    assert.notEqual(a.patientHash, c.patientHash);
    const uid = (buf: Buffer): string | undefined => dicomParser.parseDicom(new Uint8Array(buf)).string('x0020000d');
    assert.notEqual(uid(a.buffer), uid(c.buffer));
  });

  test('an implicit VR file comes out as explicit VR little endian with the same pixels', async () => {
    const original = identifiedDicom('implicit');
    const { buffer } = anonymiseDicom(original, { salt: SALT });
    for (const id of IDENTIFIERS) assert.ok(!contains(buffer, id), `${id} still present`);
    const ds = dicomParser.parseDicom(new Uint8Array(buffer));
    assert.equal(ds.string('x00020010'), '1.2.840.10008.1.2.1');
    assert.deepEqual((await decodeDicom(buffer)).pixels, (await decodeDicom(original)).pixels);
  });

  test('deflated and big endian files (dcmconv) come out decodable with the same pixels', async (t) => {
    if (!haveTool('dcmconv')) return t.skip(missingTool('dcmconv'));
    const work = scratch();
    try {
      const original = identifiedDicom();
      const input = join(work.dir, 'in.dcm');
      writeFileSync(input, original);
      for (const [flag, expected] of [['+td', '1.2.840.10008.1.2.1'], ['+tb', '1.2.840.10008.1.2.2']] as const) {
        const output = join(work.dir, `out${flag}.dcm`);
        execFileSync('dcmconv', [flag, input, output]);
        const { buffer } = anonymiseDicom(readFileSync(output), { salt: SALT });
        for (const id of IDENTIFIERS) assert.ok(!contains(buffer, id), `${flag}: ${id} still present`);
        // dcmjs never deflates on write: the meta header must not claim it did.
        assert.equal(dicomParser.parseDicom(new Uint8Array(buffer)).string('x00020010'), expected, flag);
        assert.deepEqual((await decodeDicom(buffer)).pixels, (await decodeDicom(original)).pixels, flag);
      }
    } finally {
      work.cleanup();
    }
  });

  test('retainPatientCharacteristics keeps sex and age, and says so', () => {
    const { buffer, removedTags } = anonymiseDicom(identifiedDicom(), { salt: SALT, retainPatientCharacteristics: true });
    const ds = dicomParser.parseDicom(new Uint8Array(buffer));
    assert.equal(ds.string('x00100040'), 'F');
    assert.equal(ds.string('x00101010'), '044Y');
    assert.ok(!removedTags.some((t) => t.startsWith('PatientSex')));
    const codes = ds.elements.x00120064?.items?.map((i) => i.dataSet?.string('x00080100'));
    assert.deepEqual(codes, ['113100', '113108']);
    assert.ok(!contains(buffer, 'DOE^JANE'));
  });

  test('warns about burned-in annotation', () => {
    const { width, height, pixels } = renderChestXray({ seed: 'burn', size: 48 });
    const dcm = makeDicom({ width, height, pixels, bitsAllocated: 8, photometric: 'MONOCHROME2', attributes: { BurnedInAnnotation: 'YES' } });
    const { warnings } = anonymiseDicom(dcm, { salt: SALT });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /Burned In Annotation/);
  });

  test('a file without Patient ID gets a null hash', () => {
    const dcm = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    assert.equal(anonymiseDicom(dcm, { salt: SALT }).patientHash, null);
  });

  test('anonymises the shared fixture: its UUID name/ID and original UIDs vanish, pixels stay', async (t) => {
    const fx = dicomFixtures();
    if (!fx) return t.skip(DICOM_SKIP);
    const patient = '16d7f894-55d7-4d95-8957-d18987f0e981';
    const uidCore = '8323329.6904.1517875201';
    assert.ok(contains(fx.mono2, patient));
    const { buffer, patientHash, replacedUids } = anonymiseDicom(fx.mono2, { salt: SALT });
    assert.ok(!contains(buffer, patient));
    assert.ok(!contains(buffer, uidCore));
    assert.ok(!contains(buffer, '19010101'), 'study date removed');
    assert.equal(patientHash, hashPatientId(SALT, patient));
    assert.ok(replacedUids >= 4);
    const ds = dicomParser.parseDicom(new Uint8Array(buffer));
    assert.equal(ds.string('x00020010'), '1.2.840.10008.1.2.4.50', 'compressed pixel data kept as is');
    assert.deepEqual((await decodeDicom(buffer)).pixels, (await decodeDicom(fx.mono2)).pixels);
  });

  test('rejects a short salt, empty input and non-DICOM', async () => {
    const dcm = makeDicom({ width: 8, height: 8, pixels: new Uint8Array(64), bitsAllocated: 8, photometric: 'MONOCHROME2' });
    await expectAppError(() => anonymiseDicom(dcm, { salt: 'short' }), 'INVALID_INPUT');
    await expectAppError(() => anonymiseDicom(Buffer.alloc(0), { salt: SALT }), 'INVALID_INPUT');
    await expectAppError(() => anonymiseDicom(Buffer.from('not a dicom file at all'), { salt: SALT }), 'UNPROCESSABLE');
    const garbage = Buffer.alloc(400, 0x41);
    garbage.write('DICM', 128, 'latin1');
    await expectAppError(() => anonymiseDicom(garbage, { salt: SALT }), 'UNPROCESSABLE');
  });
});
