import { type ClientSettings, DEFAULT_CLIENT } from "../../domain/index.js";
import type { PoolHandle } from "../../runtime/pool-handle.js";
import { createClientLabels } from "../client-labels.js";

/** PoolClientLabels name the clients of one pool's per-client series. */
export interface PoolClientLabels {
  /** label is the bounded `client` label of a client's name (see createClientLabels). */
  label(client: string): string;
  /** configured are the clients the current config names, with their settings; a reload changes them. */
  configured(): Readonly<Record<string, ClientSettings>>;
}

/**
 * createPoolClientLabels bounds the `client` label by the writer's current
 * config. Clients are named by the config and the tokens, but also by the
 * calls of unnamed tokens: past a bound, unknown names share one label.
 */
export function createPoolClientLabels(writer: PoolHandle): PoolClientLabels {
  const configured = () => writer.currentPool.settings.clients ?? {};
  const label = createClientLabels({
    isKnown: (client) => client === DEFAULT_CLIENT || writer.currentPool.settings.clients?.[client] !== undefined,
  });
  return { label, configured };
}
