import type { JournalStore, Lease } from "../store/index.js";

/**
 * LeaseKeeper decides who writes a store: it takes the store's lease when it
 * is free, renews it well inside its time to live while it holds it, and
 * gives it up (to be a standby) the moment it cannot be sure it still holds
 * it. That moment is its own deadline, counted from when it sent the
 * renewal that succeeded, so it stops writing before any other instance may
 * start; the store's fencing covers what a deadline cannot (a process
 * paused between the check and the write).
 */
export interface LeaseKeeperOptions {
  store: JournalStore;
  /** This instance's id in the lease (unique per process start). */
  holder: string;
  /** Where this instance answers forwarded calls. */
  address: string;
  ttlMs: number;
  /** Real time in ms; the lease is about processes being alive, not the pool's clock. */
  now?: () => number;
  /** Called when this instance took the lease (a new epoch). */
  onAcquired: (lease: Lease) => void | Promise<void>;
  /** Called when this instance lost or gave up the lease it held. */
  onLost: (reason: string) => void | Promise<void>;
  /** Called with every failure to reach the store (logging, health). */
  onError?: (error: unknown) => void;
}

export class LeaseKeeper {
  private readonly options: LeaseKeeperOptions;
  private readonly now: () => number;
  private held: Lease | undefined;
  /** Local instant until which the held lease is certainly ours. */
  private deadline = 0;
  private seen: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();
  private transitions: Promise<void> = Promise.resolve();
  private lastError: string | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** holding: this instance holds the lease and its deadline has not passed. */
  get holding(): boolean {
    return this.held !== undefined && this.now() < this.deadline;
  }

  /** lease is the lease this instance holds, if any. */
  get lease(): Lease | undefined {
    return this.held;
  }

  /** leader is the lease as last read from the store (whoever holds it). */
  get leader(): Lease | undefined {
    return this.seen;
  }

  /** storeError is the last failure to reach the store, until the next success. */
  get storeError(): string | undefined {
    return this.lastError;
  }

  /** renewEveryMs: a third of the lease, so two renewals can fail before it lapses. */
  get renewEveryMs(): number {
    return Math.max(50, Math.floor(this.options.ttlMs / 3));
  }

  /** pollEveryMs: how often a standby looks whether the lease is free. */
  get pollEveryMs(): number {
    return Math.max(50, Math.min(500, Math.floor(this.options.ttlMs / 5)));
  }

  /** start makes the first attempt now and keeps going on a timer. */
  start(): Promise<void> {
    this.running = true;
    return this.reclaimThenTick();
  }

  /**
   * reclaimThenTick is the first attempt. A lease still held under this
   * instance's own id is the previous run of this instance (killed without
   * handing over: the same host and port cannot be bound twice): release
   * it and take it again with a new epoch rather than wait out its TTL.
   * Were that earlier process still alive after all, the new epoch fences
   * it out. Only at start: later, an own-id lease held by someone else is
   * left alone, so two instances given one id cannot take it in turns.
   */
  async reclaimThenTick(): Promise<void> {
    try {
      const lease = await this.options.store.readLease();
      if (lease !== undefined && lease.holder === this.options.holder && lease.expiresAt > this.now()) {
        await this.options.store.releaseLease(lease.holder, lease.epoch);
      }
    } catch (error) {
      this.failed(error);
    }
    await this.tick();
  }

  /** tick runs one step now (tests drive it without timers). */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.step());
    return this.ticking;
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.timer);
    try {
      if (this.held !== undefined) await this.renew();
      else await this.acquire();
    } finally {
      this.schedule();
    }
  }

  private schedule(): void {
    if (!this.running || this.stopped) return;
    let delay = this.held !== undefined ? this.renewEveryMs : this.pollEveryMs;
    // A standby wakes right when the lease it saw runs out: takeover within the TTL, not TTL + poll.
    if (this.held === undefined && this.seen !== undefined && this.seen.expiresAt > 0) {
      delay = Math.max(10, Math.min(delay, this.seen.expiresAt - this.now() + 5));
    }
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async acquire(): Promise<void> {
    const startedAt = this.now();
    let lease: Lease;
    try {
      lease = await this.options.store.acquireLease(
        this.options.holder,
        this.options.address,
        startedAt,
        this.options.ttlMs,
      );
      this.reached();
    } catch (error) {
      this.failed(error);
      return;
    }
    this.seen = lease;
    if (lease.holder !== this.options.holder) return;
    this.held = lease;
    this.deadline = startedAt + this.options.ttlMs;
    this.transition(() => this.options.onAcquired(lease));
  }

  private async renew(): Promise<void> {
    const held = this.held!;
    const startedAt = this.now();
    if (startedAt >= this.deadline) {
      await this.lose("the lease ran out before it could be renewed");
      return;
    }
    let lease: Lease | undefined;
    try {
      lease = await this.options.store.renewLease(held.holder, held.epoch, startedAt, this.options.ttlMs);
      this.reached();
    } catch (error) {
      this.failed(error);
      // Kept until the deadline: a renewal may still succeed before it.
      if (this.now() >= this.deadline) await this.lose("the store could not be reached to renew the lease");
      return;
    }
    if (lease === undefined) {
      await this.lose("another instance took the lease");
      return;
    }
    this.seen = lease;
    this.held = lease;
    this.deadline = startedAt + this.options.ttlMs;
  }

  /** lost is called by the writer when the store fenced it out: give the lease up now. */
  async deposed(reason: string): Promise<void> {
    await this.lose(reason);
  }

  private async lose(reason: string): Promise<void> {
    if (this.held === undefined) return;
    this.held = undefined;
    this.deadline = 0;
    this.transition(() => this.options.onLost(reason));
  }

  /**
   * transition runs a role change in order with the others, without holding
   * up renewals: catching up at a takeover may take longer than a renewal
   * period, and the lease must not lapse meanwhile.
   */
  private transition(run: () => void | Promise<void>): void {
    this.transitions = this.transitions.then(run).catch((error: unknown) => this.options.onError?.(error));
  }

  /** settled resolves once every role change started so far has run. */
  async settled(): Promise<void> {
    await this.ticking;
    await this.transitions;
  }

  /**
   * release hands the lease over at once (a graceful shutdown): standbys
   * need not wait for it to expire. Stops the keeper.
   */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking.catch(() => undefined);
    const held = this.held;
    this.held = undefined;
    this.deadline = 0;
    if (held !== undefined)
      await this.options.store.releaseLease(held.holder, held.epoch).catch((error: unknown) => this.failed(error));
  }

  /** stop ends the timer without touching the lease (it expires by itself). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private reached(): void {
    this.lastError = undefined;
  }

  private failed(error: unknown): void {
    this.lastError = error instanceof Error ? error.message : String(error);
    this.options.onError?.(error);
  }
}
