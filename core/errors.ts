/**
 * Every error steward raises on purpose carries a stable code from this one
 * registry. Codes never change meaning; messages say what to do next.
 * docs/errors.md lists them all (a test keeps the two in step).
 */
export const ERROR_CODES = {
  CONFIG_READ: 'the config file could not be read',
  CONFIG_INVALID: 'the config file failed validation',
  SECRET_READ: 'a secret file named in the config could not be read',
  REVISION_REJECTED: 'a Git revision was rejected as a whole',
  SOURCE_UNREACHABLE: 'the Git source could not be reached or read',
  SOURCE_REF_NOT_FOUND: 'the configured branch or tag does not exist in the source',
  PATH_ESCAPE: 'a File path leads outside the provider root',
  FILE_NOT_REGULAR: 'a managed path exists but is not a regular file',
  OBSERVE_FAILED: 'observed state could not be read',
  STATE_CORRUPT: 'a file in the state directory is corrupt',
  STATE_LOCKED: 'another agent holds the state directory',
  USAGE: 'the command line was not understood',
  PROVIDER_NOT_CONFIGURED: 'a manifest needs a provider that the config does not set up',
  STATE_UNWRITABLE: 'the state or audit could not be written: the agent acts on nothing until it can',
  NOT_FROZEN: 'an unfreeze or approval was asked of an agent that is not frozen',
  SOURCE_REDIRECT_REFUSED: 'the Git source redirected to another origin, or from https to http',
  SOURCE_TOO_LARGE: 'a response from the Git source exceeded its size limit',
  FILE_ROOT_CHANGED: 'providers.file.root is not the directory steward recorded managing',
  FILE_PROC_UNAVAILABLE: 'the file provider cannot hold directories by handle on this platform',
  ADMIN_LISTEN_FAILED: 'the admin API could not listen on admin.listen',
  ADMIN_TOKEN_UNREADABLE: 'admin.tokenFile exists but is not a readable regular file',
  WEBHOOK_SECRET_EMPTY: 'admin.webhookSecretFile is empty',
  STATE_DIR_INVALID: 'state.dir exists but is not a directory',
  FILE_TOO_LARGE: 'a managed file is larger than any manifest can hold, so it was not read',
  MASS_DRIFT_FROZEN: 'a freeze with an end was asked while the mass-drift halt holds the agent frozen',
  NO_CHANGE_WINDOWS: 'a change-window override was asked of an agent that has no change windows',
  ADMIN_UNREACHABLE: 'the CLI could not reach the admin API',
  ADMIN_UNAUTHORIZED: 'the admin API refused the token the CLI sent',
  ADMIN_TOKEN_READ: 'the CLI could not read the admin token file',
  ADMIN_ANSWER_TOO_LARGE: 'the admin API answered the CLI with more than it ever reads',
  STATE_BACKEND_UNREACHABLE: 'the PostgreSQL state backend could not be reached at start',
  STATE_SCHEMA_NEWER: "the database's schema is newer than this steward knows",
  STATE_CONFLICT: 'another agent changed the shared freeze or mode meanwhile; nothing was changed',
  SHARD_COUNT_MISMATCH: "fleet.shards.count differs from the count pinned in the fleet's database",
  LEASE_EXPIRING: 'a shard lease was not renewed in time: its cloud calls were aborted before it expires',
  LEASE_LOST: 'a shard lease is no longer held by this agent: its cloud calls were aborted',
  APPLY_THREW:
    'a provider failed mid-apply instead of reporting its outcomes: whether the unreported actions took effect is unknown',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class StewardError extends Error {
  readonly code: ErrorCode;
  /** Extra, non-secret facts for logs and API responses. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StewardError';
    this.code = code;
    this.details = details;
  }
}

/** A problem found at a place in a file; rendered `file:line:col: message` (1-based). */
export interface SourceProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatProblem(p: SourceProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

export function isStewardError(e: unknown, code?: ErrorCode): e is StewardError {
  return e instanceof StewardError && (code === undefined || e.code === code);
}

/** The message of anything thrown, without stack or secrets beyond what the thrower put there. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
