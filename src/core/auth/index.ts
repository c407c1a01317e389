export * from './roles.js';
export * from './key-store.js';
export { authPlugin, type AuthOptions } from './auth-plugin.js';
