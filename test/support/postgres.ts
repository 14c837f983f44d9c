import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The test server: PostgreSQL on loopback with trust auth (CI starts it).
 * AUTHPOOL_TEST_POSTGRES points the tests elsewhere.
 */
export const POSTGRES_TEST_URL = process.env.AUTHPOOL_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

/** FreshPostgres is a store URI on a schema no one else uses, and the way to remove it. */
export interface FreshPostgres {
  /** A `postgres://` store URI with `?schema=` set to the fresh schema. */
  uri: string;
  schema: string;
  /** drop removes the schema and everything in it; safe to call twice. */
  drop: () => Promise<void>;
}

/**
 * freshPostgresUri names a new random schema on the test server, so
 * parallel vitest workers and repeated runs never share state. openStore
 * creates the schema; call `drop` (after closing the stores) to remove it.
 * It checks the server answers first, so a missing server fails here with
 * a clear message rather than inside the test.
 */
export async function freshPostgresUri(): Promise<FreshPostgres> {
  await ping();
  const schema = `t_${randomBytes(8).toString("hex")}`;
  const sep = POSTGRES_TEST_URL.includes("?") ? "&" : "?";
  return {
    uri: `${POSTGRES_TEST_URL}${sep}schema=${schema}`,
    schema,
    drop: async () => {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    },
  };
}

/** withClient runs `op` on a short-lived connection to the test server. */
export async function withClient<T>(op: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  try {
    return await op(client);
  } finally {
    await client.end();
  }
}

let reachable: Promise<void> | undefined;

function ping(): Promise<void> {
  reachable ??= withClient((c) => c.query("SELECT 1")).then(
    () => undefined,
    (error: unknown) => {
      reachable = undefined;
      throw new Error(
        `PostgreSQL test server not reachable at ${POSTGRES_TEST_URL} (${(error as Error).message}); ` +
          "start it (.ci/run does) or set AUTHPOOL_TEST_POSTGRES",
      );
    },
  );
  return reachable;
}
