import { describe, expect, it } from "vitest";
import { WaitQueue, WaitRefusal, type WaitRequest } from "../../src/runtime/wait-queue.js";
import { ManualClock } from "../support/manual-clock.js";

/** Slots is a pool of n interchangeable slots, held per client. */
class Slots {
  free: number;
  readonly held = new Map<string, number>();
  readonly granted: string[] = [];
  constructor(n: number) {
    this.free = n;
  }
  take(client: string, tag: string): string | undefined {
    if (this.free <= 0) return undefined;
    this.free--;
    this.held.set(client, (this.held.get(client) ?? 0) + 1);
    this.granted.push(tag);
    return tag;
  }
  give(client: string): void {
    this.free++;
    this.held.set(client, (this.held.get(client) ?? 1) - 1);
  }
}

function setup(opts: { slots?: number; perClient?: number; total?: number; weights?: Record<string, number> } = {}) {
  const clock = new ManualClock("2026-12-02T10:00:00Z");
  const slots = new Slots(opts.slots ?? 0);
  const weights = opts.weights ?? {};
  const queue = new WaitQueue({
    clock,
    maxPerClient: () => opts.perClient ?? 100,
    maxTotal: () => opts.total ?? 1000,
    shareOf: (client, granted) => ((slots.held.get(client) ?? 0) + granted) / (weights[client] ?? 1),
  });
  const wait = (client: string, tag: string, over: Partial<WaitRequest<string>> = {}) =>
    queue.enqueue<string>({
      client,
      priority: 1,
      kind: "",
      signal: new AbortController().signal,
      waitUntil: clock.now() + 60_000,
      attempt: async () => slots.take(client, tag),
      ...over,
    });
  return { clock, slots, queue, wait };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe("WaitQueue", () => {
  it("places a waiter as soon as a slot opens", async () => {
    const { slots, queue, wait } = setup();
    const call = wait("alice", "a1");
    await settle();
    expect(queue.size).toBe(1);
    slots.free = 1;
    await queue.wake();
    await expect(call).resolves.toBe("a1");
    expect(queue.size).toBe(0);
  });

  it("orders by priority, then by the client's use of its share, then by arrival", async () => {
    const { slots, queue, wait } = setup({ weights: { bob: 2 } });
    slots.held.set("alice", 1);
    slots.held.set("bob", 1); // half of bob's weighted share: bob before alice
    const calls = [
      wait("alice", "alice-normal-1"),
      wait("bob", "bob-normal"),
      wait("alice", "alice-high", { priority: 2 }),
      wait("carol", "carol-low", { priority: 0 }),
      wait("alice", "alice-normal-2"),
    ];
    await settle();
    for (let i = 0; i < calls.length; i++) {
      slots.free = 1;
      await queue.wake();
    }
    await Promise.all(calls);
    // Among the normal calls bob (1 held / weight 2) goes before alice (1 held + 1 granted); then alice's, in arrival order; low last.
    expect(slots.granted).toEqual(["alice-high", "bob-normal", "alice-normal-1", "alice-normal-2", "carol-low"]);
  });

  it("drains 200 calls of 4 clients in fair-share order, granting no slot twice", async () => {
    const weights = { heavy: 1, alice: 1, bob: 1, batch: 1 };
    const { slots, queue, wait } = setup({ slots: 0, weights, perClient: 200 });
    const calls: Promise<string>[] = [];
    // The heavy bot queues first and most; fairness must not let it take every slot.
    for (let i = 0; i < 110; i++) calls.push(wait("heavy", `heavy-${i}`));
    for (let i = 0; i < 40; i++) calls.push(wait("alice", `alice-${i}`));
    for (let i = 0; i < 30; i++) calls.push(wait("bob", `bob-${i}`));
    for (let i = 0; i < 20; i++) calls.push(wait("batch", `batch-${i}`));
    await settle();
    // Slots open eight at a time; nobody gives back: shares rise as grants land.
    while (queue.size > 0) {
      slots.free += 8;
      await queue.wake();
    }
    const results = await Promise.all(calls);
    expect(new Set(results).size).toBe(200);
    expect(slots.granted).toHaveLength(200);
    // While all four wait, every window of 4 grants serves each client once.
    const first80 = slots.granted.slice(0, 80).map((tag) => tag.split("-")[0]);
    for (let i = 0; i < 80; i += 4) expect(new Set(first80.slice(i, i + 4)).size).toBe(4);
    // Within a client, arrival order.
    const heavy = slots.granted.filter((t) => t.startsWith("heavy-")).map((t) => Number(t.split("-")[1]));
    expect(heavy).toEqual([...heavy].sort((a, b) => a - b));
  });

  it("takes turns between clients whose slots are given back at once", async () => {
    const { slots, queue, wait } = setup({ weights: { alice: 2 } });
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 6; i++) calls.push(wait("alice", `alice-${i}`));
    for (let i = 0; i < 3; i++) calls.push(wait("bob", `bob-${i}`));
    await settle();
    // One slot, handed back as soon as it is granted: nobody ever holds one.
    while (queue.size > 0) {
      slots.free = 1;
      await queue.wake();
      const last = slots.granted.at(-1)!;
      slots.give(last.split("-")[0]!);
    }
    await Promise.all(calls);
    // Weight 2 against 1: two of alice's for each of bob's, while both wait.
    expect(slots.granted.map((t) => t.split("-")[0])).toEqual([
      "alice",
      "bob",
      "alice",
      "alice",
      "bob",
      "alice",
      "alice",
      "bob",
      "alice",
    ]);
  });

  it("does not let a call that cannot be placed hold up the calls of another kind behind it", async () => {
    const { slots, queue, wait } = setup({ slots: 1 });
    const opus = wait("alice", "opus", { kind: "opus", attempt: async () => undefined });
    const sonnet = wait("bob", "sonnet", { kind: "sonnet" });
    await settle();
    await queue.wake();
    await expect(sonnet).resolves.toBe("sonnet");
    expect(queue.size).toBe(1);
    expect(slots.granted).toEqual(["sonnet"]);
    queue.close();
    await expect(opus).rejects.toBeInstanceOf(WaitRefusal);
  });

  it("refuses beyond its bounds, per client and in all", async () => {
    const { wait, queue } = setup({ perClient: 2, total: 3 });
    const held = [wait("alice", "1"), wait("alice", "2")];
    await expect(wait("alice", "3")).rejects.toMatchObject({
      reason: "client_queue_full",
      message: expect.stringContaining("alice"),
    });
    held.push(wait("bob", "4"));
    await expect(wait("carol", "5")).rejects.toMatchObject({ reason: "queue_full" });
    queue.close();
    await Promise.allSettled(held);
  });

  it("lets a cancelled call leave at once", async () => {
    const { queue, wait } = setup();
    const controller = new AbortController();
    const call = wait("alice", "a", { signal: controller.signal });
    await settle();
    controller.abort();
    await expect(call).rejects.toMatchObject({ reason: "cancelled" });
    expect(queue.size).toBe(0);
    expect(queue.waiting("alice")).toBe(0);
  });

  it("ends a wait that ran out, on the next wake", async () => {
    const { clock, queue, wait } = setup();
    const call = wait("alice", "a", { waitUntil: clock.now() + 5_000 });
    await settle();
    clock.advance(5_000);
    await queue.wake();
    await expect(call).rejects.toMatchObject({ reason: "expired" });
  });

  it("gives back a slot granted to a caller that left meanwhile", async () => {
    const { slots, queue, wait } = setup({ slots: 1 });
    const controller = new AbortController();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const abandoned: string[] = [];
    const call = wait("alice", "a", {
      signal: controller.signal,
      attempt: async () => {
        await gate;
        return slots.take("alice", "a");
      },
      onAbandoned: (tag) => {
        abandoned.push(tag);
        slots.give("alice");
      },
    });
    await settle();
    controller.abort();
    release();
    await queue.wake();
    await expect(call).rejects.toMatchObject({ reason: "cancelled" });
    expect(abandoned).toEqual(["a"]);
    expect(slots.free).toBe(1);
  });

  it("answers a call with the refusal its attempt gave (a limit of its client)", async () => {
    const { wait } = setup();
    const call = wait("alice", "a", {
      attempt: async () => {
        throw new Error("client alice is at its 3 concurrent sessions");
      },
    });
    await expect(call).rejects.toThrow("client alice is at its 3 concurrent sessions");
  });
});
