import { describe, expect, it } from 'vitest';
import { withoutCredentials } from './connection.js';

describe('withoutCredentials', () => {
  it('keeps credentials out of logged NATS URLs', () => {
    expect(withoutCredentials('nats://alice:s3cret@hub:4222')).toBe('nats://***@hub:4222');
    expect(withoutCredentials('nats://hub:4222,tls://t0ken@b:4222')).toBe('nats://hub:4222,tls://***@b:4222');
    expect(withoutCredentials('nats://hub:4222')).toBe('nats://hub:4222');
  });
});
