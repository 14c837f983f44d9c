import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";

/**
 * BENCH_POSTGRES_URL is the PostgreSQL server the benchmarks use: the test
 * suite's (trust auth on loopback), or AUTHPOOL_BENCH_POSTGRES, else
 * AUTHPOOL_TEST_POSTGRES.
 */
export const BENCH_POSTGRES_URL =
  process.env.AUTHPOOL_BENCH_POSTGRES ??
  process.env.AUTHPOOL_TEST_POSTGRES ??
  "postgres://postgres@127.0.0.1:5432/test";

/** FreshSchema is a store URI on a schema of its own, and the way to remove it. */
export interface FreshSchema {
  /** The `store.uri`: BENCH_POSTGRES_URL with `schema=` (and `application_name=`, see postgresBackends). */
  uri: string;
  schema: string;
  /** The application_name the store's connections carry. */
  applicationName: string;
  /** drop removes the schema and everything in it; safe to call twice. */
  drop(): Promise<void>;
}

/**
 * freshSchema names a new schema (openStore creates it) for one benchmark
 * run, after checking that the server answers, so a missing server fails
 * at once with a clear message. `prefix` starts the schema's name.
 */
export async function freshSchema(prefix: string): Promise<FreshSchema> {
  await withClient((c) => c.query("SELECT 1")).catch((error: unknown) => {
    throw new Error(
      `PostgreSQL not reachable at ${BENCH_POSTGRES_URL} (${(error as Error).message}); start it or set AUTHPOOL_BENCH_POSTGRES`,
    );
  });
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  const applicationName = `authpool-${schema}`;
  const sep = BENCH_POSTGRES_URL.includes("?") ? "&" : "?";
  return {
    uri: `${BENCH_POSTGRES_URL}${sep}schema=${schema}&application_name=${applicationName}`,
    schema,
    applicationName,
    drop: () => withClient(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))),
  };
}

/**
 * postgresBackendCpuMs sums the CPU time (user + system, ms) of the server
 * processes serving connections named `applicationName`, read from
 * /proc/<pid>/stat (PostgreSQL on this machine). The server's shared
 * processes (WAL writer, checkpointer) are not counted; neither are
 * backends that already exited. Undefined when /proc cannot be read.
 */
export async function postgresBackendCpuMs(applicationName: string): Promise<Map<number, number> | undefined> {
  const pids = await withClient(async (c) =>
    (
      await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [applicationName])
    ).rows.map((r) => r.pid),
  );
  const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux.
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      // Fields after the command name (which may hold spaces) start after ")".
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / ticksPerMs);
    } catch {
      return undefined;
    }
  }
  return out;
}

/** cpuBetween: the CPU ms the backends used between two postgresBackendCpuMs readings (new backends count whole). */
export function cpuBetween(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number {
  if (before === undefined || after === undefined) return Number.NaN;
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

async function withClient<T>(op: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BENCH_POSTGRES_URL });
  await client.connect();
  try {
    return await op(client);
  } finally {
    await client.end();
  }
}
