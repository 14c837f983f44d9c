import { type BucketTotals, weeklyTotals } from "../accounting.js";
import { CandidateIndex } from "../candidate-index.js";
import { type PoolEvent, subscriptionsOf } from "../events.js";
import { SessionLists } from "../session-lists.js";
import type { PoolSettings, SubscriptionSettings } from "../settings.js";
import type { PoolState } from "../state.js";
import { HOUR_MS, floorHour } from "../time.js";
import { type SubscriptionView, viewSubscription } from "../view.js";

/**
 * PoolCaches holds what the pool derives from its state to decide fast, and
 * keeps it in step with the events applied to that state (`follow`) and
 * with settings put in force (`settingsChanged`). Nothing here is state of
 * record: dropping it all costs time, never a decision.
 */
export class PoolCaches {
  private readonly state: PoolState;
  /**
   * Views derived since the state last changed, for one `now`. A command
   * reads the same subscription several times (to choose, to answer, to
   * announce); every applied event clears the cache.
   */
  private readonly viewCache = new Map<string, SubscriptionView>();
  private viewCacheAt: number | undefined;
  /** Views kept across instants to rank new allocations; an event touching a subscription invalidates its view. */
  readonly candidates = new CandidateIndex();
  private readonly sessionLists = new SessionLists();
  /**
   * Each subscription's weekly sums (168 hourly buckets), kept until its
   * buckets change (a usage or transcript event, or a reading that measured
   * outside use) or the hour turns: an allocation changes neither, so it
   * does not sum them again.
   */
  private readonly weekTotals = new Map<string, { end: number; totals: BucketTotals }>();

  constructor(state: PoolState) {
    this.state = state;
  }

  /** follow updates the caches for an event just applied to the state. */
  follow(event: PoolEvent, settings: PoolSettings): void {
    this.sessionLists.follow(this.state, event, settings);
    if (event.type === "usage_recorded" || event.type === "transcript_read" || event.type === "upstream_observed")
      this.weekTotals.delete(event.subscriptionId);
    this.viewCache.clear();
    for (const id of subscriptionsOf(event)) this.candidates.invalidate(id);
  }

  /** settingsChanged drops the views derived under the settings no longer in force. */
  settingsChanged(): void {
    this.viewCache.clear();
    this.candidates.clear();
  }

  /** view returns the subscription's view at now, derived at most once per instant and state. */
  view(cfg: SubscriptionSettings, settings: PoolSettings, now: number): SubscriptionView {
    if (this.viewCacheAt !== now) {
      this.viewCache.clear();
      this.viewCacheAt = now;
    }
    let view = this.viewCache.get(cfg.id);
    if (view === undefined) {
      const end = floorHour(now) + HOUR_MS;
      let week = this.weekTotals.get(cfg.id);
      if (week?.end !== end) {
        week = { end, totals: weeklyTotals(this.state.subscriptions.get(cfg.id)!, now) };
        this.weekTotals.set(cfg.id, week);
      }
      const activity = this.sessionLists.activity(this.state, cfg.id, now, settings);
      view = viewSubscription(this.state, settings, cfg, now, activity, week.totals);
      this.viewCache.set(cfg.id, view);
    }
    return view;
  }
}
