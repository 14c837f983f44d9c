import type { GetPoolStatusResponse } from "../../src/client/index.js";

/**
 * Ledger is the client side of the books: what the pool was asked to do and
 * what it acknowledged. A status read is checked against two captures of
 * it, one taken before the read was sent and one after its answer came:
 * whatever was acknowledged before the read must show, and nothing may
 * show that was not at least sent before the answer. With nothing in
 * flight the two captures are equal and the checks become equalities.
 *
 * A call whose connection died before its answer is "in flight" until a
 * retry with the same ids answers; only then is it counted, exactly once.
 */

/** Tokens are the four token counts of a report. */
export interface Tokens {
  input: number;
  output: number;
  cacheCreation: number;
  cacheRead: number;
}

/** Tally adds up reports: how many, their cost and tokens. */
export interface Tally {
  count: number;
  costUsd: number;
  tokens: Tokens;
}

/** SessionStatus is what the acknowledgements so far say of a session. */
export type SessionStatus = "pending" | "held" | "fallback" | "released";

interface SessionRecord {
  id: string;
  status: SessionStatus;
  /** The subscription of the last grant. */
  subscriptionId: string | undefined;
  /** Allocate calls sent (a retry of an unknown-fate call is not a new one). */
  allocSent: number;
  allocInFlight: number;
  releaseSent: boolean;
  acked: Tally;
  inFlight: Tally;
}

/** ReportRecord is one ReportUsage, by its request_id. */
export interface ReportRecord {
  sessionId: string;
  requestId: string;
  costUsd: number;
  tokens: Tokens;
  state: "in_flight" | "counted" | "rejected";
  /** True once it was sent again after an unknown fate. */
  retried: boolean;
}

/** LedgerCapture is the ledger frozen at one instant. */
export interface LedgerCapture {
  sessions: ReadonlyMap<string, Readonly<SessionRecord>>;
  /** USD acknowledged per subscription (by the subscription each reply named). */
  ackedBySubscription: ReadonlyMap<string, number>;
  ackedUsd: number;
  inFlightUsd: number;
}

/** LedgerOptions say what a run may do to sessions behind the client's back. */
export interface LedgerOptions {
  /** No rebalance or rotation in the run: a session must stay on the subscription it was granted. */
  sessionsStay: boolean;
}

/** Tolerance for USD comparisons; the runs use multiples of 1/64, exact in binary, so sums are exact anyway. */
export const USD_EPSILON = 1e-9;

const zeroTokens = (): Tokens => ({ input: 0, output: 0, cacheCreation: 0, cacheRead: 0 });
const zeroTally = (): Tally => ({ count: 0, costUsd: 0, tokens: zeroTokens() });

function add(t: Tally, costUsd: number, tokens: Tokens, sign: 1 | -1): void {
  t.count += sign;
  t.costUsd += sign * costUsd;
  t.tokens.input += sign * tokens.input;
  t.tokens.output += sign * tokens.output;
  t.tokens.cacheCreation += sign * tokens.cacheCreation;
  t.tokens.cacheRead += sign * tokens.cacheRead;
}

export class Ledger {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly reports = new Map<string, ReportRecord>();
  private readonly ackedBySubscription = new Map<string, number>();
  private ackedUsd = 0;
  private inFlightUsd = 0;
  private readonly options: LedgerOptions;
  /** Broken promises noticed while recording replies (a first attempt answered "duplicate"...). */
  readonly violations: string[] = [];
  /** Acknowledged calls by kind. */
  readonly acknowledged = { allocate: 0, report: 0, release: 0, status: 0, rebalance: 0 };
  /** Replies by outcome. */
  readonly outcomes = { granted: 0, fallback: 0, resumed: 0, rejectedReports: 0 };
  /** Retries of calls whose first attempt had an unknown fate, by kind; `landed`: the first attempt had taken effect. */
  readonly retries = {
    allocate: { sent: 0, landed: 0 },
    report: { sent: 0, landed: 0 },
    release: { sent: 0, landed: 0 },
  };

  constructor(options: LedgerOptions) {
    this.options = options;
  }

  private session(id: string): SessionRecord {
    let s = this.sessions.get(id);
    if (s === undefined) {
      s = {
        id,
        status: "pending",
        subscriptionId: undefined,
        allocSent: 0,
        allocInFlight: 0,
        releaseSent: false,
        acked: zeroTally(),
        inFlight: zeroTally(),
      };
      this.sessions.set(id, s);
    }
    return s;
  }

  /** sessionStatus is what the ledger knows of a session. */
  sessionStatus(id: string): SessionStatus | undefined {
    return this.sessions.get(id)?.status;
  }

  /** sessionIds lists every session the ledger has seen. */
  sessionIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** allocateSent records an Allocate about to be sent (retry: the same call again). */
  allocateSent(sessionId: string, retry: boolean): void {
    const s = this.session(sessionId);
    if (retry) {
      this.retries.allocate.sent++;
      return;
    }
    s.allocSent++;
    s.allocInFlight++;
  }

  /** allocateGranted records a grant. */
  allocateGranted(sessionId: string, subscriptionId: string, resumed: boolean, retry: boolean): void {
    const s = this.session(sessionId);
    s.allocInFlight--;
    this.acknowledged.allocate++;
    this.outcomes.granted++;
    if (resumed) this.outcomes.resumed++;
    const wasHeld = s.status === "held";
    if (retry && resumed && !wasHeld) this.retries.allocate.landed++;
    if (!retry && resumed && !wasHeld) {
      this.violations.push(`allocate ${sessionId}: a first attempt for a session not held was answered "resumed"`);
    }
    if (!resumed && wasHeld && this.options.sessionsStay) {
      this.violations.push(`allocate ${sessionId}: a held session was granted anew instead of resumed`);
    }
    if (this.options.sessionsStay && wasHeld && s.subscriptionId !== subscriptionId) {
      this.violations.push(`allocate ${sessionId}: resumed on ${subscriptionId}, granted on ${s.subscriptionId}`);
    }
    s.status = "held";
    s.subscriptionId = subscriptionId;
  }

  /** allocateFallback records a fallback answer (for a held session: the pool let it go). */
  allocateFallback(sessionId: string): void {
    const s = this.session(sessionId);
    s.allocInFlight--;
    this.acknowledged.allocate++;
    this.outcomes.fallback++;
    s.status = s.status === "held" ? "released" : s.status === "released" ? "released" : "fallback";
  }

  /** allocateFailed records a definite refusal (an error code that means "nothing happened"). */
  allocateFailed(sessionId: string): void {
    const s = this.session(sessionId);
    s.allocInFlight--;
    if (s.status === "pending") s.status = "fallback";
  }

  /** reportSent records a ReportUsage about to be sent; returns its record (pass it back on retry). */
  reportSent(sessionId: string, requestId: string, costUsd: number, tokens: Tokens): ReportRecord {
    const existing = this.reports.get(requestId);
    if (existing !== undefined) {
      existing.retried = true;
      this.retries.report.sent++;
      return existing;
    }
    const r: ReportRecord = { sessionId, requestId, costUsd, tokens, state: "in_flight", retried: false };
    this.reports.set(requestId, r);
    add(this.session(sessionId).inFlight, costUsd, tokens, 1);
    this.inFlightUsd += costUsd;
    return r;
  }

  /** reportAcked records a ReportUsage reply: counted now (duplicate false) or already (a retry's duplicate). */
  reportAcked(r: ReportRecord, reply: { duplicate: boolean; countedCostUsd: number; subscriptionId: string }): void {
    if (r.state !== "in_flight") {
      this.violations.push(`report ${r.requestId}: answered again after it was settled`);
      return;
    }
    this.acknowledged.report++;
    if (reply.duplicate && !r.retried) {
      this.violations.push(`report ${r.requestId}: its first attempt was answered "duplicate"`);
    }
    if (reply.duplicate) this.retries.report.landed++;
    const expected = reply.duplicate ? 0 : r.costUsd;
    if (Math.abs(reply.countedCostUsd - expected) > USD_EPSILON) {
      this.violations.push(`report ${r.requestId}: counted_cost_usd ${reply.countedCostUsd}, expected ${expected}`);
    }
    const s = this.session(r.sessionId);
    add(s.inFlight, r.costUsd, r.tokens, -1);
    add(s.acked, r.costUsd, r.tokens, 1);
    this.inFlightUsd -= r.costUsd;
    this.ackedUsd += r.costUsd;
    this.ackedBySubscription.set(
      reply.subscriptionId,
      (this.ackedBySubscription.get(reply.subscriptionId) ?? 0) + r.costUsd,
    );
    r.state = "counted";
  }

  /** reportRejected records a definite refusal (NOT_FOUND...): nothing was counted. */
  reportRejected(r: ReportRecord): void {
    if (r.state !== "in_flight") return;
    this.outcomes.rejectedReports++;
    const s = this.session(r.sessionId);
    add(s.inFlight, r.costUsd, r.tokens, -1);
    this.inFlightUsd -= r.costUsd;
    r.state = "rejected";
  }

  /** releaseSent records a Release about to be sent. */
  releaseSent(sessionId: string, retry: boolean): void {
    if (retry) this.retries.release.sent++;
    this.session(sessionId).releaseSent = true;
  }

  /** releaseAcked records a Release reply. */
  releaseAcked(sessionId: string, released: boolean, retry: boolean): void {
    const s = this.session(sessionId);
    this.acknowledged.release++;
    if (s.status === "held" && !released) {
      if (retry) this.retries.release.landed++;
      else this.violations.push(`release ${sessionId}: a held session was answered "not held"`);
    }
    if (s.status !== "held" && released && this.options.sessionsStay) {
      this.violations.push(`release ${sessionId}: released a session the ledger says is ${s.status}`);
    }
    if (s.status === "held" || released) s.status = "released";
  }

  /** capture freezes the ledger (cheap enough for every status read: a copy of a few hundred records). */
  capture(): LedgerCapture {
    const sessions = new Map<string, SessionRecord>();
    for (const [id, s] of this.sessions) {
      sessions.set(id, {
        ...s,
        acked: { ...s.acked, tokens: { ...s.acked.tokens } },
        inFlight: { ...s.inFlight, tokens: { ...s.inFlight.tokens } },
      });
    }
    return {
      sessions,
      ackedBySubscription: new Map(this.ackedBySubscription),
      ackedUsd: this.ackedUsd,
      inFlightUsd: this.inFlightUsd,
    };
  }

  /** quiet says nothing is in flight: no call sent and unanswered, no unknown fate unresolved. */
  quiet(): boolean {
    for (const s of this.sessions.values()) if (s.allocInFlight > 0 || s.inFlight.count > 0) return false;
    return true;
  }

  /** heldSessions lists the sessions the acknowledgements say are held. */
  heldSessions(): string[] {
    return [...this.sessions.values()].filter((s) => s.status === "held").map((s) => s.id);
  }

  /** totals of what was acknowledged. */
  totals(): { usd: number; reports: number; tokens: Tokens } {
    const tokens = zeroTokens();
    let reports = 0;
    for (const s of this.sessions.values()) {
      reports += s.acked.count;
      tokens.input += s.acked.tokens.input;
      tokens.output += s.acked.tokens.output;
      tokens.cacheCreation += s.acked.tokens.cacheCreation;
      tokens.cacheRead += s.acked.tokens.cacheRead;
    }
    return { usd: this.ackedUsd, reports, tokens };
  }
}

/**
 * checkStatus checks one GetPoolStatus(include_sessions) reply against the
 * ledger captured before the read was sent and after its answer came, and
 * returns the violations (empty: every invariant holds).
 */
export function checkStatus(
  status: GetPoolStatusResponse,
  before: LedgerCapture,
  after: LedgerCapture,
  options: LedgerOptions & { exact?: boolean },
): string[] {
  const problems: string[] = [];
  const listed = new Map<string, GetPoolStatusResponse["sessions"][number]>();
  for (const s of status.sessions) {
    if (listed.has(s.sessionId)) problems.push(`session ${s.sessionId} is listed twice`);
    listed.set(s.sessionId, s);
  }

  // Capacity and counts that agree with each other.
  const perSubscription = new Map<string, number>();
  for (const s of status.sessions)
    perSubscription.set(s.subscriptionId, (perSubscription.get(s.subscriptionId) ?? 0) + 1);
  let counted = 0;
  for (const sub of status.subscriptions) {
    counted += sub.sessionCount;
    if (sub.sessionCount > sub.maxSessions) {
      problems.push(`${sub.id} holds ${sub.sessionCount} sessions, over its max_sessions ${sub.maxSessions}`);
    }
    const inList = perSubscription.get(sub.id) ?? 0;
    if (inList !== sub.sessionCount)
      problems.push(`${sub.id}: session_count ${sub.sessionCount} but ${inList} sessions listed on it`);
    if (sub.activeSessions + sub.idleSessions > sub.sessionCount) {
      problems.push(
        `${sub.id}: ${sub.activeSessions} active + ${sub.idleSessions} idle > session_count ${sub.sessionCount}`,
      );
    }
  }
  for (const id of perSubscription.keys()) {
    if (!status.subscriptions.some((s) => s.id === id))
      problems.push(`sessions listed on ${id}, which status does not show`);
  }
  if (status.totalSessions !== status.sessions.length) {
    problems.push(`total_sessions ${status.totalSessions} but ${status.sessions.length} sessions listed`);
  }
  if (counted !== status.totalSessions)
    problems.push(`session counts add up to ${counted}, total_sessions is ${status.totalSessions}`);

  // Every listed session was asked for, is not known to be gone, and holds what was reported on it.
  for (const [id, s] of listed) {
    const b = before.sessions.get(id);
    const a = after.sessions.get(id);
    if (a === undefined || a.allocSent === 0) {
      problems.push(`session ${id} is held but was never allocated by this client`);
      continue;
    }
    if (b !== undefined && b.status === "released" && b.allocSent === a.allocSent) {
      problems.push(`session ${id} is held after its release was acknowledged`);
    }
    if (b !== undefined && b.status === "fallback" && b.allocInFlight === 0 && b.allocSent === a.allocSent) {
      problems.push(`session ${id} is held although its allocation was answered with a fallback`);
    }
    if (
      options.sessionsStay &&
      a.subscriptionId !== undefined &&
      b?.status === "held" &&
      s.subscriptionId !== a.subscriptionId
    ) {
      problems.push(`session ${id} is on ${s.subscriptionId}, granted on ${a.subscriptionId}`);
    }
    const lower = b?.acked ?? zeroTally();
    const upper: Tally = {
      count: a.acked.count + a.inFlight.count,
      costUsd: a.acked.costUsd + a.inFlight.costUsd,
      tokens: {
        input: a.acked.tokens.input + a.inFlight.tokens.input,
        output: a.acked.tokens.output + a.inFlight.tokens.output,
        cacheCreation: a.acked.tokens.cacheCreation + a.inFlight.tokens.cacheCreation,
        cacheRead: a.acked.tokens.cacheRead + a.inFlight.tokens.cacheRead,
      },
    };
    const within = (what: string, value: number, lo: number, hi: number, eps = 0) => {
      if (value < lo - eps || value > hi + eps)
        problems.push(`session ${id}: ${what} ${value}, expected ${lo === hi ? lo : `${lo}..${hi}`}`);
    };
    within("requests", s.requests, lower.count, upper.count);
    within("cost_usd", s.costUsd, lower.costUsd, upper.costUsd, USD_EPSILON);
    within("input_tokens", Number(s.inputTokens), lower.tokens.input, upper.tokens.input);
    within("output_tokens", Number(s.outputTokens), lower.tokens.output, upper.tokens.output);
    within(
      "cache_creation_input_tokens",
      Number(s.cacheCreationInputTokens),
      lower.tokens.cacheCreation,
      upper.tokens.cacheCreation,
    );
    within("cache_read_input_tokens", Number(s.cacheReadInputTokens), lower.tokens.cacheRead, upper.tokens.cacheRead);
  }

  // Every session acknowledged as held before the read, and not released since, is there.
  for (const [id, b] of before.sessions) {
    if (b.status !== "held") continue;
    const a = after.sessions.get(id)!;
    if (a.releaseSent) continue;
    if (!listed.has(id)) problems.push(`session ${id} was granted (acknowledged) and never released, but is not held`);
  }

  // Weekly use: at least what was acknowledged before the read, at most that plus what was in flight.
  let weeklyTotal = 0;
  for (const sub of status.subscriptions) {
    weeklyTotal += sub.weeklyUsedUsd;
    const lo = before.ackedBySubscription.get(sub.id) ?? 0;
    const hi = (after.ackedBySubscription.get(sub.id) ?? 0) + after.inFlightUsd;
    if (sub.weeklyUsedUsd < lo - USD_EPSILON || sub.weeklyUsedUsd > hi + USD_EPSILON) {
      problems.push(
        `${sub.id}: weekly_used_usd ${sub.weeklyUsedUsd}, expected ${lo === hi ? lo : `${lo}..${hi}`} from the acknowledged reports`,
      );
    }
  }
  if (weeklyTotal < before.ackedUsd - USD_EPSILON || weeklyTotal > after.ackedUsd + after.inFlightUsd + USD_EPSILON) {
    problems.push(
      `weekly_used_usd adds up to ${weeklyTotal}, expected ${before.ackedUsd}..${after.ackedUsd + after.inFlightUsd}`,
    );
  }

  if (options.exact === true) {
    if (
      after.inFlightUsd !== 0 ||
      [...after.sessions.values()].some((s) => s.allocInFlight > 0 || s.inFlight.count > 0)
    ) {
      problems.push("an exact check was asked for while calls were still in flight (harness bug)");
    }
    for (const id of listed.keys()) {
      if (after.sessions.get(id)?.status !== "held")
        problems.push(`session ${id} is held; the ledger says ${after.sessions.get(id)?.status ?? "unknown"}`);
    }
  }
  return problems;
}
