/**
 * A secret kept in a file of its own (a webhook secret, a Slack incoming-
 * webhook URL), so the config, which is shared, copied and reloaded like
 * any config, holds only its path. Nothing here puts the file's content, or
 * a part of it, into an error text.
 */
import { readFileSync } from "node:fs";
import { fileErrorText } from "./auth-tokens.js";

/** SecretFileResult is a file's secret, or a phrase completing "expected ..." that names the file. */
export type SecretFileResult =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly expected: string };

/**
 * readSecretFile reads a one-line secret; surrounding whitespace (the
 * newline editors add) is dropped. `what` names the secret ("a webhook
 * secret"); `accept` may refuse a value, with the phrase it expected.
 */
export function readSecretFile(file: string, what: string, accept?: (value: string) => boolean): SecretFileResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { ok: false, expected: `expected a readable file holding ${what}, got ${file}: ${fileErrorText(error)}` };
  }
  const value = text.replace(/^\uFEFF/, "").trim();
  if (value === "") return { ok: false, expected: `expected ${what} in ${file}, got an empty file` };
  if (/[\r\n]/.test(value))
    return { ok: false, expected: `expected ${what} on one line of ${file}, got several lines` };
  if (accept !== undefined && !accept(value)) {
    return { ok: false, expected: `expected ${what} in ${file}, got something else (not shown)` };
  }
  return { ok: true, value };
}
