import type { Command } from 'commander';
import { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

export function registerStart(program: Command): void {
  withCommon(program.command('start'))
    .description('run the gateway')
    .action(async (opts: CommonOpts) => {
      const config = configFrom(opts);
      const log = createLogger(config.log.level);
      const t0 = performance.now();
      const gateway = new Gateway({ config, log });
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info('stopping', { signal });
        await gateway.stop(5000);
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      try {
        await gateway.start();
      } catch (e) {
        log.error(`cannot start: ${(e as Error).message}`);
        process.exit(1);
      }
      log.info('gateway ready', { seconds: ((performance.now() - t0) / 1000).toFixed(2), rssMiB: Math.round(process.memoryUsage().rss / 1048576) });
    });
}
