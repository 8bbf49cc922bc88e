// The one error configuration problems raise: the message starts with the field (a JSON path,
// or FILE:LINE: Key for a wg-quick file), so the user finds what to fix.
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** A value as the user wrote it, for messages (never for secrets). */
export const show = (v: unknown): string => JSON.stringify(v) ?? String(v);
