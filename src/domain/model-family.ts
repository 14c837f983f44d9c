import type { ModelScope } from "./usage.js";

/**
 * modelFamily maps a model hint ("opus", "claude-opus-4-1-20250805") to the
 * family a model-scoped limit applies to; undefined for anything else.
 */
export function modelFamily(model: string): ModelScope | undefined {
  const m = model.toLowerCase();
  if (m.includes("opus")) return "opus";
  if (m.includes("sonnet")) return "sonnet";
  return undefined;
}
