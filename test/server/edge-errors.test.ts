import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { MAX_STATUS_MESSAGE, edgeErrors } from "../../src/server/edge-errors.js";

/** refusal runs edgeErrors over a handler that throws `error` and returns what reaches the wire. */
async function refusal(error: unknown): Promise<ConnectError> {
  const call = edgeErrors(async () => {
    throw error;
  });
  try {
    await call({} as never);
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("edgeErrors swallowed the error");
}

describe("edgeErrors", () => {
  it.each([
    ["a lone high surrogate", "model \ud800 unknown", "model \ufffd unknown"],
    ["a lone low surrogate", "x\udfffy", "x\ufffdy"],
    ["a surrogate pair cut at the end", "ends in \ud83d", "ends in \ufffd"],
  ])("makes %s well-formed (grpc-message is percent-encoded, which throws on one)", async (_name, sent, wire) => {
    const out = await refusal(new ConnectError(sent, Code.InvalidArgument));
    expect(out.rawMessage).toBe(wire);
    expect(out.code).toBe(Code.InvalidArgument);
    expect(() => encodeURIComponent(out.rawMessage)).not.toThrow();
  });

  it("makes an unexpected error's message well-formed too, as INTERNAL", async () => {
    const out = await refusal(new TypeError("bad \ud800"));
    expect(out.code).toBe(Code.Internal);
    expect(out.rawMessage).toBe("bad \ufffd");
  });

  it("keeps a whole emoji and a short message as they are", async () => {
    const error = new ConnectError("model 😀 unknown", Code.NotFound);
    expect(await refusal(error)).toBe(error);
  });

  it("cuts a long message by code points, never inside an emoji", async () => {
    const out = await refusal(new ConnectError("😀".repeat(MAX_STATUS_MESSAGE * 2), Code.InvalidArgument));
    expect([...out.rawMessage]).toHaveLength(MAX_STATUS_MESSAGE);
    expect(out.rawMessage.endsWith("😀…")).toBe(true);
    expect(() => encodeURIComponent(out.rawMessage)).not.toThrow();
  });
});
