import type { FastifyPluginAsync } from 'fastify';
import type { ServicePluginOptions } from '../core/http/index.js';

/** data pipeline routes. */
const plugin: FastifyPluginAsync<ServicePluginOptions> = async () => {};

export default plugin;
