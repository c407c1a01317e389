export { createServiceApp, RAW_BODY_TYPES, type ServiceAppOptions, type ServicePluginOptions } from './service-app.js';
export { errorEnvelope, errorResponses, pageQuery } from './schemas.js';
export { toErrorBody } from './error-handler.js';
export { isJsonRequest, readManyImages, readSingleImage } from './request-images.js';
