/**
 * Minting and checking the secrets of enrollment tokens (`imt_<id>_<secret>`) and admin API tokens
 * (`imk_<id>_<secret>`): random id and secret, only the secret's sha256 is ever stored, and a
 * presented secret is compared with the stored hash in constant time.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatToken } from '@infermesh/protocols';

/** A freshly minted token: what the caller sees once, and what is stored. */
export interface MintedToken {
  readonly id: string;
  /** The whole token (`<prefix>_<id>_<secret>`), shown once. */
  readonly token: string;
  readonly secretSha256: string;
}

/** sha256 of a UTF-8 text, lowercase hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Mints a token with `prefix` (16 hex id, 64 hex secret). */
export function mintToken(prefix: string): MintedToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('hex');
  return { id, token: formatToken(prefix, id, secret), secretSha256: sha256Hex(secret) };
}

/** True when `secret` hashes to `storedSha256`, compared in constant time. */
export function secretMatches(secret: string, storedSha256: string): boolean {
  const presented = Buffer.from(sha256Hex(secret), 'hex');
  const stored = Buffer.from(storedSha256, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
