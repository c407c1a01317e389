export * from './backup.js';
export * from './manifest.js';
export * from './run.js';
