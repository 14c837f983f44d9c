import { Code, ConnectError } from "@connectrpc/connect";
import { METHOD_ROLES } from "../server/bearer-auth.js";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";
import { failedCall } from "./failed-calls.js";
import { type PoolTarget, tlsMismatch } from "./tls-mismatch.js";

export type { PoolTarget } from "./tls-mismatch.js";

/** ErrorReport is what the CLI says about a failed call, and how it exits. */
export interface ErrorReport {
  /** One or more lines for stderr, without the trailing newline. */
  message: string;
  exitCode: ExitCodeValue;
}

// Socket errors that mean no server answered at all: nothing listening,
// a name that does not resolve, no route. Everything else came from a server.
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

/**
 * isUnreachable tells whether a call failed because nothing answered at the
 * URL. connect-node reports that as UNAVAILABLE with the socket error as the
 * cause, but a pool that refuses a store write answers UNAVAILABLE too, so
 * the cause (or, failing that, the message) decides.
 */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof ConnectError) || error.code !== Code.Unavailable) return false;
  if (hasSocketCode(error.cause, 0)) return true;
  return /ECONNREFUSED|connection refused/i.test(error.rawMessage);
}

function hasSocketCode(cause: unknown, depth: number): boolean {
  if (depth > 5 || typeof cause !== "object" || cause === null) return false;
  const code = (cause as { code?: unknown }).code;
  if (typeof code === "string" && UNREACHABLE_CODES.has(code)) return true;
  // Happy eyeballs (localhost → ::1 and 127.0.0.1) fails with an
  // AggregateError holding one error per address.
  if (cause instanceof AggregateError && cause.errors.some((e) => hasSocketCode(e, depth + 1))) return true;
  return hasSocketCode((cause as { cause?: unknown }).cause, depth + 1);
}

/**
 * isConnectionFailure tells whether a call never reached the pool at all:
 * nothing answered at the URL, or TLS on one side only. Retrying the same
 * URL will not help, so a command that never got through stops at once.
 */
export function isConnectionFailure(error: unknown, target: PoolTarget): boolean {
  return isUnreachable(error) || (error instanceof ConnectError && tlsMismatch(error, target) !== undefined);
}

/** codeName renders a Code the way gRPC documentation spells it: "RESOURCE_EXHAUSTED". */
export function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  return name === undefined ? String(code) : name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * describeConnectError maps a failed call to a message and an exit code.
 * It is the one place that knows which Code means which exit code (see
 * exit-codes.ts), so every command fails the same way.
 */
export function describeConnectError(error: ConnectError, target: PoolTarget): ErrorReport {
  const { url } = target;
  const detail = `${codeName(error.code)}: ${error.rawMessage}`;
  if (isUnreachable(error)) {
    return {
      exitCode: ExitCode.unreachable,
      message:
        `authpool: cannot reach the pool at ${url} (${error.rawMessage}).\n` +
        "Start one with `authpool serve` (or `npm start` in a checkout), or point --server / AUTHPOOL_URL at a running pool.",
    };
  }
  const mismatch = tlsMismatch(error, target);
  if (mismatch !== undefined) return { exitCode: ExitCode.unreachable, message: `authpool: ${mismatch}` };
  switch (error.code) {
    case Code.Unauthenticated:
      return {
        exitCode: ExitCode.unauthenticated,
        message: `authpool: the pool at ${url} refused the call (${detail}).\n${tokenAdvice(error)}`,
      };
    case Code.PermissionDenied:
      return {
        exitCode: ExitCode.unauthenticated,
        message: `authpool: the pool at ${url} refused the call (${detail}).\n${roleAdvice(error)}`,
      };
    case Code.NotFound:
      return { exitCode: ExitCode.notFound, message: `authpool: ${detail}` };
    case Code.ResourceExhausted:
      // Nothing free and no fallback, a client limit, a full queue or a wait that ran out: the detail says which.
      return { exitCode: ExitCode.noSubscription, message: `authpool: no session granted (${detail})` };
    case Code.Unimplemented:
      return {
        exitCode: ExitCode.error,
        message: `authpool: the pool at ${url} does not offer this call yet (${detail}); it may be an older server.`,
      };
    default:
      return { exitCode: ExitCode.error, message: `authpool: ${detail}` };
  }
}

/** tokenAdvice: a pool that knows no token must be given one; one that knows none of the token given, another. */
function tokenAdvice(error: ConnectError): string {
  return /invalid bearer token/i.test(error.rawMessage)
    ? "The pool does not know the token given: check --token or AUTHPOOL_TOKEN against the pool's token file."
    : "Pass the bearer token with --token or AUTHPOOL_TOKEN.";
}

/**
 * roleAdvice: the token was accepted but lacks the call's role, so passing
 * "a token" again would not help. The server names the role ("Rebalance
 * needs the admin role"); an older one may not, and then the method the
 * call went to decides, from the server's own table.
 */
function roleAdvice(error: ConnectError): string {
  const named = /needs the (\w+) role/.exec(error.rawMessage)?.[1];
  const method = failedCall(error);
  const pascal = method === undefined ? undefined : method.charAt(0).toUpperCase() + method.slice(1);
  const role = named ?? (pascal === undefined ? undefined : (METHOD_ROLES[pascal] ?? "admin"));
  if (role === undefined) {
    return "The token given lacks the role this call needs: pass a token with that role (or admin) with --token or AUTHPOOL_TOKEN.";
  }
  const what = pascal === undefined ? "this call" : pascal;
  const or = role === "admin" ? "" : " (or admin)";
  const article = /^[aeiou]/.test(role) ? "an" : "a";
  return `The token given lacks the ${role} role ${what} needs: pass ${article} ${role}${or} token with --token or AUTHPOOL_TOKEN.`;
}
