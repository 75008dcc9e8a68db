import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { REPO } from './service-cli.js';

// No container engine in CI: the Dockerfile is checked statically against the repository.
const file = join(REPO, 'deploy', 'docker', 'Dockerfile');
const lines = readFileSync(file, 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

t.test('multi-stage, non-root, sources that exist', async (t) => {
  const stages = lines.filter((l) => /^FROM\s/i.test(l));
  t.ok(stages.length >= 2, 'multi-stage');
  const finalStage = lines.slice(lines.lastIndexOf(stages.at(-1)!));
  const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1);
  t.ok(user, 'the final stage sets a user');
  t.notMatch(user ?? '', /^USER\s+(root|0)(:|$)/i, 'and it is not root');
  t.notOk(finalStage.some((l) => /apt-get install|npm (ci|install)\b/.test(l) && /g\+\+|make|python3|--include=dev/.test(l)), 'no compiler in the image that runs');
  for (const l of lines.filter((x) => /^COPY\s/i.test(x) && !/--from=/.test(x))) {
    const parts = l.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) t.ok(existsSync(join(REPO, src)), `COPY source ${src} exists in the repository`);
  }
  const entry = lines.find((l) => /^ENTRYPOINT/.test(l)) ?? '';
  t.match(entry, /dist\/cli\.js/, 'runs the built CLI');
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  t.equal(pkg.bin.vigie, 'dist/cli.js', 'the same file package.json names');
  t.ok(pkg.scripts.build, 'npm run build exists');
  t.ok(lines.some((l) => /^STOPSIGNAL SIGTERM/.test(l)), 'SIGTERM stops it');
});

t.test('the config baked into the image is valid and listens beyond loopback', async (t) => {
  const cfg = loadConfig(join(REPO, 'deploy', 'docker', 'vigie.json'));
  t.equal(cfg.listen[0]?.host, '0.0.0.0');
  t.equal(cfg.metrics.listen.host, '0.0.0.0', 'metrics reachable through the published port');
  const health = lines.find((l) => /^HEALTHCHECK/.test(l)) ?? '';
  t.match(health, new RegExp(`127\\.0\\.0\\.1:${cfg.metrics.listen.port}/metrics`), 'the health check scrapes the metrics port');
});
