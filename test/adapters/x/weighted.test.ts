import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { URL_WEIGHT, fitPost, weightedLength } from '../../../adapters/x/weighted.ts';

// twitter-text config v3, written out independently of the implementation: code points weighing 1.
const LIGHT: readonly (readonly [number, number])[] = [[0x0000, 0x10ff], [0x2000, 0x200d], [0x2010, 0x201f], [0x2032, 0x2037]];
const referenceWeight = (text: string): number =>
  [...text.normalize('NFC')].reduce((sum, ch) => {
    const cp = ch.codePointAt(0) ?? 0;
    return sum + (LIGHT.some(([a, b]) => cp >= a && cp <= b) ? 1 : 2);
  }, 0);

const ID = '5950309441';
const LINK = `https://lapor.go.id/laporan/${ID}?utm_source=x&utm_medium=reply`;
const isWellFormed = (s: string): boolean => !/\p{Cs}/u.test(s);
const graphemes = (text: string): string[] =>
  Array.from(new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text), (s) => s.segment);
const graphemeBoundaries = (text: string): Set<number> =>
  new Set([...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)].map((s) => s.index).concat(text.length));

describe('weightedLength', () => {
  it.each([
    ['', 0],
    ['hello world', 11],
    ['LAPOR! 1708', 11],
    // Indonesian is Latin: one each, including the accented letters of loanwords.
    ['Jalan di depan SDN 2 Sukamaju rusak, mohon segera diperbaiki.', 61],
    ['Kafé', 4],
    // NFC first: e + combining acute is one code point for X.
    ['Kafe\u0301', 4],
    // CJK, Hangul, Thai-range edges: two each outside the light ranges.
    ['日本語', 6],
    ['한국어', 6],
    ['ทดสอบ', 5], // Thai U+0E00–U+0E7F is in U+0000–U+10FF
    ['ᄀ', 2], // U+1100, just past the first range
    // General punctuation: dashes and quotes are light, the ellipsis and € are not.
    ['—“”‘’', 5],
    ['′″', 2],
    ['…', 2],
    ['€', 2],
    // Emoji: each sequence counts 2, however many code points it has.
    ['🙏', 2],
    ['👍🏽', 2],
    ['👨‍👩‍👧‍👦', 2],
    ['🏳️‍🌈', 2],
    ['🇮🇩', 2],
    ['🇮🇩🇯🇵', 4],
    ['1️⃣', 2],
    ['❤️', 2],
    ['🏴󠁧󠁢󠁥󠁮󠁧󠁿', 2],
    ['Terima kasih 🙏🏽', 15],
    // © and ® are emoji to X's parser even without U+FE0F.
    ['©', 2],
    // A lone surrogate weighs 2, as in twitter-text.
    ['\ud800', 2],
  ])('%j weighs %i', (text, weight) => {
    expect(weightedLength(text)).toBe(weight);
  });

  it('counts every URL as 23, however long, and the text around it as usual', () => {
    expect(URL_WEIGHT).toBe(23);
    expect(weightedLength('https://lapor.go.id')).toBe(23);
    expect(weightedLength(LINK)).toBe(23);
    expect(weightedLength(`https://lapor.go.id/${'a'.repeat(500)}`)).toBe(23);
    expect(weightedLength(`Cek ${LINK}.`)).toBe(4 + 23 + 1);
    expect(weightedLength(`${LINK} dan http://www.example.com/x`)).toBe(23 + 5 + 23);
    expect(weightedLength('lihat lapor.go.id')).toBe(6 + 23);
    expect(weightedLength('(https://lapor.go.id/r/1)')).toBe(1 + 23 + 1);
  });

  it('counts high, never low, where X might or might not see a URL', () => {
    // "Jl.Merdeka" is 10 characters; X calls it text, an unknown TLD could make it a URL: 23 either way covers it.
    expect(weightedLength('Jl.Merdeka')).toBe(23);
    expect(weightedLength(`lapor.zz/${'a'.repeat(40)}`)).toBe(49);
  });

  it('reaches exactly 280 and 281', () => {
    expect(weightedLength('a'.repeat(280))).toBe(280);
    expect(weightedLength('a'.repeat(281))).toBe(281);
    expect(weightedLength('日'.repeat(140))).toBe(280);
    expect(weightedLength(`${'a'.repeat(256)} ${LINK}`)).toBe(280);
    expect(weightedLength(`${'a'.repeat(257)} ${LINK}`)).toBe(281);
    expect(weightedLength(`${'a'.repeat(278)}👨‍👩‍👧‍👦`)).toBe(280);
  });

  it('matches the plain per-code-point rule on text without emoji or dots', () => {
    const noEmojiNoUrl = /[\p{Extended_Pictographic}\p{Emoji_Presentation}\p{Regional_Indicator}\p{Emoji_Modifier}\u20e3\ufe0f\u{e0020}-\u{e007f}.]/u;
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
        fc.pre(!noEmojiNoUrl.test(text.normalize('NFC')));
        expect(weightedLength(text)).toBe(referenceWeight(text));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fitPost', () => {
  const body = 'Jalan di depan SDN 2 Sukamaju rusak parah, lubangnya makin dalam dan sudah dua motor jatuh minggu ini. ';

  it('returns text that fits unchanged, up to exactly 280', () => {
    expect(fitPost('Laporan Anda sudah kami terima.', {})).toBe('Laporan Anda sudah kami terima.');
    const exactly = `${'a'.repeat(256)} ${LINK}`;
    expect(fitPost(exactly, {})).toBe(exactly);
    expect(fitPost('日'.repeat(140), { link: LINK })).toBe('日'.repeat(140));
  });

  it('cuts a longer text at the end of a word and adds "…"', () => {
    const text = body.repeat(4);
    const post = fitPost(text, {});
    expect(weightedLength(post)).toBeLessThanOrEqual(280);
    expect(weightedLength(post)).toBeGreaterThan(260);
    expect(post.endsWith('…')).toBe(true);
    const kept = post.slice(0, -1);
    expect(text.startsWith(kept)).toBe(true);
    expect(text[kept.length]).toBe(' '); // the next word was dropped whole
  });

  it('adds the link after the cut, counted as 23 however long it is', () => {
    const text = body.repeat(4);
    const post = fitPost(text, { link: LINK });
    expect(post.endsWith(`… ${LINK}`)).toBe(true);
    expect(weightedLength(post)).toBeLessThanOrEqual(280);
    expect(weightedLength(post)).toBeGreaterThan(260);
    // More characters than 280, because the link weighs 23 and not its length.
    expect(post.length).toBeGreaterThan(280);
  });

  it('keeps a 10-digit tracking ID and the link: the cut moves before the ID rather than through it', () => {
    // One long "word" (no spaces), so only the keep list stops the cut from landing inside the ID.
    const text = `${'x'.repeat(250)}${ID}${'y'.repeat(100)}`;
    const loose = fitPost(text, { link: LINK });
    expect(loose).toMatch(/^x+59\d{0,7}… /); // without `keep` the cut does fall inside the ID

    const kept = fitPost(text, { link: LINK, keep: [ID] });
    expect(kept).toBe(`${'x'.repeat(250)}… ${LINK}`);

    // The reply templates' "CEK <id>": the cut is before "CEK", never between it and the ID.
    const reply = `${body}${body}Balas CEK ${ID} untuk melihat status laporan Anda. ${body}`;
    for (let max = 60; max <= 280; max += 1) {
      const post = fitPost(reply, { max, link: LINK, keep: [`CEK ${ID}`] });
      expect(weightedLength(post), `max ${max}`).toBeLessThanOrEqual(max);
      expect(post.endsWith(` ${LINK}`), `max ${max}`).toBe(true);
      expect(post, `max ${max}`).not.toMatch(/CEK…|CEK 5950?…/);
      if (post.includes('CEK')) expect(post).toContain(`CEK ${ID}`);
    }
  });

  it('cuts CJK between words, and never through an emoji sequence, a flag or a URL', () => {
    const cjk = fitPost('日本語のテキストを書きます。'.repeat(30), {});
    expect(weightedLength(cjk)).toBeGreaterThan(260);
    expect(weightedLength(cjk)).toBeLessThanOrEqual(280);

    const family = '👨‍👩‍👧‍👦';
    const families = fitPost(family.repeat(200), {});
    expect(graphemes(families.slice(0, -1)).every((g) => g === family)).toBe(true);
    expect(weightedLength(families)).toBe(280);

    const flags = fitPost('🇮🇩🇯🇵'.repeat(100), {});
    expect(graphemes(flags.slice(0, -1)).every((g) => g === '🇮🇩' || g === '🇯🇵')).toBe(true);

    // The URL straddles where the cut would go: it is dropped whole, not shortened into another link.
    const withUrl = `${'a'.repeat(270)} ${LINK} selesai`;
    expect(fitPost(withUrl, {})).toBe(`${'a'.repeat(270)}…`);
  });

  it('turns half a surrogate pair into U+FFFD, and refuses a max that cannot hold "…" and the link', () => {
    expect(fitPost('ok \ud83d', {})).toBe('ok \ufffd');
    expect(isWellFormed(fitPost(`${'\udc00a '.repeat(200)}`, {}))).toBe(true);
    expect(() => fitPost('a'.repeat(300), { max: 20, link: LINK })).toThrow(RangeError);
    expect(fitPost('a'.repeat(300), { max: 26, link: LINK })).toBe(`… ${LINK}`);
  });

  // Any UTF-16 code unit, lone surrogates included.
  const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
  const piece = fc.oneof(
    fc.constantFrom('jalan', 'rusak', 'Sukamaju', ' ', '  ', '\n', ', ', '. ', ID, `CEK ${ID}`, '日本語', 'テキスト'),
    fc.constantFrom('👨‍👩‍👧‍👦', '👍🏽', '🇮🇩', '1️⃣', '🏳️‍🌈', '\u200d', '\ufe0f', '\u0301', '🇮', '\ud83d', '\udc4d'),
    fc.constantFrom(LINK, 'lapor.go.id', 'https://x.co/a', 'Jl.Merdeka', 'S.Pd.', 'a.b.c'),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  );
  const text = fc.oneof(
    fc.array(piece, { maxLength: 120 }).map((parts) => parts.join('')),
    fc.string({ unit: 'grapheme', maxLength: 400 }),
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.string({ unit: anyUnit, maxLength: 400 }),
  );
  const options = fc.record(
    {
      max: fc.integer({ min: 30, max: 280 }),
      link: fc.constantFrom(LINK, 'https://lapor.go.id/r/1', 'lapor.go.id'),
      keep: fc.constantFrom([ID], [`CEK ${ID}`], [ID, '日本語'], []),
    },
    { requiredKeys: [] },
  );

  it('always fits, is well-formed UTF-16, and cuts only between graphemes and outside `keep`', () => {
    fc.assert(
      fc.property(text, options, (input, opts) => {
        const max = opts.max ?? 280;
        const post = fitPost(input, opts);
        expect(weightedLength(post)).toBeLessThanOrEqual(max);
        expect(isWellFormed(post)).toBe(true);

        const whole = input.replace(/\p{Cs}/gu, '\ufffd');
        if (weightedLength(whole) <= max) {
          expect(post).toBe(whole);
          return;
        }
        const suffix = opts.link ? `… ${opts.link}` : '…';
        expect(post.endsWith(suffix)).toBe(true);
        const nfc = whole.normalize('NFC');
        const kept = post.slice(0, post.length - suffix.length);
        expect(nfc.startsWith(kept)).toBe(true);
        expect(graphemeBoundaries(nfc).has(kept.length)).toBe(true);
        for (const k of opts.keep ?? []) {
          for (let at = nfc.indexOf(k); at !== -1; at = nfc.indexOf(k, at + 1)) {
            expect(at < kept.length && kept.length < at + k.length, `cut inside ${k}`).toBe(false);
          }
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('keeps posts within 280 with the default options, for any string', () => {
    fc.assert(
      fc.property(fc.oneof(text, fc.string({ unit: 'grapheme', minLength: 200, maxLength: 1000 })), (input) => {
        const post = fitPost(input, {});
        expect(weightedLength(post)).toBeLessThanOrEqual(280);
        expect(isWellFormed(post)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
