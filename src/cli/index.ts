import { Command } from 'commander';
import { ApiError } from './client.js';
import { ConfigError } from '../core/config/index.js';
import { registerServe } from './commands/serve.js';
import { registerKeys } from './commands/keys.js';
import { registerData } from './commands/data.js';
import { registerAudit } from './commands/audit.js';
import { registerModels } from './commands/models.js';
import { registerTrain } from './commands/train.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerCalibrate } from './commands/calibrate.js';
import { registerBackup } from './commands/backup.js';
import { registerObjects } from './commands/objects.js';

const program = new Command();
program.name('xray').description('xray-mlops: chest X-ray pneumonia MLOps platform').showHelpAfterError();

registerServe(program);
registerKeys(program);
registerBackup(program);
registerObjects(program);
registerData(program);
registerAudit(program);
registerModels(program);
registerTrain(program);
registerEvaluate(program);
registerCalibrate(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ApiError || err instanceof ConfigError || err instanceof Error) {
    console.error(`xray: ${err.message}`);
    process.exit(err instanceof ApiError && err.status >= 500 ? 3 : 1);
  }
  throw err;
}
