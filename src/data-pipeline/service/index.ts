/** The data pipeline's public service API, for other services and the CLI. */
export { DataPipelineService, dataPipelineService } from './data-pipeline-service.js';
export { exportDatasetVersion, toExportManifest, type ExportManifest, type ExportResult } from './export.js';
export { DEFAULT_AUGMENTATION, parseAugmentationSpec, type AugmentationSpec, type AugmentationSpecInput } from './augmentation.js';
export type { DatasetManifest, ManifestItem } from './manifest.js';
export { versionIdOf } from './manifest.js';
export { dataContext, type DataContext } from './context.js';
export { ingestFile, type IngestInput, type IngestResult } from './ingest.js';
export { runImport, startImport, getImport, type ImportProgress, type ImportStatus } from './import.js';
export { createVersion, getVersion, listVersions, getManifest, diffVersions } from './versions.js';
export { validateDataset, type ValidationReport } from './validate.js';
export { patientIdFromFileName } from './patient-id.js';
