import { Code, ConnectError } from "@connectrpc/connect";
import { ClientLimitSchema } from "../../gen/authpool/v1/auth_pool_pb.js";
import type { Rejection } from "../domain/index.js";
import { clientLimitToProto } from "./client-to-proto.js";

/** REJECTION_CODES map a domain refusal's reason to its status code. */
const REJECTION_CODES: Readonly<Record<Rejection["code"], Code>> = {
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
};

/**
 * rejectionError is a domain refusal as the ConnectError the call ends with.
 * A limit of the client that refused it travels as a ClientLimit detail, so
 * a caller (authpool exec) tells it from the pool running out without
 * reading the message. The refusal is its cause (never sent): the metrics
 * read the client limit of a refused allocation from it.
 */
export function rejectionError(r: Rejection): ConnectError {
  const details =
    r.clientLimit !== undefined ? [{ desc: ClientLimitSchema, value: clientLimitToProto(r.clientLimit) }] : undefined;
  return new ConnectError(r.message, REJECTION_CODES[r.code], undefined, details, r);
}

/** rejectionOf is the domain refusal an error was made from by rejectionError, if it was. */
export function rejectionOf(error: unknown): Rejection | undefined {
  return error instanceof ConnectError && isRejection(error.cause) ? error.cause : undefined;
}

/** orThrow throws a domain rejection as its ConnectError; anything else passes through. */
export function orThrow<T>(result: T | Rejection): T {
  if (isRejection(result)) throw rejectionError(result);
  return result as T;
}

function isRejection(value: unknown): value is Rejection {
  return typeof value === "object" && value !== null && (value as Rejection).kind === "rejected";
}
