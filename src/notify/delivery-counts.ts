/**
 * DeliveryCounts tallies one channel's deliveries since the server started.
 * It outlives the channel's dispatcher, which a reload or a change of
 * leader replaces, so the counters read from it never go back.
 */
export interface DeliveryCounts {
  /** Messages the receiver took. */
  delivered: number;
  /** Messages it refused for good (a non-retryable status): skipped, never retried. */
  refused: number;
  /**
   * Every error the channel recorded: each failed attempt, each refusal,
   * events pruned before delivery, a cursor the store would not give.
   */
  failures: number;
}

/** createDeliveryCounts starts a channel's tally at zero. */
export function createDeliveryCounts(): DeliveryCounts {
  return { delivered: 0, refused: 0, failures: 0 };
}
