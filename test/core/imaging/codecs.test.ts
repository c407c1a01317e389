/**
 * Compressed transfer syntaxes, with fixtures made here by Debian's real encoders from native
 * files: lossless syntaxes must give back the source's stored values exactly (and so the same
 * displayed picture and the same model input); lossy ones stay within a stated tolerance.
 * Broken codestreams are 422, never a crash. Each missing encoder skips its tests, naming it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readDicomDict, writeDicomDict } from '../../../src/core/imaging/dcmjs-io.js';
import { decodeDicom, readDicomStoredFrame } from '../../../src/core/imaging/dicom.js';
import { openImage } from '../../../src/core/imaging/decode.js';
import { ImagePool } from '../../../src/core/imaging/image-pool.js';
import { preprocess } from '../../../src/core/imaging/preprocess.js';
import {
  ENCODINGS, encapsulate, encodeWith, firstFrame, haveTool, missingTool, nativeSources, scratch,
  type Encoding, type NativeSource,
} from './codec-fixtures.js';
import { DICOM_MONO2, DICOM_SKIP, dicomFixtures, expectAppError } from './fixtures.js';

const SPEC = { size: 64, mode: 'letterbox', pad: 0, format: 'png' } as const;
/** Lossy syntaxes: largest mean |Δ| of the model input (0..1 scale) against the native file's. */
const LOSSY_INPUT_TOLERANCE = 0.01;

const sources = nativeSources();
const work = scratch();
after(() => work.cleanup());

const encoded = new Map<string, Buffer>();
function fixture(enc: Encoding, src: NativeSource): Buffer {
  const key = `${enc.ts}|${src.name}`;
  let buf = encoded.get(key);
  if (!buf) {
    buf = encodeWith(enc, src, work.dir, `${encoded.size}`);
    encoded.set(key, buf);
  }
  return buf;
}

function diffStats(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number; differing: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > 0) differing++;
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length, differing };
}

/** HTJ2K codestreams with signed samples are refused: the npm decoder saturates negatives. */
const refusedSigned = (enc: Encoding, src: NativeSource) => src.signed && enc.ts.startsWith('1.2.840.10008.1.2.4.20');

for (const enc of ENCODINGS) {
  describe(`${enc.label} → ${enc.ts}`, () => {
    for (const src of sources) {
      test(`${src.name}: ${enc.lossless ? 'pixel-exact' : `within ${enc.maxError! * 100}% of the stored range`}, same picture and model input as the native file`, async (t) => {
        if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
        if (enc.unsignedOnly && src.signed) return t.skip(`${enc.tool} cannot encode signed samples for this syntax: skipped`);
        const buf = fixture(enc, src);
        assert.equal(readDicomDict(buf).meta['00020010']?.Value?.[0], enc.ts, 'the encoder wrote the expected transfer syntax');
        if (refusedSigned(enc, src)) {
          const err = await expectAppError(decodeDicom(buf), 'UNSUPPORTED_MEDIA_TYPE');
          assert.match(err.message, /signed/);
          return;
        }

        const frame = await readDicomStoredFrame(buf);
        assert.equal(frame.colour, false);
        assert.equal(frame.values.length, src.width * src.height);
        assert.equal(frame.values instanceof Int16Array || frame.values instanceof Int8Array, src.signed, 'signedness follows Pixel Representation');
        const stored = diffStats(frame.values, src.pixels);
        if (enc.lossless) {
          assert.equal(stored.differing, 0, `${stored.differing} stored values differ (max |Δ| ${stored.max})`);
        } else {
          const limit = enc.maxError! * 2 ** src.bitsStored;
          assert.ok(stored.max <= limit, `max |Δ| ${stored.max} > ${limit}`);
        }

        const native = await decodeDicom(src.dicom);
        const img = await decodeDicom(buf);
        assert.equal(img.transferSyntax, enc.ts);
        assert.deepEqual([img.width, img.height, img.meta.inverted, img.meta.window, img.meta.voiSource, img.meta.rescaleSlope, img.meta.rescaleIntercept],
          [native.width, native.height, native.meta.inverted, native.meta.window, native.meta.voiSource, native.meta.rescaleSlope, native.meta.rescaleIntercept]);
        const shown = diffStats(img.pixels, native.pixels);
        const nativeInput = await preprocess(src.dicom, SPEC);
        const input = await preprocess(buf, SPEC);
        const model = diffStats(input.pixels, nativeInput.pixels);
        if (enc.lossless) {
          assert.equal(shown.differing, 0, 'displayed pixels identical to the native file');
          assert.equal(model.differing, 0, 'model input identical to the native file');
        } else {
          assert.ok(model.mean / 255 <= LOSSY_INPUT_TOLERANCE, `model input mean |Δ| ${(model.mean / 255).toFixed(4)} > ${LOSSY_INPUT_TOLERANCE}`);
        }
      });
    }
  });
}

describe('colour (RGB, 8-bit) compressed frames', () => {
  const runs: [tool: string, args: string[], ts: string][] = [
    ['dcmcjpls', ['+el', '+il'], '1.2.840.10008.1.2.4.80'],
    ['dcmcjpls', ['+el', '+is'], '1.2.840.10008.1.2.4.80'],
    ['dcmcjpls', ['+el', '+in'], '1.2.840.10008.1.2.4.80'],
    ['gdcmconv', ['--j2k'], '1.2.840.10008.1.2.4.90'],
    ['dcmcjpeg', ['+e1'], '1.2.840.10008.1.2.4.70'],
  ];
  test('line-, sample- and non-interleaved JPEG-LS, JPEG 2000 and JPEG Lossless give the native file\'s luminance exactly', async (t) => {
    for (const need of ['img2dcm', 'dcmdjpeg']) if (!haveTool(need)) return t.skip(missingTool(need));
    const sharp = (await import('sharp')).default;
    const w = 96;
    const h = 64;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]] = [(i * 3) % 256, (i >> 4) % 256, 200 - (i % 50)];
    const jpg = join(work.dir, 'colour.jpg');
    const native = join(work.dir, 'colour-native.dcm');
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 95 }).toFile(jpg);
    execFileSync('img2dcm', [jpg, join(work.dir, 'colour-jpeg.dcm')]);
    execFileSync('dcmdjpeg', [join(work.dir, 'colour-jpeg.dcm'), native]);
    const base = await readDicomStoredFrame(readFileSync(native));
    assert.equal(base.colour, true);
    for (const [i, [tool, args, ts]] of runs.entries()) {
      if (!haveTool(tool)) { t.diagnostic(missingTool(tool)); continue; }
      const out = join(work.dir, `colour-${i}.dcm`);
      execFileSync(tool, [...args, native, out]);
      const f = await readDicomStoredFrame(readFileSync(out));
      assert.equal(f.header.transferSyntax, ts);
      assert.equal(f.colour, true);
      assert.equal(diffStats(f.values, base.values).differing, 0, `${tool} ${args.join(' ')}`);
    }
  });
});

describe('the predict path (image worker pool) decodes every syntax in its worker threads', () => {
  let pool: ImagePool;
  before(() => { pool = new ImagePool({ threads: 1, timeoutMs: 20_000 }); });
  after(() => pool.close());

  test('model input tensors match the native file\'s (12-bit MONOCHROME1 with rescale and window)', async (t) => {
    const src = sources[1]!;
    const native = await pool.run(src.dicom, SPEC);
    const skipped: string[] = [];
    for (const enc of ENCODINGS) {
      if (!haveTool(enc.tool)) { skipped.push(missingTool(enc.tool)); continue; }
      const out = await pool.run(fixture(enc, src), SPEC);
      const d = diffStats(out.input, native.input);
      if (enc.lossless) assert.equal(d.differing, 0, `${enc.label}: tensor differs in ${d.differing} values`);
      else assert.ok(d.mean <= LOSSY_INPUT_TOLERANCE, `${enc.label}: tensor mean |Δ| ${d.mean.toFixed(4)}`);
    }
    if (skipped.length) t.diagnostic(`not covered: ${[...new Set(skipped)].join('; ')}`);
  });

  test('a broken codestream is 422 from the pool, and the pool keeps working', async (t) => {
    const enc = ENCODINGS.find((e) => e.ts === '1.2.840.10008.1.2.4.80')!;
    if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
    const src = sources[1]!;
    const buf = fixture(enc, src);
    const frame = firstFrame(buf);
    const broken = encapsulate(src.dicom, enc.ts, frame.subarray(0, frame.length >> 1));
    await assert.rejects(pool.run(broken, SPEC), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'UNPROCESSABLE');
      assert.match(err.message ?? '', /JPEG-LS .*truncated/);
      return true;
    });
    assert.equal((await pool.run(buf, SPEC)).input.length, SPEC.size * SPEC.size);
  });
});

describe('JPEG 2000 / HTJ2K at a reduced resolution level (decodeDicom targetSide)', () => {
  const big = nativeSources(512)[1]!; // 12-bit MONOCHROME1 with rescale + window
  for (const ts of ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.203']) {
    const enc = ENCODINGS.find((e) => e.ts === ts)!;
    test(`${enc.label}: the smallest level keeping 2× the target, and the same picture as the full decode`, async (t) => {
      if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
      const buf = encodeWith(enc, big, work.dir, `reduced-${ts}`);
      const img = await decodeDicom(buf, { targetSide: 64 });
      assert.deepEqual([img.level, img.width, img.height, img.meta.columns, img.meta.rows], [2, 128, 128, 512, 512]);
      assert.equal(img.pixels.length, 128 * 128);
      assert.equal((await decodeDicom(buf, { targetSide: 200 })).level, 0, 'no level keeps 400 pixels: full size');
      assert.equal((await decodeDicom(buf)).level, 0, 'full size unless asked');
      // Through openImage (which moves the low-pass grid onto a downscale's) to the model's size.
      const opened = await openImage(buf, { targetSide: SPEC.size });
      assert.deepEqual([opened.width, opened.height], [512, 512], 'the source size is reported, not the level\'s');
      const reduced = await opened.pipeline.resize(SPEC.size, SPEC.size, { fit: 'contain', kernel: 'lanczos3' }).toColourspace('b-w').raw().toBuffer();
      const full = await preprocess(big.dicom, SPEC);
      const d = diffStats(reduced, full.pixels);
      assert.ok(d.mean <= 1, `mean |Δ| ${d.mean.toFixed(2)} grey levels against the native file's model input`);
    });
  }
});

/** One encoding per decoder (the others share its code path). */
const PER_DECODER = ['1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.201'];

describe('broken compressed frames are 422 UNPROCESSABLE, never a crash', () => {
  for (const ts of PER_DECODER) {
    const enc = ENCODINGS.find((e) => e.ts === ts)!;
    test(enc.label, async (t) => {
      if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
      const src = sources[1]!;
      const frame = firstFrame(fixture(enc, src));
      const wrap = (f: Uint8Array) => encapsulate(src.dicom, ts, f);

      // Cut short: no end marker.
      for (const keep of [frame.length >> 1, frame.length - 40, 12]) {
        const err = await expectAppError(decodeDicom(wrap(frame.subarray(0, keep))), 'UNPROCESSABLE');
        assert.match(err.message, /truncated/);
      }
      // Marker segments destroyed (start and end markers kept).
      const header = frame.slice();
      header.fill(0x00, 2, Math.min(80, frame.length - 2));
      await expectAppError(decodeDicom(wrap(header)), 'UNPROCESSABLE');
      // Not this codec at all.
      await expectAppError(decodeDicom(wrap(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff, 0xd9]))), 'UNPROCESSABLE');
      // Entropy-coded data overwritten: a decoder may fail (422) or return noise of the right size.
      for (const seed of [1, 2, 3]) {
        const noisy = frame.slice();
        let x = seed * 2654435761;
        for (let i = frame.length >> 2; i < (frame.length * 3) >> 2; i++) {
          x = (x * 1103515245 + 12345) >>> 0;
          noisy[i] = x >>> 24;
        }
        try {
          const img = await decodeDicom(wrap(noisy));
          assert.equal(img.pixels.length, src.width * src.height);
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'UNPROCESSABLE', String(err));
        }
      }
      // None of that leaves the decoder unusable: the intact frame still decodes exactly.
      const again = await readDicomStoredFrame(wrap(frame));
      assert.equal(diffStats(again.values, src.pixels).differing, 0, 'the intact frame decodes exactly after the broken ones');
    });
  }

  test('a frame that does not match the header (size, bit depth) is refused', async (t) => {
    const enc = ENCODINGS.find((e) => e.ts === '1.2.840.10008.1.2.4.90')!;
    if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
    const twelve = fixture(enc, sources[1]!);
    const file = readDicomDict(twelve);
    file.dict['00280010'] = { vr: 'US', Value: [sources[1]!.height - 8] };
    let err = await expectAppError(decodeDicom(writeDicomDict(file.meta, file.dict)), 'UNPROCESSABLE');
    assert.match(err.message, /header says/);
    // JPEG Lossless is checked against the header before decoding (its decoder allocates what the frame header says).
    const lossless = ENCODINGS.find((e) => e.ts === '1.2.840.10008.1.2.4.70')!;
    if (haveTool(lossless.tool)) {
      const l = readDicomDict(fixture(lossless, sources[1]!));
      l.dict['00280010'] = { vr: 'US', Value: [sources[1]!.height * 4] };
      const e = await expectAppError(decodeDicom(writeDicomDict(l.meta, l.dict)), 'UNPROCESSABLE');
      assert.match(e.message, /JPEG Lossless.*the frame is 128x128 but the header says 128x512/);
    }
    // A 16-bit codestream under an 8-bit header.
    const eight = readDicomDict(sources[0]!.dicom);
    const wrapped = readDicomDict(encapsulate(sources[0]!.dicom, enc.ts, firstFrame(twelve)));
    wrapped.dict['00280100'] = eight.dict['00280100']!;
    err = await expectAppError(decodeDicom(writeDicomDict(wrapped.meta, wrapped.dict)), 'UNPROCESSABLE');
    assert.match(err.message, /more than Bits Allocated/);
  });
});

describe('a deflated data set is inflated with a cap', () => {
  test('a deflate bomb (260 MiB of zeros behind a valid meta header) is 422, not inflated', async (t) => {
    const enc = ENCODINGS.find((e) => e.ts === '1.2.840.10008.1.2.1.99')!;
    if (!haveTool(enc.tool)) return t.skip(missingTool(enc.tool));
    const deflated = fixture(enc, sources[0]!);
    // Preamble + DICM + (0002,0000) UL group length: the data set starts after the meta group.
    assert.equal(deflated.toString('latin1', 128, 132), 'DICM');
    const metaEnd = 132 + 12 + deflated.readUInt32LE(140);
    const { deflateRawSync } = await import('node:zlib');
    const bomb = Buffer.concat([deflated.subarray(0, metaEnd), deflateRawSync(Buffer.alloc(260 * 1024 * 1024), { level: 1 })]);
    assert.ok(bomb.length < 4 * 1024 * 1024, `the bomb is small on disk (${bomb.length} bytes)`);
    const err = await expectAppError(decodeDicom(bomb), 'UNPROCESSABLE');
    assert.match(err.message, /inflates past 256 MiB/);
  });
});

describe('12-bit JPEG Extended (1.2.840.10008.1.2.4.51, process 4)', () => {
  test('decodes to exactly what dcmtk\'s own decoder (dcmdjpeg) gives, shows the source picture within JPEG q90 and gives the same model input', async (t) => {
    for (const need of ['dcmcjpeg', 'dcmdjpeg']) if (!haveTool(need)) return t.skip(missingTool(need));
    const src = sources[1]!; // 12-bit MONOCHROME1 with rescale + window
    const buf = encodeWith({ ...ENCODINGS[0]!, encode: (_s, i, o) => execFileSync('dcmcjpeg', ['+ee', '+q', '90', i, o]) }, src, work.dir, 'ext12');
    assert.equal(readDicomDict(buf).meta['00020010']?.Value?.[0], '1.2.840.10008.1.2.4.51');
    const reference = join(work.dir, 'ext12-dcmdjpeg.dcm');
    execFileSync('dcmdjpeg', [join(work.dir, 'ext12-out.dcm'), reference]);
    const frame = await readDicomStoredFrame(buf);
    assert.equal(frame.values instanceof Uint16Array, true);
    assert.equal(diffStats(frame.values, (await readDicomStoredFrame(readFileSync(reference))).values).differing, 0, 'same stored values as dcmdjpeg');
    // dcmcjpeg's lossy modes fold the rescale into the stored values (slope 1, intercept 0, window
    // moved with them): compare what is displayed, not the stored numbers.
    const img = await decodeDicom(buf);
    const native = await decodeDicom(src.dicom);
    assert.equal(img.meta.inverted, native.meta.inverted);
    const shown = diffStats(img.pixels, native.pixels);
    assert.ok(shown.mean <= 2, `displayed mean |Δ| ${shown.mean.toFixed(2)} grey levels`);
    const model = diffStats((await preprocess(buf, SPEC)).pixels, (await preprocess(src.dicom, SPEC)).pixels);
    assert.ok(model.mean / 255 <= LOSSY_INPUT_TOLERANCE, `model input mean |Δ| ${(model.mean / 255).toFixed(4)}`);
  });

  test('a 12-bit codestream cut short, or one whose header lies about its precision, is 422 naming the codec', async (t) => {
    if (!haveTool('dcmcjpeg')) return t.skip(missingTool('dcmcjpeg'));
    const buf = encodeWith({ ...ENCODINGS[0]!, encode: (_s, i, o) => execFileSync('dcmcjpeg', ['+ee', i, o]) }, sources[1]!, work.dir, 'ext12b');
    const frame = firstFrame(buf);
    const cut = encapsulate(buf, '1.2.840.10008.1.2.4.51', frame.subarray(0, Math.floor(frame.length / 2)));
    assert.match((await expectAppError(decodeDicom(cut), 'UNPROCESSABLE')).message, /JPEG Extended \(12-bit\)/);
    // The same bytes with the SOF's precision byte set to 8: not a 12-bit codestream.
    const sof = frame.findIndex((b, i) => b === 0xff && frame[i + 1] === 0xc1);
    assert.ok(sof > 0, 'an SOF1 marker');
    const eight = Uint8Array.from(frame);
    eight[sof + 4] = 8;
    assert.match((await expectAppError(decodeDicom(encapsulate(buf, '1.2.840.10008.1.2.4.51', eight)), 'UNPROCESSABLE')).message, /not 12-bit DCT JPEG/);
    // And it still decodes after those failures (the decoder module was replaced, not left broken).
    assert.equal((await readDicomStoredFrame(buf)).values.length, sources[1]!.width * sources[1]!.height);
  });
});

describe('the shared real radiograph, transcoded losslessly', () => {
  for (const [tool, args, ts] of [['dcmcjpls', ['+el'], '.80'], ['gdcmconv', ['--j2k'], '.90'], ['dcmcjpeg', ['+e1'], '.70']] as const) {
    test(`JPEG Baseline → native (dcmdjpeg) → ${tool} ${args.join(' ')} (${ts}) decodes to the same picture`, async (t) => {
      if (!dicomFixtures()) return t.skip(DICOM_SKIP);
      for (const need of ['dcmdjpeg', tool]) if (!haveTool(need)) return t.skip(missingTool(need));
      const nativeFile = join(work.dir, `real-native-${tool}.dcm`);
      const out = join(work.dir, `real-${tool}.dcm`);
      execFileSync('dcmdjpeg', [DICOM_MONO2, nativeFile]);
      execFileSync(tool, [...args, nativeFile, out]);
      const native = readFileSync(nativeFile);
      const compressed = readFileSync(out);
      assert.ok(readDicomDict(compressed).meta['00020010']?.Value?.[0]?.toString().endsWith(ts));
      const a = await readDicomStoredFrame(native);
      const b = await readDicomStoredFrame(compressed);
      assert.equal(diffStats(a.values, b.values).differing, 0);
      assert.equal(diffStats((await decodeDicom(native)).pixels, (await decodeDicom(compressed)).pixels).differing, 0);
    });
  }
});
