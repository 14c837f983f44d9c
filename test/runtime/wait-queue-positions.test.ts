import { describe, expect, it } from "vitest";
import { WaitQueue, type WaitRequest } from "../../src/runtime/wait-queue.js";
import { ManualClock } from "../support/manual-clock.js";

/**
 * WaitQueue's onPosition: a watching waiter is told its place in line when
 * it joins and whenever the place moves, and nothing else.
 */

function setup() {
  const clock = new ManualClock("2026-12-02T10:00:00Z");
  let free = 0;
  const held = new Map<string, number>();
  const queue = new WaitQueue({
    clock,
    maxPerClient: () => 100,
    maxTotal: () => 1000,
    shareOf: (client, granted) => (held.get(client) ?? 0) + granted,
  });
  const told = new Map<string, Array<[number, number]>>();
  const wait = (client: string, tag: string, over: Partial<WaitRequest<string>> = {}) => {
    told.set(tag, []);
    return queue.enqueue<string>({
      client,
      priority: 1,
      kind: "",
      signal: new AbortController().signal,
      waitUntil: clock.now() + 60_000,
      attempt: async () => {
        if (free <= 0) return undefined;
        free--;
        held.set(client, (held.get(client) ?? 0) + 1);
        return tag;
      },
      onPosition: (position, waiting) => told.get(tag)!.push([position, waiting]),
      ...over,
    });
  };
  return { queue, wait, told, open: (n: number) => (free += n) };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe("WaitQueue positions", () => {
  it("tells each waiter its place when it joins and each time it moves up, not when others join behind", async () => {
    const { queue, wait, told, open } = setup();
    const calls = [wait("a", "a1"), wait("b", "b1"), wait("c", "c1")];
    await settle();
    expect(told.get("a1")).toEqual([[1, 3]]);
    expect(told.get("b1")).toEqual([[2, 3]]);
    expect(told.get("c1")).toEqual([[3, 3]]);
    open(1);
    await queue.wake();
    await settle();
    await expect(calls[0]).resolves.toBe("a1");
    expect(told.get("b1")).toEqual([
      [2, 3],
      [1, 2],
    ]);
    expect(told.get("c1")).toEqual([
      [3, 3],
      [2, 2],
    ]);
    open(2);
    await queue.wake();
    await Promise.all(calls);
    await settle();
    // a1 was never told anything after its first place: it went first throughout.
    expect(told.get("a1")).toEqual([[1, 3]]);
    expect(queue.size).toBe(0);
  });

  it("moves a waiter back when a call that comes first joins (a higher priority)", async () => {
    const { wait, told } = setup();
    void wait("a", "a1");
    void wait("b", "b1");
    await settle();
    void wait("c", "urgent", { priority: 2 });
    await settle();
    expect(told.get("urgent")).toEqual([[1, 3]]);
    expect(told.get("a1")).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(told.get("b1")).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });

  it("moves the ones behind up when a waiter leaves (cancelled)", async () => {
    const { wait, told } = setup();
    const leaving = new AbortController();
    const first = wait("a", "a1", { signal: leaving.signal });
    void wait("b", "b1");
    await settle();
    leaving.abort();
    await expect(first).rejects.toMatchObject({ reason: "cancelled" });
    await settle();
    expect(told.get("b1")).toEqual([
      [2, 2],
      [1, 1],
    ]);
  });

  it("goes on when a watcher throws", async () => {
    const { queue, wait, open } = setup();
    const call = wait("a", "a1", {
      onPosition: () => {
        throw new Error("watcher failed");
      },
    });
    await settle();
    open(1);
    await queue.wake();
    await expect(call).resolves.toBe("a1");
  });
});
