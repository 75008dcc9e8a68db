type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function format(v: unknown): string {
  if (typeof v === 'string') return /^[\w./:@+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

/**
 * One line per event on stderr: `time LEVEL message key=value ...`, readable by a person on a
 * console and by journald. Nothing secret is ever passed in (tokens are never logged).
 */
export function createLogger(level: Level = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger & { level: Level } {
  const logger = {
    level,
    log(l: Level, msg: string, fields?: Fields) {
      if (RANK[l] < RANK[logger.level]) return;
      let line = `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${msg}`;
      if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${format(v)}`;
      write(line + '\n');
    },
    debug: (m: string, f?: Fields) => logger.log('debug', m, f),
    info: (m: string, f?: Fields) => logger.log('info', m, f),
    warn: (m: string, f?: Fields) => logger.log('warn', m, f),
    error: (m: string, f?: Fields) => logger.log('error', m, f),
  };
  return logger;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
