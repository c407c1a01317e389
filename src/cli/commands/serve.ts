import type { Command } from 'commander';
import { SERVICE_NAMES, type ServiceName } from '../../core/config/index.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .argument('[service]', `one of ${SERVICE_NAMES.join(', ')}, or all`, 'all')
    .description('run one service alone (one container per service) or all of them with the gateway')
    .action(async (service: string) => {
      if (service !== 'all' && !(SERVICE_NAMES as readonly string[]).includes(service)) {
        throw new Error(`unknown service '${service}'; use one of ${SERVICE_NAMES.join(', ')} or all`);
      }
      const { runFromCli } = await import('../../main.js');
      await runFromCli(service === 'all' ? undefined : [service as ServiceName]);
    });
}
