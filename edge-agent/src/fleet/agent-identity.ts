/**
 * The agent's fleet identity (DESIGN.md section 8): its own ed25519 key pair and, once enrolled,
 * the id and labels the coordinator gave it. Kept in one JSON file readable by its owner only
 * (mode 0600), written atomically (temporary file, fsync, rename). The key is written before the
 * enroll request goes out (a `pending` identity), so a crash between the coordinator's answer and
 * the file being written never leaves a second, unknown key behind.
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  ErrorCode,
  InferMeshError,
  ed25519PublicKeySchema,
  enrollmentProofText,
  epochMsSchema,
  idSchema,
  labelsSchema,
} from '@infermesh/protocols';

/** Identity file name when the config names none: next to the models directory. */
export const DEFAULT_IDENTITY_FILE_NAME = 'identity.json';
/** Mode of the identity file: it holds the private key. */
export const IDENTITY_FILE_MODE = 0o600;

const enrollmentSchema = z.object({
  agentId: idSchema,
  labels: labelsSchema,
  enrolledAt: epochMsSchema,
});

/** What the identity file holds. */
export const agentIdentitySchema = z
  .object({
    version: z.literal(1),
    /** Base64 of the raw 32-byte ed25519 public key (as the enroll request carries it). */
    publicKey: ed25519PublicKeySchema,
    /** The private key, PKCS#8 PEM. */
    privateKeyPem: z.string().includes('PRIVATE KEY'),
    createdAt: epochMsSchema,
    /** Set once the coordinator accepted the enrollment; absent while pending. */
    enrollment: enrollmentSchema.optional(),
  })
  .strict();
export type AgentIdentity = z.infer<typeof agentIdentitySchema>;
/** An identity the coordinator has accepted. */
export type EnrolledIdentity = AgentIdentity & { enrollment: z.infer<typeof enrollmentSchema> };

/** The identity file of an agent whose config names none: `<modelsDir>/../identity.json`. */
export function defaultIdentityFile(modelsDir: string): string {
  return join(dirname(resolve(modelsDir)), DEFAULT_IDENTITY_FILE_NAME);
}

/** A new identity with a fresh ed25519 key pair, not yet enrolled. */
export function createIdentity(now: number = Date.now()): AgentIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    version: 1,
    publicKey: rawPublicKeyBase64(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    createdAt: now,
  };
}

/** Base64 of the raw 32 bytes of an ed25519 public key. */
export function rawPublicKeyBase64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.x === undefined) throw new Error('not an ed25519 key');
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

/** The proof of key possession the enroll request carries: a signature over the token and key. */
export function signEnrollmentProof(identity: AgentIdentity, token: string): string {
  const key = createPrivateKey(identity.privateKeyPem);
  return sign(null, Buffer.from(enrollmentProofText(token, identity.publicKey)), key).toString('base64');
}

/** True when the identity has been accepted by a coordinator. */
export function isEnrolled(identity: AgentIdentity): identity is EnrolledIdentity {
  return identity.enrollment !== undefined;
}

const invalidFile = (file: string, why: string, cause?: unknown): InferMeshError =>
  new InferMeshError(ErrorCode.INVALID_INPUT, `identity file ${file} ${why}`, {
    ...(cause === undefined ? {} : { cause }),
  });

/**
 * Reads the identity file; undefined when there is none. Throws INVALID_INPUT when it is not a
 * valid identity, when its keys do not match, or when others may read it (the private key leaked
 * to them: fix the mode, or replace the identity).
 */
export async function readIdentity(file: string): Promise<AgentIdentity | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalidFile(file, `cannot be read: ${(err as Error).message}`, err);
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw invalidFile(
      file,
      `is readable by others (mode ${mode.toString(8).padStart(4, '0')}): it holds the agent's private key; run chmod 600 on it`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw invalidFile(file, `is not valid JSON: ${(cause as Error).message}`, cause);
  }
  const result = agentIdentitySchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw invalidFile(file, `is not an agent identity: ${problems.join('; ')}`);
  }
  let derived: string;
  try {
    derived = rawPublicKeyBase64(createPublicKey(createPrivateKey(result.data.privateKeyPem)));
  } catch (cause) {
    throw invalidFile(file, `holds an unreadable private key: ${(cause as Error).message}`, cause);
  }
  if (derived !== result.data.publicKey)
    throw invalidFile(file, 'holds a public key that does not match its private key');
  return result.data;
}

/** Writes the identity file atomically with mode 0600 (its directory created with mode 0700). */
export async function writeIdentity(file: string, identity: AgentIdentity): Promise<void> {
  const validated = agentIdentitySchema.parse(identity);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w', IDENTITY_FILE_MODE);
  try {
    await handle.writeFile(`${JSON.stringify(validated, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  // `open`'s mode is masked by the umask; make sure of it before the key is in place.
  await chmod(temporary, IDENTITY_FILE_MODE);
  await rename(temporary, file);
}
