/**
 * CredentialManager keeps the OAuth logins of managed subscriptions fresh:
 * it is the one refresher of each account, renewing well before Claude
 * Code's own 5-minute margin so no running `claude` process ever needs to.
 * Clock-driven like the UsagePoller: a scheduler job calls checkDue() and
 * each config dir is looked at when its own time has come; tests move a
 * clock and inject `fetch`, `random` and the lock instead of sleeping.
 *
 * Per config dir, one check at a time (also across configure() calls), and
 * Claude Code's own refresh lock is held while refreshing, so the pool and
 * running `claude` processes never spend one refresh token twice. The file
 * is re-read under the lock and again before writing: a file someone else
 * renewed meanwhile is adopted, never overwritten. Tokens are only ever
 * sent to the token endpoint and written to the file: never logged, never
 * returned, never kept (a refused refresh token is remembered by hash).
 */

import { createHash } from "node:crypto";
import type { Clock } from "../domain/index.js";
import type { Logger } from "../runtime/logger.js";
import {
  type CredentialFacts,
  type CredentialStatus,
  type RefreshBackoff,
  type RefreshPolicy,
  decideCredentials,
  retryDelay,
  statusWhileFailing,
} from "./credential-decision.js";
import {
  type CredentialsFile,
  type RenewedTokens,
  readCredentialsFile,
  withRenewedTokens,
  writeCredentialsFile,
  writeProblem,
} from "./credentials-file.js";
import { type RefreshLock, createClaudeRefreshLock } from "./refresh-lock.js";
import { type TokenRefreshResult, requestTokenRefresh } from "./token-refresh.js";

/** ManagedSubscription is one login to keep fresh. */
export interface ManagedSubscription {
  readonly id: string;
  readonly configDir: string;
}

/** CredentialSettings are the parts a config reload may change. */
export interface CredentialSettings {
  readonly subscriptions: readonly ManagedSubscription[];
  readonly tokenEndpoint: string;
  readonly clientId: string;
  /** Renew when less than this is left (Claude Code itself renews at 5 minutes). */
  readonly refreshBeforeMs: number;
  /** Look at each file at least this often. */
  readonly checkIntervalMs: number;
  /** Per token request; keep it under 60 s (the lock's staleness bound). */
  readonly timeoutMs: number;
  readonly backoff: RefreshBackoff;
}

/** CredentialManagerOptions configure a CredentialManager. */
export interface CredentialManagerOptions extends CredentialSettings {
  clock: Clock;
  logger: Logger;
  /** Called on every status change and after every refresh the pool made. Must not throw. */
  onStatus?: (subscriptionId: string, status: CredentialStatus) => void;
  fetch?: typeof fetch;
  /** Source of the backoff jitter, [0, 1); Math.random by default. */
  random?: () => number;
  /** Default: Claude Code's own lock in the config dir. */
  lock?: RefreshLock;
  /** How many config dirs are checked at once; 4 by default. */
  concurrency?: number;
}

/** CredentialSnapshot is what status() tells about one managed login (no secrets). */
export interface CredentialSnapshot extends CredentialStatus {
  /** Epoch ms of the pool's last successful refresh. */
  readonly lastRefreshAt?: number;
  /** Epoch ms of the next look at the file. */
  readonly nextCheckAt: number;
  /** Epoch ms the next refresh is planned for (a retry while failing); absent when none is planned. */
  readonly nextRefreshAt?: number;
  /** The last failure, until a check succeeds. */
  readonly lastError?: string;
  /** Consecutive failed renewals. */
  readonly failures: number;
}

/** LOCK_BUSY_RETRY_MS: someone else holds the refresh lock; look again soon (they are done within seconds). */
export const LOCK_BUSY_RETRY_MS = 5_000;

const SHORT_LIVED =
  "the endpoint hands out tokens that live less than credentials.refreshBeforeMinutes: renewed at half their life";

interface Entry {
  sub: ManagedSubscription;
  nextCheckAt: number;
  nextRefreshAt?: number;
  /** After renewing a token that lives less than the margin: no refresh before this (else every check would renew). */
  refreshNotBefore?: number;
  status?: CredentialStatus;
  lastRefreshAt?: number;
  lastError?: string;
  failures: number;
  /** Hash of the access token the pool last wrote, to tell "still ours" (refreshed) from "renewed elsewhere" (ok). */
  written?: string;
  /** Hashes of refresh tokens the endpoint refused. */
  dead: Set<string>;
  /** Tokens granted but not yet saved (the write failed): saving them is the next check's first job. */
  unsaved?: { tokens: RenewedTokens; spent: string };
}

export class CredentialManager {
  private settings: CredentialSettings;
  private readonly entries = new Map<string, Entry>();
  /** Config dirs with a check in flight: at most one per dir, whichever entry (or reload) started it. */
  private readonly busy = new Set<string>();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onStatus: (subscriptionId: string, status: CredentialStatus) => void;
  private readonly fetch: typeof fetch;
  private readonly random: () => number;
  private readonly lock: RefreshLock;
  private readonly concurrency: number;

  constructor(options: CredentialManagerOptions) {
    this.clock = options.clock;
    this.logger = options.logger;
    this.onStatus = options.onStatus ?? (() => {});
    // Bound late so tests that stub globalThis.fetch after construction still take effect.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.random = options.random ?? Math.random;
    this.lock = options.lock ?? createClaudeRefreshLock(options.clock);
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.settings = options;
    this.configure(options);
  }

  /**
   * configure applies a (reloaded) config: new subscriptions are due at
   * once, kept ones keep their state (status, backoff, refused tokens) as
   * long as their config dir is the same, removed ones are forgotten (a
   * check in flight still finishes, and its dir stays busy until then).
   */
  configure(settings: CredentialSettings): void {
    this.settings = settings;
    const now = this.clock.now();
    const keep = new Set<string>();
    for (const sub of settings.subscriptions) {
      keep.add(sub.id);
      const entry = this.entries.get(sub.id);
      if (entry !== undefined && entry.sub.configDir === sub.configDir) continue;
      this.entries.set(sub.id, { sub, nextCheckAt: now, failures: 0, dead: new Set() });
    }
    for (const id of [...this.entries.keys()]) if (!keep.has(id)) this.entries.delete(id);
  }

  /**
   * checkDue looks at every login whose time has come (a few at a time) and
   * waits for them. A config dir still being checked is left alone. Never
   * rejects: failures are recorded per subscription.
   */
  async checkDue(): Promise<void> {
    const now = this.clock.now();
    const due = [...this.entries.values()].filter((e) => e.nextCheckAt <= now && !this.busy.has(e.sub.configDir));
    for (const entry of due) this.busy.add(entry.sub.configDir);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let entry = due[next++]; entry !== undefined; entry = due[next++]) {
        try {
          await this.checkOne(entry);
        } catch (error) {
          // checkOne handles what it expects; this guard keeps one login from stopping the others.
          this.fail(entry, undefined, `check failed (${error instanceof Error ? error.name : "unknown error"})`);
        } finally {
          this.busy.delete(entry.sub.configDir);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, due.length) }, worker));
  }

  /** status reports one subscription's login; undefined for an id not managed. */
  status(subscriptionId: string): CredentialSnapshot | undefined {
    const entry = this.entries.get(subscriptionId);
    if (entry === undefined) return undefined;
    return {
      kind: entry.status?.kind ?? "ok",
      ...(entry.status?.reason !== undefined ? { reason: entry.status.reason } : {}),
      ...(entry.status?.expiresAt !== undefined ? { expiresAt: entry.status.expiresAt } : {}),
      ...(entry.lastRefreshAt !== undefined ? { lastRefreshAt: entry.lastRefreshAt } : {}),
      nextCheckAt: entry.nextCheckAt,
      ...(entry.nextRefreshAt !== undefined ? { nextRefreshAt: entry.nextRefreshAt } : {}),
      ...(entry.lastError !== undefined ? { lastError: entry.lastError } : {}),
      failures: entry.failures,
    };
  }

  /** nextDueAt is the earliest next check over all logins (for a scheduler's wakeAt); undefined when none. */
  nextDueAt(): number | undefined {
    let earliest: number | undefined;
    for (const entry of this.entries.values()) {
      if (earliest === undefined || entry.nextCheckAt < earliest) earliest = entry.nextCheckAt;
    }
    return earliest;
  }

  private policy(): RefreshPolicy {
    return { refreshBeforeMs: this.settings.refreshBeforeMs, checkIntervalMs: this.settings.checkIntervalMs };
  }

  private async checkOne(entry: Entry): Promise<void> {
    const dir = entry.sub.configDir;
    const file = await readCredentialsFile(dir);
    if (entry.unsaved !== undefined && (await this.saveUnsaved(entry, file))) return;
    const now = this.clock.now();
    const decision = decideCredentials(this.facts(entry, file), now, this.policy());
    if (decision.action === "wait") {
      this.settle(entry, file, decision.status, decision.nextCheckAt);
      return;
    }
    if (!decision.expired && entry.refreshNotBefore !== undefined && now < entry.refreshNotBefore) {
      const expiry =
        file.kind === "present" && file.oauth.expiresAt !== undefined ? { expiresAt: file.oauth.expiresAt } : {};
      const status: CredentialStatus = { kind: "ok", reason: SHORT_LIVED, ...expiry };
      this.settle(entry, file, status, Math.min(now + this.settings.checkIntervalMs, entry.refreshNotBefore));
      entry.nextRefreshAt = entry.refreshNotBefore;
      return;
    }
    // Spending the refresh token without being able to save its successor would end the login.
    const problem = file.kind === "present" ? await writeProblem(dir, file) : undefined;
    if (problem !== undefined) {
      this.fail(entry, file, `not renewed: ${problem}`);
      return;
    }
    const lock = await this.lock.acquire(dir);
    if (lock.kind === "busy") {
      // A `claude` process (or another pool) is refreshing right now: adopt its result shortly.
      entry.nextCheckAt = this.clock.now() + LOCK_BUSY_RETRY_MS;
      return;
    }
    if (lock.kind === "failed") {
      this.fail(entry, file, lock.reason);
      return;
    }
    try {
      await this.refreshLocked(entry, file);
    } finally {
      await lock.release();
    }
  }

  /** refreshLocked runs with the config dir's refresh lock held. */
  private async refreshLocked(entry: Entry, before: CredentialsFile): Promise<void> {
    const dir = entry.sub.configDir;
    // Re-read under the lock: whoever held it last may have renewed the login already.
    const file = await readCredentialsFile(dir);
    if (rotated(before, file)) {
      const decision = decideCredentials(this.facts(entry, file), this.clock.now(), this.policy());
      if (decision.action === "wait") {
        this.settle(entry, file, decision.status, decision.nextCheckAt);
        return;
      }
    }
    if (file.kind !== "present" || file.oauth.refreshToken === "") {
      const decision = decideCredentials(this.facts(entry, file), this.clock.now(), this.policy());
      if (decision.action === "wait") this.settle(entry, file, decision.status, decision.nextCheckAt);
      return;
    }
    const spent = file.oauth.refreshToken;
    const result = await requestTokenRefresh({
      endpoint: this.settings.tokenEndpoint,
      clientId: this.settings.clientId,
      refreshToken: spent,
      scopes: file.oauth.scopes,
      timeoutMs: this.settings.timeoutMs,
      now: () => this.clock.now(),
      fetch: this.fetch,
    });
    await this.afterRefresh(entry, file, spent, result);
  }

  private async afterRefresh(
    entry: Entry,
    file: CredentialsFile,
    spent: string,
    result: TokenRefreshResult,
  ): Promise<void> {
    const dir = entry.sub.configDir;
    switch (result.kind) {
      case "granted": {
        entry.unsaved = { tokens: result.tokens, spent };
        const latest = await readCredentialsFile(dir);
        await this.saveUnsaved(entry, latest);
        return;
      }
      case "invalid_grant": {
        const latest = await readCredentialsFile(dir);
        if (latest.kind === "present" && latest.oauth.refreshToken !== spent && latest.oauth.refreshToken !== "") {
          // Someone else spent it and wrote its successor (the race, won by them): adopt theirs.
          this.adopt(entry, latest, "renewed by another process while the pool was refreshing");
          return;
        }
        entry.dead.add(fingerprint(spent));
        entry.failures = 0;
        delete entry.lastError;
        const decision = decideCredentials(this.facts(entry, latest), this.clock.now(), this.policy());
        if (decision.action === "wait") this.settle(entry, latest, decision.status, decision.nextCheckAt);
        return;
      }
      case "refused": {
        const code = result.error !== undefined ? ` ${result.error}` : "";
        this.fail(
          entry,
          file,
          `token endpoint refused the refresh (HTTP ${result.status}${code}; check credentials.tokenEndpoint and credentials.clientId)`,
        );
        return;
      }
      case "unavailable":
        this.fail(entry, file, result.reason, result.retryAfterMs);
        return;
    }
  }

  /**
   * saveUnsaved writes granted tokens if the file still holds the refresh
   * token they replaced (or Claude Code blanked it meanwhile, after losing a
   * race to us); a file holding any other login is adopted, not overwritten
   * (the granted tokens are dropped). True when the check is done (saved,
   * adopted, or failed and rescheduled).
   */
  private async saveUnsaved(entry: Entry, file: CredentialsFile): Promise<boolean> {
    const unsaved = entry.unsaved;
    if (unsaved === undefined) return false;
    if (file.kind !== "present") {
      // Kept: they are the login's only live tokens, and the file may come back (a restore, a fixed permission).
      this.fail(entry, file, `refreshed, but ${file.reason}`);
      return true;
    }
    const current = file.oauth.refreshToken;
    if (current !== unsaved.spent && current !== "") {
      delete entry.unsaved;
      this.adopt(entry, file, "the file changed during the refresh; kept the login found there");
      return true;
    }
    const written = await writeCredentialsFile(entry.sub.configDir, withRenewedTokens(file.data, unsaved.tokens), file);
    if (!written.ok) {
      // The spent refresh token is useless now: keep the new ones in memory and try the write again.
      this.fail(entry, file, `refreshed, but ${written.reason}`);
      return true;
    }
    const now = this.clock.now();
    delete entry.unsaved;
    entry.failures = 0;
    delete entry.lastError;
    entry.lastRefreshAt = now;
    entry.written = fingerprint(unsaved.tokens.accessToken);
    const expiresAt = unsaved.tokens.expiresAt;
    const lifetime = expiresAt - now;
    if (lifetime <= this.settings.refreshBeforeMs)
      entry.refreshNotBefore = now + Math.max(this.settings.checkIntervalMs, lifetime / 2);
    else delete entry.refreshNotBefore;
    entry.nextRefreshAt = Math.max(entry.refreshNotBefore ?? now, expiresAt - this.settings.refreshBeforeMs);
    entry.nextCheckAt = Math.min(now + this.settings.checkIntervalMs, entry.nextRefreshAt);
    this.logger.info("credentials refreshed", {
      subscriptionId: entry.sub.id,
      expiresAt: new Date(expiresAt).toISOString(),
    });
    // Every refresh is reported, even refreshed → refreshed: the expiry moved.
    this.report(entry, { kind: "refreshed", expiresAt }, true);
    return true;
  }

  /** adopt takes a login someone else wrote as the current one and re-decides from it. */
  private adopt(entry: Entry, file: CredentialsFile, note: string): void {
    entry.failures = 0;
    delete entry.lastError;
    this.logger.info("credentials renewed elsewhere", { subscriptionId: entry.sub.id, note });
    const decision = decideCredentials(this.facts(entry, file), this.clock.now(), this.policy());
    if (decision.action === "wait") this.settle(entry, file, decision.status, decision.nextCheckAt);
    // Still due (an old file put back?): look again soon rather than at once.
    else entry.nextCheckAt = this.clock.now() + LOCK_BUSY_RETRY_MS;
  }

  /** settle records a check that needed no refresh. */
  private settle(entry: Entry, file: CredentialsFile, status: CredentialStatus, nextCheckAt: number): void {
    entry.nextCheckAt = nextCheckAt;
    const facts = this.facts(entry, file);
    if (facts.kind === "stored" && facts.hasRefreshToken && !facts.refreshTokenDead && facts.expiresAt !== undefined) {
      entry.nextRefreshAt = Math.max(this.clock.now(), facts.expiresAt - this.settings.refreshBeforeMs);
    } else delete entry.nextRefreshAt;
    // A check that needed no refresh ends any run of failures (e.g. the CLI renewed the login meanwhile).
    entry.failures = 0;
    delete entry.lastError;
    // The token the pool wrote is still there: it stays "refreshed" rather than flipping to "ok".
    const ours =
      status.kind === "ok" &&
      file.kind === "present" &&
      entry.written !== undefined &&
      entry.written === fingerprint(file.oauth.accessToken);
    this.report(entry, ours ? { ...status, kind: "refreshed" } : status, false);
  }

  /** fail records a failed renewal and schedules the next try with backoff. */
  private fail(entry: Entry, file: CredentialsFile | undefined, reason: string, retryAfterMs?: number): void {
    const now = this.clock.now();
    entry.failures++;
    const delay = Math.max(retryDelay(entry.failures, this.settings.backoff, this.random), retryAfterMs ?? 0);
    entry.nextCheckAt = now + delay;
    entry.nextRefreshAt = entry.nextCheckAt;
    const changed = entry.lastError !== reason;
    entry.lastError = reason;
    if (changed)
      this.logger.warn("credentials refresh failed", {
        subscriptionId: entry.sub.id,
        reason,
        failures: entry.failures,
        retryInMs: delay,
      });
    const facts: CredentialFacts = file === undefined ? { kind: "absent", reason } : this.facts(entry, file);
    this.report(entry, statusWhileFailing(facts, now, entry.status, reason), false);
  }

  private report(entry: Entry, status: CredentialStatus, always: boolean): void {
    const previous = entry.status;
    entry.status = status;
    if (!always && previous !== undefined && sameStatus(previous, status)) return;
    try {
      this.onStatus(entry.sub.id, status);
    } catch (error) {
      this.logger.error("credentials status listener failed", {
        subscriptionId: entry.sub.id,
        error: error instanceof Error ? error.name : "unknown",
      });
    }
  }

  private facts(entry: Entry, file: CredentialsFile): CredentialFacts {
    if (file.kind === "absent") return { kind: "absent", reason: file.reason };
    const { oauth } = file;
    return {
      kind: "stored",
      hasAccessToken: oauth.accessToken !== "",
      hasRefreshToken: oauth.refreshToken !== "",
      refreshTokenDead: oauth.refreshToken !== "" && entry.dead.has(fingerprint(oauth.refreshToken)),
      ...(oauth.loginEnded !== undefined ? { loginEnded: oauth.loginEnded } : {}),
      ...(oauth.expiresAt !== undefined ? { expiresAt: oauth.expiresAt } : {}),
    };
  }
}

/** A change of kind or reason is news; a later expiry alone is not (it is reported with the refresh that moved it). */
function sameStatus(a: CredentialStatus, b: CredentialStatus): boolean {
  return a.kind === b.kind && a.reason === b.reason;
}

/** rotated: the file now holds other tokens than when it was first read. */
function rotated(before: CredentialsFile, after: CredentialsFile): boolean {
  if (before.kind !== "present" || after.kind !== "present") return before.kind !== after.kind;
  return before.oauth.refreshToken !== after.oauth.refreshToken || before.oauth.accessToken !== after.oauth.accessToken;
}

/** fingerprint identifies a token without keeping it. */
function fingerprint(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
