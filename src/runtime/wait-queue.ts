import type { Clock } from "../domain/index.js";

/**
 * WaitQueue holds Allocate calls that asked to wait for a slot rather than
 * fall back, and places them when one may have opened (a release, a sweep,
 * a cooldown ending, a window reset: whoever knows calls wake()).
 *
 * Order: priority first, then weighted fair share between clients (the
 * client that holds least of its share goes first, as `shareOf` measures
 * it when the queue is walked, since shares move as slots are granted;
 * slots the queue granted since it was last empty count too, so clients
 * whose sessions end at once still take turns), then arrival. A waiter that cannot be placed does not block the ones
 * behind it: a session that wants Opus while Opus is benched must not keep
 * a Sonnet session waiting.
 *
 * The queue is not state: it survives nothing, and need not, because a grant
 * goes through the pool's writer (durable before it is answered) and a
 * waiter that is never answered was never granted. A grant that lands after
 * its caller left (cancelled, deadline) is handed to onAbandoned, which
 * releases it, so no slot is held by nobody.
 */

/** WaitRequest is one waiting call. */
export interface WaitRequest<T> {
  client: string;
  /** Higher goes first (0 low, 1 normal, 2 high). */
  priority: number;
  /** The call's cancellation and deadline. */
  signal: AbortSignal;
  /** Clock time after which the call stops waiting: nothing waits forever. */
  waitUntil: number;
  /**
   * Tries to place the call: its result once placed durably, undefined while
   * nothing is free; a throw is the call's final answer (a limit of its client).
   */
  attempt: () => Promise<T | undefined>;
  /** Calls of one kind need the same slots (the model family they want): when one finds none, so do the rest. */
  kind: string;
  /** A placement that landed after the caller left. */
  onAbandoned?: (result: T) => void;
  /**
   * Told the call's place in line (1: next to be tried) and how many wait
   * in all, when it joins and whenever its place changes: calls ahead of it
   * placed or gone, or one that comes first (a higher priority, a client
   * further below its share) joining ahead of it.
   */
  onPosition?: (position: number, waiting: number) => void;
}

/** WaitQueueOptions bounds and orders a WaitQueue. */
export interface WaitQueueOptions {
  clock: Clock;
  maxPerClient: () => number;
  maxTotal: () => number;
  /**
   * A client's use of its share, given the slots this queue granted it
   * since the queue was last empty ((held + granted) ÷ weight, say): lower
   * goes first.
   */
  shareOf: (client: string, granted: number) => number;
}

/** WaitRefusal is why a call left the queue without a slot. */
export class WaitRefusal extends Error {
  constructor(
    message: string,
    readonly reason: "queue_full" | "client_queue_full" | "expired" | "cancelled",
  ) {
    super(message);
    this.name = "WaitRefusal";
  }
}

interface Waiter {
  request: WaitRequest<unknown>;
  seq: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** True while an attempt for it is in flight. */
  trying: boolean;
  done: boolean;
  detach: () => void;
  /** The place in line it was last told (0: not yet). */
  position: number;
}

export class WaitQueue {
  private readonly options: WaitQueueOptions;
  private readonly waiters = new Set<Waiter>();
  private readonly perClient = new Map<string, number>();
  /** Slots granted per client since the queue was last empty. */
  private readonly granted = new Map<string, number>();
  private seq = 0;
  private draining: Promise<void> | undefined;
  private again = false;
  /** Waiters with onPosition: while there are none, places are never worked out. */
  private watched = 0;
  /** A telling of places is queued (one per turn of the event loop, however many changes). */
  private placesDue = false;

  constructor(options: WaitQueueOptions) {
    this.options = options;
  }

  get size(): number {
    return this.waiters.size;
  }

  /** waiting counts one client's queued calls. */
  waiting(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /**
   * enqueue queues a call and resolves with its placement; rejects with a
   * WaitRefusal when the queue (or the client's part of it) is full, the
   * wait ran out, or the caller left.
   */
  enqueue<T>(request: WaitRequest<T>): Promise<T> {
    if (this.waiters.size >= this.options.maxTotal()) {
      return Promise.reject(new WaitRefusal(`the wait queue is full (${this.waiters.size} calls wait)`, "queue_full"));
    }
    const mine = this.waiting(request.client);
    if (mine >= this.options.maxPerClient()) {
      return Promise.reject(
        new WaitRefusal(`client ${request.client} already has ${mine} calls waiting, its most`, "client_queue_full"),
      );
    }
    if (request.signal.aborted) return Promise.reject(cancelled(request.client));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        request: request as WaitRequest<unknown>,
        seq: this.seq++,
        resolve: resolve as (value: unknown) => void,
        reject,
        trying: false,
        done: false,
        detach: () => {},
        position: 0,
      };
      const onAbort = () => this.leave(waiter, cancelled(request.client));
      request.signal.addEventListener("abort", onAbort, { once: true });
      waiter.detach = () => request.signal.removeEventListener("abort", onAbort);
      this.waiters.add(waiter);
      this.perClient.set(request.client, mine + 1);
      if (request.onPosition !== undefined) this.watched++;
      this.tellPlaces();
      this.wake();
    });
  }

  /**
   * wake walks the queue in order and tries to place each waiter; expired
   * ones leave. One walk at a time: a wake during a walk walks again after it.
   */
  wake(): Promise<void> {
    if (this.draining !== undefined) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      try {
        do {
          this.again = false;
          await this.walk();
          // Shares move with what happened outside the queue too (sessions released, granted).
          this.tellPlaces();
        } while (this.again && this.waiters.size > 0);
      } finally {
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  /** close refuses every waiter (shutdown). */
  close(reason = "the server is shutting down"): void {
    for (const waiter of [...this.waiters]) this.leave(waiter, new WaitRefusal(reason, "cancelled"));
  }

  private async walk(): Promise<void> {
    const now = this.options.clock.now();
    for (const waiter of [...this.waiters]) {
      if (waiter.request.waitUntil <= now) {
        this.leave(waiter, new WaitRefusal("no slot opened before the wait ran out", "expired"));
      }
    }
    // Calls that need the same kind of slot fail alike: once one found none,
    // the rest of its kind are not tried again in this walk.
    const full = new Set<string>();
    let order = this.ordered();
    for (let i = 0; i < order.length; i++) {
      const waiter = order[i]!;
      if (waiter.done || waiter.trying || full.has(waiter.request.kind)) continue;
      waiter.trying = true;
      let result: unknown;
      try {
        result = await waiter.request.attempt();
      } catch (error) {
        // A final answer (a limit of its client, a store error): the call gets it.
        waiter.trying = false;
        this.leave(waiter, error);
        continue;
      }
      waiter.trying = false;
      if (result === undefined) {
        full.add(waiter.request.kind);
        continue;
      }
      if (waiter.done) {
        // The caller left while its slot was being granted: give the slot back.
        waiter.request.onAbandoned?.(result);
        continue;
      }
      this.remove(waiter);
      this.granted.set(waiter.request.client, (this.granted.get(waiter.request.client) ?? 0) + 1);
      waiter.resolve(result);
      // Shares moved with the grant: the rest goes in the new order.
      order = this.ordered();
      i = -1;
    }
  }

  /**
   * tellPlaces tells each watching waiter its place, if it moved, once the
   * current change settles: a walk that grants many slots works the order
   * out between its attempts, not once per grant.
   */
  private tellPlaces(): void {
    if (this.watched === 0 || this.placesDue) return;
    this.placesDue = true;
    queueMicrotask(() => {
      this.placesDue = false;
      if (this.watched === 0) return;
      const order = this.ordered();
      for (let i = 0; i < order.length; i++) {
        const waiter = order[i]!;
        const onPosition = waiter.request.onPosition;
        if (onPosition === undefined || waiter.position === i + 1) continue;
        waiter.position = i + 1;
        try {
          onPosition(i + 1, order.length);
        } catch {
          // A watcher's failure is its own: the queue and the other watchers go on.
        }
      }
    });
  }

  private ordered(): Waiter[] {
    const share = new Map<string, number>();
    const shareOf = (client: string) => {
      let s = share.get(client);
      if (s === undefined) share.set(client, (s = this.options.shareOf(client, this.granted.get(client) ?? 0)));
      return s;
    };
    return [...this.waiters].sort(
      (a, b) =>
        b.request.priority - a.request.priority ||
        shareOf(a.request.client) - shareOf(b.request.client) ||
        a.seq - b.seq,
    );
  }

  private leave(waiter: Waiter, error: unknown): void {
    if (waiter.done) return;
    this.remove(waiter);
    waiter.reject(error);
  }

  private remove(waiter: Waiter): void {
    if (waiter.done) return;
    waiter.done = true;
    waiter.detach();
    this.waiters.delete(waiter);
    if (waiter.request.onPosition !== undefined) this.watched--;
    this.tellPlaces();
    if (this.waiters.size === 0) this.granted.clear();
    const left = (this.perClient.get(waiter.request.client) ?? 1) - 1;
    if (left <= 0) this.perClient.delete(waiter.request.client);
    else this.perClient.set(waiter.request.client, left);
  }
}

function cancelled(client: string): WaitRefusal {
  return new WaitRefusal(`client ${client}'s call left the wait queue (cancelled or past its deadline)`, "cancelled");
}
