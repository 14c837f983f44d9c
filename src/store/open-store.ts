import { mkdirSync } from "node:fs";
import path from "node:path";
import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import Keyv from "keyv";
import type pg from "pg";
import type { JournalStore } from "./journal-store.js";
import { kvJournalStore } from "./kv-journal-store.js";
import type { KvStore, PoolStore } from "./kv-store.js";
import { isSchemaName, PostgresJournalStore } from "./postgres-journal-store.js";
import { SqliteJournalStore } from "./sqlite-journal-store.js";

/** StoreError says a store URI cannot be opened; the message names the URI (without credentials). */
export class StoreError extends Error {
  override name = "StoreError";
}

/**
 * openStore opens a PoolStore (plain values plus the lease and fenced
 * journal) from a URI:
 * - `sqlite://<path>` (relative to the working directory; the default,
 *   `sqlite://./data/authpool.sqlite`): the embedded store, which several
 *   processes on one machine may share. WAL journal and `synchronous=FULL`,
 *   so a write that resolved survives a crash or power loss
 *   (`?synchronous=normal` trades power-loss safety for speed; it still
 *   survives a process crash).
 * - `postgres://` or `postgresql://` (any libpq URI): a shared store for
 *   instances on several machines. `?schema=<name>` (default `authpool`)
 *   names the schema holding its tables; it is created if missing.
 * - `memory://`: in process, for tests; nothing survives a restart.
 *
 * Other Keyv backends are refused: the journal needs a conditional write
 * (insert record n only if the writer still holds the lease) to keep a
 * second instance from writing, and Keyv offers none.
 */
export async function openStore(uri: string): Promise<PoolStore> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new StoreError(`store "${redact(uri)}": expected a URI such as sqlite://./data/authpool.sqlite or memory://`);
  }
  if (scheme === "memory") {
    const keyv = new Keyv({ namespace: NAMESPACE, throwOnErrors: true });
    const kv = wrap(
      () => keyv,
      "memory",
      async () => {},
    );
    return poolStore(kv, kvJournalStore(kv));
  }
  if (scheme === "sqlite") return openSqlite(uri);
  if (scheme === "postgres" || scheme === "postgresql") return openPostgres(uri);
  throw new StoreError(
    `store "${redact(uri)}": unsupported scheme "${scheme}:"; expected sqlite://, postgres:// (or postgresql://) or memory://. ` +
      "Other backends have no conditional write to fence the journal with, so two instances could both write it",
  );
}

// Alphanumeric only: @keyv/sqlite clears by LIKE, where _ and % are wildcards.
const NAMESPACE = "authpool";

async function openSqlite(uri: string): Promise<PoolStore> {
  const [location = "", query = ""] = uri.replace(/^sqlite:\/\//i, "").split("?", 2);
  const params = new URLSearchParams(query);
  const synchronous = (params.get("synchronous") ?? "full").toUpperCase();
  if (!isSynchronous(synchronous)) {
    throw new StoreError(`store "${uri}": synchronous: expected full, normal or extra`);
  }
  if (location === "") throw new StoreError(`store "${uri}": expected a file path after sqlite://`);
  const file = location === ":memory:" ? location : path.resolve(location);
  if (file !== ":memory:") {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
    } catch (e) {
      throw new StoreError(`store "${uri}": cannot create ${path.dirname(file)}: ${(e as Error).message}`);
    }
  }
  const kv = await openSqliteKv(uri, file, synchronous);
  // A second connection to ":memory:" would be a second, empty database:
  // an in-memory file is one process's anyway, so the in-process surface fits.
  if (file === ":memory:") return poolStore(kv, kvJournalStore(kv));
  let log: JournalStore;
  try {
    log = await SqliteJournalStore.open({ file, synchronous, description: kv.description });
  } catch (e) {
    await kv.close().catch(() => undefined);
    throw new StoreError(`store "${uri}": cannot open ${file}: ${(e as Error).message}`);
  }
  return poolStore(kv, log);
}

function isSynchronous(s: string): s is "FULL" | "NORMAL" | "EXTRA" {
  return s === "FULL" || s === "NORMAL" || s === "EXTRA";
}

/** openSqliteKv opens the Keyv half of a SQLite store, which reconnects after a failure. */
async function openSqliteKv(uri: string, file: string, synchronous: string): Promise<KvStore> {
  const connect = async (): Promise<{ keyv: Keyv; adapter: KeyvSqlite }> => {
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5000 });
    try {
      await adapter.query("PRAGMA journal_mode=WAL");
      await adapter.query(`PRAGMA synchronous=${synchronous}`);
    } catch (e) {
      await adapter.disconnect().catch(() => undefined);
      throw new StoreError(`store "${uri}": cannot open ${file}: ${(e as Error).message}`);
    }
    return { adapter, keyv: new Keyv({ store: adapter, namespace: NAMESPACE, throwOnErrors: true }) };
  };
  let current = await connect();
  if (file === ":memory:")
    return wrap(
      () => current.keyv,
      `sqlite ${file}`,
      () => current.adapter.disconnect(),
    );
  // A connection keeps the mode it was opened with: one opened on a
  // read-only file (or before a disk was remounted) refuses writes for good,
  // even once the file is writable again. After any failure the next
  // operation opens a fresh connection first, so the store comes back by
  // itself when the file does.
  let stale = false;
  let reconnecting: Promise<void> | undefined;
  const connection = async (): Promise<Keyv> => {
    if (stale) {
      reconnecting ??= (async () => {
        const next = await connect();
        const old = current;
        current = next;
        stale = false;
        // node-sqlite3 closes once the old connection's pending queries are done.
        await old.adapter.disconnect().catch(() => undefined);
      })().finally(() => {
        reconnecting = undefined;
      });
      await reconnecting;
    }
    return current.keyv;
  };
  return wrap(
    connection,
    `sqlite ${file}`,
    async () => {
      await reconnecting?.catch(() => undefined);
      await current.adapter.disconnect();
    },
    () => {
      stale = true;
    },
  );
}

/**
 * openPostgres opens a PostgreSQL store: the journal surface natively, and
 * plain values through @keyv/postgres on the journal store's pool, in a
 * table `<schema>.kv` beside the journal's.
 */
async function openPostgres(uri: string): Promise<PoolStore> {
  const safe = redact(uri);
  const { connectionString, schema } = splitSchema(uri, safe);
  const description = `postgres ${redact(connectionString)} schema ${schema}`;
  let log: PostgresJournalStore;
  try {
    log = await PostgresJournalStore.open({
      connectionString,
      schema,
      description,
      // The table @keyv/postgres would create, made here under the same
      // lock as the others so two processes opening at once do not race.
      extraDdl: [`CREATE TABLE IF NOT EXISTS ${schema}.${KV_TABLE} (key VARCHAR(255) PRIMARY KEY, value TEXT)`],
    });
  } catch (e) {
    throw new StoreError(`store "${safe}": cannot open: ${scrubPassword((e as Error).message, uri)}`);
  }
  const keyv = new Keyv({ store: keyvPostgresOn(log.pool, schema), namespace: NAMESPACE, throwOnErrors: true });
  // The pool is the journal store's: its close() ends it.
  const kv = wrap(
    () => keyv,
    description,
    async () => {},
  );
  return poolStore(kv, log);
}

const KV_TABLE = "kv";

/** splitSchema takes our `schema` parameter out of a PostgreSQL URI (pg would pass it on to the server). */
function splitSchema(uri: string, safe: string): { connectionString: string; schema: string } {
  const q = uri.indexOf("?");
  if (q < 0) return { connectionString: uri, schema: DEFAULT_SCHEMA };
  let schema = DEFAULT_SCHEMA;
  const kept: string[] = [];
  for (const part of uri.slice(q + 1).split("&")) {
    if (part === "") continue;
    const [key, value] = [...new URLSearchParams(part)][0] ?? ["", ""];
    if (key === "schema") schema = value;
    else kept.push(part);
  }
  if (!isSchemaName(schema)) {
    throw new StoreError(
      `store "${safe}": schema "${schema}": expected letters, digits and _ (not starting with a digit), at most 48 characters`,
    );
  }
  const base = uri.slice(0, q);
  // Unquoted names are folded to lower case by PostgreSQL; fold once here so
  // every statement (ours quoted or not, @keyv/postgres's unquoted) agrees.
  return { connectionString: kept.length === 0 ? base : `${base}?${kept.join("&")}`, schema: schema.toLowerCase() };
}

const DEFAULT_SCHEMA = "authpool";

/**
 * keyvPostgresOn makes a @keyv/postgres adapter that runs its queries on
 * `pool`. Why not `new KeyvPostgres(uri)`: @keyv/postgres 2.2.3 keeps ONE
 * module-global pg.Pool, replaced whenever an adapter with another URI is
 * made, and its disconnect() ends whichever pool is global at that moment,
 * which is another store's when two are open (tests; a CLI that opens a
 * second store). Its constructor takes its query function from connect(),
 * so overriding connect() means the global pool is never made, and
 * disconnect() has nothing of its own to end.
 */
function keyvPostgresOn(pool: pg.Pool, schema: string): KeyvPostgres {
  class OnPool extends KeyvPostgres {
    override async connect(): Promise<(sql: string, values?: unknown[]) => Promise<unknown[]>> {
      return async (sql, values) => (await pool.query(sql, values)).rows;
    }
    override async disconnect(): Promise<void> {}
  }
  return new OnPool({ schema, table: KV_TABLE });
}

/** scrubPassword removes the URI's password (as written and decoded) from text that came from elsewhere. */
function scrubPassword(text: string, uri: string): string {
  const raw = /\/\/[^:@/]*:([^@/]*)@/.exec(uri)?.[1] ?? /[?&]password=([^&]*)/i.exec(uri)?.[1];
  if (raw === undefined || raw === "") return text;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: only the raw form can appear.
  }
  return text.split(raw).join("***").split(decoded).join("***");
}

/** poolStore joins a KvStore and the journal surface of the same backend; close() closes both. */
function poolStore(kv: KvStore, log: JournalStore): PoolStore {
  return {
    description: kv.description,
    log,
    get: (key) => kv.get(key),
    set: (key, value) => kv.set(key, value),
    delete: (key) => kv.delete(key),
    async close() {
      const [a, b] = await Promise.allSettled([log.close(), kv.close()]);
      if (a.status === "rejected") throw a.reason;
      if (b.status === "rejected") throw b.reason;
    },
  };
}

/** redact drops the password from a URI (`user:password@`, or a libpq `password=` parameter) so it can be logged. */
export function redact(uri: string): string {
  return uri.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@").replace(/([?&]password=)[^&]*/gi, "$1***");
}

/**
 * wrap adapts Keyv to KvStore. `connection` gives the Keyv to use for each
 * operation; `failed` is told of every failure (the SQLite store reconnects
 * after one).
 */
function wrap(
  connection: () => Keyv | Promise<Keyv>,
  description: string,
  close: () => Promise<void>,
  failed: () => void = () => {},
): KvStore {
  const run = async <T>(op: (keyv: Keyv) => Promise<T>): Promise<T> => {
    try {
      return await op(await connection());
    } catch (error) {
      failed();
      throw error;
    }
  };
  return {
    description,
    get: (key) =>
      run(async (keyv) => {
        const v: unknown = await keyv.get(key);
        return typeof v === "string" ? v : undefined;
      }),
    set: (key, value) =>
      run(async (keyv) => {
        // A false from Keyv is a write that did not happen, even without a throw.
        if ((await keyv.set(key, value)) === false) throw new StoreError(`store ${description}: set ${key} failed`);
      }),
    delete: (key) =>
      run(async (keyv) => {
        await keyv.delete(key);
      }),
    close,
  };
}
