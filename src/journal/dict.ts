import type Database from 'better-sqlite3';
import type { DictName } from './schema.js';

/** A string interner over one `d_*` table; its cache is bounded (cleared when full). */
export class Dict {
  private readonly cache = new Map<string, number>();
  private readonly sel: Database.Statement;
  private readonly ins: Database.Statement;
  constructor(db: Database.Database, name: DictName, private readonly max = 65_536) {
    this.sel = db.prepare(`SELECT id FROM d_${name} WHERE v = ?`).pluck();
    this.ins = db.prepare(`INSERT OR IGNORE INTO d_${name} (v) VALUES (?)`);
  }
  id(v: string): number {
    let id = this.cache.get(v);
    if (id !== undefined) return id;
    // Insert first: a string missing from the cache is mostly new (unique paths), one statement then.
    const r = this.ins.run(v);
    id = r.changes ? Number(r.lastInsertRowid) : (this.sel.get(v) as number);
    if (this.cache.size >= this.max) this.cache.clear();
    this.cache.set(v, id);
    return id;
  }
  clear(): void {
    this.cache.clear();
  }
}
