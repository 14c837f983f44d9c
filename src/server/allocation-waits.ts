import { Code, ConnectError } from "@connectrpc/connect";
import type { AllocateResult, Clock, Command, Exclusion, PoolEvent } from "../domain/index.js";
import { cappedPriority, fairShareUse, formatTime, modelFamily } from "../domain/index.js";
import type { PoolHandle } from "../runtime/pool-handle.js";
import { WaitQueue, WaitRefusal } from "../runtime/wait-queue.js";
import { rejectionError } from "./rejection.js";

/**
 * AllocationWaits is where Allocate calls that asked to wait are held (see
 * WaitQueue) and woken: at once after any durable record that may have
 * freed a slot (a release, a cooldown or throttle ending, a subscription
 * resumed, undrained or added), and every tick while calls wait, for what
 * only time frees (a 5-hour window rolling over, a throttle running out).
 */
export interface AllocationWaitsOptions {
  writer: PoolHandle;
  clock: Clock;
  /** The queue's bounds in force (a reload changes them). */
  limits: () => { maxWaiting: number; maxWaitingPerClient: number; maxWaitSeconds: number };
  /** Real-time period of the wake-up while calls wait (default 1 s). */
  tickMs?: number;
}

type AllocateCommand = Extract<Command, { kind: "allocate" }>;

/** Placed is what a wait ends with: a grant (a call that waits is refused, not sent to the paid API). */
export type Placed = Exclude<AllocateResult, { kind: "unavailable" }>;

/** Unavailable is the answer that sends a call to the queue: nothing could take it, and why. */
export type Unavailable = Extract<AllocateResult, { kind: "unavailable" }>;

/** WaitUpdate is where a waiting call stands: its place in line and why it waits. */
export interface WaitUpdate {
  /** 1: the next call the queue tries to place. */
  position: number;
  /** Calls waiting in all, this one included. */
  waiting: number;
  /** Why nothing could take it at its last try. */
  reason: string;
  exclusions: Exclusion[];
}

/** WaitOptions are the optional parts of one wait. */
export interface WaitOptions {
  /** How long the call may wait, within queue.maxWaitSeconds (absent: that bound). */
  maxWaitMs?: number;
  /** The answer that sent it here: why it waits before its first try in the queue. */
  first?: Unavailable;
  /** Told the call's place and reason when it joins and whenever either changes. */
  watch?: (update: WaitUpdate) => void;
}

// Events after which a slot may be free.
const FREEING: ReadonlySet<PoolEvent["type"]> = new Set<PoolEvent["type"]>([
  "session_released",
  "session_rotated",
  "cooldown_ended",
  "cooldown_cleared",
  "paused_set",
  "drained_set",
  "status_changed",
  "credentials_changed",
  "upstream_observed",
  "rebalance_completed",
]);

export class AllocationWaits {
  private readonly options: AllocationWaitsOptions;
  readonly queue: WaitQueue;
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: AllocationWaitsOptions) {
    this.options = options;
    const { writer } = options;
    this.queue = new WaitQueue({
      clock: options.clock,
      maxTotal: () => options.limits().maxWaiting,
      maxPerClient: () => options.limits().maxWaitingPerClient,
      shareOf: (client, granted) =>
        fairShareUse(writer.currentPool.state, writer.currentPool.settings, client, granted),
    });
    this.unsubscribe = writer.subscribe((record) => {
      if (this.queue.size > 0 && record.events.some((e) => FREEING.has(e.type))) void this.queue.wake();
    });
  }

  /**
   * wait holds an allocation nothing could take now until a slot opens; it
   * resolves with the placement, or throws the ConnectError the call ends
   * with: RESOURCE_EXHAUSTED when the queue is full or the wait ran out,
   * CANCELED/DEADLINE_EXCEEDED when the caller left.
   */
  async wait(cmd: AllocateCommand, signal: AbortSignal, options: WaitOptions = {}): Promise<Placed> {
    const { writer, clock } = this.options;
    const client = cmd.client ?? "default";
    // The queue honours the client's priority ceiling as placement does: asking for high does not jump it.
    const priority = cappedPriority(writer.currentPool.settings, client, cmd.priority);
    const bound = this.options.limits().maxWaitSeconds * 1000;
    const waitMs = Math.min(options.maxWaitMs ?? bound, bound);
    const waitUntil = clock.now() + waitMs;
    if (options.first !== undefined && options.first.opensAt > waitUntil) throw invain(client, waitMs, options.first);
    this.startTicking();
    // Why nothing could take it at the last try, for the refusal when the wait runs out.
    let unavailable: Unavailable | undefined = options.first;
    // What the watcher was last told: it hears of a change of place or of reason, nothing else.
    const { watch } = options;
    let place: { position: number; waiting: number } | undefined;
    let told: { position: number; reason: string } | undefined;
    const tell = () => {
      if (watch === undefined || place === undefined || signal.aborted) return;
      const reason = unavailable?.reason ?? "";
      if (told !== undefined && told.position === place.position && told.reason === reason) return;
      told = { position: place.position, reason };
      watch({ ...place, reason, exclusions: unavailable?.exclusions ?? [] });
    };
    try {
      return await this.queue.enqueue<Placed>({
        client,
        priority: priority === "high" ? 2 : priority === "low" ? 0 : 1,
        kind: modelFamily(cmd.model) ?? "",
        signal,
        waitUntil,
        attempt: async () => {
          const result = await writer.submit(cmd);
          if (result.kind === "rejected") throw rejectionError(result);
          if (result.kind !== "unavailable") return result;
          if (result.opensAt > waitUntil) throw invain(client, waitMs, result);
          unavailable = result;
          tell();
          return undefined;
        },
        onAbandoned: (placed) => {
          if (placed.kind === "granted" && !placed.resumed)
            void writer.submit({ kind: "release", sessionId: placed.sessionId }).catch(() => {});
        },
        ...(watch !== undefined
          ? {
              onPosition: (position: number, waiting: number) => {
                place = { position, waiting };
                tell();
              },
            }
          : {}),
      });
    } catch (error) {
      throw waitError(error, client, waitMs, signal, unavailable?.reason);
    } finally {
      if (this.queue.size === 0) this.stopTicking();
    }
  }

  close(): void {
    this.unsubscribe();
    this.stopTicking();
    this.queue.close();
  }

  private startTicking(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.queue.wake(), this.options.tickMs ?? 1000);
    this.timer.unref();
  }

  private stopTicking(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * invain answers a call whose wait could only run out: every subscription
 * is cooling down or at a cap until after its wait would end, and no
 * release or operator could free one sooner, so it hears now what it would
 * hear then (one simulated week at 1.8 times the capacity: 4 of 257 such
 * waits were placed before they ran out).
 */
function invain(client: string, waitMs: number, u: Unavailable): ConnectError {
  const opens = Number.isFinite(u.opensAt) ? `before ${formatTime(u.opensAt)}` : "at all";
  return new ConnectError(
    `client ${client}: no slot opens ${opens}, after a wait of ${waitMs / 1000} s would end (max_wait): ${u.reason}`,
    Code.ResourceExhausted,
  );
}

function waitError(
  error: unknown,
  client: string,
  waitMs: number,
  signal: AbortSignal,
  unavailable: string | undefined,
): unknown {
  if (!(error instanceof WaitRefusal)) return error;
  switch (error.reason) {
    case "cancelled": {
      const deadline = signal.reason instanceof ConnectError && signal.reason.code === Code.DeadlineExceeded;
      return new ConnectError(error.message, deadline ? Code.DeadlineExceeded : Code.Canceled);
    }
    case "expired":
      return new ConnectError(
        `client ${client} waited ${waitMs / 1000} s and no slot opened (max_wait)${unavailable === undefined ? "" : `: ${unavailable}`}`,
        Code.ResourceExhausted,
      );
    default:
      return new ConnectError(error.message, Code.ResourceExhausted);
  }
}
