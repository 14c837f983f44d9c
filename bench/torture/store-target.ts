import path from "node:path";
import { freshSchema } from "../fresh-postgres.js";

/**
 * StoreTarget is the store a torture run puts its pool in: a SQLite file in
 * the run's directory, or a fresh schema on the benchmarks' PostgreSQL
 * server (AUTHPOOL_BENCH_POSTGRES, else AUTHPOOL_TEST_POSTGRES, else the
 * test server on loopback), dropped again by drop(), so runs never share state.
 */
export type StoreKind = "sqlite" | "postgres";

export interface StoreTarget {
  kind: StoreKind;
  /** The `store.uri` of the pool's config. */
  uri: string;
  /** drop removes the PostgreSQL schema (nothing for SQLite: the run's directory goes). */
  drop(): Promise<void>;
}

/** createStoreTarget names the store of a run in `dir`; for PostgreSQL it checks the server answers first. */
export async function createStoreTarget(kind: StoreKind, dir: string): Promise<StoreTarget> {
  if (kind === "sqlite")
    return { kind, uri: `sqlite://${path.join(dir, "authpool.sqlite")}`, drop: async () => undefined };
  const fresh = await freshSchema("torture");
  return { kind, uri: fresh.uri, drop: fresh.drop };
}
