import type { PoolSettings, SubscriptionSettings } from "./settings.js";
import { type AllocationNeed, type SubscriptionView, exclusionOf } from "./view.js";

interface Entry {
  id: string;
  /** Position in the config: the last tie-break. */
  order: number;
  view: SubscriptionView;
}

/**
 * CandidateIndex keeps the configured subscriptions' views between
 * decisions, ranked as allocation chooses (best rank, then fewer
 * sessions, then config order), so that choosing reads the top of the
 * ranking instead of deriving every subscription's view on every call. A
 * view is derived again when an event touches its subscription
 * (`invalidate`) or its `validUntil` passes, so at 1,000 subscriptions an
 * allocation derives about one view, not 1,000.
 */
export class CandidateIndex {
  private ranked: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  private readonly touched = new Set<string>();
  private nextExpiry = Infinity;
  private lastNow = -Infinity;
  private built = false;

  /** invalidate marks a subscription whose state changed. */
  invalidate(subscriptionId: string): void {
    if (this.built) this.touched.add(subscriptionId);
  }

  /**
   * adopt takes a view derived at `now` after the last event that touched
   * its subscription (the pool derives one anyway to answer and announce),
   * so the next decision need not derive it again.
   */
  adopt(view: SubscriptionView, now: number): void {
    const e = this.byId.get(view.cfg.id);
    if (e === undefined || now < this.lastNow || e.view.cfg !== view.cfg) return;
    this.touched.delete(e.id);
    this.replace(e, view);
  }

  /** clear forgets everything (the settings changed). */
  clear(): void {
    this.ranked = [];
    this.byId.clear();
    this.touched.clear();
    this.nextExpiry = Infinity;
    this.built = false;
  }

  /**
   * best returns the top-ranked configured subscription that can take a new
   * session (skipping `skip`), or undefined when none can: the caller then
   * derives every view to say why. derive returns a subscription's view at
   * `now` (one function for every call: nothing is allocated per call).
   */
  best(
    now: number,
    need: AllocationNeed,
    skip: string | undefined,
    settings: PoolSettings,
    derive: (cfg: SubscriptionSettings, now: number) => SubscriptionView,
  ): SubscriptionView | undefined {
    this.refresh(now, settings.subscriptions, derive);
    for (const e of this.ranked) {
      if (e.id === skip) continue;
      if (exclusionOf(e.view, need, settings) === undefined) return e.view;
    }
    return undefined;
  }

  private refresh(
    now: number,
    subscriptions: readonly SubscriptionSettings[],
    derive: (cfg: SubscriptionSettings, now: number) => SubscriptionView,
  ): void {
    // A view derived at a later instant than now (the clock stepped back) cannot stand for now.
    if (!this.built || now < this.lastNow) {
      this.clear();
      subscriptions.forEach((cfg, order) => {
        this.byId.set(cfg.id, { id: cfg.id, order, view: derive(cfg, now) });
      });
      this.ranked = [...this.byId.values()].sort(compare);
      for (const e of this.ranked) this.nextExpiry = Math.min(this.nextExpiry, e.view.validUntil);
      this.built = true;
      this.lastNow = now;
      return;
    }
    this.lastNow = now;
    for (const id of this.touched) {
      const e = this.byId.get(id);
      if (e !== undefined) this.replace(e, derive(subscriptions[e.order]!, now));
    }
    this.touched.clear();
    if (now < this.nextExpiry) return;
    let next = Infinity;
    for (const e of [...this.ranked]) {
      if (e.view.validUntil <= now) this.replace(e, derive(subscriptions[e.order]!, now));
      if (e.view.validUntil < next) next = e.view.validUntil;
    }
    this.nextExpiry = next;
  }

  /** replace moves an entry to where its new view ranks it, shifting only the entries in between. */
  private replace(e: Entry, view: SubscriptionView): void {
    const r = this.ranked;
    let i = this.position(e);
    e.view = view;
    while (i > 0 && compare(r[i - 1]!, e) > 0) {
      r[i] = r[i - 1]!;
      i--;
    }
    while (i < r.length - 1 && compare(r[i + 1]!, e) < 0) {
      r[i] = r[i + 1]!;
      i++;
    }
    r[i] = e;
    if (view.validUntil < this.nextExpiry) this.nextExpiry = view.validUntil;
  }

  /** position finds an entry already ranked (binary search on its key; the order makes keys unique). */
  private position(e: Entry): number {
    const i = this.insertionPoint(e);
    if (this.ranked[i] === e) return i;
    return this.ranked.indexOf(e);
  }

  private insertionPoint(e: Entry): number {
    let lo = 0;
    let hi = this.ranked.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(this.ranked[mid]!, e) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** compare ranks as allocation chooses (pool/allocation.ts): higher rank, then fewer sessions, then config order. */
function compare(a: Entry, b: Entry): number {
  return b.view.rank - a.view.rank || a.view.sessionCount - b.view.sessionCount || a.order - b.order;
}
