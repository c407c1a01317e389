import type { Command } from 'commander';
import { SERVICE_NAMES, type ServiceName } from '../../core/config/index.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .argument('[service]', `one of ${SERVICE_NAMES.join(', ')}, gateway, or all`, 'all')
    .description('run one service alone (one container per service), the gateway alone (sign-in and the web UI behind a load balancer), or all of them with the gateway')
    .action(async (service: string) => {
      if (service !== 'all' && service !== 'gateway' && !(SERVICE_NAMES as readonly string[]).includes(service)) {
        throw new Error(`unknown service '${service}'; use one of ${SERVICE_NAMES.join(', ')}, gateway or all`);
      }
      const { runFromCli } = await import('../../main.js');
      if (service === 'gateway') await runFromCli([], { gateway: true });
      else await runFromCli(service === 'all' ? undefined : [service as ServiceName]);
    });
}
