import type { FastifyPluginAsync } from 'fastify';
import type { ServicePluginOptions } from '../core/http/index.js';

/** deployment service routes. */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async () => {};

export default plugin;
