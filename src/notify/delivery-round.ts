import { type Backoff, backoffDelay } from "../domain/index.js";
import { sleep } from "./retry.js";
import { type WebhookDelivery, type WebhookTarget, postWebhook } from "./webhook-request.js";

/** RoundOutcome is what up to maxAttempts attempts in a row came to. */
export type RoundOutcome =
  | { kind: "delivered" }
  /** The receiver refused it for good (a non-retryable status): trying again would not help. */
  | { kind: "refused"; status: number; error: string }
  /** Every attempt failed transiently; `error` is the last one's (redacted). */
  | { kind: "failing"; error: string }
  /** Closing interrupted the round. */
  | { kind: "aborted" };

/** RoundPolicy bounds one round of attempts. */
export interface RoundPolicy {
  maxAttempts: number;
  backoff: Backoff;
}

/**
 * deliveryRound posts one delivery up to policy.maxAttempts times, waiting
 * between attempts for the receiver's Retry-After (capped at the backoff's
 * maximum) or else a jittered backoff, so many pools retrying a recovering
 * receiver do not arrive in lockstep. Each transient failure is told to
 * onFailure. It never throws.
 */
export async function deliveryRound(
  target: WebhookTarget,
  delivery: WebhookDelivery,
  policy: RoundPolicy,
  signal: AbortSignal,
  onFailure: (error: string) => void,
): Promise<RoundOutcome> {
  let error = "";
  const attempts = Math.max(1, policy.maxAttempts);
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const outcome = await postWebhook(target, delivery, signal);
    if (signal.aborted) return { kind: "aborted" };
    if (outcome.kind === "delivered") return { kind: "delivered" };
    if (outcome.kind === "refused") return outcome;
    error = outcome.error;
    onFailure(error);
    if (attempt < attempts) {
      const wait =
        outcome.retryAfterMs !== undefined
          ? Math.min(outcome.retryAfterMs, policy.backoff.maxMs)
          : backoffDelay(attempt, policy.backoff, "full");
      await sleep(wait, signal);
      if (signal.aborted) return { kind: "aborted" };
    }
  }
  return { kind: "failing", error };
}
