import { Gauge, type Registry } from "prom-client";
import { PREFIX } from "./exposition.js";

/** StreamGauge is told when an event stream opens and closes; it keeps the subscriber count. */
export interface StreamGauge {
  opened(): void;
  closed(): void;
}

/** createStreamGauge registers event_stream_subscribers, the open StreamEvents calls. */
export function createStreamGauge(registers: Registry[]): StreamGauge {
  const subscribers = new Gauge({
    name: `${PREFIX}event_stream_subscribers`,
    help: "Open StreamEvents calls.",
    registers,
  });
  return { opened: () => subscribers.inc(), closed: () => subscribers.dec() };
}
