/** Row shapes of the training tables (migration 0200-training). JSON columns are text. */

export interface TrainingJobsTable {
  id: string;
  state: string;
  dataset_version: string | null;
  dataset_dir: string | null;
  model: string;
  input_size: number | null;
  experiment: string;
  request: string;
  attempt: number;
  queue_job_id: string | null;
  worker_host: string | null;
  worker_pid: number | null;
  owner_pid: number | null;
  heartbeat_at: number | null;
  progress: string | null;
  current: string | null;
  info: string | null;
  last_checkpoint: string | null;
  artifacts: string | null;
  metrics: string | null;
  test_metrics: string | null;
  parity: string | null;
  threshold: number | null;
  best_epoch: number | null;
  best_val_auc: number | null;
  images_per_sec: number | null;
  run_id: string | null;
  registered: string | null;
  error: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  attempt_started_at: number | null;
  finished_at: number | null;
}

export interface TrainingEventsTable {
  owner_id: string;
  seq: number;
  attempt: number;
  event: string;
  data: string;
  time: number;
}

export interface TrainingEpochsTable {
  job_id: string;
  epoch: number;
  attempt: number;
  metrics: string;
  time: number;
}

export interface TrainingStudiesTable {
  id: string;
  state: string;
  dataset_version: string | null;
  dataset_dir: string | null;
  experiment: string;
  request: string;
  queue_job_id: string | null;
  worker_host: string | null;
  worker_pid: number | null;
  owner_pid: number | null;
  heartbeat_at: number | null;
  best: string | null;
  error: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface TrainingTrialsTable {
  study_id: string;
  trial: number;
  state: string;
  value: number | null;
  params: string;
  history: string;
  pruned_epoch: number | null;
  best_epoch: number | null;
  metrics: string | null;
  run_id: string | null;
  error: string | null;
  updated_at: number;
}

export interface TrainingTables {
  training_jobs: TrainingJobsTable;
  training_events: TrainingEventsTable;
  training_epochs: TrainingEpochsTable;
  training_studies: TrainingStudiesTable;
  training_trials: TrainingTrialsTable;
}
