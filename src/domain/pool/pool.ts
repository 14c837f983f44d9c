import { applyEvent } from "../apply.js";
import type { Command, ResultOf } from "../commands.js";
import { type EventBody, type PoolEvent, subscriptionsOf } from "../events.js";
import { observeSubscription } from "../observe.js";
import type { PoolSettings, SubscriptionSettings } from "../settings.js";
import { type PoolState, ensureSubscriptions, sessionsOf } from "../state.js";
import type { AllocationNeed, SubscriptionView } from "../view.js";
import { allocate, release } from "./allocation.js";
import { clearCooldown } from "./cooldowns.js";
import { rebalance, sweep } from "./maintenance.js";
import { observe, recordCredentials } from "./observation.js";
import { drainRemoved, setDrained, setPaused } from "./operator-commands.js";
import { PoolCaches } from "./pool-caches.js";
import type { Emit, PoolContext } from "./pool-context.js";
import { reconcile } from "./reconciliation.js";
import { status } from "./status.js";
import { report } from "./usage-report.js";

/**
 * Pool is the domain: the state in memory, and run(command, now) which
 * decides, applies the resulting events and answers. No I/O: the caller
 * (the writer) persists the events before it hands the answer out.
 *
 * Each command is decided by its handler (allocation.ts, usage-report.ts,
 * …), which reads the pool through PoolContext; the Pool keeps the state,
 * the settings in force and the caches in step.
 */
export class Pool implements PoolContext {
  readonly state: PoolState;
  private current: PoolSettings;
  private configured: Map<string, SubscriptionSettings>;
  private readonly caches: PoolCaches;
  /** Made once, not per allocation: the candidate ranking derives the views it needs with it. */
  private readonly derive = (cfg: SubscriptionSettings, now: number): SubscriptionView => this.view(cfg.id, now)!;

  constructor(state: PoolState, settings: PoolSettings) {
    this.state = state;
    this.current = settings;
    this.configured = new Map(settings.subscriptions.map((s) => [s.id, s]));
    this.caches = new PoolCaches(state);
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
    ensureSubscriptions(
      this.state,
      settings.subscriptions.map((s) => s.id),
    );
    this.caches.settingsChanged();
    return removed;
  }

  /** isConfigured: the id is in the settings in force (a removed one still draining is not). */
  isConfigured(subscriptionId: string): boolean {
    return this.configured.has(subscriptionId);
  }

  /**
   * settingsOf finds a subscription's settings: from the config, or for one
   * a reload removed, the settings remembered while it still holds sessions.
   */
  settingsOf(subscriptionId: string): SubscriptionSettings | undefined {
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
    this.caches.follow(event, this.settings);
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
    for (const e of events)
      if (e.type === "cooldown_cleared" && e.target === "cooldown") cleared.set(e.subscriptionId, e.detail);
    for (const id of touched) {
      const view = this.view(id, now);
      if (view === undefined) continue;
      for (const body of observeSubscription(view, this.settings, cleared.get(id))) emit(body);
    }
    // Announcements are about the subscription they were derived from, so
    // the views now cached are current: the next allocation ranks by them.
    for (const id of touched) {
      const view = this.view(id, now);
      if (view !== undefined) this.caches.candidates.adopt(view, now);
    }
    return { events, result };
  }

  /** view derives a subscription's view; undefined for ids not in the config. */
  view(subscriptionId: string, now: number): SubscriptionView | undefined {
    const cfg = this.settingsOf(subscriptionId);
    if (cfg === undefined) return undefined;
    return this.caches.view(cfg, this.settings, now);
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

  /**
   * bestCandidate is the best-ranked configured subscription that can take
   * a new session with `need` (skipping `skip`), read from the ranking kept
   * between decisions; undefined when none can.
   */
  bestCandidate(need: AllocationNeed, skip: string | undefined, now: number): SubscriptionView | undefined {
    return this.caches.candidates.best(now, need, skip, this.settings, this.derive);
  }

  private decide(command: Command, now: number, emit: Emit): ResultOf<Command> {
    switch (command.kind) {
      case "allocate":
        return allocate(this, command, now, emit);
      case "report":
        return report(this, command, now, emit);
      case "release":
        return release(this, command.sessionId, "released", emit);
      case "set_paused":
        return setPaused(this, command, now, emit);
      case "set_drained":
        return setDrained(this, command, now, emit);
      case "reconfigure":
        return drainRemoved(this, this.reconfigure(command.settings), emit);
      case "status":
        return status(this, command, now);
      case "sweep":
        return sweep(this, now, emit);
      case "rebalance":
        return rebalance(this, command, now, emit);
      case "observe":
        return observe(this, command, now, emit);
      case "reconcile":
        return reconcile(this, command, now, emit);
      case "clear_cooldown":
        return clearCooldown(this, command, now, emit);
      case "credentials":
        return recordCredentials(this, command, emit);
    }
  }
}
