import { applyEvent } from "./apply.js";
import type {
  AllocateResult,
  ClearedResult,
  Command,
  ObservedResult,
  PausedResult,
  RebalanceResult,
  ReconciledResult,
  Rejection,
  ReleaseResult,
  ReportResult,
  ResultOf,
  StatusResult,
  SubscriptionHealthSummary,
  SweepResult,
} from "./commands.js";
import { BUCKET_RETENTION_MS, type BucketTotals, weeklyTotals } from "./accounting.js";
import { CandidateIndex } from "./candidate-index.js";
import { SessionLists } from "./session-lists.js";
import { computeHealth } from "./health.js";
import { modelFamily } from "./model-family.js";
import { observeSubscription } from "./observe.js";
import { planRebalance } from "./rebalance.js";
import type { EventBody, Exclusion, PoolEvent, TranscriptUsage } from "./events.js";
import { DEFAULT_THROTTLE_SECONDS, type PoolSettings, type SubscriptionSettings } from "./settings.js";
import { type Cooldown, type PoolState, ensureSubscriptions, sessionsOf } from "./state.js";
import { HOUR_MS, MINUTE_MS, WEEK_MS, floorHour } from "./time.js";
import { maxTokens, tokenGrowth, tokenTotal } from "./tokens.js";
import { type LearnedPrice, type PriceBasis, learnPrice, priceOf, priceTokens } from "./pricing.js";
import { type TranscriptRow, type TranscriptUsageRow, dedupeTranscriptRows } from "./transcript.js";
import type { LimitSignal, LimitWindow, RateLimitReading, TokenCounts, UsageReport } from "./usage.js";
import { type SubscriptionView, exclusionOf, viewSubscription } from "./view.js";

/**
 * Pool is the domain: the state in memory, and run(command, now) which
 * decides, applies the resulting events and answers. No I/O: the caller
 * (the writer) persists the events before it hands the answer out.
 */
export class Pool {
  readonly state: PoolState;
  private current: PoolSettings;
  private configured: Map<string, SubscriptionSettings>;
  /**
   * Views derived since the state last changed, for one `now`. A command
   * reads the same subscription several times (to choose, to answer, to
   * announce); every applied event clears the cache.
   */
  private readonly viewCache = new Map<string, SubscriptionView>();
  private viewCacheAt: number | undefined;
  /** Views kept across instants to rank new allocations; an event touching a subscription invalidates its view. */
  private readonly candidates = new CandidateIndex();
  private readonly sessionLists = new SessionLists();
  /**
   * Each subscription's weekly sums (168 hourly buckets), kept until its
   * buckets change (a usage or transcript event) or the hour turns: an
   * allocation changes neither, so it does not sum them again.
   */
  private readonly weekTotals = new Map<string, { end: number; totals: BucketTotals }>();

  constructor(state: PoolState, settings: PoolSettings) {
    this.state = state;
    this.current = settings;
    this.configured = new Map(settings.subscriptions.map((s) => [s.id, s]));
  }

  /** settings are the ones in force; reconfigure swaps them. */
  get settings(): PoolSettings {
    return this.current;
  }

  /**
   * reconfigure puts new settings in force at once (limits, budgets,
   * thresholds) and returns the subscriptions the new settings dropped.
   * Only the "reconfigure" command calls it, so it happens between two
   * decisions, in the writer's order.
   */
  private reconfigure(settings: PoolSettings): SubscriptionSettings[] {
    const removed = this.current.subscriptions.filter((s) => !settings.subscriptions.some((n) => n.id === s.id));
    this.current = settings;
    this.configured = new Map(settings.subscriptions.map((s) => [s.id, s]));
    ensureSubscriptions(this.state, settings.subscriptions.map((s) => s.id));
    this.viewCache.clear();
    this.candidates.clear();
    return removed;
  }

  /**
   * settingsOf finds a subscription's settings: from the config, or for one
   * a reload removed, the settings remembered while it still holds sessions.
   */
  private settingsOf(subscriptionId: string): SubscriptionSettings | undefined {
    const configured = this.configured.get(subscriptionId);
    if (configured !== undefined) return configured;
    const drain = this.state.subscriptions.get(subscriptionId)?.drain;
    if (drain?.cause !== "removed" || drain.settings === undefined) return undefined;
    return sessionsOf(this.state, subscriptionId).size > 0 ? drain.settings : undefined;
  }

  /**
   * replay applies an event, keeping the caches in step with the state:
   * every event run emits, and on a standby every event of the records the
   * leader wrote.
   */
  replay(event: PoolEvent): void {
    applyEvent(this.state, event);
    this.sessionLists.follow(this.state, event, this.settings);
    if (event.type === "usage_recorded" || event.type === "transcript_read") this.weekTotals.delete(event.subscriptionId);
    this.viewCache.clear();
    for (const id of subscriptionsOf(event)) this.candidates.invalidate(id);
  }

  /**
   * adoptSettings puts settings in force without deciding anything: a
   * standby's reload, whose leader journals the consequences (drains) itself.
   */
  adoptSettings(settings: PoolSettings): void {
    this.reconfigure(settings);
  }

  /**
   * run decides a command at time now, applies its events to the state and
   * returns them with the result. Events of one command are applied before
   * the next command is decided, so a burst of allocations spreads.
   */
  run<C extends Command>(command: C, now: number): { events: PoolEvent[]; result: ResultOf<C> } {
    const events: PoolEvent[] = [];
    const emit = (body: EventBody): void => {
      const event = { ...body, seq: this.state.eventSeq + 1, at: now } as PoolEvent;
      this.replay(event);
      events.push(event);
    };
    const result = this.decide(command, now, emit) as ResultOf<C>;
    // Announce what the command changed about each subscription it touched
    // (status, thresholds); the sweep looks at all of them, which catches
    // changes that come from time passing (a cooldown ending).
    const touched = new Set<string>();
    if (command.kind === "sweep") for (const s of this.settings.subscriptions) touched.add(s.id);
    for (const e of events) for (const id of subscriptionsOf(e)) touched.add(id);
    // A cooldown cleared before its time says why in the status change it causes.
    const cleared = new Map<string, string>();
    for (const e of events) if (e.type === "cooldown_cleared" && e.target === "cooldown") cleared.set(e.subscriptionId, e.detail);
    for (const id of touched) {
      const view = this.view(id, now);
      if (view === undefined) continue;
      for (const body of observeSubscription(view, this.settings, cleared.get(id))) emit(body);
    }
    // Announcements are about the subscription they were derived from, so
    // the views now cached are current: the next allocation ranks by them.
    for (const id of touched) {
      const view = this.view(id, now);
      if (view !== undefined) this.candidates.adopt(view, now);
    }
    return { events, result };
  }

  /** view derives a subscription's view; undefined for ids not in the config. */
  view(subscriptionId: string, now: number): SubscriptionView | undefined {
    const cfg = this.settingsOf(subscriptionId);
    if (cfg === undefined) return undefined;
    if (this.viewCacheAt !== now) {
      this.viewCache.clear();
      this.viewCacheAt = now;
    }
    let view = this.viewCache.get(subscriptionId);
    if (view === undefined) {
      const end = floorHour(now) + HOUR_MS;
      let week = this.weekTotals.get(subscriptionId);
      if (week?.end !== end) {
        week = { end, totals: weeklyTotals(this.state.subscriptions.get(subscriptionId)!, now) };
        this.weekTotals.set(subscriptionId, week);
      }
      const activity = this.sessionLists.activity(this.state, subscriptionId, now, this.settings);
      view = viewSubscription(this.state, this.settings, cfg, now, activity, week.totals);
      this.viewCache.set(subscriptionId, view);
    }
    return view;
  }

  /** views derives every configured subscription's view, in config order, then removed ones still draining. */
  views(now: number): SubscriptionView[] {
    const views = this.settings.subscriptions.map((cfg) => this.view(cfg.id, now)!);
    for (const sub of this.state.subscriptions.values()) {
      if (sub.drain?.cause !== "removed" || this.configured.has(sub.id)) continue;
      const view = this.view(sub.id, now);
      if (view !== undefined) views.push(view);
    }
    return views;
  }

  private decide(command: Command, now: number, emit: (e: EventBody) => void): ResultOf<Command> {
    switch (command.kind) {
      case "allocate":
        return this.allocate(command, now, emit);
      case "report":
        return this.report(command, now, emit);
      case "release":
        return this.release(command.sessionId, "released", emit);
      case "set_paused":
        return this.setPaused(command, now, emit);
      case "set_drained":
        return this.setDrained(command, now, emit);
      case "reconfigure":
        return this.drainRemoved(this.reconfigure(command.settings), emit);
      case "status":
        return {
          kind: "status",
          now,
          views: this.views(now),
          totalSessions: this.state.sessions.size,
          sessions: command.includeSessions
            ? [...this.state.sessions.values()].map((s) => ({ ...s, tokens: { ...s.tokens } }))
            : [],
          prices: [...this.state.prices].map(([model, price]) => ({ model, ...price })),
        } satisfies StatusResult;
      case "sweep":
        return this.sweep(now, emit);
      case "rebalance":
        return this.rebalance(command, now, emit);
      case "observe":
        return this.observe(command, now, emit);
      case "reconcile":
        return this.reconcile(command, now, emit);
      case "clear_cooldown":
        return this.clearCooldown(command, now, emit);
      case "credentials": {
        const sub = this.state.subscriptions.get(command.subscriptionId);
        if (sub === undefined || this.settingsOf(command.subscriptionId) === undefined) {
          return { kind: "rejected", code: "not_found", message: `unknown subscription ${command.subscriptionId}` };
        }
        const same =
          command.status === "ok" ? sub.login === undefined : sub.login?.status === command.status && sub.login?.reason === command.reason;
        if (same) return { kind: "credentials", changed: false };
        emit({ type: "credentials_changed", subscriptionId: command.subscriptionId, status: command.status, reason: command.reason });
        return { kind: "credentials", changed: true };
      }
    }
  }

  private allocate(
    cmd: Extract<Command, { kind: "allocate" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): AllocateResult | Rejection {
    const existing = this.state.sessions.get(cmd.sessionId);
    if (existing !== undefined) {
      const current = this.view(existing.subscriptionId, now);
      const excluded =
        current === undefined
          ? { subscriptionId: existing.subscriptionId, reason: "paused" as const, detail: "no longer configured" }
          : exclusionOf(current, { priority: cmd.priority, model: cmd.model, holdsSlot: true }, this.settings);
      if (current !== undefined && excluded === undefined) {
        const rotatedFrom = existing.rotatedFrom;
        emit({ type: "session_resumed", sessionId: cmd.sessionId, subscriptionId: current.cfg.id });
        return {
          kind: "granted",
          sessionId: cmd.sessionId,
          view: this.view(current.cfg.id, now)!,
          resumed: true,
          ...(rotatedFrom !== undefined ? { rotatedFrom } : {}),
        };
      }
      // Its subscription can no longer take it: move it if another can.
      // (Read before emitting: applying the events mutates the session.)
      const from = existing.subscriptionId;
      const { best, exclusions } = this.choose(cmd, from, now);
      if (best !== undefined) {
        emit({
          type: "session_rotated",
          sessionId: cmd.sessionId,
          from,
          to: best.cfg.id,
          reason: excluded?.reason === "cooldown" ? "cooldown" : "not_eligible",
          detail: excluded?.detail ?? "",
        });
        emit({ type: "session_resumed", sessionId: cmd.sessionId, subscriptionId: best.cfg.id });
        return {
          kind: "granted",
          sessionId: cmd.sessionId,
          view: this.view(best.cfg.id, now)!,
          resumed: false,
          rotatedFrom: from,
        };
      }
      emit({ type: "session_released", sessionId: cmd.sessionId, subscriptionId: from, reason: "fallback" });
      return this.fallback(cmd.sessionId, excluded !== undefined ? [excluded, ...exclusions] : exclusions, emit);
    }

    const { best, exclusions } = this.choose(cmd, undefined, now);
    if (best === undefined) return this.fallback(cmd.sessionId, exclusions, emit);
    emit({
      type: "session_allocated",
      sessionId: cmd.sessionId,
      subscriptionId: best.cfg.id,
      priority: cmd.priority,
      model: cmd.model,
      estimatedTokens: cmd.estimatedTokens,
    });
    return { kind: "granted", sessionId: cmd.sessionId, view: this.view(best.cfg.id, now)!, resumed: false };
  }

  /**
   * choose picks the eligible subscription with the best rank (its health
   * score, or with settings.pacing that score paced against each window's
   * reset; see pacedRank); ties go to fewer sessions, then config order, so
   * the choice is deterministic. The
   * candidate index finds it without deriving every view; only when it finds
   * none are all views derived, to list why each one was excluded.
   */
  private choose(
    cmd: Extract<Command, { kind: "allocate" }>,
    skip: string | undefined,
    now: number,
  ): { best?: SubscriptionView; exclusions: Exclusion[] } {
    const need = { priority: cmd.priority, model: cmd.model, holdsSlot: false };
    const best = this.candidates.best(now, need, skip, this.settings, (cfg) => this.view(cfg.id, now)!);
    if (best !== undefined) return { best, exclusions: [] };
    return this.chooseAmong(this.views(now), cmd, skip);
  }

  private chooseAmong(
    views: SubscriptionView[],
    cmd: Extract<Command, { kind: "allocate" }>,
    skip: string | undefined,
  ): { best?: SubscriptionView; exclusions: Exclusion[] } {
    let best: SubscriptionView | undefined;
    const exclusions: Exclusion[] = [];
    for (const v of views) {
      if (v.cfg.id === skip) continue;
      const ex = exclusionOf(v, { priority: cmd.priority, model: cmd.model, holdsSlot: false }, this.settings);
      if (ex !== undefined) {
        exclusions.push(ex);
        continue;
      }
      if (best === undefined || v.rank > best.rank || (v.rank === best.rank && v.sessionCount < best.sessionCount)) {
        best = v;
      }
    }
    return { best, exclusions };
  }

  private fallback(sessionId: string, exclusions: Exclusion[], emit: (e: EventBody) => void): AllocateResult | Rejection {
    const reason =
      exclusions.length === 0
        ? "no subscription is configured"
        : `no eligible subscription: ${exclusions.map((e) => `${e.subscriptionId}: ${e.detail}`).join("; ")}`;
    if (!this.settings.fallback.enabled) {
      return { kind: "rejected", code: "resource_exhausted", message: reason, exclusions };
    }
    const provider = this.settings.fallback.provider;
    emit({ type: "fallback_used", sessionId, provider, reason, exclusions });
    return { kind: "fallback", sessionId, provider, reason, exclusions };
  }

  private report(
    cmd: Extract<Command, { kind: "report" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): ReportResult | Rejection {
    const open = this.state.sessions.get(cmd.sessionId);
    const subscriptionId = open?.subscriptionId ?? this.state.ended.get(cmd.sessionId)?.subscriptionId;
    if (subscriptionId === undefined) {
      return { kind: "rejected", code: "not_found", message: `session_id: session "${cmd.sessionId}" is not allocated` };
    }
    // Refuse before recording anything: a reply of not_found must mean "nothing changed".
    if (this.settingsOf(subscriptionId) === undefined && !this.isRetired(subscriptionId)) return notConfigured(subscriptionId);
    const keys = dedupeKeys(cmd.sessionId, cmd.requestId, cmd.report.resultUuid);
    if (keys.some((k) => this.state.dedupe.has(k))) {
      const view = this.view(subscriptionId, now);
      if (view === undefined) return notConfigured(subscriptionId);
      return { kind: "reported", duplicate: true, view, countedCostUsd: 0 };
    }
    const r = cmd.report;
    // Rows of this run counted as external before its report arrived are the pool's own.
    const external = r.claudeSessionId === undefined ? undefined : this.state.externalBySession.get(r.claudeSessionId);
    if (r.claudeSessionId !== undefined && external !== undefined && external.size > 0) {
      const subscriptionIds = [...new Set([...external].map((key) => key.slice(0, key.indexOf("|"))))];
      emit({ type: "transcript_reattributed", claudeSessionId: r.claudeSessionId, subscriptionIds });
    }
    const recorded = provesUse(r);
    if (recorded) {
      emit({
        type: "usage_recorded",
        sessionId: cmd.sessionId,
        subscriptionId,
        dedupeKeys: keys,
        costUsd: r.costUsd,
        tokens: r.tokens,
        models: r.models,
        durationMs: r.durationMs,
        sessionOpen: open !== undefined,
        ...(r.claudeSessionId !== undefined ? { claudeSessionId: r.claudeSessionId } : {}),
      });
    }
    if (r.readings.some((x) => x.utilization !== undefined)) {
      emit({ type: "upstream_observed", subscriptionId, readings: r.readings });
    }
    const healed = this.heal(subscriptionId, r.readings, now, emit);
    let throttle: ReportResult["throttle"];
    if (r.transient?.kind === "throttle" && r.limit === undefined) {
      throttle = this.throttle(subscriptionId, r.transient.retryAfterMs, r.transient.message, now, emit);
    }
    let limit: ReportResult["limit"];
    if (r.limit !== undefined) {
      limit = this.resolveLimit(r.limit, now);
      emit({
        type: "limit_reached",
        subscriptionId,
        kind: "upstream",
        window: limit.window,
        resetsAt: limit.resetsAt,
        estimated: limit.estimated,
        message: limit.message,
        ...(limit.modelScope !== undefined ? { modelScope: limit.modelScope } : {}),
      });
    }
    const view = this.view(subscriptionId, now);
    if (view === undefined) return notConfigured(subscriptionId);
    return {
      kind: "reported",
      duplicate: false,
      view,
      countedCostUsd: recorded ? r.costUsd : 0,
      ...(limit ? { limit } : {}),
      ...(throttle ? { throttle } : {}),
      ...(healed.length > 0 ? { healed } : {}),
    };
  }

  /**
   * throttle pauses new placements on a subscription after a request-scoped
   * 429, for the retry-after upstream gave, else cooldown.throttleSeconds. A
   * pause already reaching as far is not extended or announced again.
   */
  private throttle(
    subscriptionId: string,
    retryAfterMs: number | undefined,
    reason: string,
    now: number,
    emit: (e: EventBody) => void,
  ): { until: number; estimated: boolean } {
    const estimated = retryAfterMs === undefined;
    const until = now + (retryAfterMs ?? (this.settings.cooldown.throttleSeconds ?? DEFAULT_THROTTLE_SECONDS) * 1000);
    const current = this.state.subscriptions.get(subscriptionId)?.throttle;
    if (current !== undefined && current.until >= until) return { until: current.until, estimated };
    emit({ type: "throttled", subscriptionId, until, estimated, reason });
    return { until, estimated };
  }

  /**
   * heal ends the cooldowns in force whose reset was only estimated (a text
   * without a zone, no reset at all) when a reading taken now shows their
   * window allowed: upstream's word beats a guess. A model-scoped cooldown
   * heals on its model's window; one of an unknown window when the readings
   * hold a window of the whole subscription and none of those is rejected.
   * Exact resets stand: upstream itself gave them.
   */
  private heal(subscriptionId: string, readings: readonly RateLimitReading[], now: number, emit: (e: EventBody) => void): Cooldown[] {
    const sub = this.state.subscriptions.get(subscriptionId);
    if (sub === undefined || readings.length === 0) return [];
    const healed: Cooldown[] = [];
    for (const c of sub.cooldowns) {
      if (!c.estimated || c.until <= now || c.since >= now) continue;
      const proof = allowedProof(c, readings);
      if (proof === undefined) continue;
      healed.push(c);
      emit({
        type: "cooldown_cleared",
        subscriptionId,
        target: "cooldown",
        window: c.window,
        ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
        cause: "upstream",
        detail: `cooldown cleared: ${describeReading(proof)} (its reset was estimated)`,
      });
    }
    return healed;
  }

  /**
   * clearCooldown: an operator who knows the account works again ends its
   * cooldowns (or one model family's) and its throttle pause, each recorded.
   */
  private clearCooldown(
    cmd: Extract<Command, { kind: "clear_cooldown" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): ClearedResult | Rejection {
    if (!this.configured.has(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
    const sub = this.state.subscriptions.get(cmd.subscriptionId)!;
    const detail = `cleared by an operator${cmd.reason.trim() === "" ? "" : `: ${cmd.reason.trim()}`}`;
    const cleared = sub.cooldowns.filter((c) => c.until > now && (cmd.modelScope === undefined || c.modelScope === cmd.modelScope));
    for (const c of cleared) {
      emit({
        type: "cooldown_cleared",
        subscriptionId: cmd.subscriptionId,
        target: "cooldown",
        window: c.window,
        ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
        cause: "operator",
        detail,
      });
    }
    const throttleCleared = cmd.modelScope === undefined && sub.throttle !== undefined && sub.throttle.until > now;
    if (throttleCleared) {
      emit({ type: "cooldown_cleared", subscriptionId: cmd.subscriptionId, target: "throttle", window: "unknown", cause: "operator", detail });
    }
    return { kind: "cleared", cleared, throttleCleared, view: this.view(cmd.subscriptionId, now)! };
  }

  /** resolveLimit gives a limit without a reset time the configured default cooldown. */
  private resolveLimit(limit: LimitSignal, now: number): LimitSignal & { resetsAt: number } {
    if (limit.resetsAt !== undefined) return { ...limit, resetsAt: limit.resetsAt };
    return { ...limit, resetsAt: now + this.settings.cooldown.defaultMinutes * MINUTE_MS, estimated: true };
  }

  private release(
    sessionId: string,
    reason: "released" | "expired",
    emit: (e: EventBody) => void,
  ): ReleaseResult {
    const s = this.state.sessions.get(sessionId);
    if (s === undefined) return { kind: "released", released: false, subscriptionId: "" };
    emit({ type: "session_released", sessionId, subscriptionId: s.subscriptionId, reason });
    return { kind: "released", released: true, subscriptionId: s.subscriptionId };
  }

  private setPaused(
    cmd: Extract<Command, { kind: "set_paused" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): PausedResult | Rejection {
    if (!this.configured.has(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
    if (this.state.subscriptions.get(cmd.subscriptionId)?.paused !== cmd.paused) {
      emit({ type: "paused_set", subscriptionId: cmd.subscriptionId, paused: cmd.paused });
    }
    return { kind: "paused", view: this.view(cmd.subscriptionId, now)! };
  }

  private setDrained(
    cmd: Extract<Command, { kind: "set_drained" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): PausedResult | Rejection {
    if (!this.configured.has(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
    const drain = this.state.subscriptions.get(cmd.subscriptionId)?.drain;
    if ((drain !== undefined) !== cmd.drained) {
      emit({ type: "drained_set", subscriptionId: cmd.subscriptionId, drained: cmd.drained, cause: "operator" });
    }
    return { kind: "paused", view: this.view(cmd.subscriptionId, now)! };
  }

  /**
   * drainRemoved drains the subscriptions a reload dropped, remembering
   * their settings so the sessions they hold can resume until they end;
   * and ends the drain of removed ones the new config brought back.
   */
  private drainRemoved(
    removed: readonly SubscriptionSettings[],
    emit: (e: EventBody) => void,
  ): { kind: "reconfigured"; draining: string[] } {
    const draining: string[] = [];
    for (const cfg of removed) {
      if (sessionsOf(this.state, cfg.id).size === 0) continue;
      emit({ type: "drained_set", subscriptionId: cfg.id, drained: true, cause: "removed", settings: cfg });
      draining.push(cfg.id);
    }
    for (const cfg of this.settings.subscriptions) {
      if (this.state.subscriptions.get(cfg.id)?.drain?.cause === "removed") {
        emit({ type: "drained_set", subscriptionId: cfg.id, drained: false, cause: "removed" });
      }
    }
    return { kind: "reconfigured", draining };
  }

  /** isRetired: a subscription a reload removed; a late report on its sessions still counts. */
  private isRetired(subscriptionId: string): boolean {
    return this.state.subscriptions.get(subscriptionId)?.drain?.cause === "removed";
  }

  /**
   * observe records upstream readings taken outside a run. A window upstream
   * reports as rejected benches the subscription (or the model family) until
   * its reset, once: repeated polls of the same limit add nothing.
   */
  private observe(
    cmd: Extract<Command, { kind: "observe" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): ObservedResult | Rejection {
    if (!this.configured.has(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
    if (cmd.readings.some((r) => r.utilization !== undefined)) {
      emit({ type: "upstream_observed", subscriptionId: cmd.subscriptionId, readings: cmd.readings });
    }
    const healed = this.heal(cmd.subscriptionId, cmd.readings, now, emit);
    const sub = this.state.subscriptions.get(cmd.subscriptionId)!;
    for (const r of cmd.readings) {
      if (r.status !== "rejected" || r.resetsAt === undefined || r.resetsAt <= now) continue;
      const scope = modelFamily(r.window);
      if (sub.cooldowns.some((c) => c.modelScope === scope && c.until >= r.resetsAt!)) continue;
      emit({
        type: "limit_reached",
        subscriptionId: cmd.subscriptionId,
        kind: "upstream",
        window: r.window,
        resetsAt: r.resetsAt,
        estimated: false,
        message: `${cmd.source}: ${r.window} at ${Math.round((r.utilization ?? 1) * 100)}%`,
        ...(scope !== undefined ? { modelScope: scope } : {}),
      });
    }
    return { kind: "observed", view: this.view(cmd.subscriptionId, now)!, ...(healed.length > 0 ? { healed } : {}) };
  }

  /**
   * reconcile counts transcript rows the pool has not seen: rows of its own
   * Claude sessions were reported and are skipped; the rest is use outside
   * the pool. A row seen before counts only what it grew by. A usage-limit
   * row cools the subscription down until its reset, once.
   */
  private reconcile(
    cmd: Extract<Command, { kind: "reconcile" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): ReconciledResult | Rejection {
    if (!this.configured.has(cmd.subscriptionId)) return notConfigured(cmd.subscriptionId);
    const result: ReconciledResult = { kind: "reconciled", external: 0, externalCostUsd: 0, pool: 0, skipped: 0, limits: 0 };
    const horizon = now - WEEK_MS;
    const usage: TranscriptUsage[] = [];
    const limitKeys: string[] = [];
    const limits: LimitSignal[] = [];
    const rowKey = (key: string) => `${cmd.subscriptionId}|${key}`;
    const sub = this.state.subscriptions.get(cmd.subscriptionId)!;
    const rows = dedupeTranscriptRows(cmd.rows);
    // The CLI's own figures go first: a session's cost-state row follows its
    // usage rows, and should price them in the same read.
    const learned = learnedFromCostRows(rows, now);
    const priceFor = (model: string) => learned.get(model) ?? this.state.prices.get(model);
    for (const row of rows) {
      if (row.kind === "costs") continue;
      if (row.kind === "limit") {
        if (this.state.transcriptRows.has(rowKey(row.key)) || limitKeys.includes(row.key)) {
          result.skipped++;
          continue;
        }
        limitKeys.push(row.key);
        const resetsAt = row.signal.resetsAt ?? row.at + this.settings.cooldown.defaultMinutes * MINUTE_MS;
        const scope = row.signal.modelScope;
        const covered = sub.cooldowns.some((c) => c.modelScope === scope && c.until >= resetsAt);
        if (resetsAt > now && !covered) limits.push({ ...row.signal, resetsAt, estimated: row.signal.estimated || row.signal.resetsAt === undefined });
        continue;
      }
      if (row.at < horizon) {
        result.skipped++;
        continue;
      }
      if (row.sessionId !== undefined && this.state.claudeSessions.has(row.sessionId)) {
        result.pool++;
        continue;
      }
      const seen = row.key === undefined ? undefined : this.state.transcriptRows.get(rowKey(row.key));
      const tokens = seen === undefined ? row.tokens : tokenGrowth(row.tokens, seen.tokens);
      const priced = priceRow(row, priceFor(row.model));
      const costUsd = Math.max(0, priced.costUsd - (seen?.costUsd ?? 0));
      if (seen !== undefined && costUsd === 0 && tokenTotal(tokens) === 0) {
        result.skipped++;
        continue;
      }
      usage.push({
        ...(row.key !== undefined ? { key: row.key } : {}),
        ...(row.sessionId !== undefined ? { sessionId: row.sessionId } : {}),
        at: row.at,
        model: row.model,
        tokens,
        costUsd,
        total: { tokens: maxTokens(row.tokens, seen?.tokens), costUsd: Math.max(priced.costUsd, seen?.costUsd ?? 0) },
        basis: priced.basis,
      });
      result.external++;
      result.externalCostUsd += costUsd;
    }
    const prices = [...learned].filter(([model, p]) => !samePrice(p, this.state.prices.get(model)));
    if (usage.length > 0 || limitKeys.length > 0 || prices.length > 0) {
      emit({
        type: "transcript_read",
        subscriptionId: cmd.subscriptionId,
        usage,
        limitKeys,
        ...(prices.length > 0 ? { prices: prices.map(([model, p]) => ({ model, scale: p.scale, at: p.at })) } : {}),
      });
    }
    result.learnedPrices = prices.length;
    for (const limit of limits) {
      emit({
        type: "limit_reached",
        subscriptionId: cmd.subscriptionId,
        kind: "upstream",
        window: limit.window,
        resetsAt: limit.resetsAt,
        estimated: limit.estimated,
        message: `transcript: ${limit.message}`,
        ...(limit.modelScope !== undefined ? { modelScope: limit.modelScope } : {}),
      });
      result.limits++;
    }
    return result;
  }

  private rebalance(
    cmd: Extract<Command, { kind: "rebalance" }>,
    now: number,
    emit: (e: EventBody) => void,
  ): RebalanceResult {
    const views = this.views(now);
    const moves = planRebalance(views, this.state, this.settings, now);
    const before = views.map((v) => summary(v));
    let after: SubscriptionHealthSummary[];
    if (cmd.dryRun) {
      // Project: only session counts change (moved sessions are idle, so
      // the idle bonus and spend stay as they are).
      const delta = new Map<string, number>();
      for (const m of moves) {
        delta.set(m.from, (delta.get(m.from) ?? 0) - 1);
        delta.set(m.to, (delta.get(m.to) ?? 0) + 1);
      }
      after = views.map((v) => {
        const sessionCount = v.sessionCount + (delta.get(v.cfg.id) ?? 0);
        const health = computeHealth({
          cfg: v.cfg,
          sub: v.state,
          weekly: v.weekly,
          fiveHour: v.fiveHour,
          sessionCount,
          activeSessions: v.activeSessions,
          now,
          weights: this.settings.health.weights,
        });
        return { ...summary(v), healthScore: health.score, sessionCount };
      });
    } else {
      for (const m of moves) {
        emit({ type: "session_rotated", sessionId: m.sessionId, from: m.from, to: m.to, reason: m.reason, detail: m.detail });
      }
      // A periodic run that found nothing to do is not news; an operator's
      // request always gets its record.
      if (moves.length > 0 || cmd.trigger === "on_demand") emit({ type: "rebalance_completed", trigger: cmd.trigger, moves });
      after = this.views(now).map((v) => summary(v));
    }
    return { kind: "rebalanced", dryRun: cmd.dryRun, moves, before, after };
  }

  /**
   * sweep is the periodic housekeeping: release stale sessions, end
   * cooldowns whose reset time passed, forget dedupe keys past retention.
   */
  private sweep(now: number, emit: (e: EventBody) => void): SweepResult {
    const staleBefore = now - this.settings.sessions.staleMinutes * MINUTE_MS;
    let expired = 0;
    for (const s of [...this.state.sessions.values()]) {
      if (s.lastActivityAt <= staleBefore) {
        this.release(s.id, "expired", emit);
        expired++;
      }
    }
    for (const sub of this.state.subscriptions.values()) {
      for (const c of sub.cooldowns) {
        if (c.until <= now) {
          emit({
            type: "cooldown_ended",
            subscriptionId: sub.id,
            window: c.window,
            ...(c.modelScope !== undefined ? { modelScope: c.modelScope } : {}),
          });
        }
      }
    }
    const horizon = now - this.settings.dedupeRetentionHours * HOUR_MS;
    const oldestKey = this.state.dedupe.values().next();
    const oldestEnded = this.state.ended.values().next();
    // Transcript rows are remembered as long as a row that old could still
    // count (a week, plus the buckets' slack): forgetting one sooner would
    // count it again if its file were read again.
    const transcriptsBefore = now - BUCKET_RETENTION_MS;
    const oldestSession = this.state.claudeSessions.values().next();
    const transcriptsDue =
      (!oldestSession.done && oldestSession.value < transcriptsBefore) ||
      someOlder(this.state.transcriptRows.values(), transcriptsBefore);
    if (
      transcriptsDue ||
      (!oldestKey.done && oldestKey.value < horizon) ||
      (!oldestEnded.done && oldestEnded.value.endedAt < horizon)
    ) {
      emit({ type: "pruned", before: horizon, ...(transcriptsDue ? { transcriptsBefore } : {}) });
    }
    return { kind: "swept", expired };
  }
}

function summary(v: SubscriptionView): SubscriptionHealthSummary {
  return {
    subscriptionId: v.cfg.id,
    healthScore: v.health.score,
    fiveHourCostUsd: v.windowCostUsd,
    sessionCount: v.sessionCount,
  };
}

/** subscriptionsOf lists the subscriptions an event is about. */
export function subscriptionsOf(e: EventBody): string[] {
  switch (e.type) {
    case "session_rotated":
      return [e.from, e.to];
    case "rebalance_completed":
      return [...new Set(e.moves.flatMap((m) => [m.from, m.to]))];
    case "transcript_reattributed":
      return e.subscriptionIds;
    case "fallback_used":
      // A fallback changes no subscription: nothing to re-announce.
      return [];
    case "pruned":
      return [];
    default:
      return [e.subscriptionId];
  }
}

/**
 * dedupeKeys: the caller's request id (scoped to the session, since callers
 * often number requests per session) and the Claude result's uuid (unique on
 * its own). A report seen under either key is a repeat: a gateway that
 * retries with a fresh request id but the same output still counts once.
 */
function dedupeKeys(sessionId: string, requestId: string, resultUuid: string | undefined): string[] {
  const keys: string[] = [];
  if (requestId !== "") keys.push(`r:${sessionId}:${requestId}`);
  if (resultUuid !== undefined && resultUuid !== "") keys.push(`u:${resultUuid}`);
  return keys;
}

/**
 * provesUse: what a report shows was used. A report read from output that
 * carried no cost (text, empty, a stream cut short) counts nothing; nor
 * does a throttle or an overload that used nothing (upstream refused the
 * request), which must not move a window or a request count.
 */
function provesUse(r: UsageReport): boolean {
  if (r.costUnknown === true) return false;
  if (r.transient !== undefined && r.costUsd === 0 && tokenTotal(r.tokens) === 0) return false;
  return true;
}

const WHOLE_WINDOWS: readonly LimitWindow[] = ["five_hour", "seven_day"];

/** allowedProof finds the reading that shows a cooldown's window allowed, if one does. */
function allowedProof(c: Cooldown, readings: readonly RateLimitReading[]): RateLimitReading | undefined {
  const allowed = (window: string) => readings.find((r) => r.window === window && r.status !== "rejected");
  if (c.modelScope !== undefined) return allowed(`seven_day_${c.modelScope}`);
  // Overage "allowed" says nothing about the subscription's own windows.
  if (c.window === "overage") return undefined;
  if (c.window !== "unknown") return allowed(c.window);
  const whole = readings.filter((r) => WHOLE_WINDOWS.includes(r.window));
  if (whole.some((r) => r.status === "rejected")) return undefined;
  return whole[0];
}

function describeReading(r: RateLimitReading): string {
  const used = r.utilization === undefined ? "" : ` at ${Math.round(r.utilization * 100)}%`;
  return `${r.source ?? "report"} reading: ${r.window} ${r.status}${used}`;
}

function someOlder(rows: Iterable<{ at: number }>, before: number): boolean {
  for (const row of rows) if (row.at < before) return true;
  return false;
}

function notConfigured(subscriptionId: string): Rejection {
  return {
    kind: "rejected",
    code: "not_found",
    message: `subscription_id: subscription "${subscriptionId}" is not configured`,
  };
}


/** priceRow: the line's own figure, else what the CLI taught for the model, else the parser's table price. */
function priceRow(row: TranscriptUsageRow, learned: LearnedPrice | undefined): { costUsd: number; basis: PriceBasis } {
  if (row.costSource === "line") return { costUsd: row.costUsd, basis: "line" };
  if (learned !== undefined) return priceTokens(row.model, row.tokens, learned);
  return { costUsd: row.costUsd, basis: priceOf(row.model).known ? "list" : "estimate" };
}

/** learnedFromCostRows: the prices cost-state rows teach, the latest figure per model. */
function learnedFromCostRows(rows: readonly TranscriptRow[], now: number): Map<string, LearnedPrice> {
  const learned = new Map<string, LearnedPrice>();
  for (const row of rows) {
    if (row.kind !== "costs") continue;
    for (const [model, usage] of Object.entries(row.models)) {
      const price = learnPrice(model, usage, row.at ?? now);
      const known = learned.get(model);
      if (price !== undefined && (known === undefined || price.at >= known.at)) learned.set(model, price);
    }
  }
  return learned;
}

/** samePrice: re-reading a figure already learned is no news (and no journal record). */
function samePrice(a: LearnedPrice, b: LearnedPrice | undefined): boolean {
  return b !== undefined && (b.at > a.at || (b.at === a.at && b.scale === a.scale));
}
