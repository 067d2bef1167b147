import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmailSchema, InboundMessageSchema, PhoneSchema, ReporterSchema, type InboundMessageInput } from '../../src/core/inbound.ts';
import { normalizePhone } from '../../src/core/phone.ts';

/** The inbound boundary: what every channel's message becomes before it may be acknowledged. */

describe('normalizePhone', () => {
  it.each([
    ['081234567890', '+6281234567890'],
    ['0812-3456-7890', '+6281234567890'],
    ['0812 3456 7890', '+6281234567890'],
    ['(0812) 3456.7890', '+6281234567890'],
    ['6281234567890', '+6281234567890'],
    ['62 812 3456 7890', '+6281234567890'],
    ['+6281234567890', '+6281234567890'],
    ['+62 812-3456-7890', '+6281234567890'],
    ['  +62 812 3456 7890  ', '+6281234567890'],
    ['+62\u00a0812\u00a03456\u00a07890', '+6281234567890'],
    ['021 5551234', '+62215551234'],
    ['(021) 555-1234', '+62215551234'],
    ['+60 12-345 6789', '+60123456789'],
    ['+1 202 555 0123', '+12025550123'],
    ['08123456', '+628123456'],
    ['+12345678', '+12345678'],
    ['+123456789012345', '+123456789012345'],
  ])('%s → %s', (input, e164) => {
    expect(normalizePhone(input)).toEqual({ ok: true, e164 });
  });

  it.each([
    ['letters', '0812-ABCD-7890'],
    ['a letter O for a zero', '08l2345678901'],
    ['an extension', '081234567890 ext 12'],
    ['a plus in the middle', '0812+34567890'],
    ['30 digits', '1'.repeat(30)],
    ['16 digits with +', '+1234567890123456'],
    ['16 digits after 08', '0812345678901234'],
    ['7 digits', '+1234567'],
    ['too short once 0 becomes +62', '0812'],
    ['no trunk 0, no country code', '81234567890'],
    ['a trunk 0 after 62', '+62 0812 3456 7890'],
    ['a trunk 0 after 62, no plus', '62081234567890'],
    ['an international 00 prefix', '006281234567890'],
    ['a country code starting with 0', '+0812345678'],
    ['only separators', '() - .'],
    ['empty', ''],
    ['an emoji', '📞081234567890'],
    ['fullwidth digits', '０８１２３４５６７８９０'],
    ['NUL inside', '0812\u00003456789'],
    ['over 32 characters of grouping', '0 8 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6'],
  ])('%s → refused with a reason', (_name, input) => {
    const result = normalizePhone(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).not.toBe('');
  });

  it('is idempotent on what it returns, and always returns + and 8 to 15 digits', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[+0-9 ().-]{0,32}$/), (input) => {
        const first = normalizePhone(input);
        if (!first.ok) return true;
        return /^\+[1-9][0-9]{7,14}$/.test(first.e164) && normalizePhone(first.e164).ok && (normalizePhone(first.e164) as { e164: string }).e164 === first.e164;
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('PhoneSchema and EmailSchema', () => {
  it('parses to E.164, and refuses with the hint attached', () => {
    expect(PhoneSchema.parse('0812 3456 7890')).toBe('+6281234567890');
    const refused = PhoneSchema.safeParse('08ab');
    expect(refused.success).toBe(false);
    const issue = refused.error!.issues[0]!;
    expect(issue.message).toMatch(/not a phone number/);
    expect(issue.message).toMatch(/081234567890/);
    expect(issue).toMatchObject({ params: { hint: expect.stringMatching(/8 to 15/) } });
    // The refused value is not echoed back (it is personal data).
    expect(JSON.stringify(refused.error)).not.toContain('08ab');
  });

  it.each(['budi@contoh.id', 'siti.rahma+lapor@mail.example.co.id', `${'a'.repeat(64)}@x.id`])('accepts %s', (email) => {
    expect(EmailSchema.parse(email)).toBe(email);
  });

  it.each(['not-an-email', 'budi@', '@contoh.id', 'budi@contoh', 'bu di@contoh.id', 'budi@@contoh.id', `${'a'.repeat(65)}@x.id`, `a@${'b'.repeat(250)}.id`, 'budi\u0000@contoh.id'])(
    'refuses %s',
    (email) => {
      expect(EmailSchema.safeParse(email).success).toBe(false);
    },
  );
});

describe('ReporterSchema', () => {
  it('sanitizes and trims the name, and counts it in characters', () => {
    expect(ReporterSchema.parse({ name: '  Budi\u0000 Santoso\u0085 ' })).toEqual({ name: 'Budi Santoso' });
    expect(ReporterSchema.parse({ name: '🙂'.repeat(200) }).name).toBe('🙂'.repeat(200));
    expect(ReporterSchema.safeParse({ name: '🙂'.repeat(201) }).success).toBe(false);
    expect(ReporterSchema.safeParse({ name: 'a'.repeat(201) }).success).toBe(false);
  });

  it('refuses a name with nothing visible in it', () => {
    for (const name of ['', '   ', '\u200b\u200c\u200d\u2060\ufeff', '\u0000\u0000']) {
      const result = ReporterSchema.safeParse({ name });
      expect(result.success, JSON.stringify(name)).toBe(false);
      expect(result.error!.issues[0]!.message).toMatch(/empty once invisible characters are removed/);
    }
  });
});

function message(overrides: Partial<InboundMessageInput> = {}): InboundMessageInput {
  return {
    channel: 'sms',
    account: 'telkomsel',
    externalId: 'm1',
    dedupKey: 'sms_m1',
    sender: { address: '+6281234567890' },
    text: 'Jalan rusak',
    receivedAt: '2026-12-01T08:00:00.000Z',
    replyContext: { smsc: 'telkomsel', shortCode: '1708' },
    ...overrides,
  };
}

describe('InboundMessageSchema, the boundary of every channel', () => {
  it('sanitizes every string that can reach PostgreSQL or a provider', () => {
    const parsed = InboundMessageSchema.parse(
      message({
        account: 'tel\u0000komsel',
        externalId: 'm1\u0001',
        sender: { address: ' +6281234567890\u0000 ', displayName: 'Budi\u0000\ud800' },
        text: 'Banjir\u0000 di\u0085Jl. Kenanga \ud83d',
        replyContext: { smsc: 'tel\u0000komsel', shortCode: '1708\u0000' },
      }),
    );
    expect(parsed).toMatchObject({
      account: 'telkomsel',
      externalId: 'm1',
      sender: { address: '+6281234567890', displayName: 'Budi\ufffd' },
      text: 'Banjir di\nJl. Kenanga \ufffd',
      replyContext: { smsc: 'telkomsel', shortCode: '1708' },
    });
    expect(JSON.stringify(parsed)).not.toMatch(/\\u0000|\\ud8/);
  });

  it('cuts a long display name rather than refusing the message', () => {
    const parsed = InboundMessageSchema.parse(message({ sender: { address: '+6281234567890', displayName: '😀'.repeat(300) } }));
    expect(parsed.sender!.displayName).toBe('😀'.repeat(200));
  });

  it('lets a conversational message be blank (the parser answers it with the "empty" reply)', () => {
    expect(InboundMessageSchema.parse(message({ text: '\u200b\u200b' })).text).toBe('\u200b\u200b');
    expect(InboundMessageSchema.parse(message({ text: '\u0000\u0000' })).text).toBe('');
  });

  it('refuses a blank form (the web): it would be a report with nothing in it', () => {
    const result = InboundMessageSchema.safeParse(message({ channel: 'web', dedupKey: 'web_1', sender: undefined, text: '\u200b\u0000 ', form: {} }));
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]).toMatchObject({ path: ['text'], message: expect.stringMatching(/empty once invisible/) });
  });

  it('refuses a text over 65,536 characters, counted in characters', () => {
    expect(InboundMessageSchema.safeParse(message({ text: '🚧'.repeat(64 * 1024) })).success).toBe(true);
    expect(InboundMessageSchema.safeParse(message({ text: '🚧'.repeat(64 * 1024 + 1) })).success).toBe(false);
  });

  it('refuses what cannot be made acceptable: a sender with no address left', () => {
    expect(InboundMessageSchema.safeParse(message({ sender: { address: '\u0000 ' } })).success).toBe(false);
  });

  it('normalizes the form reporter: phone to E.164', () => {
    const parsed = InboundMessageSchema.parse(
      message({ channel: 'web', dedupKey: 'web_1', sender: undefined, form: { reporter: { name: 'Budi', phone: '0812-3456-7890', email: 'budi@contoh.id' } } }),
    );
    expect(parsed.form!.reporter).toEqual({ name: 'Budi', phone: '+6281234567890', email: 'budi@contoh.id' });
  });

  it('changes nothing when a parsed message is parsed again (the intake worker does)', () => {
    const anyString = fc.string({ unit: fc.oneof(fc.constantFrom('\u0000', '\u0085', '\ud800', '\udc00', '\ufffe', '\u200b', 'a', ' ', '🚧')), maxLength: 40 });
    fc.assert(
      fc.property(anyString, anyString, anyString, (text, displayName, ctx) => {
        const first = InboundMessageSchema.safeParse(message({ text, sender: { address: '+6281234567890', displayName }, replyContext: { smsc: `s${ctx}` } }));
        if (!first.success) return true;
        expect(InboundMessageSchema.parse(first.data)).toEqual(first.data);
        return true;
      }),
      { numRuns: 500 },
    );
  });
});
