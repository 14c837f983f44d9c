import { promisify } from "node:util";
import zlib from "node:zlib";
import pg from "pg";
import { type Backoff, backoffDelay } from "../domain/index.js";
import {
  FencedError,
  type JournalStore,
  type Lease,
  type RecordPage,
  type StoredRecord,
  type StoredSnapshot,
} from "./journal-store.js";

/** PostgresJournalStoreOptions configures PostgresJournalStore.open. */
export interface PostgresJournalStoreOptions {
  /** A libpq URI for `pg`, without our own parameters (no `schema=`). */
  connectionString: string;
  /** The schema holding the tables; checked by isSchemaName. */
  schema: string;
  /** A description for logs, with no credentials. */
  description: string;
  /**
   * More DDL to run in the same locked transaction as the journal tables
   * (openStore creates the KvStore's table this way). Default: none.
   */
  extraDdl?: readonly string[];
  /** Connections in the pool. Default: 10. */
  maxConnections?: number;
}

/**
 * isSchemaName: a plain identifier, short enough that `<schema>_journal`
 * is still a valid NOTIFY channel (PostgreSQL names stop at 63 bytes).
 */
export function isSchemaName(name: string): boolean {
  return /^[a-z_][a-z0-9_]*$/i.test(name) && name.length <= 48;
}

/**
 * PostgresJournalStore is the JournalStore of a PostgreSQL schema, shared by
 * every process that opens it. Each fenced write is one statement that
 * takes the lease row `FOR SHARE`: a takeover (an UPDATE of that row) waits
 * for writes under the old epoch to commit, and a write that waited for a
 * takeover re-reads the row and finds its epoch gone. It owns a `pg.Pool`
 * (`pool`, which openStore lends to the KvStore of the same schema) and,
 * while anyone watches, one more connection that LISTENs.
 */
export class PostgresJournalStore implements JournalStore {
  readonly description: string;
  /** The store's connections; ended by close(). */
  readonly pool: pg.Pool;
  private readonly t: Tables;
  private readonly channel: string;
  private readonly listeners = new Set<() => void>();
  private listener: Listener | undefined;
  private closed = false;

  private constructor(
    private readonly options: PostgresJournalStoreOptions,
    pool: pg.Pool,
  ) {
    this.description = options.description;
    this.pool = pool;
    const s = options.schema.toLowerCase();
    this.t = { lease: `${s}.lease`, journal: `${s}.journal`, snapshot: `${s}.snapshot` };
    this.channel = `${s}_journal`;
  }

  /**
   * open connects and creates the schema and its tables if they are missing.
   * Two processes may open the same schema at once: the DDL runs under a
   * transaction-scoped advisory lock named after the schema, since
   * `CREATE ... IF NOT EXISTS` alone can still fail with a unique violation
   * when two sessions create the same name concurrently.
   */
  static async open(options: PostgresJournalStoreOptions): Promise<PostgresJournalStore> {
    if (!isSchemaName(options.schema))
      throw new Error(`schema "${options.schema}": expected a plain identifier of at most 48 characters`);
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      // A CLI command that forgets close() still exits.
      allowExitOnIdle: true,
    });
    // An idle connection that dies (server restart, pg_terminate_backend)
    // is reported here; without a listener the 'error' event kills the
    // process. The pool drops that connection and the next query opens another.
    pool.on("error", () => undefined);
    const store = new PostgresJournalStore(options, pool);
    try {
      await store.createTables(options.extraDdl ?? []);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return store;
  }

  async acquireLease(holder: string, address: string, now: number, ttlMs: number): Promise<Lease> {
    const { lease } = this.t;
    // Ten acquirers at once: each waits for the row lock, then re-checks the
    // WHERE on the row as the winner left it, so only one gets it.
    const taken = await this.query<LeaseRow>(
      `INSERT INTO ${lease} AS l (id, holder, epoch, expires_at, address) VALUES (1, $1, 1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
         expires_at = EXCLUDED.expires_at, address = EXCLUDED.address
       WHERE l.expires_at <= $4
       RETURNING ${LEASE_COLUMNS}`,
      [holder, now + ttlMs, address, now],
    );
    const row = taken[0] ?? (await this.readLeaseRow());
    if (row === undefined) throw new Error(`${this.description}: the lease row is missing`);
    return toLease(row);
  }

  async renewLease(holder: string, epoch: number, now: number, ttlMs: number): Promise<Lease | undefined> {
    const rows = await this.query<LeaseRow>(
      `UPDATE ${this.t.lease} SET expires_at = $1 WHERE id = 1 AND holder = $2 AND epoch = $3 RETURNING ${LEASE_COLUMNS}`,
      [now + ttlMs, holder, epoch],
    );
    return rows[0] === undefined ? undefined : toLease(rows[0]);
  }

  async releaseLease(holder: string, epoch: number): Promise<void> {
    await this.query(`UPDATE ${this.t.lease} SET expires_at = 0 WHERE id = 1 AND holder = $1 AND epoch = $2`, [
      holder,
      epoch,
    ]);
  }

  async readLease(): Promise<Lease | undefined> {
    const row = await this.readLeaseRow();
    // Epoch 0 is the seeded row: nobody ever held the lease.
    return row === undefined || Number(row.epoch) === 0 ? undefined : toLease(row);
  }

  async append(epoch: number, n: number, at: number, data: string): Promise<void> {
    // Parameters in a SELECT list have no type to infer: cast them, or they
    // arrive as text and the INSERT into bigint columns fails.
    const inserted = await this.query(
      `WITH l AS (SELECT epoch FROM ${this.t.lease} WHERE id = 1 AND epoch = $1 FOR SHARE),
       ins AS (
         INSERT INTO ${this.t.journal} (n, epoch, at, data)
         SELECT $2::bigint, $1::bigint, $3::bigint, $4::text FROM l
         ON CONFLICT (n) DO NOTHING RETURNING n)
       SELECT n, pg_notify('${this.channel}', n::text) FROM ins`,
      [epoch, n, at, data],
    );
    if (inserted.length === 0) {
      await this.refuse(epoch, `append record ${n}`);
      throw new FencedError(`append record ${n}: it exists already`, "exists");
    }
  }

  async readRecord(n: number): Promise<string | undefined> {
    const rows = await this.query<{ data: string }>(`SELECT data FROM ${this.t.journal} WHERE n = $1`, [n]);
    return rows[0]?.data;
  }

  async readPage(after: number, limit: number): Promise<RecordPage> {
    const { journal } = this.t;
    // One statement is one snapshot, so the bounds describe the table the
    // page came from. The bounds row is the outer side so that an empty page
    // still answers with them; min and max are one index probe each. The
    // ORDER BY sorts the page again (about 0.3 µs a record), since a join
    // keeps no order of its inner side.
    const rows = await this.query<{ first: string | null; last: string | null; n: string | null; data: string | null }>(
      `SELECT b.first, b.last, p.n, p.data
       FROM (SELECT min(n) AS first, max(n) AS last FROM ${journal}) b
       LEFT JOIN (SELECT n, data FROM ${journal} WHERE n > $1 ORDER BY n LIMIT $2) p ON true
       ORDER BY p.n`,
      [after, clampCount(limit)],
    );
    const records: StoredRecord[] = [];
    for (const r of rows) if (r.n !== null && r.data !== null) records.push({ n: Number(r.n), data: r.data });
    return { records, first: Number(rows[0]?.first ?? 0), last: Number(rows[0]?.last ?? 0) };
  }

  async writeSnapshot(epoch: number, record: number, data: Uint8Array): Promise<void> {
    // Deflated (off the event loop, in libuv's threads) to a quarter of its
    // size or less: what start-up transfers (see readSnapshot). pg sends a
    // Buffer parameter as binary bytea without copying it to text.
    const stored = Buffer.concat([COMPRESSED, await deflateRaw(data, { level: 1 })]);
    const written = await this.query(
      `WITH l AS (SELECT epoch FROM ${this.t.lease} WHERE id = 1 AND epoch = $1 FOR SHARE)
       INSERT INTO ${this.t.snapshot} AS s (id, record, epoch, data)
       SELECT 1, $2::bigint, $1::bigint, $3::bytea FROM l
       ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, epoch = EXCLUDED.epoch, data = EXCLUDED.data
       WHERE EXCLUDED.record >= s.record
       RETURNING record`,
      [epoch, record, stored],
    );
    // Nothing written and the epoch is current: a later snapshot is kept, as documented.
    if (written.length === 0) await this.refuse(epoch, `snapshot of record ${record}`);
  }

  async readSnapshot(): Promise<StoredSnapshot | undefined> {
    // Results come as text: do not ask pg for `binary: true`, which
    // pg-protocol 1.16 decodes as UTF-8 and mangles. A bytea as text is hex,
    // twice its bytes, which pg then parses back; base64 is a third more
    // than its bytes and Node decodes it natively (ignoring the line breaks
    // encode() puts in). With the snapshot deflated, a 30 MB snapshot (1,000
    // subscriptions, 100,000 sessions) is 7 MB stored and 10 MB on the wire:
    // about 0.15 s to read and inflate on the 2-CPU bench machine, where the
    // hex of the whole snapshot took 0.5 to 1 s (bench/scale, docs/BENCHMARKS.md).
    const rows = await this.query<{ record: string; data: string }>(
      `SELECT record, encode(data, 'base64') AS data FROM ${this.t.snapshot} WHERE id = 1`,
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const bytes = Buffer.from(row.data, "base64");
    const data = bytes.subarray(0, COMPRESSED.length).equals(COMPRESSED)
      ? await inflateRaw(bytes.subarray(COMPRESSED.length))
      : bytes;
    return { record: Number(row.record), data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  }

  async prune(epoch: number, upTo: number, before: number, max: number): Promise<number> {
    const { lease, journal } = this.t;
    // Records are in time order: stop at the first one that is too new,
    // even if older-looking ones follow it.
    const deleted = await this.query(
      `WITH l AS (SELECT epoch FROM ${lease} WHERE id = 1 AND epoch = $1 FOR SHARE),
       stop AS (SELECT n FROM ${journal} WHERE at >= $3 ORDER BY n LIMIT 1),
       doomed AS (
         SELECT j.n FROM ${journal} j, l
         WHERE j.n <= $2 AND j.n < coalesce((SELECT n FROM stop), $2::bigint + 1)
         ORDER BY j.n LIMIT $4)
       DELETE FROM ${journal} WHERE n IN (SELECT n FROM doomed) RETURNING n`,
      [epoch, upTo, before, clampCount(max)],
    );
    if (deleted.length === 0) await this.refuse(epoch, "prune");
    return deleted.length;
  }

  /**
   * watch LISTENs on the schema's channel (every append NOTIFYs it on
   * commit). The listener is also called each time the LISTEN is
   * (re)established, since appends made before then were not seen. A
   * dropped connection is retried with backoff; nothing here throws.
   */
  watch(listener: () => void): () => void {
    if (this.closed) return () => undefined;
    this.listeners.add(listener);
    this.listener ??= listen({ connectionString: this.options.connectionString }, this.channel, () => {
      for (const l of [...this.listeners]) {
        try {
          l();
        } catch {
          // A listener's failure is its own; the others still hear.
        }
      }
    });
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) {
        void this.listener?.stop();
        this.listener = undefined;
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.listener?.stop();
    this.listener = undefined;
    await this.pool.end();
  }

  /** refuse throws FencedError("epoch") when `epoch` is not the lease's; it returns when it is. */
  private async refuse(epoch: number, what: string): Promise<void> {
    const current = Number((await this.readLeaseRow())?.epoch ?? 0);
    if (current !== epoch) throw new FencedError(`${what}: epoch ${epoch} is not the lease's (${current})`, "epoch");
  }

  private async readLeaseRow(): Promise<LeaseRow | undefined> {
    const rows = await this.query<LeaseRow>(`SELECT ${LEASE_COLUMNS} FROM ${this.t.lease} WHERE id = 1`);
    return rows[0];
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  private async createTables(extraDdl: readonly string[]): Promise<void> {
    const { lease, journal, snapshot } = this.t;
    const schema = this.options.schema.toLowerCase();
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`authpool schema ${schema}`]);
      // Only when missing: CREATE SCHEMA checks the CREATE privilege on the
      // database even with IF NOT EXISTS, which a role given a ready schema lacks.
      const found = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
      if (found.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`);
      // Epoch 0 is "never leased": seeding the row gives the fenced writes a
      // row to lock in every case, and lets a writer that never took a lease
      // write at epoch 0 (the in-process kvJournalStore behaves the same).
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${lease} (
           id int PRIMARY KEY CHECK (id = 1),
           holder text NOT NULL,
           epoch bigint NOT NULL,
           expires_at bigint NOT NULL,
           address text NOT NULL)`,
      );
      await client.query(
        `INSERT INTO ${lease} (id, holder, epoch, expires_at, address) VALUES (1, '', 0, 0, '') ON CONFLICT (id) DO NOTHING`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${journal} (n bigint PRIMARY KEY, epoch bigint NOT NULL, at bigint NOT NULL, data text NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${snapshot} (
           id int PRIMARY KEY CHECK (id = 1), record bigint NOT NULL, epoch bigint NOT NULL, data bytea NOT NULL)`,
      );
      for (const ddl of extraDdl) await client.query(ddl);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}

interface Tables {
  lease: string;
  journal: string;
  snapshot: string;
}

const LEASE_COLUMNS = `holder, epoch, expires_at AS "expiresAt", address`;

const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);

/**
 * COMPRESSED starts a stored snapshot that is deflated (raw deflate, level
 * 1, after these 4 bytes); one without it is read as stored (snapshots
 * written before they were compressed).
 */
const COMPRESSED = Buffer.from("APz1", "latin1");

/** LeaseRow: pg returns bigint columns as strings (they may not fit a double). */
interface LeaseRow {
  holder: string;
  epoch: string;
  expiresAt: string;
  address: string;
}

function toLease(row: LeaseRow): Lease {
  return { holder: row.holder, epoch: Number(row.epoch), expiresAt: Number(row.expiresAt), address: row.address };
}

/** clampCount makes a count safe for LIMIT (a negative LIMIT is an error in PostgreSQL). */
function clampCount(n: number): number {
  if (Number.isNaN(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER);
}

interface Listener {
  stop(): Promise<void>;
}

/** LISTEN_BACKOFF: a dropped LISTEN connection is retried after 100 ms, doubling up to 5 s. */
const LISTEN_BACKOFF: Backoff = { baseMs: 100, maxMs: 5000 };

/**
 * listen keeps one connection LISTENing on `channel`, reconnecting with
 * backoff when it drops, and calls `notify` on every notification and on
 * every (re)connect.
 */
function listen(config: pg.ClientConfig, channel: string, notify: () => void): Listener {
  let stopped = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Drops since the last good connect: the backoff's attempt.
  let failures = 0;

  const connect = async (): Promise<void> => {
    timer = undefined;
    if (stopped) return;
    const c = new pg.Client(config);
    client = c;
    let dropped = false;
    const drop = (): void => {
      if (dropped) return;
      dropped = true;
      c.end().catch(() => undefined);
      if (client === c) client = undefined;
      if (stopped) return;
      failures++;
      timer = setTimeout(() => void connect(), backoffDelay(failures, LISTEN_BACKOFF));
      // A process with nothing else to do need not wait for this retry.
      timer.unref();
    };
    c.on("error", drop);
    c.on("end", drop);
    c.on("notification", (message) => {
      if (message.channel === channel) notify();
    });
    try {
      await c.connect();
      await c.query(`LISTEN "${channel}"`);
    } catch {
      drop();
      return;
    }
    if (stopped || dropped) return;
    failures = 0;
    notify();
  };

  void connect();
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
