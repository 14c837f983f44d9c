/**
 * retryAfterMs reads a Retry-After header (delay seconds or an HTTP date)
 * as ms from now; undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** sleep waits ms, or less when the signal aborts (it never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * linkedAbort is an abort signal that follows `parent` until released;
 * release() detaches it, so short-lived waits leave nothing behind on a
 * long-lived parent signal.
 */
export function linkedAbort(parent: AbortSignal): {
  signal: AbortSignal;
  abort(reason?: unknown): void;
  release(): void;
} {
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    abort: (reason?: unknown) => controller.abort(reason),
    release: () => parent.removeEventListener("abort", onAbort),
  };
}
