import { sql } from 'kysely';
import type { ReproduceCheck } from '../../core/backup/index.js';
import { ImagePool } from '../../core/imaging/image-pool.js';
import type { ModelSource } from '../../deployment/service/model-source.js';
import { siteTemperature, specOf } from '../../deployment/service/registry-source.js';
import { scoreVersion } from '../../deployment/service/scoring.js';

/** Largest difference between the recorded and the reproduced probability that still counts as the same. */
export const REPRODUCE_TOLERANCE = 1e-6;

interface Row {
  id: string;
  probability: number;
  model_name: string;
  model_version: string;
  image_sha256: string;
  onnx_key: string;
  preprocessing: string | null;
  threshold: number | null;
  metadata: string | null;
  object_key: string;
}

function parseJson(text: string | null): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * The verify check "a stored prediction reproduces": the newest prediction record of a registered
 * model version on an image the data pipeline stored is run again from the restored backup — the
 * version's ONNX file and the image read from the backup's objects — through the deployment's own
 * scoring path (the worker pool's decoding and the version's recorded preprocessing, an ONNX
 * Runtime session with the recorded threshold and site temperature), and its probability must equal
 * the recorded one within {@link REPRODUCE_TOLERANCE}.
 */
export const reproduceStoredPrediction: ReproduceCheck = async ({ database, readObject }) => {
  const found = await sql<Row>`
    select p.id, p.probability, p.model_name, p.model_version, p.image_sha256,
           mv.onnx_key, mv.preprocessing, mv.threshold, mv.metadata, di.object_key
      from predictions p
      join model_versions mv on mv.name = p.model_name and cast(mv.version as varchar(20)) = p.model_version
      join data_images di on di.hash = p.image_sha256
     where mv.onnx_key is not null and p.image_sha256 <> ''
     order by p.time desc, p.id desc
     limit 1`.execute(database.db);
  const row = found.rows[0];
  if (!row) return { ok: null, message: 'no prediction of a registered model version on a stored image to reproduce' };
  const recorded = Number(row.probability);
  const source: ModelSource = {
    resolve: async () => ({
      name: row.model_name,
      version: row.model_version,
      alias: null,
      preprocessing: specOf(parseJson(row.preprocessing)),
      threshold: row.threshold === null ? null : Number(row.threshold),
      temperature: siteTemperature(parseJson(row.metadata)),
      uri: `backup:objects/${row.onnx_key}`,
      fetch: () => readObject(row.onnx_key),
    }),
  };
  const pool = new ImagePool({ threads: 1 });
  try {
    const report = await scoreVersion({ source, pool, images: { read: () => readObject(row.object_key) }, threads: 1 }, row.model_name, row.model_version, [{ sha256: row.image_sha256 }]);
    const result = report.results[0]!;
    const what = `prediction ${row.id} (${row.model_name} v${row.model_version}, image ${row.image_sha256.slice(0, 12)}…)`;
    if (!result.ok) return { ok: false, message: `${what} does not reproduce: ${result.error.code} ${result.error.message}` };
    const diff = Math.abs(result.probability - recorded);
    return diff <= REPRODUCE_TOLERANCE
      ? { ok: true, message: `prediction ${row.id} reproduces p=${result.probability.toFixed(6)} from the restored model and image` }
      : { ok: false, message: `${what} gives p=${result.probability} from the restored model and image, recorded p=${recorded} (|Δ| ${diff.toExponential(2)} > ${REPRODUCE_TOLERANCE})` };
  } finally {
    await pool.close();
  }
};
