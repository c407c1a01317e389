// Starts a TypeScript worker entry when the platform runs from sources under tsx: worker threads
// do not inherit tsx's loader, so register it here before importing the entry.
import { workerData } from 'node:worker_threads';

const { register } = await import(workerData.tsxApi);
register();
await import(workerData.entry);
