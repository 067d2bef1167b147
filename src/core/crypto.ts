import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync } from 'node:crypto';

/**
 * Personal data is sealed with AES-256-GCM under keys derived (HKDF) from the one data key in the
 * configuration, one subkey per purpose so a leak of one use does not open the others. Lookups by
 * address (is this the report's owner? how often did this number write today?) use a keyed hash —
 * a blind index — so the address itself is never stored or logged in clear.
 */

export type KeyPurpose = 'reporter' | 'queue' | 'thread' | 'blind-index';

export class DataKeys {
  private readonly subkeys = new Map<KeyPurpose, Buffer>();

  constructor(masterKey: Uint8Array) {
    if (masterKey.length !== 32) throw new Error('the data key must be 32 bytes');
    for (const purpose of ['reporter', 'queue', 'thread', 'blind-index'] as const) {
      this.subkeys.set(purpose, Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `lapor:${purpose}`, 32)));
    }
  }

  private key(purpose: KeyPurpose): Buffer {
    const key = this.subkeys.get(purpose);
    if (!key) throw new Error(`no key for ${purpose}`);
    return key;
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, base64url: a string, so it fits JSON job data and text columns. */
  seal(purpose: KeyPurpose, value: unknown): string {
    const iv = nextIv();
    const cipher = createCipheriv('aes-256-gcm', this.key(purpose), iv);
    const head = cipher.update(JSON.stringify(value), 'utf8');
    const tail = cipher.final(); // empty for GCM, a stream mode
    const body = tail.length ? Buffer.concat([head, tail]) : head;
    return `v1.${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${body.toString('base64url')}`;
  }

  /** Throws when the box was tampered with or sealed under another key. */
  open(purpose: KeyPurpose, sealed: string): unknown {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.key(purpose), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const head = decipher.update(Buffer.from(body, 'base64url'));
    const tail = decipher.final();
    return JSON.parse((tail.length ? Buffer.concat([head, tail]) : head).toString('utf8'));
  }

  /** Keyed hash of a normalized address: equal addresses give equal hashes, nothing else is revealed. */
  blindIndex(value: string): string {
    return createHmac('sha256', this.key('blind-index')).update(value).digest('base64url').slice(0, 32);
  }
}

/**
 * Random 96-bit GCM nonces, drawn from the CSPRNG 256 at a time: a randomBytes call per seal was a
 * seventh of sealing's cost, and every message is sealed several times on its way. Each nonce is
 * handed out once (a fresh block replaces a used one), so pooling changes nothing of their randomness.
 */
const IV_BYTES = 12;
const ivPool = Buffer.alloc(IV_BYTES * 256);
let ivNext = ivPool.length;
function nextIv(): Buffer {
  if (ivNext === ivPool.length) {
    randomFillSync(ivPool);
    ivNext = 0;
  }
  // A copy: the pool is overwritten when it refills, and a caller may keep its nonce.
  const iv = Buffer.from(ivPool.subarray(ivNext, ivNext + IV_BYTES));
  ivNext += IV_BYTES;
  return iv;
}
