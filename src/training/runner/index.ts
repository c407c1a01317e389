export * from './runner.js';
export * from './events.js';
export { LocalProcessRunner, type LocalProcessRunnerOptions } from './local-process-runner.js';
export { findPython, resetPythonCache, INSTALL_COMMAND, DEFAULT_CANDIDATES } from './python.js';
