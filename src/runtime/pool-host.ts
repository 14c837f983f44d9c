import { type Clock, type Command, Pool, type PoolSettings, type ResultOf } from "../domain/index.js";
import {
  type FencedError,
  Journal,
  type JournalRecord,
  type JournalStore,
  type KvStore,
  type Lease,
} from "../store/index.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { Logger } from "./logger.js";
import { PoolWriter, WriterUnavailableError } from "./pool-writer.js";
import { type RecordListener, RecordListeners } from "./record-listeners.js";
import { Replica } from "./replica.js";

/**
 * PoolHost is one instance's hold on the pool: the leader's writer while
 * this instance holds the store's lease, a standby's replica otherwise, and
 * the moves between the two. Everything above it (handlers, the event feed,
 * metrics, background jobs) sees one object whose records, sequence and
 * state carry on across a takeover or a step-down.
 */
export type Role = "leader" | "standby";

/** NotLeaderError: a command that writes reached a standby; the edge forwards such calls before they get here. */
export class NotLeaderError extends WriterUnavailableError {
  override name = "NotLeaderError";
}

export interface PoolHostOptions {
  log: JournalStore;
  /** Plain values of the same store: read once, to migrate a store written before leases. */
  kv: KvStore;
  clock: Clock;
  /** The settings in force (a reload replaces them). */
  settings: () => PoolSettings;
  /** This instance's id in the lease. */
  holder: string;
  /** Where this instance answers forwarded calls. */
  address: string;
  leaseTtlMs: number;
  /** Real time for the lease (default Date.now). */
  leaseNow?: () => number;
  /** A standby's poll of the journal in ms (0: tests call follow()). */
  followPollMs: number;
  /** Lease renewals on a timer; false: tests call keeper.tick(). */
  leaseTimers?: boolean;
  writer: {
    snapshot: { everyRecords: number; everySeconds: number };
    retentionMs: number;
    probe?: () => Promise<void>;
    retryMs?: number;
  };
  logger: Logger;
  /** Called after every change of role (background work starts and stops here). */
  onRole?: (role: Role) => void | Promise<void>;
}

export class PoolHost {
  private readonly options: PoolHostOptions;
  readonly keeper: LeaseKeeper;
  private writer: PoolWriter | undefined;
  private replica: Replica | undefined;
  /**
   * What a writer left when it stepped down, until the replica that
   * replaces it is loaded: its settings and journal (history reads), and
   * its last durable sequence. Not its state, which may hold the refused
   * batch: status is refused meanwhile.
   */
  private retired: { pool: Pool; journal: Journal; durableSeq: number } | undefined;
  private readonly listeners: RecordListeners;
  private unsubscribe: (() => void) | undefined;
  /** Number of the last record handed to listeners. */
  private published = 0;
  private closed = false;

  private constructor(options: PoolHostOptions) {
    this.options = options;
    this.listeners = new RecordListeners((error) => options.logger.error("record listener", { error: String(error) }));
    this.keeper = new LeaseKeeper({
      store: options.log,
      holder: options.holder,
      address: options.address,
      ttlMs: options.leaseTtlMs,
      ...(options.leaseNow !== undefined ? { now: options.leaseNow } : {}),
      onAcquired: (lease) => this.lead(lease),
      onLost: (reason) => this.stepDown(reason),
      onError: (error) => options.logger.warn("store lease", { error: String(error) }),
    });
  }

  /**
   * start tries the lease once: with it this instance leads (loading the
   * pool to write), without it it starts as a standby following the
   * leader. Either way the pool is loaded when it resolves.
   */
  static async start(options: PoolHostOptions): Promise<PoolHost> {
    const host = new PoolHost(options);
    // Load first, then ask for the lease: an instance that takes it is
    // ready to write at once (it only reads the last records), so a
    // restarting instance that wins the lease does not leave the pool
    // without a writer for the length of its start-up.
    await host.loadReplica();
    if (options.leaseTimers === false) await host.keeper.reclaimThenTick();
    else await host.keeper.start();
    await host.keeper.settled();
    if (host.writer === undefined && host.replica === undefined) await host.loadReplica();
    if (host.writer === undefined && host.replica === undefined) {
      throw new Error(`cannot load the pool from ${options.log.description}`);
    }
    if (host.writer === undefined) host.startFollowing();
    return host;
  }

  get role(): Role {
    return this.writer !== undefined ? "leader" : "standby";
  }

  /** lease: the store's lease as this instance last saw it. */
  get lease(): Lease | undefined {
    return this.keeper.lease ?? this.keeper.leader;
  }

  get healthy(): boolean {
    if (this.closed) return false;
    if (this.writer !== undefined) return this.writer.healthy;
    return this.replica?.healthy === true && this.keeper.storeError === undefined;
  }

  get currentPool(): Pool {
    return (this.writer?.currentPool ?? this.replica?.pool ?? this.retired?.pool)!;
  }

  get currentJournal(): Journal {
    return (this.writer?.currentJournal ?? this.replica?.journal ?? this.retired?.journal)!;
  }

  get durableSeq(): number {
    return this.writer?.durableSeq ?? this.replica?.pool.state.eventSeq ?? this.retired?.durableSeq ?? 0;
  }

  /** currentReplica: the replica while standing by. */
  get currentReplica(): Replica | undefined {
    return this.replica;
  }

  subscribe(listener: RecordListener): () => void {
    return this.listeners.add(listener);
  }

  /**
   * submit runs a command: on the writer while leading; on a standby only a
   * status read runs (on the replica), anything else is NotLeaderError.
   */
  async submit<C extends Command>(command: C): Promise<ResultOf<C>> {
    if (this.writer !== undefined) return this.writer.submit(command);
    if (command.kind === "status" && this.replica !== undefined) {
      return this.replica.pool.run(command, this.options.clock.now()).result;
    }
    if (this.retired !== undefined)
      throw new WriterUnavailableError("this instance is stepping down and reloading the pool; retry");
    throw new NotLeaderError(`this instance is a standby${this.leaderText()}; writes go to the leader`);
  }

  private leaderText(): string {
    const lease = this.keeper.leader;
    return lease === undefined ? "" : ` (leader ${lease.holder}${lease.address !== "" ? ` at ${lease.address}` : ""})`;
  }

  /** adoptSettings puts reloaded settings in force on a standby's replica (the leader reconfigures through its writer). */
  adoptSettings(settings: PoolSettings): void {
    this.replica?.pool.adoptSettings(settings);
  }

  private async load(epoch: number) {
    const ids = this.options.settings().subscriptions.map((s) => s.id);
    const { journal, state, replayed } = await Journal.open(this.options.log, ids, {
      epoch,
      legacyKv: this.options.kv,
    });
    this.options.logger.info("pool loaded", {
      store: this.options.log.description,
      sessions: state.sessions.size,
      replayedRecords: replayed,
    });
    return { pool: new Pool(state, this.options.settings()), journal };
  }

  /** lead turns this instance into the writer under `lease` (at start, or a standby's takeover). */
  private async lead(lease: Lease): Promise<void> {
    if (this.closed) return;
    const replica = this.replica;
    let first: { pool: Pool; journal: Journal } | undefined;
    if (replica !== undefined) {
      // Nobody else appends now: what the replica has not read yet is the tail.
      await replica.stop();
      try {
        await replica.catchUp();
        replica.journal.writeAs(lease.epoch);
        first = { pool: replica.pool, journal: replica.journal };
      } catch (error) {
        this.options.logger.warn("takeover: reloading the pool", { error: String(error) });
      }
    }
    const loadNext = async () => this.load(lease.epoch);
    let handedOver = first;
    try {
      this.writer = await PoolWriter.open({
        clock: this.options.clock,
        load: async () => {
          const given = handedOver;
          handedOver = undefined;
          return given ?? loadNext();
        },
        snapshot: this.options.writer.snapshot,
        retentionMs: this.options.writer.retentionMs,
        ...(this.options.writer.probe !== undefined ? { probe: this.options.writer.probe } : {}),
        ...(this.options.writer.retryMs !== undefined ? { retryMs: this.options.writer.retryMs } : {}),
        onError: (error) => this.options.logger.error("pool writer", { error: String(error) }),
        mayWrite: () => this.keeper.holding,
        onFenced: (error: FencedError) => void this.keeper.deposed(`the store refused a write: ${error.message}`),
      });
    } catch (error) {
      // Could not load to write: give the lease back so another instance can.
      this.options.logger.error("takeover failed", { error: String(error) });
      await this.keeper.deposed(`could not load the pool to write: ${String(error)}`);
      if (this.replica !== undefined) this.startFollowing();
      return;
    }
    this.replica = undefined;
    await this.attach(this.writer, replica === undefined ? 0 : this.published);
    this.options.logger.info("leading: this instance writes the pool", {
      epoch: lease.epoch,
      holder: lease.holder,
      address: lease.address,
    });
    await this.options.onRole?.("leader");
  }

  /** stepDown turns a leader into a standby (lease lost or fenced). */
  private async stepDown(reason: string): Promise<void> {
    const writer = this.writer;
    if (writer === undefined) return;
    this.options.logger.warn("standing down: another instance writes the pool now", { reason });
    this.retired = { pool: writer.currentPool, journal: writer.currentJournal, durableSeq: writer.durableSeq };
    this.writer = undefined;
    await this.options.onRole?.("standby");
    await writer.abandon(`this instance stopped writing the pool: ${reason}; retry`);
    if (!this.closed && (await this.loadReplica())) this.startFollowing();
  }

  /** loadReplica loads a replica from the store (not following yet); false when the store could not be read. */
  private async loadReplica(): Promise<boolean> {
    const from = this.published;
    try {
      this.replica = await Replica.open({
        load: () => this.load(0),
        pollMs: this.options.followPollMs,
        ...(this.options.log.watch !== undefined ? { watch: (l) => this.options.log.watch!(l) } : {}),
        onError: (error) => this.options.logger.warn("following the journal", { error: String(error) }),
      });
    } catch (error) {
      this.options.logger.error("standby: cannot load the pool", { error: String(error) });
      return false;
    }
    await this.attach(this.replica, from);
    this.retired = undefined;
    return true;
  }

  /** startFollowing makes the replica follow the leader's journal. */
  private startFollowing(): void {
    if (this.replica === undefined) return;
    this.replica.start();
    const leader = this.keeper.leader;
    this.options.logger.info("standby: following the leader", {
      leader: leader?.holder ?? "none",
      ...(leader?.address ? { address: leader.address } : {}),
      record: this.replica.journal.headRecord,
    });
  }

  /**
   * attach passes the records of a new writer or replica on to listeners,
   * first announcing what it loaded beyond the last record they saw.
   */
  private async attach(source: PoolWriter | Replica, from: number): Promise<void> {
    this.unsubscribe?.();
    if (from > 0 && source instanceof Replica) {
      const sub = source.subscribe((r) => this.publish(r));
      this.unsubscribe = sub;
      await source.republish(from);
      return;
    }
    this.unsubscribe = source.subscribe((r) => this.publish(r));
    if (this.published === 0)
      this.published = source instanceof Replica ? source.journal.headRecord : source.currentJournal.headRecord;
  }

  private publish(record: JournalRecord): void {
    if (record.n <= this.published) return;
    this.published = record.n;
    this.listeners.publish(record);
  }

  /**
   * close stops taking commands, finishes the queued ones, writes a final
   * snapshot and hands the lease over at once (no waiting for it to expire).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.keeper.stop();
    await this.keeper.settled();
    await this.replica?.stop();
    if (this.writer !== undefined) {
      await this.options.onRole?.("standby");
      await this.writer.close();
    }
    await this.keeper.release();
    this.unsubscribe?.();
  }
}
