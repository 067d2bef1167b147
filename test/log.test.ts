import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.ts';

/** Personal data never reaches a log line in clear, in JSON or in the readable lines of a terminal. */

function sink(): { stream: Writable; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

const PERSONAL = { phone: '+6281234567890', email: 'warga@example.id', name: 'Siti Aminah', text: 'rumah saya di Jl. Melati 5' };

describe.each([false, true])('logs (pretty: %s)', (pretty) => {
  it('redact personal fields at the top level and one level down', () => {
    const out = sink();
    const log = createLogger({ level: 'info', destination: out.stream, pretty });
    log.info({ ...PERSONAL, reporter: PERSONAL, job: { sender: { address: PERSONAL.phone }, email: PERSONAL.email } }, 'report accepted');
    const text = out.text();
    expect(text).toContain('report accepted');
    expect(text).toContain('[redacted]');
    for (const value of Object.values(PERSONAL)) expect(text).not.toContain(value);
    if (pretty) expect(text).not.toContain('"level"');
    else expect(JSON.parse(text.trim())).toMatchObject({ msg: 'report accepted', phone: '[redacted]' });
  });
});
