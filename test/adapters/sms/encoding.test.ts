import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeUserData,
  encodeSms,
  gsmSeptets,
  segmentsNeeded,
  transliterate,
  type EncodedSms,
  type EncodeOptions,
} from '../../../adapters/sms/encoding.ts';
import { PLACEHOLDER_LIMITS, TEMPLATES, type NotificationKind } from '../../../config/templates.ts';
import { renderNotification } from '../../../src/core/notifications.ts';
import { readCorpusLines } from '../../helpers/corpus.ts';

// Written out independently of the implementation (3GPP TS 23.038 §6.2.1, without ESC), so a slip in
// either copy shows up.
const GSM_BASIC = [
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
];
const GSM_EXTENSION = [...'\f^{}\\[~]|€'];
const ALL: EncodeOptions = { transliterate: false, maxSegments: 255, reference: 0x42 };
const graphemes = (text: string): string[] =>
  Array.from(new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text), (s) => s.segment);

/**
 * Checks the wire shape of every segment and joins their decoded text. Each segment is decoded on its
 * own, as a handset without reassembly would: no problem there means no escape or surrogate pair was split.
 */
function receive(sms: EncodedSms, reference = ALL.reference): string {
  const total = sms.segments.length;
  expect(total).toBeGreaterThanOrEqual(1);
  expect(sms.udh).toBe(total > 1);
  return sms.segments
    .map((segment, i) => {
      expect(segment.length).toBeLessThanOrEqual(sms.dataCoding === 0 ? 160 : 140);
      if (sms.udh) expect([...segment.subarray(0, 6)]).toEqual([0x05, 0x00, 0x03, reference & 0xff, total, i + 1]);
      const body = sms.udh ? segment.subarray(6) : segment;
      if (sms.dataCoding === 0) expect(body.length).toBeLessThanOrEqual(sms.udh ? 153 : 160);
      else expect(body.length).toBeLessThanOrEqual(sms.udh ? 134 : 140);
      const { text, problems } = decodeUserData(body, sms.dataCoding);
      expect(problems, `segment ${i + 1} of ${total}`).toEqual([]);
      return text;
    })
    .join('');
}

/** What encodeSms should send for a text that fits: GSM-7 (transliterated if asked) when possible. */
const expectedText = (text: string, translit: boolean): string => {
  const gsm = translit ? transliterate(text) : text;
  return gsmSeptets(gsm) === undefined ? text : gsm;
};

const gsmText = fc.string({ unit: fc.constantFrom(...GSM_BASIC), maxLength: 700 });
const extensionHeavy = fc.string({
  unit: fc.oneof({ arbitrary: fc.constantFrom(...GSM_EXTENSION), weight: 3 }, { arbitrary: fc.constantFrom(...GSM_BASIC), weight: 1 }),
  maxLength: 500,
});
const mixedUnit = fc.oneof(
  fc.constantFrom(...GSM_BASIC, ...GSM_EXTENSION),
  fc.constantFrom('😀', '👍🏽', '🇮🇩', '👨‍👩‍👧', '“', '”', '–', '…', '\u00a0', 'á', 'ç', 'e\u0301', 'محمد', '𝄞', ' '),
);
const mixedText = fc.string({ unit: mixedUnit, maxLength: 400 });
const anyUnicode = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 150 }), mixedText);

describe('GSM 03.38 default alphabet', () => {
  it('matches reference points of 3GPP TS 23.038', () => {
    const points: [number, string][] = [
      [0x00, '@'], [0x02, '$'], [0x0a, '\n'], [0x11, '_'], [0x24, '¤'], [0x40, '¡'], [0x5b, 'Ä'], [0x60, '¿'], [0x7f, 'à'],
    ];
    for (const [code, ch] of points) {
      expect(decodeUserData(Uint8Array.of(code), 0), ch).toEqual({ text: ch, problems: [] });
      expect([...(encodeSms(ch, ALL).segments[0] ?? [])], ch).toEqual([code]);
    }
    // 0x1B is the escape, never a character of its own.
    expect(decodeUserData(Uint8Array.of(0x1b, 0x65), 0).text).toBe('€');
    expect(encodeSms('\u001b', ALL).dataCoding).toBe(8);
  });

  it('decodes all 127 default codes to the table in order, one septet per octet', () => {
    const codes = Array.from({ length: 128 }, (_, i) => i).filter((i) => i !== 0x1b);
    expect(decodeUserData(Uint8Array.from(codes), 0)).toEqual({ text: GSM_BASIC.join(''), problems: [] });
  });

  it('reaches the extension table through 0x1B and counts those characters twice', () => {
    const pairs: [number, string][] = [
      [0x0a, '\f'], [0x14, '^'], [0x28, '{'], [0x29, '}'], [0x2f, '\\'], [0x3c, '['], [0x3d, '~'], [0x3e, ']'], [0x40, '|'], [0x65, '€'],
    ];
    for (const [code, ch] of pairs) {
      expect(decodeUserData(Uint8Array.of(0x1b, code), 0).text).toBe(ch);
      expect([...(encodeSms(ch, ALL).segments[0] ?? [])]).toEqual([0x1b, code]);
      expect(gsmSeptets(ch)).toBe(2);
    }
    expect(gsmSeptets('a€b')).toBe(4);
    expect(gsmSeptets('a😀')).toBeUndefined();
  });
});

describe('decodeUserData per data_coding', () => {
  const dec = (bytes: number[], dc: number) => decodeUserData(Uint8Array.from(bytes), dc);

  it('1: IA5 is ASCII; bytes above 0x7F become U+FFFD', () => {
    expect(dec([0x40, 0x5f, 0x7e], 1)).toEqual({ text: '@_~', problems: [] });
    const bad = dec([0x41, 0x80, 0xff], 1);
    expect(bad.text).toBe('A\uFFFD\uFFFD');
    expect(bad.problems).toEqual([expect.stringMatching(/IA5 byte above 0x7F.*byte 1, 2 times/)]);
  });

  it('3: Latin-1 maps every octet to the same code point (not windows-1252)', () => {
    expect(dec([0x33, 0x39, 0xb0, 0xe9, 0x80, 0xa0], 3)).toEqual({ text: '39°é\u0080\u00a0', problems: [] });
  });

  it('8: UTF-16BE, surrogate pairs included', () => {
    expect(dec([0x00, 0x41, 0xd8, 0x3d, 0xde, 0x00, 0x06, 0x45], 8)).toEqual({ text: 'A😀م', problems: [] });
    expect(dec([], 8)).toEqual({ text: '', problems: [] });
  });

  it('2 and 4 are binary: no text, a problem', () => {
    for (const dc of [2, 4, 0xf4, 0xf7, 0x14]) {
      const result = dec([0x06, 0x05, 0x04], dc);
      expect(result.text, String(dc)).toBe('');
      expect(result.problems).toEqual([expect.stringMatching(/^binary data_coding 0x[0-9a-f]{2} \(3 bytes\)/)]);
    }
  });

  it('GSM 03.38 coding groups decode by their alphabet bits', () => {
    const gsm = [0x48, 0x1b, 0x65]; // "H€"
    const ucs2 = [0x00, 0x48, 0x20, 0xac];
    for (const dc of [0x10, 0x11, 0x13, 0x40, 0x50, 0xc0, 0xd3, 0xf0, 0xf1, 0xf3]) expect(dec(gsm, dc), hex(dc)).toEqual({ text: 'H€', problems: [] });
    for (const dc of [0x18, 0x19, 0x48, 0xe0, 0xe8]) expect(dec(ucs2, dc), hex(dc)).toEqual({ text: 'H€', problems: [] });
    // Compressed (bit 5) text can't be read without the 23.042 decompressor.
    expect(dec(gsm, 0x30)).toEqual({ text: '', problems: [expect.stringMatching(/^compressed data_coding 0x30/)] });
  });

  it('unknown codings decode as Latin-1 with a problem', () => {
    for (const dc of [5, 6, 9, 0x0e, 0x1c, 0x80, 0xb5, 256, -1, 1.5, Number.NaN]) {
      const result = dec([0x48, 0x69, 0xe9], dc);
      expect(result.text, String(dc)).toBe('Hié');
      expect(result.problems).toEqual([expect.stringMatching(/^unknown data_coding .*decoded as Latin-1/)]);
    }
  });

  it('malformed GSM: trailing escape, unknown escape, reserved 0x1B 0x1B, bytes ≥ 0x80', () => {
    expect(dec([0x48, 0x1b], 0)).toEqual({ text: 'H ', problems: [expect.stringMatching(/escape 0x1B at the end.*byte 1/)] });
    // 23.038: an unknown extension code shows the default table's character.
    expect(dec([0x1b, 0x41, 0x42], 0)).toEqual({ text: 'AB', problems: [expect.stringMatching(/unknown GSM escape 0x1B 0x41/)] });
    expect(dec([0x1b, 0x1b, 0x42], 0)).toEqual({ text: ' B', problems: [expect.stringMatching(/0x1B 0x1B \(reserved\)/)] });
    const high = dec([0xc8, 0x69, 0x80], 0);
    expect(high.text).toBe('Hi@');
    expect(high.problems).toEqual([expect.stringMatching(/masked to 7 bits \(byte 0, 2 times\)/)]);
    // A masked byte can still be an escape.
    expect(dec([0x9b, 0x65], 0).text).toBe('€');
  });

  it('malformed UCS-2: odd length and lone surrogates', () => {
    expect(dec([0x00, 0x41, 0x00], 8)).toEqual({ text: 'A', problems: [expect.stringMatching(/^odd-length UCS-2, last byte dropped \(byte 2\)/)] });
    expect(dec([0xd8, 0x3d, 0x00, 0x41], 8)).toEqual({ text: '\uFFFDA', problems: [expect.stringMatching(/lone UTF-16 surrogate.*byte 0/)] });
    expect(dec([0x00, 0x41, 0xde, 0x00], 8).text).toBe('A\uFFFD');
    expect(dec([0xd8, 0x3d], 8).text).toBe('\uFFFD');
    // A high surrogate followed by another high one: only the first is lone.
    expect(dec([0xd8, 0x3d, 0xd8, 0x3d, 0xde, 0x00], 8).text).toBe('\uFFFD😀');
  });

  it('never throws, whatever the bytes and the data_coding', () => {
    const coding = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer(), fc.double());
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), coding, (bytes, dc) => {
        const { text, problems } = decodeUserData(bytes, dc);
        expect(typeof text).toBe('string');
        expect(text).not.toContain('undefined');
        for (const p of problems) expect(typeof p).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('reads a Buffer that is a slice of a larger pool', () => {
    const pool = Buffer.from([0xff, 0x48, 0x69, 0xff]);
    expect(decodeUserData(pool.subarray(1, 3), 3).text).toBe('Hi');
  });
});

describe('encodeSms round trips', () => {
  it('GSM-only text comes back unchanged in GSM-7', () => {
    fc.assert(
      fc.property(gsmText, fc.integer({ min: 0, max: 255 }), (text, reference) => {
        const sms = encodeSms(text, { ...ALL, reference });
        expect(sms.dataCoding).toBe(0);
        expect(sms.truncated).toBe(false);
        expect(receive(sms, reference)).toBe(text);
      }),
    );
  });

  it('extension-heavy text comes back unchanged, no escape pair split', () => {
    fc.assert(
      fc.property(extensionHeavy, (text) => {
        const sms = encodeSms(text, ALL);
        expect(sms.dataCoding).toBe(0);
        expect(receive(sms)).toBe(text);
        expect(sms.text).toBe(text);
      }),
    );
  });

  it('any unicode comes back as itself, or as its transliteration when that is GSM', () => {
    fc.assert(
      fc.property(anyUnicode, fc.boolean(), (text, translit) => {
        const sms = encodeSms(text, { ...ALL, transliterate: translit });
        expect(sms.truncated).toBe(false);
        expect(sms.text).toBe(expectedText(text, translit));
        expect(receive(sms)).toBe(sms.text);
        expect(sms.dataCoding).toBe(gsmSeptets(sms.text) === undefined ? 8 : 0);
      }),
    );
  });

  it('segmentsNeeded agrees with what encodeSms produces', () => {
    fc.assert(
      fc.property(anyUnicode, (text) => {
        const sms = encodeSms(text, ALL);
        expect(segmentsNeeded(text)).toEqual({ dataCoding: sms.dataCoding, segments: sms.segments.length });
      }),
    );
  });

  it('sends lone surrogates as U+FFFD', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0xd800, max: 0xdfff }), gsmText, (unit, tail) => {
        const sms = encodeSms(`x${String.fromCharCode(unit)}${tail}`, ALL);
        expect(sms.text).toBe(`x\uFFFD${tail}`);
        expect(receive(sms)).toBe(sms.text);
      }),
    );
  });

  it('an empty text is still one empty segment', () => {
    const sms = encodeSms('', ALL);
    expect(sms).toMatchObject({ dataCoding: 0, udh: false, truncated: false, text: '' });
    expect(sms.segments).toEqual([Buffer.alloc(0)]);
  });
});

describe('segment boundaries', () => {
  const count = (text: string) => segmentsNeeded(text);

  it('GSM-7: 160 septets single, 153 per part', () => {
    expect(count('a'.repeat(160))).toEqual({ dataCoding: 0, segments: 1 });
    expect(count('a'.repeat(161))).toEqual({ dataCoding: 0, segments: 2 });
    expect(count('a'.repeat(306))).toEqual({ dataCoding: 0, segments: 2 });
    expect(count('a'.repeat(307))).toEqual({ dataCoding: 0, segments: 3 });
    expect(count(`${'a'.repeat(158)}€`).segments).toBe(1);
    expect(count(`${'a'.repeat(159)}€`).segments).toBe(2);
  });

  it('an extension character at 153/154 moves whole to the next part', () => {
    const sms = encodeSms(`${'a'.repeat(152)}€${'b'.repeat(10)}`, ALL);
    expect(sms.segments.map((s) => s.length - 6)).toEqual([152, 12]);
    expect([...(sms.segments[1] ?? Buffer.alloc(0)).subarray(6, 8)]).toEqual([0x1b, 0x65]);
    // 306 septets would fill two parts exactly, but the pair can't straddle, so it takes three.
    expect(count(`${'a'.repeat(152)}€${'b'.repeat(152)}`).segments).toBe(3);
    expect(count(`${'a'.repeat(151)}€${'b'.repeat(153)}`).segments).toBe(2);
  });

  it('UCS-2: 70 units single, 67 per part', () => {
    expect(count('я'.repeat(70))).toEqual({ dataCoding: 8, segments: 1 });
    expect(count('я'.repeat(71))).toEqual({ dataCoding: 8, segments: 2 });
    expect(count('я'.repeat(134)).segments).toBe(2);
    expect(count('я'.repeat(135)).segments).toBe(3);
    expect(count(`${'я'.repeat(68)}😀`).segments).toBe(1);
    expect(count(`${'я'.repeat(69)}😀`).segments).toBe(2);
  });

  it('an emoji straddling unit 67 moves whole to the next part', () => {
    const sms = encodeSms(`${'я'.repeat(66)}😀${'я'.repeat(10)}`, ALL);
    expect(sms.segments.map((s) => (s.length - 6) / 2)).toEqual([66, 12]);
    expect([...(sms.segments[1] ?? Buffer.alloc(0)).subarray(6, 10)]).toEqual([0xd8, 0x3d, 0xde, 0x00]);
    expect(receive(sms)).toBe(`${'я'.repeat(66)}😀${'я'.repeat(10)}`);
    const exact = encodeSms(`${'я'.repeat(65)}😀${'я'.repeat(10)}`, ALL);
    expect(exact.segments.map((s) => (s.length - 6) / 2)).toEqual([67, 10]);
  });

  type SmsLine = { id: string; data_coding: number; text: string; parts: number };
  it.each(readCorpusLines<SmsLine>('sms.jsonl').filter((m) => m.data_coding === 0 || m.data_coding === 8))(
    'corpus $id needs $parts part(s) in data_coding $data_coding',
    ({ text, data_coding, parts }) => {
      expect(count(text)).toEqual({ dataCoding: data_coding, segments: parts });
    },
  );
});

describe('segment cap', () => {
  const capped = (maxSegments: number, translit = false): EncodeOptions => ({ transliterate: translit, maxSegments, reference: 7 });

  it('cuts a long GSM text to three parts ending with "..."', () => {
    const sms = encodeSms('a'.repeat(1000), capped(3));
    expect(sms.segments).toHaveLength(3);
    expect(sms.truncated).toBe(true);
    expect(sms.text).toBe(`${'a'.repeat(456)}...`);
    expect(receive(sms, 7)).toBe(sms.text);
  });

  it('keeps what fits exactly, and drops trailing spaces before the ellipsis', () => {
    expect(encodeSms('a'.repeat(459), capped(3)).truncated).toBe(false);
    expect(encodeSms(`${'a'.repeat(155)}     ${'b'.repeat(20)}`, capped(1)).text).toBe(`${'a'.repeat(155)}...`);
  });

  it('never ends on half a character', () => {
    // GSM: the € would need septets 157–158, leaving no room for "...".
    expect(encodeSms(`${'a'.repeat(156)}€aaa`, capped(1)).text).toBe(`${'a'.repeat(156)}...`);
    // UCS-2: an emoji, and a flag (two code points, one grapheme), at the cut.
    expect(encodeSms(`${'я'.repeat(68)}😀яяяя`, capped(1)).text).toBe(`${'я'.repeat(68)}…`);
    expect(encodeSms(`${'я'.repeat(66)}🇮🇩яяяя`, capped(1)).text).toBe(`${'я'.repeat(66)}…`);
  });

  it('never exceeds the cap, never splits a pair, sends a grapheme prefix plus an ellipsis', () => {
    fc.assert(
      fc.property(mixedText, fc.constantFrom(1, 2, 3, 3, 3, 4), fc.boolean(), (text, maxSegments, translit) => {
        const sms = encodeSms(text, capped(maxSegments, translit));
        expect(sms.segments.length).toBeLessThanOrEqual(maxSegments);
        expect(receive(sms, 7)).toBe(sms.text);
        if (!sms.truncated) {
          expect(sms.text).toBe(expectedText(text, translit));
          return;
        }
        const ellipsis = sms.dataCoding === 0 ? '...' : '…';
        expect(sms.text.endsWith(ellipsis)).toBe(true);
        const body = sms.text.slice(0, -ellipsis.length);
        const pieces = graphemes(text);
        const prefixes = pieces.map((_, n) => pieces.slice(0, n).join(''));
        const sent = prefixes.map((p) => (sms.dataCoding === 0 && translit ? transliterate(p) : p));
        expect(sent).toContain(body);
      }),
    );
  });

  it('treats a silly cap as one part', () => {
    for (const maxSegments of [0, -3, Number.NaN, 0.5]) expect(encodeSms('a'.repeat(400), capped(maxSegments)).segments).toHaveLength(1);
  });

  it('every notification template fits the default cap of three in GSM-7, uncut', () => {
    const longest = Object.fromEntries(Object.entries(PLACEHOLDER_LIMITS).map(([k, n]) => [k, 'W'.repeat(n + 50)]));
    for (const kind of Object.keys(TEMPLATES) as NotificationKind[]) {
      for (const lang of ['id', 'en'] as const) {
        const sms = encodeSms(renderNotification(kind, lang, longest), capped(3, true));
        expect(sms, `${kind}/${lang}`).toMatchObject({ dataCoding: 0, truncated: false });
      }
    }
  });
});

describe('transliterate', () => {
  it('replaces typographic punctuation and odd spaces', () => {
    expect(transliterate('‘a’ ‚b‛ “c” „d”')).toBe(`'a' 'b' "c" "d"`);
    expect(transliterate('1–2—3‑4')).toBe('1-2-3-4');
    expect(transliterate('tunggu…')).toBe('tunggu...');
    expect(transliterate('Rp\u00a0200\u202fribu\tok')).toBe('Rp 200 ribu ok');
    expect(transliterate('• satu · dua')).toBe('* satu * dua');
    expect(transliterate('in\u00adfor\u200bmasi')).toBe('informasi');
  });

  it('takes accented letters GSM lacks to their base, keeps the ones it has', () => {
    expect(transliterate('áâãā çíîïóôõúûýÿ ÀÊŠž')).toBe('aaaa ciiiooouuyy AESz');
    const kept = 'éèùìòàÄÖÑÜäöñüßÅåÆæØøÉÇ';
    expect(transliterate(kept)).toBe(kept);
    // Decomposed input is composed first, so e + combining acute stays é.
    expect(transliterate('Caf\u0065\u0301')).toBe('Café');
  });

  it('brings every letter of Latin-1 and Latin Extended-A into GSM-7', () => {
    const letters = Array.from({ length: 0x180 - 0xc0 }, (_, i) => String.fromCharCode(0xc0 + i)).filter((c) => /\p{L}/u.test(c));
    for (const letter of letters) expect(gsmSeptets(transliterate(letter)), letter).toBeDefined();
  });

  it('leaves emoji and other scripts, so the reply goes UCS-2 with the original text', () => {
    expect(transliterate('Halo 😡 محمد')).toBe('Halo 😡 محمد');
    const sms = encodeSms('“Lampu” mati 😡', { ...ALL, transliterate: true });
    expect(sms).toMatchObject({ dataCoding: 8, text: '“Lampu” mati 😡' });
  });

  it('is what keeps a reply in GSM-7, and can be switched off', () => {
    const text = 'Petugas minta “uang administrasi” – Rp 200 ribu…';
    expect(encodeSms(text, { ...ALL, transliterate: true })).toMatchObject({
      dataCoding: 0,
      text: 'Petugas minta "uang administrasi" - Rp 200 ribu...',
    });
    expect(encodeSms(text, ALL)).toMatchObject({ dataCoding: 8, text });
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(anyUnicode, (text) => {
        expect(transliterate(transliterate(text))).toBe(transliterate(text));
      }),
    );
  });
});

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
