/**
 * UsagePoller asks Claude's OAuth usage endpoint how much of each
 * subscription's windows is used, so the pool learns about usage done outside
 * it. It is clock-driven like the Scheduler: a caller (a scheduler job) calls
 * pollDue() and each subscription is polled when its own next-poll time has
 * come, so tests move a clock instead of sleeping. Tokens are read fresh from
 * the config dir for every poll and never logged, stored or refreshed.
 */

import { type Backoff, type Clock, type RateLimitReading, backoffDelay, spreadDelay } from "../domain/index.js";
import { retryAfterMs } from "../notify/retry.js";
import type { Logger } from "../runtime/logger.js";
import { readAccessToken } from "./credentials.js";
import { parseOAuthUsage } from "./oauth-usage.js";

/** OAUTH_USAGE_ENDPOINT is where Claude Code's `/usage` reads from. */
export const OAUTH_USAGE_ENDPOINT = "https://api.anthropic.com/api/oauth/usage";

/** OAUTH_BETA is the `anthropic-beta` value the endpoint requires with an OAuth token. */
export const OAUTH_BETA = "oauth-2025-04-20";

/** MAX_POLL_BACKOFF_MS caps every backoff: usage older than half an hour is of little use. */
export const MAX_POLL_BACKOFF_MS = 30 * 60_000;

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CONCURRENCY = 4;
/** ±10 %: spreads the polls of many subscriptions so they do not arrive in lockstep. */
const JITTER = 0.1;
/** A rejected token stays rejected until the CLI refreshes it on its next use: look rarely. */
const REJECTED_TOKEN_FACTOR = 10;

/** PolledSubscription is one subscription to poll: its id and Claude config dir. */
export interface PolledSubscription {
  id: string;
  configDir: string;
}

/** UsagePollerOptions configures a UsagePoller. */
export interface UsagePollerOptions {
  subscriptions: readonly PolledSubscription[];
  /** Usually OAUTH_USAGE_ENDPOINT; tests point it at a local server. */
  endpoint: string;
  /** The normal time between two polls of one subscription (about 60-120 s upstream tolerates). */
  intervalMs: number;
  clock: Clock;
  logger: Logger;
  /** Receives the readings of each successful poll that had any. */
  onReadings: (subscriptionId: string, readings: RateLimitReading[]) => Promise<void>;
  fetch?: typeof fetch;
  /** Per-request timeout; 10 s by default. */
  timeoutMs?: number;
  /** How many subscriptions are polled at once; 4 by default. */
  concurrency?: number;
  /** Source of the jitter, [0, 1); Math.random by default (tests pass () => 0.5 for none). */
  random?: () => number;
}

/** PollStatus is what the poller knows about one subscription's polling. */
export interface PollStatus {
  /** Epoch ms the last request was sent (absent until one was). */
  lastPolledAt?: number;
  /** Why the last poll failed; absent after a success. Never carries the token. */
  lastError?: string;
  /** Epoch ms the subscription is next due. */
  nextPollAt: number;
}

interface Entry {
  sub: PolledSubscription;
  nextPollAt: number;
  lastPolledAt?: number;
  lastError?: string;
  /** Consecutive network errors and 5xx answers, for the exponential backoff. */
  failures: number;
  running: boolean;
}

/** Outcome is how one poll ended: the error (if any), the delay to the next poll, and what to log. */
interface Outcome {
  error?: string;
  delayMs: number;
  status?: number;
  /** True for network errors and 5xx answers, which back off exponentially. */
  transient?: boolean;
}

/** UsagePoller polls the OAuth usage endpoint for each subscription when it is due. */
export class UsagePoller {
  private readonly entries = new Map<string, Entry>();
  private readonly endpoint: string;
  private readonly intervalMs: number;
  /** After transient failures: two intervals after the first, doubling up to MAX_POLL_BACKOFF_MS. */
  private readonly failureBackoff: Backoff;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onReadings: UsagePollerOptions["onReadings"];
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly random: () => number;

  constructor(options: UsagePollerOptions) {
    this.endpoint = options.endpoint;
    this.intervalMs = options.intervalMs;
    this.failureBackoff = { baseMs: 2 * options.intervalMs, maxMs: MAX_POLL_BACKOFF_MS };
    this.clock = options.clock;
    this.logger = options.logger;
    this.onReadings = options.onReadings;
    // Bound late so tests that stub globalThis.fetch after construction still take effect.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY));
    this.random = options.random ?? Math.random;
    const now = this.clock.now();
    for (const sub of options.subscriptions) {
      // The first poll is due at once: the pool wants upstream's view as soon as it starts.
      if (!this.entries.has(sub.id)) this.entries.set(sub.id, { sub, nextPollAt: now, failures: 0, running: false });
    }
  }

  /**
   * pollDue polls every subscription whose next poll time has come (a few at
   * a time) and waits for them. A subscription still being polled by an
   * earlier call is left alone. Never rejects: failures are recorded per
   * subscription and logged.
   */
  async pollDue(): Promise<void> {
    const now = this.clock.now();
    const due = [...this.entries.values()].filter((e) => !e.running && e.nextPollAt <= now);
    for (const entry of due) entry.running = true;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let entry = due[next++]; entry !== undefined; entry = due[next++]) {
        try {
          await this.pollOne(entry);
        } finally {
          entry.running = false;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, due.length) }, worker));
  }

  /** status reports one subscription's polling state; undefined for an id the poller does not poll. */
  status(subscriptionId: string): PollStatus | undefined {
    const entry = this.entries.get(subscriptionId);
    if (entry === undefined) return undefined;
    const status: PollStatus = { nextPollAt: entry.nextPollAt };
    if (entry.lastPolledAt !== undefined) status.lastPolledAt = entry.lastPolledAt;
    if (entry.lastError !== undefined) status.lastError = entry.lastError;
    return status;
  }

  /** nextDueAt is the earliest next-poll time over all subscriptions (for a scheduler's wakeAt); undefined when none. */
  nextDueAt(): number | undefined {
    let earliest: number | undefined;
    for (const entry of this.entries.values()) {
      if (earliest === undefined || entry.nextPollAt < earliest) earliest = entry.nextPollAt;
    }
    return earliest;
  }

  private async pollOne(entry: Entry): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.attempt(entry);
    } catch (error) {
      // attempt() handles what it expects; this is a bug guard so one subscription cannot stop the others.
      outcome = { error: `poll failed (${errorName(error)})`, delayMs: this.jittered(this.intervalMs) };
    }
    if (outcome.transient) entry.failures++;
    else entry.failures = 0;
    const previous = entry.lastError;
    entry.nextPollAt = this.clock.now() + Math.max(0, outcome.delayMs);
    if (outcome.error === undefined) {
      delete entry.lastError;
      if (previous !== undefined) this.logger.info("usage poll recovered", { subscriptionId: entry.sub.id });
      return;
    }
    entry.lastError = outcome.error;
    // Only a change is logged: the same failure every minute per subscription would drown the log.
    if (outcome.error !== previous) {
      this.logger.warn("usage poll failed", {
        subscriptionId: entry.sub.id,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        reason: outcome.error,
      });
    }
  }

  /** attempt makes one request and decides when to ask again. */
  private async attempt(entry: Entry): Promise<Outcome> {
    const credentials = await readAccessToken(entry.sub.configDir, this.clock.now());
    if (!credentials.ok) return { error: credentials.reason, delayMs: this.jittered(this.intervalMs) };
    const token = credentials.token;

    entry.lastPolledAt = this.clock.now();
    let response: Response;
    try {
      response = await this.fetch(this.endpoint, {
        method: "GET",
        headers: {
          authorization: `Bearer ${token}`,
          "anthropic-beta": OAUTH_BETA,
          accept: "application/json",
          "user-agent": "auth-pool/1",
        },
        // A redirect could carry the bearer token to another host: refuse to follow any.
        redirect: "error",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      return { error: redact(describeFetchError(error, this.timeoutMs), token), ...this.backoff(entry) };
    }

    const { status } = response;
    if (status === 429) {
      await discard(response);
      const retryAfter = retryAfterMs(response.headers.get("retry-after"), this.clock.now());
      // Upstream said exactly when: no jitter on top of it.
      const delayMs = retryAfter ?? Math.min(2 * this.intervalMs, MAX_POLL_BACKOFF_MS);
      return { error: "rate limited (429)", delayMs, status };
    }
    if (status === 401 || status === 403) {
      await discard(response);
      return {
        error: `token rejected (${status}); claude refreshes it when next used in this config dir`,
        delayMs: this.jittered(REJECTED_TOKEN_FACTOR * this.intervalMs),
        status,
      };
    }
    if (status < 200 || status >= 300) {
      await discard(response);
      return { error: `upstream answered ${status}`, status, ...this.backoff(entry) };
    }

    let body: unknown;
    try {
      body = JSON.parse(await response.text());
    } catch {
      return { error: "malformed response body (not JSON)", status, ...this.backoff(entry) };
    }
    const readings = parseOAuthUsage(body);
    if (readings.length > 0) {
      try {
        await this.onReadings(entry.sub.id, readings);
      } catch (error) {
        // The poll itself worked; the next one brings fresh readings anyway.
        this.logger.error("usage readings not applied", { subscriptionId: entry.sub.id, reason: errorName(error) });
        return { error: `readings not applied (${errorName(error)})`, delayMs: this.jittered(this.intervalMs) };
      }
    }
    return { delayMs: this.jittered(this.intervalMs) };
  }

  /** backoff is the exponential delay after a transient failure: interval × 2^n, n counting this one. */
  private backoff(entry: Entry): { delayMs: number; transient: true } {
    const delayMs = backoffDelay(entry.failures + 1, this.failureBackoff, { spread: JITTER }, this.random);
    return { delayMs, transient: true };
  }

  private jittered(ms: number): number {
    return spreadDelay(ms, JITTER, this.random);
  }
}

/** describeFetchError names a network failure by its code, not by a message that could quote the request. */
function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = errorName(error);
  if (name === "TimeoutError") return `request timed out after ${timeoutMs} ms`;
  const cause = typeof error === "object" && error !== null ? (error as { cause?: unknown }).cause : undefined;
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
  return typeof code === "string" ? `request failed (${code})` : `request failed (${name})`;
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name === "Error" ? error.message : error.name;
  return "unknown error";
}

/** redact removes the token from text that came from elsewhere, belt and braces. */
function redact(text: string, token: string): string {
  return token === "" ? text : text.split(token).join("[redacted]");
}

/** discard drops a body the poller does not read, so the connection can be reused. */
async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Nothing to free.
  }
}
