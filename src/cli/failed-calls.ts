import type { AuthPoolClient } from "../client/index.js";

// Errors keyed by identity: a ConnectError carries no method name, and the
// role a refused call needs depends on it.
const failedCalls = new WeakMap<object, string>();

/**
 * namingFailures wraps a client so that an error from any of its calls (a
 * rejected promise, or a stream that throws) remembers which RPC it came
 * from: failedCall(error) then answers "rebalance", "streamEvents".
 */
export function namingFailures(client: AuthPoolClient): AuthPoolClient {
  return new Proxy(client, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || typeof key !== "string") return value;
      return (...args: unknown[]) => tagged(key, value.apply(target, args));
    },
  });
}

/** failedCall names the RPC an error came from, when it came through namingFailures. */
export function failedCall(error: unknown): string | undefined {
  return typeof error === "object" && error !== null ? failedCalls.get(error) : undefined;
}

function tagged(method: string, result: unknown): unknown {
  const tag = (error: unknown) => {
    if (typeof error === "object" && error !== null && !failedCalls.has(error)) failedCalls.set(error, method);
    throw error;
  };
  if (result instanceof Promise) return result.catch(tag);
  if (isAsyncIterable(result)) {
    return (async function* () {
      try {
        yield* result;
      } catch (error) {
        tag(error);
      }
    })();
  }
  return result;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}
