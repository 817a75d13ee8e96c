/**
 * What a failed sync attempt means: a refusal (the registry's bytes or manifest failed
 * verification, or the version cannot run: wait for the desired value to change, keep serving
 * what runs) or a transient failure (the registry unreachable, a version or artifact not there
 * yet: try again after a pause).
 * @module
 */
import { ErrorCode, INTEGRITY_FAILURE_REASONS, isInferMeshError } from '@infermesh/protocols';
import type { SyncFailureReason } from './sync-status.js';

/** How an attempt failed. */
export interface SyncFailure {
  readonly kind: 'refused' | 'retry';
  readonly reason: SyncFailureReason;
  readonly message: string;
}

const INTEGRITY: ReadonlySet<string> = new Set(INTEGRITY_FAILURE_REASONS);

/** A refusal with its reason. */
export function refusal(reason: SyncFailureReason, message: string): SyncFailure {
  return { kind: 'refused', reason, message };
}

/** Classifies an error thrown while syncing. */
export function classifySyncError(err: unknown): SyncFailure {
  const message = err instanceof Error ? err.message : String(err);
  // Anything uncoded comes from this device (a full disk, permissions): retried, as it may clear.
  if (!isInferMeshError(err)) return { kind: 'retry', reason: 'local-error', message };
  const reason = (err.details as { reason?: unknown } | undefined)?.reason;
  switch (err.code) {
    case ErrorCode.FORBIDDEN:
      return typeof reason === 'string' && INTEGRITY.has(reason)
        ? refusal(reason as SyncFailureReason, message)
        : refusal('bad-signature', message);
    case ErrorCode.MODEL_NOT_FOUND:
    case ErrorCode.NOT_FOUND:
      return { kind: 'retry', reason: 'not-found', message };
    case ErrorCode.INTERNAL:
      // The manifest store raises INTERNAL for a stored value that is not a valid manifest.
      return /manifest/.test(message)
        ? refusal('invalid-manifest', message)
        : { kind: 'retry', reason: 'unavailable', message };
    case ErrorCode.INVALID_INPUT:
      // The manifest failed its schema where the signature check validated it.
      return refusal('invalid-manifest', message);
    case ErrorCode.UNAVAILABLE:
    case ErrorCode.DEADLINE_EXCEEDED:
    case ErrorCode.OVERLOADED:
    case ErrorCode.CONFLICT:
    case ErrorCode.PAYLOAD_TOO_LARGE:
    case ErrorCode.UNAUTHENTICATED:
      return { kind: 'retry', reason: 'unavailable', message };
  }
}
