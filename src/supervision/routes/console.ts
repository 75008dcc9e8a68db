import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PACKAGE_ROOT } from '../../paths.js';

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

// The page only talks to this API; nothing inline, nothing from elsewhere, never in a frame.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The optional minimal console (admin/), served as static files at /admin/; it holds no secret. */
export async function registerConsoleRoutes(app: FastifyInstance, dir = join(PACKAGE_ROOT, 'admin')): Promise<boolean> {
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(FILES)) {
    try {
      files.set(name, await readFile(join(dir, name)));
    } catch {
      return false;
    }
  }
  // The API's address in a browser leads to the console.
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.redirect('/admin/'));
  app.get('/admin', { schema: { hide: true } }, (_req, reply) => reply.redirect('/admin/'));
  app.get<{ Params: { file?: string } }>('/admin/:file', { schema: { hide: true } }, (req, reply) => {
    const name = req.params.file || 'index.html';
    const body = files.get(name);
    if (!body) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'no such file' });
    return reply
      .header('content-type', FILES[name])
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(body);
  });
  return true;
}
