import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { inputCropSchema, type InputCrop } from '../../training/routes/schemas.js';
import { ServiceClient } from '../client.js';

/** What GET /train/{id} answers (the fields the CLI shows). */
interface JobView {
  job_id: string;
  state: string;
  model: string;
  attempt: number;
  progress: { phase: string; epoch: number; epochs: number; step: number; steps: number; fraction: number } | null;
  eta_seconds: number | null;
  images_per_sec: number | null;
  metrics: Record<string, unknown> | null;
  best_epoch: number | null;
  best_val_auc: number | null;
  threshold: number | null;
  parity: { max_abs_diff?: number | null; ok?: boolean | null; method?: string } | null;
  artifacts: Record<string, { key: string; bytes: number }>;
  last_checkpoint: { epoch: number; step: number } | null;
  registered: { name: string; version: number | string } | null;
  run_id: string | null;
  error: string | null;
}

interface EventView {
  seq: number;
  attempt: number;
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the trainer's event payloads are free-form JSON lines
  data: Record<string, any>;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

function client(): ServiceClient {
  return new ServiceClient('training');
}

function num(name: string, value: string | undefined, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'}, got '${value}'`);
  return n;
}

/**
 * `--input-crop top,bottom,left,right` (fractions of the square model input, e.g. a lung-field
 * report's atlas.bbox with a margin) as the input_crop hyper-parameter; 'none' is null.
 */
export function parseInputCrop(value: string): InputCrop | null {
  if (value.trim() === 'none') return null;
  const parts = value.split(',').map((p) => p.trim());
  const n = parts.map(Number);
  if (parts.length !== 4 || parts.some((p) => p === '') || !n.every(Number.isFinite)) {
    throw new Error(`--input-crop must be top,bottom,left,right (four fractions of the input, e.g. 0.05,0.9,0.05,0.95) or 'none', got '${value}'`);
  }
  const parsed = inputCropSchema.safeParse({ top: n[0], bottom: n[1], left: n[2], right: n[3] });
  if (!parsed.success) throw new Error(`--input-crop ${value}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

function json(name: string, value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${name} must be a JSON object (${(err as Error).message})`);
  }
}

const fmt = (v: unknown, digits = 4): string => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : '–');

function duration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

interface TrainOptions {
  dataset?: string;
  datasetDir?: string;
  model: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  weightDecay?: string;
  scheduler?: string;
  warmupEpochs?: string;
  balance?: string;
  patience?: string;
  dropout?: string;
  labelSmoothing?: string;
  mixup?: string;
  cutmix?: string;
  maxTrainBatches?: string;
  inputCrop?: string;
  inputSize?: string;
  seed?: string;
  processes?: string;
  augmentation?: string;
  thresholdMethod?: string;
  targetSensitivity?: string;
  testDataset?: string[];
  onnx: boolean;
  int8?: boolean;
  experiment?: string;
  registerAs?: string;
  ensembleOf?: string;
  follow?: string | boolean;
  json?: boolean;
}

function hyperparameters(o: TrainOptions): Record<string, unknown> {
  const hp: Record<string, unknown> = {
    epochs: num('--epochs', o.epochs, true),
    batch_size: num('--batch-size', o.batchSize, true),
    lr: num('--lr', o.lr),
    weight_decay: num('--weight-decay', o.weightDecay),
    scheduler: o.scheduler,
    warmup_epochs: num('--warmup-epochs', o.warmupEpochs),
    balance: o.balance,
    early_stopping_patience: o.patience === 'none' ? null : num('--patience', o.patience, true),
    dropout: num('--dropout', o.dropout),
    label_smoothing: num('--label-smoothing', o.labelSmoothing),
    mixup_alpha: num('--mixup', o.mixup),
    cutmix_alpha: num('--cutmix', o.cutmix),
    max_train_batches: num('--max-train-batches', o.maxTrainBatches, true),
    input_crop: o.inputCrop === undefined ? undefined : parseInputCrop(o.inputCrop),
  };
  return Object.fromEntries(Object.entries(hp).filter(([, v]) => v !== undefined));
}

/** POST /train for an ensemble of finished jobs: their dataset (a given --dataset must be it), no training options. */
function ensembleBody(o: TrainOptions): Record<string, unknown> {
  const ids = (o.ensembleOf ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length < 2) throw new Error('--ensemble-of needs 2 to 5 comma-separated job ids, e.g. --ensemble-of t-abc,t-def');
  const body: Record<string, unknown> = { ensemble_of: ids };
  if (o.dataset) body.dataset_version = o.dataset;
  if (o.thresholdMethod || o.targetSensitivity) {
    body.threshold = { ...(o.thresholdMethod ? { method: o.thresholdMethod } : {}), ...(o.targetSensitivity ? { target_sensitivity: num('--target-sensitivity', o.targetSensitivity) } : {}) };
  }
  if (o.seed !== undefined) body.seed = num('--seed', o.seed, true);
  if (o.testDataset?.length) body.test_dataset_versions = o.testDataset;
  if (!o.onnx) body.export = { onnx: false };
  if (o.experiment) body.experiment = o.experiment;
  return body;
}

/** The POST /train (and /optimize) body from the command-line options. */
function jobBody(o: TrainOptions): Record<string, unknown> {
  if (o.ensembleOf !== undefined) return ensembleBody(o);
  if (!o.dataset && !o.datasetDir) throw new Error('give --dataset <version id> (or --dataset-dir <export folder>)');
  const body: Record<string, unknown> = {
    ...(o.dataset ? { dataset_version: o.dataset } : { dataset_dir: o.datasetDir }),
    model: o.model,
    hyperparameters: hyperparameters(o),
  };
  if (o.inputSize !== undefined) body.input_size = num('--input-size', o.inputSize, true);
  if (o.seed !== undefined) body.seed = num('--seed', o.seed, true);
  if (o.processes !== undefined) body.distributed = { processes: num('--processes', o.processes, true) };
  if (o.augmentation !== undefined) body.augmentation = json('--augmentation', o.augmentation);
  if (o.thresholdMethod || o.targetSensitivity) {
    body.threshold = { ...(o.thresholdMethod ? { method: o.thresholdMethod } : {}), ...(o.targetSensitivity ? { target_sensitivity: num('--target-sensitivity', o.targetSensitivity) } : {}) };
  }
  if (o.testDataset?.length) body.test_dataset_versions = o.testDataset;
  if (!o.onnx) body.export = { onnx: false };
  if (o.int8) {
    if (!o.onnx) throw new Error('--int8 quantizes the ONNX export; it cannot go with --no-onnx');
    body.export = { int8: true };
  }
  if (o.experiment) body.experiment = o.experiment;
  return body;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the trainer's event payloads are free-form JSON lines
function epochLine(d: Record<string, any>, attempt: number): string {
  const trial = d.trial !== undefined ? `trial ${d.trial} ` : '';
  return (
    `${trial}epoch ${d.epoch}/${d.epochs}  train_loss ${fmt(d.train_loss)}  val_loss ${fmt(d.val_loss)}  val_auc ${fmt(d.val_auc)}` +
    `  lr ${fmt(d.lr, 3)}  ${fmt(d.images_per_sec, 3)} img/s  ${fmt(d.seconds, 3)}s${d.early_stopped ? '  (early stop)' : ''}${attempt > 1 ? `  [attempt ${attempt}]` : ''}`
  );
}

function eventLine(e: EventView): string | null {
  const d = e.data;
  switch (e.event) {
    case 'started':
      return `started on ${d.device}${d.device_name ? ` (${d.device_name})` : ''}, ${d.threads} threads: ${d.model} (${d.parameters} parameters), ${d.train_images} train / ${d.val_images} val images at ${d.input_size}px${d.start_epoch > 1 ? `, resuming at epoch ${d.start_epoch}` : ''}`;
    case 'epoch':
      return epochLine(d, e.attempt);
    case 'evaluation':
      return `evaluation ${d.split}: auc ${fmt(d.metrics?.auc)} (95% CI ${fmt(d.metrics?.auc_ci?.[0], 3)}–${fmt(d.metrics?.auc_ci?.[1], 3)})  sensitivity ${fmt(d.metrics?.sensitivity, 3)}  specificity ${fmt(d.metrics?.specificity, 3)}  ece ${fmt(d.metrics?.calibration?.ece, 3)}`;
    case 'cancelled':
      return `cancelled at epoch ${d.epoch}${d.step ? ` step ${d.step}` : ''}; checkpoint ${d.checkpoint ?? 'none'}`;
    case 'failed':
      return `failed: ${d.reason}`;
    case 'state':
      return d.state === 'running' ? null : `state: ${d.state}${d.error ? ` (${d.error})` : ''}`;
    default:
      return null;
  }
}

function printSummary(job: JobView): void {
  console.log(`job ${job.job_id}: ${job.state}${job.error ? ` — ${job.error}` : ''}`);
  if (job.state === 'succeeded') {
    const m = job.metrics ?? {};
    console.log(
      `  best epoch ${job.best_epoch}, val AUC ${fmt(job.best_val_auc)}; at threshold ${fmt(job.threshold, 3)}: sensitivity ${fmt(m.sensitivity, 3)}, specificity ${fmt(m.specificity, 3)}, F1 ${fmt(m.f1, 3)}`,
    );
    if (job.parity) console.log(`  ONNX parity (${job.parity.method}): max |Δp| ${fmt(job.parity.max_abs_diff, 3)} ${job.parity.ok ? 'ok' : 'NOT ok'}`);
    console.log(`  artifacts: ${Object.keys(job.artifacts).join(', ')}`);
    if (job.run_id) console.log(`  tracking run ${job.run_id}`);
    if (job.registered) console.log(`  registered as ${job.registered.name} v${job.registered.version}`);
  } else if (job.last_checkpoint && job.state !== 'succeeded') {
    console.log(`  last checkpoint: epoch ${job.last_checkpoint.epoch}${job.last_checkpoint.step ? ` + ${job.last_checkpoint.step} steps` : ''}; continue with: xray train resume ${job.job_id} --follow`);
  }
}

/**
 * Follows a job until it ends: a progress bar (epoch/step fraction, images/s, ETA) with each
 * epoch's metrics printed above it as it completes. Uses the long-poll events endpoint, so it
 * works through the gateway and across replicas. Returns the final job.
 */
async function follow(api: ServiceClient, jobId: string): Promise<JobView> {
  const tty = process.stderr.isTTY === true;
  const multibar = tty
    ? new cliProgress.MultiBar(
        { format: '{phase} |{bar}| {percentage}% | epoch {epoch}/{epochs} | {ips} img/s | ETA {eta}', hideCursor: true, clearOnComplete: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const bar = multibar?.create(1000, 0, { phase: 'queued', epoch: 0, epochs: '?', ips: '–', eta: '–' });
  const say = (line: string) => (multibar ? multibar.log(`${line}\n`) : console.log(line));
  let after = 0;
  let job = await api.get<JobView>(`/train/${encodeURIComponent(jobId)}`);
  const interrupt = () => {
    multibar?.stop();
    console.error(`\nstopped following; the job goes on. Follow again with: xray train --follow ${jobId}`);
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  try {
    for (;;) {
      const batch = await api.get<{ events: EventView[]; next_after: number; done: boolean; state: string }>(
        `/train/${encodeURIComponent(jobId)}/events?after=${after}&wait=20`,
      );
      for (const e of batch.events) {
        const line = eventLine(e);
        if (line) say(line);
      }
      after = batch.next_after;
      job = await api.get<JobView>(`/train/${encodeURIComponent(jobId)}`);
      const p = job.progress;
      bar?.update(Math.round((p?.fraction ?? 0) * 1000), {
        phase: p?.phase ?? job.state,
        epoch: p?.epoch ?? 0,
        epochs: p?.epochs ?? '?',
        ips: fmt(job.images_per_sec, 3),
        eta: duration(job.eta_seconds),
      });
      if (batch.done || (FINAL.has(job.state) && batch.events.length === 0)) break;
    }
  } finally {
    process.off('SIGINT', interrupt);
    multibar?.stop();
  }
  return job;
}

async function finish(api: ServiceClient, jobId: string, o: { follow?: string | boolean; json?: boolean }, submitted: { job_id: string; state: string }): Promise<void> {
  if (!o.follow) {
    console.log(o.json ? JSON.stringify(submitted) : `${submitted.state} ${submitted.job_id}  (follow with: xray train --follow ${submitted.job_id})`);
    return;
  }
  const job = await follow(api, jobId);
  if (o.json) console.log(JSON.stringify(job, null, 2));
  else printSummary(job);
  if (job.state !== 'succeeded') process.exitCode = 1;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train a model on a dataset version (PyTorch worker), or act on a job: `xray train --dataset <id> --model compact_cnn --epochs 10 --follow`, `xray train --ensemble-of <job>,<job> --follow`, `xray train --follow <job>`, `xray train cancel|resume|status <job>`, `xray train list`, `xray train register <job> --name pneumonia`',
    )
    .argument('[action]', 'cancel | resume | status | list | register (omit to start a job)')
    .argument('[job]', 'job id for cancel/resume/status/register')
    .option('--dataset <version>', 'dataset version id')
    .option('--dataset-dir <dir>', 'an exported dataset folder on the server (dev)')
    .option('--model <name>', 'compact_cnn | compact_resnet | efficientnet_b0…b4 | resnet18 | resnet50 | densenet121', 'compact_cnn')
    .option('--epochs <n>')
    .option('--batch-size <n>')
    .option('--lr <x>', 'peak learning rate (AdamW)')
    .option('--weight-decay <x>')
    .option('--scheduler <name>', 'cosine | onecycle | none')
    .option('--warmup-epochs <x>')
    .option('--balance <mode>', 'loss | sampler | none')
    .option('--patience <n>', "early-stopping patience in epochs ('none' = off)")
    .option('--dropout <x>')
    .option('--label-smoothing <x>')
    .option('--mixup <alpha>', 'mixup: mix image pairs and targets, lambda ~ Beta(alpha, alpha), 0–1 (0 = off)')
    .option('--cutmix <alpha>', 'cutmix: paste a box from another image, lambda ~ Beta(alpha, alpha), 0–1 (0 = off; with --mixup each batch picks one)')
    .option('--max-train-batches <n>', 'cap optimizer steps per epoch (smoke runs)')
    .option('--input-size <px>', 'model input side (default: the dataset preprocessing size)')
    .option('--input-crop <box>', "train on a box of the input: top,bottom,left,right fractions (each side >= 0.3), e.g. a lung-field report's atlas.bbox with a margin; the model crops and resizes it itself")
    .option('--seed <n>')
    .option('--processes <n>', 'data-parallel training in n processes (torchrun; --batch-size stays the global batch)')
    .option('--augmentation <json>', 'augmentation overrides, e.g. \'{"rotation_deg": 5}\'')
    .option('--threshold-method <m>', 'youden | sensitivity | robust (middle of the near-optimal range over shifted validation copies)')
    .option('--target-sensitivity <x>')
    .option('--test-dataset <version...>', 'extra dataset versions evaluated as external test sets')
    .option('--no-onnx', 'skip the ONNX export')
    .option('--int8', 'also export a statically quantized INT8 variant; with --register-as it is registered beside the FP32 version and may serve only once it passes its parity gate (AUC drop <= 0.002, mean |dp| <= 0.01 on the validation split)')
    .option('--experiment <name>', "tracking experiment (default 'pneumonia')")
    .option('--register-as <name>', 'register the model under this name when the job succeeds')
    .option('--ensemble-of <jobs>', "combine 2–5 succeeded jobs (comma-separated ids; same dataset version and input size) into one served model instead of training; --dataset, if given, must be theirs")
    .option('--name <name>', 'model name for `register`')
    .option('--follow [job]', 'show live progress until the job ends (give a job id to follow an existing job)')
    .option('--json', 'print JSON')
    .action(async (action: string | undefined, jobArg: string | undefined, o: TrainOptions & { name?: string }) => {
      const api = client();
      const needJob = (): string => {
        if (!jobArg) throw new Error(`xray train ${action} needs a job id`);
        return encodeURIComponent(jobArg);
      };
      switch (action) {
        case undefined: {
          if (typeof o.follow === 'string' && !o.dataset && !o.datasetDir && !o.ensembleOf) {
            const job = await follow(api, o.follow);
            if (o.json) console.log(JSON.stringify(job, null, 2));
            else printSummary(job);
            if (job.state !== 'succeeded') process.exitCode = 1;
            return;
          }
          const body = jobBody(o);
          if (o.registerAs) body.register_as = o.registerAs;
          const submitted = await api.post<{ job_id: string; state: string }>('/train', body);
          await finish(api, submitted.job_id, o, submitted);
          return;
        }
        case 'cancel': {
          const job = await api.request<JobView>('DELETE', `/train/${needJob()}`);
          console.log(o.json ? JSON.stringify(job, null, 2) : `cancelling ${job.job_id} (${job.state}); the worker saves a checkpoint first`);
          return;
        }
        case 'resume': {
          const job = await api.post<JobView>(`/train/${needJob()}/resume`);
          await finish(api, job.job_id, o, { job_id: job.job_id, state: `${job.state} (attempt ${job.attempt + 1}, from epoch ${job.last_checkpoint?.epoch ?? 0})` });
          return;
        }
        case 'status': {
          const job = await api.get<JobView>(`/train/${needJob()}`);
          if (o.json) console.log(JSON.stringify(job, null, 2));
          else {
            const p = job.progress;
            console.log(`${job.job_id} ${job.state} ${job.model} attempt ${job.attempt}${p ? ` ${p.phase} epoch ${p.epoch}/${p.epochs} ${Math.round(p.fraction * 100)}% ETA ${duration(job.eta_seconds)}` : ''}`);
            printSummary(job);
          }
          return;
        }
        case 'list': {
          const page = await api.get<{ jobs: (JobView & { created_at: string })[] }>('/train?page_size=50');
          if (o.json) console.log(JSON.stringify(page, null, 2));
          else for (const j of page.jobs) console.log(`${j.job_id}  ${j.state.padEnd(11)} ${j.model.padEnd(16)} val_auc ${fmt(j.best_val_auc)}  ${j.created_at}`);
          return;
        }
        case 'register': {
          if (!o.name) throw new Error('xray train register <job> needs --name <model name>');
          const res = await api.post<{ registered: { name: string; version: number } }>(`/train/${needJob()}/register`, { name: o.name });
          console.log(o.json ? JSON.stringify(res, null, 2) : `registered ${res.registered.name} v${res.registered.version}`);
          return;
        }
        default:
          throw new Error(`unknown action '${action}'; use cancel, resume, status, list or register (or none to start a job)`);
      }
    });

  program
    .command('optimize')
    .description('hyper-parameter search with Optuna (objective: validation AUC): `xray optimize --dataset <id> --trials 4 --pruner median`')
    .option('--dataset <version>', 'dataset version id')
    .option('--dataset-dir <dir>', 'an exported dataset folder on the server (dev)')
    .option('--model <name>', 'model of every trial (or search it with --search)', 'compact_cnn')
    .option('--trials <n>', 'number of trials', '4')
    .option('--pruner <name>', 'median | hyperband | none', 'median')
    .option('--concurrency <n>', 'trials in parallel', '1')
    .option('--search <json>', 'search space, e.g. \'{"lr":{"type":"float","low":1e-4,"high":1e-2,"log":true}}\' (default: lr and dropout)')
    .option('--epochs <n>', 'epochs per trial')
    .option('--batch-size <n>')
    .option('--max-train-batches <n>')
    .option('--input-size <px>')
    .option('--seed <n>')
    .option('--experiment <name>')
    .option('--follow', 'wait and show trials as they finish')
    .option('--json', 'print JSON')
    .action(async (o: TrainOptions & { trials: string; pruner: string; concurrency: string; search?: string; follow?: boolean }) => {
      const api = client();
      const body = {
        ...jobBody({ ...o, onnx: true }),
        search_space: json('--search', o.search) ?? {
          lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
          dropout: { type: 'float', low: 0, high: 0.5 },
        },
        n_trials: num('--trials', o.trials, true),
        pruner: o.pruner,
        concurrency: num('--concurrency', o.concurrency, true),
      };
      const { study_id } = await api.post<{ study_id: string }>('/optimize', body);
      if (!o.follow) {
        console.log(o.json ? JSON.stringify({ study_id }) : `queued study ${study_id} (xray optimize status is GET /api/training/optimize/${study_id})`);
        return;
      }
      const seen = new Map<number, string>();
      for (;;) {
        const s = await api.get<{ state: string; error: string | null; best: { trial: number; value: number | null; params: Record<string, unknown> } | null; trials: { trial: number; state: string; value: number | null; params: Record<string, unknown>; pruned_epoch: number | null }[] }>(
          `/optimize/${encodeURIComponent(study_id)}`,
        );
        for (const t of s.trials) {
          if (seen.get(t.trial) === t.state) continue;
          seen.set(t.trial, t.state);
          console.log(`trial ${t.trial} ${t.state}${t.value !== null ? ` val_auc ${fmt(t.value)}` : ''}${t.pruned_epoch ? ` (pruned at epoch ${t.pruned_epoch})` : ''}  ${JSON.stringify(t.params)}`);
        }
        if (FINAL.has(s.state)) {
          if (o.json) console.log(JSON.stringify(s, null, 2));
          else console.log(`study ${study_id}: ${s.state}${s.error ? ` — ${s.error}` : ''}${s.best ? `; best trial ${s.best.trial} val_auc ${fmt(s.best.value)} ${JSON.stringify(s.best.params)}` : ''}`);
          if (s.state !== 'succeeded') process.exitCode = 1;
          return;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
}
