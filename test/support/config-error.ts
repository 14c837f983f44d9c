import { expect } from "vitest";
import { ConfigError } from "../../src/config/index.js";

/** parseError runs what should refuse a config and returns its ConfigError (failing the test otherwise). */
export function parseError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  return expect.fail("expected a ConfigError, but nothing was thrown");
}
