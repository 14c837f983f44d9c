import sqlite3 from "sqlite3";
import {
  FencedError,
  type JournalStore,
  type Lease,
  type RecordPage,
  type StoredRecord,
  type StoredSnapshot,
} from "./journal-store.js";

/** SqliteJournalStoreOptions configures SqliteJournalStore.open. */
export interface SqliteJournalStoreOptions {
  /** The database file (an absolute path); other processes may have it open too. */
  file: string;
  /** This connection's `PRAGMA synchronous`. Default: "FULL" (an append that resolved survives power loss). */
  synchronous?: "FULL" | "NORMAL" | "EXTRA";
  /** How long a statement waits for another connection's write lock, in ms. Default: 5000. */
  busyTimeoutMs?: number;
  /** A description for logs. Default: `sqlite <file>`. */
  description?: string;
}

/**
 * SqliteJournalStore is the JournalStore of a SQLite file, shared by every
 * process that opens the file. Each fenced operation is one statement, and
 * a write statement holds SQLite's single write lock from its first read to
 * its commit, so the lease check and the write cannot be split by another
 * writer (WAL mode; a busy timeout makes writers queue instead of failing).
 */
export class SqliteJournalStore implements JournalStore {
  readonly description: string;
  private current: Connection;
  private stale = false;
  private reconnecting: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly options: Required<SqliteJournalStoreOptions>,
    first: Connection,
  ) {
    this.description = options.description;
    this.current = first;
  }

  /** open connects to the file and creates the journal tables if they are missing. */
  static async open(options: SqliteJournalStoreOptions): Promise<SqliteJournalStore> {
    const full: Required<SqliteJournalStoreOptions> = {
      synchronous: "FULL",
      busyTimeoutMs: 5000,
      description: `sqlite ${options.file}`,
      ...options,
    };
    return new SqliteJournalStore(full, await connect(full));
  }

  acquireLease(holder: string, address: string, now: number, ttlMs: number): Promise<Lease> {
    return this.use(async (db) => {
      // The seeded row always exists; the upsert also covers a table someone emptied.
      const taken = await db.all<LeaseRow>(
        `INSERT INTO authpool_lease(id, holder, epoch, expires_at, address) VALUES (1, ?, 1, ?, ?)
         ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, epoch = authpool_lease.epoch + 1,
           expires_at = excluded.expires_at, address = excluded.address
         WHERE authpool_lease.expires_at <= ?
         RETURNING ${LEASE_COLUMNS}`,
        [holder, now + ttlMs, address, now],
      );
      const row = taken[0] ?? (await readLeaseRow(db));
      if (row === undefined) throw new Error(`${this.description}: the lease row is missing`);
      return toLease(row);
    });
  }

  renewLease(holder: string, epoch: number, now: number, ttlMs: number): Promise<Lease | undefined> {
    return this.use(async (db) => {
      const rows = await db.all<LeaseRow>(
        `UPDATE authpool_lease SET expires_at = ? WHERE id = 1 AND holder = ? AND epoch = ? RETURNING ${LEASE_COLUMNS}`,
        [now + ttlMs, holder, epoch],
      );
      return rows[0] === undefined ? undefined : toLease(rows[0]);
    });
  }

  releaseLease(holder: string, epoch: number): Promise<void> {
    return this.use(async (db) => {
      await db.run("UPDATE authpool_lease SET expires_at = 0 WHERE id = 1 AND holder = ? AND epoch = ?", [
        holder,
        epoch,
      ]);
    });
  }

  readLease(): Promise<Lease | undefined> {
    return this.use(async (db) => {
      const row = await readLeaseRow(db);
      // Epoch 0 is the seeded row: nobody ever held the lease.
      return row === undefined || row.epoch === 0 ? undefined : toLease(row);
    });
  }

  append(epoch: number, n: number, at: number, data: string): Promise<void> {
    return this.use(async (db) => {
      const inserted = await db.all(
        `INSERT INTO authpool_journal(n, epoch, at, data)
         SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM authpool_lease WHERE id = 1 AND epoch = ?)
         ON CONFLICT(n) DO NOTHING RETURNING n`,
        [n, epoch, at, data, epoch],
      );
      if (inserted.length === 0) {
        await this.refuse(db, epoch, `append record ${n}`);
        throw new FencedError(`append record ${n}: it exists already`, "exists");
      }
    });
  }

  readRecord(n: number): Promise<string | undefined> {
    return this.use(async (db) => {
      const rows = await db.all<{ data: string }>("SELECT data FROM authpool_journal WHERE n = ?", [n]);
      return rows[0]?.data;
    });
  }

  readPage(after: number, limit: number): Promise<RecordPage> {
    return this.use(async (db) => {
      // One statement reads one snapshot of the file: bounds and page agree.
      // The bounds row is the outer side so that an empty page still has it.
      const rows = await db.all<{ first: number | null; last: number | null; n: number | null; data: string | null }>(
        `SELECT b.first, b.last, p.n, p.data
         FROM (SELECT min(n) AS first, max(n) AS last FROM authpool_journal) b
         LEFT JOIN (SELECT n, data FROM authpool_journal WHERE n > ? ORDER BY n LIMIT ?) p ON 1
         ORDER BY p.n`,
        [after, clampCount(limit)],
      );
      const records: StoredRecord[] = [];
      for (const r of rows) if (r.n !== null && r.data !== null) records.push({ n: r.n, data: r.data });
      return { records, first: rows[0]?.first ?? 0, last: rows[0]?.last ?? 0 };
    });
  }

  writeSnapshot(epoch: number, record: number, data: Uint8Array): Promise<void> {
    return this.use(async (db) => {
      // node-sqlite3 binds a Buffer as a BLOB but not a plain Uint8Array; this view copies nothing.
      const blob = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const written = await db.all(
        `INSERT INTO authpool_snapshot(id, record, epoch, data)
         SELECT 1, ?, ?, ? WHERE EXISTS (SELECT 1 FROM authpool_lease WHERE id = 1 AND epoch = ?)
         ON CONFLICT(id) DO UPDATE SET record = excluded.record, epoch = excluded.epoch, data = excluded.data
         WHERE excluded.record >= authpool_snapshot.record
         RETURNING record`,
        [record, epoch, blob, epoch],
      );
      // Nothing written and the epoch is current: a later snapshot is kept, as documented.
      if (written.length === 0) await this.refuse(db, epoch, `snapshot of record ${record}`);
    });
  }

  readSnapshot(): Promise<StoredSnapshot | undefined> {
    return this.use(async (db) => {
      const rows = await db.all<{ record: number; data: Buffer }>(
        "SELECT record, data FROM authpool_snapshot WHERE id = 1",
      );
      const row = rows[0];
      if (row === undefined) return undefined;
      return { record: row.record, data: new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength) };
    });
  }

  prune(epoch: number, upTo: number, before: number, max: number): Promise<number> {
    return this.use(async (db) => {
      // Records are in time order: stop at the first one that is too new,
      // even if older-looking ones follow it.
      const deleted = await db.run(
        `DELETE FROM authpool_journal WHERE n IN (
           SELECT n FROM authpool_journal
           WHERE n <= ? AND n < coalesce((SELECT n FROM authpool_journal WHERE at >= ? ORDER BY n LIMIT 1), ? + 1)
           ORDER BY n LIMIT ?)
         AND EXISTS (SELECT 1 FROM authpool_lease WHERE id = 1 AND epoch = ?)`,
        [upTo, before, upTo, clampCount(max), epoch],
      );
      if (deleted === 0) await this.refuse(db, epoch, "prune");
      return deleted;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reconnecting?.catch(() => undefined);
    await this.current.close();
  }

  /** refuse throws FencedError("epoch") when `epoch` is not the lease's; it returns when it is. */
  private async refuse(db: Connection, epoch: number, what: string): Promise<void> {
    const current = (await readLeaseRow(db))?.epoch ?? 0;
    if (current !== epoch) throw new FencedError(`${what}: epoch ${epoch} is not the lease's (${current})`, "epoch");
  }

  /**
   * use runs `op` on the current connection. A connection keeps the mode it
   * was opened with (one opened on a read-only file refuses writes for good),
   * so after any failure but a refusal the next operation reconnects first,
   * like the SQLite KvStore.
   */
  private async use<T>(op: (db: Connection) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`${this.description}: closed`);
    if (this.stale) {
      this.reconnecting ??= (async () => {
        const next = await connect(this.options);
        const old = this.current;
        this.current = next;
        this.stale = false;
        await old.close().catch(() => undefined);
      })().finally(() => {
        this.reconnecting = undefined;
      });
      await this.reconnecting;
    }
    try {
      return await op(this.current);
    } catch (error) {
      if (!(error instanceof FencedError)) this.stale = true;
      throw error;
    }
  }
}

const LEASE_COLUMNS = "holder, epoch, expires_at AS expiresAt, address";

interface LeaseRow {
  holder: string;
  epoch: number;
  expiresAt: number;
  address: string;
}

function toLease(row: LeaseRow): Lease {
  return { holder: row.holder, epoch: row.epoch, expiresAt: row.expiresAt, address: row.address };
}

async function readLeaseRow(db: Connection): Promise<LeaseRow | undefined> {
  const rows = await db.all<LeaseRow>(`SELECT ${LEASE_COLUMNS} FROM authpool_lease WHERE id = 1`);
  return rows[0];
}

/** clampCount makes a count safe for LIMIT (SQLite reads a negative LIMIT as "no limit"). */
function clampCount(n: number): number {
  if (Number.isNaN(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER);
}

// Epoch 0 is "never leased": seeding the row lets the fence read one row in
// every case, and lets a writer that never took a lease write at epoch 0
// (the in-process kvJournalStore behaves the same).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS authpool_lease(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  holder TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  address TEXT NOT NULL
);
INSERT OR IGNORE INTO authpool_lease(id, holder, epoch, expires_at, address) VALUES (1, '', 0, 0, '');
CREATE TABLE IF NOT EXISTS authpool_journal(
  n INTEGER PRIMARY KEY,
  epoch INTEGER NOT NULL,
  at INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS authpool_snapshot(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  record INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  data BLOB NOT NULL
);
`;

/** Connection is a node-sqlite3 database with promises. */
interface Connection {
  all<T = unknown>(sql: string, params?: unknown[]): Promise<T[]>;
  /** run resolves to the number of rows changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

async function connect(options: Required<SqliteJournalStoreOptions>): Promise<Connection> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened: sqlite3.Database = new sqlite3.Database(options.file, (error) =>
      error ? reject(error) : resolve(opened),
    );
  });
  const connection: Connection = {
    all: <T>(sql: string, params: unknown[] = []) =>
      new Promise<T[]>((resolve, reject) => {
        db.all<T>(sql, params, (error, rows) => (error ? reject(error) : resolve(rows)));
      }),
    run: (sql, params = []) =>
      new Promise<number>((resolve, reject) => {
        db.run(sql, params, function (error) {
          if (error) reject(error);
          else resolve(this.changes);
        });
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        db.close((error) => (error ? reject(error) : resolve()));
      }),
  };
  try {
    // Before anything else: the pragmas and the schema may wait for another process.
    db.configure("busyTimeout", options.busyTimeoutMs);
    await connection.all("PRAGMA journal_mode=WAL");
    // synchronous is per connection: the KvStore's setting does not cover this one.
    await connection.all(`PRAGMA synchronous=${options.synchronous}`);
    await new Promise<void>((resolve, reject) => {
      db.exec(SCHEMA, (error) => (error ? reject(error) : resolve()));
    });
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
  return connection;
}
