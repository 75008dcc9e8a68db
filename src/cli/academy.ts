import type { Command } from 'commander';
import { loadAcademyConfig, type AcademyConfig } from '../academy/config.js';
import { ConfigError } from '../config/load.js';
import { createLogger } from '../log.js';

function configOrExit(file: string): AcademyConfig {
  try {
    return loadAcademyConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`vigie: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** `vigie academy start|verify`: the academy's view over the PostgreSQL copy of the gateways' journals. */
export function registerAcademy(program: Command): void {
  const academy = program.command('academy').description('the academy service: every gateway\'s journal in PostgreSQL (search, exports, verify, fleet)');

  academy
    .command('start')
    .description('serve the academy API (SIGTERM: stop); tokens: `vigie token create --data <its dataDir>`')
    .requiredOption('-c, --config <file>', 'academy JSON config (see docs/academy.md)')
    .action(async (opts: { config: string }) => {
      const config = configOrExit(opts.config);
      const log = createLogger(config.log.level);
      // Loaded when used: the other commands start without PostgreSQL's client and the API's modules.
      const { startAcademy } = await import('../academy/server.js');
      let server: Awaited<ReturnType<typeof startAcademy>>;
      try {
        server = await startAcademy(config, log);
      } catch (e) {
        log.error(`academy: cannot start: ${(e as Error).message}`);
        process.exit(1);
      }
      const stop = async (signal: string) => {
        log.info('academy stopping', { signal });
        await server.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });

  academy
    .command('verify')
    .description('check each gateway\'s hash chain in the PostgreSQL copy; exit 1 naming the gateway and ids on a problem')
    .requiredOption('-c, --config <file>', 'academy JSON config')
    .option('--gateway <id>', 'only this gateway')
    .action(async (opts: { config: string; gateway?: string }) => {
      const config = configOrExit(opts.config);
      const [{ default: pg }, { verifyCopy }] = await Promise.all([import('pg'), import('../academy/verify.js')]);
      const pool = new pg.Pool({ connectionString: config.postgres.url, max: 1 });
      try {
        const report = await verifyCopy(pool, opts.gateway ? [opts.gateway] : undefined);
        for (const g of report.gateways) {
          process.stdout.write(`${g.gateway}: ${g.ok ? 'ok' : 'PROBLEMS'} (${g.entries} links, ${g.rows} rows, head ${g.head.id}:${g.head.hash.slice(0, 16)})\n`);
          for (const p of g.problems) process.stdout.write(`  ${p.kind}: ${p.message}\n`);
        }
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        await pool.end();
      }
    });
}
