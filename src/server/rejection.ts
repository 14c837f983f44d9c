import { Code, ConnectError } from "@connectrpc/connect";
import type { Rejection } from "../domain/index.js";

/** REJECTION_CODES map a domain refusal's reason to its status code. */
const REJECTION_CODES: Readonly<Record<Rejection["code"], Code>> = {
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
};

/** rejectionError is a domain refusal as the ConnectError the call ends with. */
export function rejectionError(r: Rejection): ConnectError {
  return new ConnectError(r.message, REJECTION_CODES[r.code]);
}

/** orThrow throws a domain rejection as its ConnectError; anything else passes through. */
export function orThrow<T>(result: T | Rejection): T {
  if (typeof result === "object" && result !== null && (result as Rejection).kind === "rejected") {
    throw rejectionError(result as Rejection);
  }
  return result as T;
}
