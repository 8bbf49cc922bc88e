// Asserting on ConfigErrors: the field they name, what the message says, and what it must not
// say (a key's value).
import type { Test } from "tap";
import { ConfigError } from "../../../src/config/error.ts";

/** fn() must throw a ConfigError for `field` whose message starts with the field, mentions each
 * of `mentions` and contains none of `hides`. Returns the error (or null) for further checks. */
export function throwsConfigError(t: Test, fn: () => unknown, field: string, mentions: string[] = [], hides: string[] = []): ConfigError | null {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${field}, got ${err === undefined ? "no error" : String(err)}`);
    return null;
  }
  t.equal(err.field, field, `field of: ${err.message}`);
  t.ok(err.message.startsWith(`${field}: `), `message starts with the field: ${err.message}`);
  for (const m of mentions) t.ok(err.message.includes(m), `message mentions ${JSON.stringify(m)}: ${err.message}`);
  for (const h of hides) t.notOk(err.message.includes(h), `message does not show ${JSON.stringify(h)}: ${err.message}`);
  return err;
}
