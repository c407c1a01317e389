export * from './backup.js';
export * from './manifest.js';
