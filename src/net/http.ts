import { createRequire } from 'node:module';

/**
 * node:http, loaded as CommonJS. An ESM import of a builtin reads every one of its exports to
 * build the module namespace, and node:http's lazy WebSocket, CloseEvent and MessageEvent getters
 * (Node 22 and later) then load node's whole bundled undici: 1.7 to 2.6 MiB more heap in each
 * isolate that imports it (the main thread and every proxy thread), for a client Vigie never uses.
 * Types come from `import type ... from 'node:http'`, which leaves nothing at run time.
 */
export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
