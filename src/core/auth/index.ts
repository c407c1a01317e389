export * from './roles.js';
export * from './key-store.js';
export { authPlugin, forwardedCredential, type AuthOptions } from './auth-plugin.js';
