import type { Migration } from 'kysely';
import * as core from './0001-core.js';
import * as clusterSchedules from './0002-cluster-schedules.js';
import * as apiKeyLifecycle from './0003-api-key-lifecycle.js';
import * as queueJobBackoff from './0004-queue-job-backoff.js';
import * as dataPipeline from './0100-data-pipeline.js';
import * as dicomInstances from './0101-dicom-instances.js';
import * as training from './0200-training.js';
import * as trainingOwnerPid from './0201-training-owner-pid.js';
import * as modelRegistry from './0300-model-registry.js';
import * as deployment from './0400-deployment.js';
import * as deploymentServingState from './0401-deployment-serving-state.js';
import * as monitoring from './0500-monitoring.js';
import * as alertsOneActive from './0501-alerts-one-active.js';

/**
 * Every migration, by name. Ranges: 0001–0099 core, 0100 data pipeline, 0200 training,
 * 0300 model registry, 0400 deployment, 0500 monitoring. Names are never reused or edited once
 * released; add a new file for a change.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-core': core,
  '0002-cluster-schedules': clusterSchedules,
  '0003-api-key-lifecycle': apiKeyLifecycle,
  '0004-queue-job-backoff': queueJobBackoff,
  '0100-data-pipeline': dataPipeline,
  '0101-dicom-instances': dicomInstances,
  '0200-training': training,
  '0201-training-owner-pid': trainingOwnerPid,
  '0300-model-registry': modelRegistry,
  '0400-deployment': deployment,
  '0401-deployment-serving-state': deploymentServingState,
  '0500-monitoring': monitoring,
  '0501-alerts-one-active': alertsOneActive,
};
