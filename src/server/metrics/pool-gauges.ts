import { Gauge, type Registry } from "prom-client";
import type { PoolHandle } from "../../runtime/pool-handle.js";
import { PREFIX } from "./exposition.js";
import type { PoolClientLabels } from "./pool-client-labels.js";
import type { ScrapeStatus } from "./scrape-status.js";

/** PoolGaugesOptions are what the pool-wide gauges read at scrape time. */
export interface PoolGaugesOptions {
  writer: PoolHandle;
  status: ScrapeStatus;
  clients: PoolClientLabels;
}

/** registerPoolGauges registers the pool-wide gauges: sessions held (in all, by client) and the event sequence. */
export function registerPoolGauges(registers: Registry[], options: PoolGaugesOptions): void {
  sessionsGauge(registers, options.status);
  clientSessionsGauge(registers, options);
  eventSequenceGauge(registers, options.writer);
}

function sessionsGauge(registers: Registry[], status: ScrapeStatus): void {
  new Gauge({
    name: `${PREFIX}sessions`,
    help: "Sessions held across the pool.",
    registers,
    async collect() {
      this.set((await status()).totalSessions);
    },
  });
}

function clientSessionsGauge(registers: Registry[], { writer, status, clients }: PoolGaugesOptions): void {
  const gauge: Gauge<"client"> = new Gauge({
    name: `${PREFIX}client_sessions`,
    help: "Sessions held by client (every configured client, 0 when it holds none).",
    labelNames: ["client"] as const,
    registers,
    async collect() {
      // Read after the scrape's status decision, as GetPoolStatus reads its clients: between batches.
      await status();
      const held = new Map<string, number>(
        Object.keys(clients.configured()).map((client) => [clients.label(client), 0]),
      );
      for (const [client, n] of writer.currentPool.state.clientSessions) {
        const label = clients.label(client);
        held.set(label, (held.get(label) ?? 0) + n);
      }
      gauge.reset();
      for (const [client, n] of held) gauge.set({ client }, n);
    },
  });
}

function eventSequenceGauge(registers: Registry[], writer: PoolHandle): void {
  new Gauge({
    name: `${PREFIX}event_sequence`,
    help: "Sequence of the last durable event.",
    registers,
    collect() {
      this.set(writer.durableSeq);
    },
  });
}
