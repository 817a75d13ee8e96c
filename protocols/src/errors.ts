/**
 * The catalogue of stable error codes (DESIGN.md section 3), with the HTTP status and the NATS
 * error-reply headers of each. Every transport maps errors through this one table.
 * @module
 */

/** Stable, documented error codes. Clients branch on these, never on messages. */
export const ErrorCode = {
  INVALID_INPUT: 'INVALID_INPUT',
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  /** Anything else that does not exist: an agent, a rollout, a federated run, a token, a user. */
  NOT_FOUND: 'NOT_FOUND',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  OVERLOADED: 'OVERLOADED',
  UNAVAILABLE: 'UNAVAILABLE',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_CODES = Object.values(ErrorCode) as readonly ErrorCode[];

/** HTTP status for each code. */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  INVALID_INPUT: 400,
  MODEL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  DEADLINE_EXCEEDED: 504,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  INTERNAL: 500,
};

/**
 * NATS error replies carry the code in headers, in the shape NATS micro-services use
 * (`Nats-Service-Error-Code` holds a numeric status, `Nats-Service-Error` the text), plus our own
 * stable code so a client never has to parse the text.
 */
export const NATS_ERROR_HEADERS = {
  status: 'Nats-Service-Error-Code',
  message: 'Nats-Service-Error',
  code: 'Im-Error-Code',
  /** Seconds before a retry makes sense (OVERLOADED, UNAVAILABLE); absent otherwise. */
  retryAfter: 'Im-Retry-After',
} as const;

/** Options for {@link InferMeshError}. */
export interface InferMeshErrorOptions {
  cause?: unknown;
  /** Seconds a client should wait before retrying (OVERLOADED, UNAVAILABLE). */
  retryAfterSeconds?: number;
  /** Machine-readable context (the offending input's name, a limit, ...). */
  details?: Record<string, unknown>;
}

/**
 * The one error class of the project. Across package boundaries check `err.name === 'InferMeshError'`
 * and `err.code`, not `instanceof` (two copies of a package would break it).
 */
export class InferMeshError extends Error {
  override readonly name = 'InferMeshError';
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: InferMeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  /** HTTP status of this error's code. */
  get httpStatus(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }
}

/** True when `value` is an InferMeshError, from any copy of this package. */
export function isInferMeshError(value: unknown): value is InferMeshError {
  return (
    value instanceof Error &&
    value.name === 'InferMeshError' &&
    isErrorCode((value as { code?: unknown }).code)
  );
}

/** True when `value` is one of the catalogue's codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * Turns anything thrown into an InferMeshError: known errors pass through, anything else becomes
 * `INTERNAL` keeping the original as `cause` (the boundary logs it; the client sees a generic text).
 */
export function toInferMeshError(value: unknown): InferMeshError {
  if (isInferMeshError(value)) return value;
  return new InferMeshError(ErrorCode.INTERNAL, 'internal error', { cause: value });
}

/** Shorthand constructors for the codes used most. */
export const invalidInput = (message: string, details?: Record<string, unknown>): InferMeshError =>
  new InferMeshError(ErrorCode.INVALID_INPUT, message, details ? { details } : {});
export const modelNotFound = (message: string): InferMeshError =>
  new InferMeshError(ErrorCode.MODEL_NOT_FOUND, message);
export const notFound = (message: string, details?: Record<string, unknown>): InferMeshError =>
  new InferMeshError(ErrorCode.NOT_FOUND, message, details ? { details } : {});
export const deadlineExceeded = (message: string): InferMeshError =>
  new InferMeshError(ErrorCode.DEADLINE_EXCEEDED, message);
