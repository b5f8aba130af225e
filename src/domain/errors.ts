/**
 * Typed errors shared by every layer. Callers branch on the class, never on message text.
 */

/** Base class so `instanceof VeloxError` catches every error this project raises on purpose. */
export class VeloxError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Input that breaks a rule: names the offending field so the caller can report it. */
export class ValidationError extends VeloxError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
  }
}

/** A setting (environment variable or flag) that cannot be used. */
export class ConfigError extends VeloxError {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`${variable}: ${reason}`);
  }
}

/** The thing asked for does not exist. */
export class NotFoundError extends VeloxError {
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
  }
}

/** The operation is not allowed in the entity's current state (e.g. closing a closed trade). */
export class StateError extends VeloxError {}

/** The on-disk schema is newer than this build understands; refusing is safer than guessing. */
export class SchemaVersionError extends VeloxError {
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `database schema version ${found} is newer than this build supports (${supported}); upgrade VELOX before opening it`,
    );
  }
}

/** A backing store could not serve the call (disconnected, timed out, refused). */
export class StoreUnavailableError extends VeloxError {
  constructor(
    readonly store: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${store} unavailable: ${message}`, options);
  }
}

/** The message of anything thrown, for logs and counters. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
