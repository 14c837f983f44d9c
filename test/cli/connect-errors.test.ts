import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { describeConnectError, isUnreachable } from "../../src/cli/connect-errors.js";

const URL = "http://127.0.0.1:50051";
const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:50051"), { code: "ECONNREFUSED" });

describe("describeConnectError()", () => {
  it.each([
    {
      name: "a refused connection",
      error: new ConnectError("connect ECONNREFUSED", Code.Unavailable, undefined, undefined, refused),
      exit: 3,
    },
    {
      name: "every address refused (happy eyeballs)",
      error: new ConnectError(
        "connect failed",
        Code.Unavailable,
        undefined,
        undefined,
        new AggregateError([refused, refused]),
      ),
      exit: 3,
    },
    {
      name: "a name that does not resolve",
      error: new ConnectError("getaddrinfo", Code.Unavailable, undefined, undefined, { code: "ENOTFOUND" }),
      exit: 3,
    },
    {
      name: "a pool that answered UNAVAILABLE itself",
      error: new ConnectError("store write refused", Code.Unavailable),
      exit: 1,
    },
    { name: "UNAUTHENTICATED", error: new ConnectError("missing bearer token", Code.Unauthenticated), exit: 4 },
    { name: "PERMISSION_DENIED", error: new ConnectError("no", Code.PermissionDenied), exit: 4 },
    { name: "NOT_FOUND", error: new ConnectError('subscription "x" is not configured', Code.NotFound), exit: 5 },
    {
      name: "RESOURCE_EXHAUSTED",
      error: new ConnectError("every subscription is excluded", Code.ResourceExhausted),
      exit: 75,
    },
    { name: "INVALID_ARGUMENT", error: new ConnectError("session_id: too long", Code.InvalidArgument), exit: 1 },
    { name: "UNIMPLEMENTED", error: new ConnectError("SetDrained is being built", Code.Unimplemented), exit: 1 },
  ])("should map $name to exit code $exit", ({ error, exit }) => {
    const report = describeConnectError(error, URL);
    expect(report.exitCode).toBe(exit);
    expect(report.message).toMatch(/^authpool: /);
  });

  it("should name the URL and how to start a pool when nothing answers", () => {
    const { message } = describeConnectError(
      new ConnectError("connect ECONNREFUSED", Code.Unavailable, undefined, undefined, refused),
      URL,
    );
    expect(message).toContain(URL);
    expect(message).toContain("authpool serve");
    expect(message).toContain("npm start");
  });

  it("should point at --token and AUTHPOOL_TOKEN when the call is refused", () => {
    const { message } = describeConnectError(new ConnectError("missing bearer token", Code.Unauthenticated), URL);
    expect(message).toContain("UNAUTHENTICATED: missing bearer token");
    expect(message).toMatch(/--token.*AUTHPOOL_TOKEN/);
  });
});

describe("isUnreachable()", () => {
  it("should rely on the message when the cause is gone", () => {
    expect(isUnreachable(new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable))).toBe(true);
    expect(isUnreachable(new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Internal))).toBe(false);
    expect(isUnreachable(new Error("ECONNREFUSED"))).toBe(false);
  });
});
