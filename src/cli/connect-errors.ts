import { Code, ConnectError } from "@connectrpc/connect";
import { ExitCode, type ExitCodeValue } from "./exit-codes.js";

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
export function describeConnectError(error: ConnectError, url: string): ErrorReport {
  const detail = `${codeName(error.code)}: ${error.rawMessage}`;
  if (isUnreachable(error)) {
    return {
      exitCode: ExitCode.unreachable,
      message:
        `authpool: cannot reach the pool at ${url} (${error.rawMessage}).\n` +
        "Start one with `authpool serve` (or `npm start` in a checkout), or point --server / AUTHPOOL_URL at a running pool.",
    };
  }
  switch (error.code) {
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return {
        exitCode: ExitCode.unauthenticated,
        message: `authpool: the pool at ${url} refused the call (${detail}).\nPass the bearer token with --token or AUTHPOOL_TOKEN.`,
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
