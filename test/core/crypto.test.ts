import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataKeys } from '../../src/core/crypto.ts';
import { normalizeAddress } from '../../src/core/inbound.ts';

const keys = new DataKeys(randomBytes(32));

describe('sealing personal data', () => {
  it('round-trips any JSON value and never shows it in the box', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const sealed = keys.seal('reporter', value);
        expect(keys.open('reporter', sealed)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
    expect(keys.seal('reporter', { phone: '+6281290417736' })).not.toContain('6281290417736');
  });

  it('refuses a tampered box, another purpose, and another key', () => {
    const sealed = keys.seal('queue', { text: 'hello' });
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(() => keys.open('queue', [...parts.slice(0, 3), body.toString('base64url')].join('.'))).toThrow();
    expect(() => keys.open('reporter', sealed)).toThrow();
    expect(() => new DataKeys(randomBytes(32)).open('queue', sealed)).toThrow();
    expect(() => keys.open('queue', 'not sealed')).toThrow(/not a sealed value/);
  });

  it('never uses a nonce twice, across refills of the nonce pool (256 nonces each)', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 2_000; i++) nonces.add(keys.seal('thread', 'x').split('.')[1]!);
    expect(nonces.size).toBe(2_000);
    expect([...nonces].every((n) => Buffer.from(n, 'base64url').length === 12)).toBe(true);
  });

  it('gives one blind index per citizen, whatever way the number is written', () => {
    const forms = ['+6281290417736', '081290417736', '62 812-9041-7736', '(0812) 9041 7736'];
    const hashes = new Set(forms.map((f) => keys.blindIndex(normalizeAddress(f))));
    expect(hashes.size).toBe(1);
    expect(keys.blindIndex(normalizeAddress('Warga@Example.ID'))).toBe(keys.blindIndex(normalizeAddress('warga@example.id')));
    expect(keys.blindIndex('6281290417736')).not.toBe(new DataKeys(randomBytes(32)).blindIndex('6281290417736'));
  });
});
