/** What the data pipeline's client offers other services (import-free: types only). */

/** On whose behalf a call is made: their credential travels with it over HTTP. */
export interface DataCallContext {
  authorization?: string;
  requestId?: string;
}

/** The data pipeline, as other services see it. */
export interface DataPipelineClient {
  /** 'in-process' or the base URL it calls. */
  readonly target: string;
  /**
   * The stored bytes of an ingested image (DICOM: the de-identified file) by its sha256.
   * @throws AppError NOT_FOUND when no stored image has that hash.
   */
  imageBytes(sha256: string, ctx?: DataCallContext): Promise<Buffer>;
}

/** Key under which an in-process data pipeline offers its client (LocalServices). */
export const DATA_PIPELINE_LOCAL_KEY = 'data-pipeline.client';
