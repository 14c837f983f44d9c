import { parseConfig } from "../../src/config/index.js";
import { type AuthPoolServer, startAuthPoolServer } from "../../src/server/start-server.js";

/**
 * The standby: a second server on the leader's store, in a process of its
 * own as it would be in production (on one event loop with the leader it
 * would share the leader's CPU and its timers). The speed bench forks it,
 * sends the pool's config, and reads its URL and role back; it answers
 * "cpu" with its process CPU time, so the bench can count the standby's
 * share of a forwarded call.
 */

/** StandbyStart is the bench's order to start: the same config input as the leader's. */
export interface StandbyStart {
  kind: "start";
  config: unknown;
}

/** StandbyReady is the answer to StandbyStart. */
export interface StandbyReady {
  kind: "ready";
  url: string;
  role: "leader" | "standby";
}

/** StandbyCpu is the answer to { kind: "cpu" }: process CPU time in µs. */
export interface StandbyCpu {
  kind: "cpu";
  us: number;
}

let server: AuthPoolServer | undefined;

process.on("message", (m: StandbyStart | { kind: "cpu" } | { kind: "stop" }) => {
  void (async () => {
    if (m.kind === "start") {
      server = await startAuthPoolServer({ config: parseConfig(m.config, "<bench standby>") });
      process.send?.({ kind: "ready", url: server.url, role: server.writer.role } satisfies StandbyReady);
    } else if (m.kind === "cpu") {
      const used = process.cpuUsage();
      process.send?.({ kind: "cpu", us: used.user + used.system } satisfies StandbyCpu);
    } else {
      await server?.close();
      process.exit(0);
    }
  })();
});
