import type { KvStore } from "./kv-store.js";
import {
  FencedError,
  type JournalStore,
  type Lease,
  type RecordPage,
  type StoredRecord,
  type StoredSnapshot,
} from "./journal-store.js";

/**
 * kvJournalStore builds the journal surface from plain gets and sets on a
 * KvStore. Its checks (lease, epoch, record exists) are a read then a write,
 * made atomic by a queue per KvStore object: correct for every server in
 * one process (the `memory://` store, and tests that wrap a store to inject
 * faults), and for nothing shared between processes. openStore therefore
 * uses it only for `memory://`; shared backends have native statements.
 */
export function kvJournalStore(kv: KvStore): JournalStore {
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    const prev = queues.get(kv) ?? Promise.resolve();
    const run = prev.then(op, op);
    queues.set(
      kv,
      run.catch(() => undefined),
    );
    return run;
  };
  const readLease = async (): Promise<Lease | undefined> => {
    const text = await kv.get(LEASE_KEY);
    return text === undefined ? undefined : (JSON.parse(text) as Lease);
  };
  const fence = async (epoch: number, what: string): Promise<void> => {
    const lease = await readLease();
    if ((lease?.epoch ?? 0) !== epoch) {
      throw new FencedError(`${what}: epoch ${epoch} is not the lease's (${lease?.epoch ?? 0})`, "epoch");
    }
  };
  const readFirst = async (): Promise<number> => {
    const text = await kv.get(FIRST_KEY);
    return text === undefined ? 1 : Number(text);
  };
  const readRecords = async (after: number, limit: number): Promise<StoredRecord[]> => {
    const out: StoredRecord[] = [];
    for (let n = Math.max(after, (await readFirst()) - 1) + 1; out.length < limit; n++) {
      const data = await kv.get(recordKey(n));
      if (data === undefined) break;
      out.push({ n, data });
    }
    return out;
  };
  const bounds = async (): Promise<{ first: number; last: number }> => {
    const first = await readFirst();
    if ((await kv.get(recordKey(first))) === undefined) return { first: 0, last: 0 };
    // Records have no gaps: find the last by doubling, then bisecting.
    let lo = first;
    let step = 1;
    while ((await kv.get(recordKey(lo + step))) !== undefined) {
      lo += step;
      step *= 2;
    }
    let hi = lo + step;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await kv.get(recordKey(mid))) !== undefined) lo = mid;
      else hi = mid;
    }
    return { first, last: lo };
  };
  return {
    description: kv.description,
    acquireLease: (holder, address, now, ttlMs) =>
      serial(async () => {
        const lease = await readLease();
        if (lease !== undefined && lease.expiresAt > now) return lease;
        const next: Lease = { holder, epoch: (lease?.epoch ?? 0) + 1, expiresAt: now + ttlMs, address };
        await kv.set(LEASE_KEY, JSON.stringify(next));
        return next;
      }),
    renewLease: (holder, epoch, now, ttlMs) =>
      serial(async () => {
        const lease = await readLease();
        if (lease === undefined || lease.holder !== holder || lease.epoch !== epoch) return undefined;
        const next = { ...lease, expiresAt: now + ttlMs };
        await kv.set(LEASE_KEY, JSON.stringify(next));
        return next;
      }),
    releaseLease: (holder, epoch) =>
      serial(async () => {
        const lease = await readLease();
        if (lease === undefined || lease.holder !== holder || lease.epoch !== epoch) return;
        await kv.set(LEASE_KEY, JSON.stringify({ ...lease, expiresAt: 0 }));
      }),
    readLease: () => serial(readLease),
    append: (epoch, n, _at, data) =>
      serial(async () => {
        await fence(epoch, `append record ${n}`);
        if ((await kv.get(recordKey(n))) !== undefined)
          throw new FencedError(`append record ${n}: it exists already`, "exists");
        await kv.set(recordKey(n), data);
      }),
    readRecord: (n) => kv.get(recordKey(n)),
    // Two reads, outside the queue like readRecord (a test holding the
    // store's writes must not hold its readers). An append or prune between
    // them leaves bounds newer than the page: a follower then asks once more,
    // or stops early and reads the rest on its next call; it never skips.
    async readPage(after, limit): Promise<RecordPage> {
      const records = await readRecords(after, limit);
      return { records, ...(await bounds()) };
    },
    writeSnapshot: (epoch, record, data) =>
      serial(async () => {
        await fence(epoch, `snapshot of record ${record}`);
        const current = await kv.get(SNAPSHOT_KEY);
        if (current !== undefined && (JSON.parse(current) as EncodedSnapshot).record > record) return;
        const encoded: EncodedSnapshot = {
          record,
          data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"),
        };
        await kv.set(SNAPSHOT_KEY, JSON.stringify(encoded));
      }),
    async readSnapshot(): Promise<StoredSnapshot | undefined> {
      const text = await kv.get(SNAPSHOT_KEY);
      if (text === undefined) return undefined;
      const encoded = JSON.parse(text) as EncodedSnapshot;
      return { record: encoded.record, data: new Uint8Array(Buffer.from(encoded.data, "base64")) };
    },
    prune: (epoch, upTo, before, max) =>
      serial(async () => {
        await fence(epoch, "prune");
        let first = await readFirst();
        let deleted = 0;
        while (deleted < max && first <= upTo) {
          const text = await kv.get(recordKey(first));
          if (text !== undefined && lastEventAt(text) >= before) break;
          await kv.delete(recordKey(first));
          first++;
          deleted++;
        }
        if (deleted > 0) await kv.set(FIRST_KEY, String(first));
        return deleted;
      }),
    close: () => Promise.resolve(),
  };
}

interface EncodedSnapshot {
  record: number;
  data: string;
}

const queues = new WeakMap<KvStore, Promise<unknown>>();

const LEASE_KEY = "lease";
const SNAPSHOT_KEY = "snapshot";
const FIRST_KEY = "meta:first";

/** recordKey names record n; zero-padded so keys sort in record order. */
export function recordKey(n: number): string {
  return `journal:${String(n).padStart(12, "0")}`;
}

function lastEventAt(text: string): number {
  const rec = JSON.parse(text) as { events: { at: number }[] };
  return rec.events[rec.events.length - 1]?.at ?? 0;
}
