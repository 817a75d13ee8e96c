import { createPublicKey, verify } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { enrollmentProofText, enrollRequestSchema } from '@infermesh/protocols';
import {
  createIdentity,
  defaultIdentityFile,
  isEnrolled,
  readIdentity,
  signEnrollmentProof,
  writeIdentity,
} from './agent-identity.js';

describe('agent identity file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'im-identity-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is written with mode 0600 in a 0700 directory and reads back the same identity', async () => {
    const file = join(dir, 'state', 'identity.json');
    const identity = {
      ...createIdentity(),
      enrollment: { agentId: 'ag-0123456789abcdef', labels: { site: 'lab' }, enrolledAt: 1_700_000_000_000 },
    };
    await writeIdentity(file, identity);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    const read = await readIdentity(file);
    expect(read).toEqual(identity);
    expect(read && isEnrolled(read)).toBe(true);
  });

  it('replaces a pending identity atomically and keeps the same key', async () => {
    const file = join(dir, 'identity.json');
    const pending = createIdentity();
    await writeIdentity(file, pending);
    expect(isEnrolled((await readIdentity(file))!)).toBe(false);
    await writeIdentity(file, { ...pending, enrollment: { agentId: 'ag-1', labels: {}, enrolledAt: 1 } });
    const read = await readIdentity(file);
    expect(read?.publicKey).toBe(pending.publicKey);
    expect(read?.enrollment?.agentId).toBe('ag-1');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('is undefined when the file does not exist', async () => {
    expect(await readIdentity(join(dir, 'missing.json'))).toBeUndefined();
  });

  it('refuses a file others may read, naming the fix', async () => {
    const file = join(dir, 'identity.json');
    await writeIdentity(file, createIdentity());
    await chmod(file, 0o644);
    await expect(readIdentity(file)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/mode 0644.*chmod 600/) as unknown,
    });
  });

  it('refuses a file that is not JSON, not an identity, or whose keys do not match', async () => {
    const file = join(dir, 'identity.json');
    await writeFile(file, '{ nope', { mode: 0o600 });
    await expect(readIdentity(file)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: /not valid JSON/,
    });
    await writeFile(file, JSON.stringify({ version: 1, publicKey: 'x' }), { mode: 0o600 });
    await expect(readIdentity(file)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: /not an agent identity/,
    });
    const a = createIdentity();
    const b = createIdentity();
    await writeFile(file, JSON.stringify({ ...a, publicKey: b.publicKey }), { mode: 0o600 });
    await expect(readIdentity(file)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: /does not match/,
    });
  });

  it('keeps the private key only in the file, as PKCS#8 PEM', async () => {
    const file = join(dir, 'identity.json');
    const identity = createIdentity();
    await writeIdentity(file, identity);
    expect(await readFile(file, 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
  });

  it('signs an enrollment proof that verifies with the public key and fits the enroll request', () => {
    const identity = createIdentity();
    const token = `imt_${'a'.repeat(16)}_${'b'.repeat(64)}`;
    const signature = signEnrollmentProof(identity, token);
    const x = Buffer.from(identity.publicKey, 'base64').toString('base64url');
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    const text = Buffer.from(enrollmentProofText(token, identity.publicKey));
    expect(verify(null, text, key, Buffer.from(signature, 'base64'))).toBe(true);
    expect(
      verify(
        null,
        Buffer.from(enrollmentProofText('other', identity.publicKey)),
        key,
        Buffer.from(signature, 'base64'),
      ),
    ).toBe(false);
    expect(enrollRequestSchema.safeParse({ token, publicKey: identity.publicKey, signature }).success).toBe(
      true,
    );
  });

  it('defaults to identity.json beside the models directory', () => {
    expect(defaultIdentityFile('/var/lib/infermesh/models')).toBe('/var/lib/infermesh/identity.json');
  });
});
