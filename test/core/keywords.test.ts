import { readCorpusLines } from '../helpers/corpus.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defaultKeywords, parseCitizenMessage } from '../../src/core/keywords.ts';
import type { CitizenCommand, Privacy, TrackingRef } from '../../src/core/keywords.ts';

// ---------------------------------------------------------------------------------------------------------
// The SMS corpus (test/helpers/corpus.ts finds it), read at test time so a new line is tested
// without touching this file. LAPOR_CORPUS_DIR points elsewhere when the checkout lives somewhere else.

const CorpusLine = z.object({
  id: z.string(),
  text: z.string(),
  expect: z.object({
    intent: z.enum(['new_report', 'status_query', 'follow_up', 'satisfied', 'dissatisfied', 'help', 'spam', 'empty']),
    privacy: z.enum(['public', 'anonim', 'rahasia']),
    notes: z.string(),
  }),
});
type CorpusLine = z.infer<typeof CorpusLine>;

const corpus: CorpusLine[] = readCorpusLines<unknown>('sms.jsonl').map((line) => CorpusLine.parse(line));

// The parser does not decide spam (the verification rules do): a spam SMS is filed like any free text.
const COMMAND_FOR_INTENT: Record<CorpusLine['expect']['intent'], CitizenCommand['type']> = {
  new_report: 'new_report',
  spam: 'new_report',
  status_query: 'status_query',
  follow_up: 'follow_up',
  satisfied: 'satisfied',
  dissatisfied: 'dissatisfied',
  help: 'help',
  empty: 'empty',
};

// Corpus lines the parser deliberately does not match. Each entry is checked to STILL disagree, so a fix
// elsewhere shows up as a failing test asking for the entry to be removed.
const knownDisagreements: readonly { id: string; field: 'intent' | 'privacy' | 'ref'; reason: string }[] = [
];
const disagrees = (id: string, field: 'intent' | 'privacy' | 'ref'): boolean =>
  knownDisagreements.some((d) => d.id === id && d.field === field);

const privacyOf = (c: CitizenCommand): Privacy => (c.type === 'new_report' ? c.privacy : 'public');
const refOf = (c: CitizenCommand): TrackingRef | undefined => ('ref' in c ? c.ref : undefined);

// A private Damm check, so fixtures do not trust the code under test. Same quasigroup as Damm (2004).
const DAMM: readonly (readonly number[])[] = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];
const dammInterim = (digits: string): number => [...digits].reduce((i, d) => DAMM[i]?.[Number(d)] ?? -1, 0);
const withCheckDigit = (payload: string): string => payload + String(dammInterim(payload));

// What the corpus line refers to: the first run of digits in the text (spaces inside allowed), valid when
// it passes Damm (corpus README: every valid ID passes Damm, every mistyped one fails it).
function expectedRef(text: string): TrackingRef {
  const digits = /[0-9][0-9 ]*[0-9]/.exec(text)?.[0].replace(/ /g, '');
  if (digits === undefined) return { ok: false, reason: 'format', input: '' };
  return dammInterim(digits) === 0 ? { ok: true, id: digits } : { ok: false, reason: 'check_digit', input: digits };
}

describe('parseCitizenMessage on the SMS corpus', () => {
  it('has the corpus (and every known disagreement names a real line)', () => {
    expect(corpus.length).toBeGreaterThan(40);
    for (const d of knownDisagreements) expect(corpus.map((l) => l.id)).toContain(d.id);
  });

  it.each(corpus.map((l) => [l.id, l] as const))('%s: intent and privacy', (_id, line) => {
    const command = parseCitizenMessage(line.text);
    if (!disagrees(line.id, 'intent')) expect(command.type, line.expect.notes).toBe(COMMAND_FOR_INTENT[line.expect.intent]);
    if (!disagrees(line.id, 'privacy')) expect(privacyOf(command), line.expect.notes).toBe(line.expect.privacy);
  });

  const withRef = corpus.filter((l) => ['status_query', 'follow_up', 'satisfied', 'dissatisfied'].includes(l.expect.intent));
  it.each(withRef.filter((l) => !disagrees(l.id, 'ref')).map((l) => [l.id, l] as const))('%s: tracking ID', (_id, line) => {
    expect(refOf(parseCitizenMessage(line.text)), line.expect.notes).toEqual(expectedRef(line.text));
  });

  it.each(knownDisagreements.map((d) => [d.id, d] as const))('%s: known disagreement still holds', (_id, d) => {
    const line = corpus.find((l) => l.id === d.id);
    if (!line) throw new Error(`no corpus line ${d.id}`);
    const command = parseCitizenMessage(line.text);
    const actual = { intent: command.type, privacy: privacyOf(command), ref: refOf(command) }[d.field];
    const wanted = { intent: COMMAND_FOR_INTENT[line.expect.intent], privacy: line.expect.privacy, ref: expectedRef(line.text) }[d.field];
    expect(actual, `${d.id} now agrees with the corpus: remove it from knownDisagreements`).not.toEqual(wanted);
  });

  it('keeps the citizen\'s own text, minus the keywords and the punctuation after them', () => {
    const texts = new Map(corpus.map((l) => [l.id, parseCitizenMessage(l.text)]));
    const textOf = (id: string): string | undefined => {
      const c = texts.get(id);
      return c?.type === 'new_report' ? c.text : undefined;
    };
    expect(textOf('s-001')).toMatch(/^Jalan Raya Cibeureum km 4 .* Mohon segera diperbaiki\.$/);
    expect(textOf('s-004')).toMatch(/^sdh 8 bln rekam e-KTP/);
    expect(textOf('s-007')).toMatch(/^Tiap malam di pos lantas/);
    expect(textOf('s-008')).toMatch(/^Dana desa Sidorejo/);
    expect(textOf('s-044')).toMatch(/^The public toilet/);
    // Free text is filed whole, including a first word that merely resembles a keyword ("Mohon info", "Laporan").
    expect(textOf('s-013')).toBe(corpus.find((l) => l.id === 's-013')?.text);
    expect(textOf('s-015')).toMatch(/^Laporan warga RT 07/);
    for (const line of corpus) {
      const c = texts.get(line.id);
      if (c?.type === 'new_report') expect(line.text.trim().endsWith(c.text), line.id).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

const ok = (id: string): TrackingRef => ({ ok: true, id });
const noId: TrackingRef = { ok: false, reason: 'format', input: '' };
const report = (text: string, privacy: Privacy = 'public'): CitizenCommand => ({ type: 'new_report', text, privacy });

describe('parseCitizenMessage, hand-written cases', () => {
  const cases: readonly (readonly [string, CitizenCommand])[] = [
    // Typos of long keywords (one edit, transpositions included) and listed variants of short ones.
    ['LAPR jalan rusak', report('jalan rusak')],
    ['LAPORR jalan rusak', report('jalan rusak')],
    ['LPAOR jalan rusak', report('jalan rusak')],
    ['RAHSIA ada pungli', report('ada pungli', 'rahasia')],
    ['anonym dana desa', report('dana desa', 'anonim')],
    ['CEKK 5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['CEK. 5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['STATS 5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['statsu 5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['BLAS 5723181068 sudah saya foto', { type: 'follow_up', ref: ok('5723181068'), text: 'sudah saya foto' }],
    // Punctuation, spacing, separators inside the ID, keyword glued to the ID.
    ['CEK: 5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['cek#5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['CEK 572 318 1068', { type: 'status_query', ref: ok('5723181068') }],
    ['CEK 572-318-1068', { type: 'status_query', ref: ok('5723181068') }],
    ['Lapor,   jalan\n\nrusak', report('jalan\n\nrusak')],
    ['*LAPOR* jalan rusak', report('jalan rusak')],
    ['LAPOR (penting) jalan rusak', report('(penting) jalan rusak')],
    ['  \n LAPOR RAHASIA  ada pungli  ', report('ada pungli', 'rahasia')],
    ['ANONIM RAHASIA ada pungli', report('ada pungli', 'rahasia')],
    ['report confidential bribes at the port', report('bribes at the port', 'rahasia')],
    ['ADUAN sampah menumpuk', report('sampah menumpuk')],
    // Unicode: NFKC for matching, the original characters in the text.
    ['ＬＡＰＯＲ　ｊａｌａｎ', report('ｊａｌａｎ')],
    ['ＣＥＫ ５７２３１８１０６８', { type: 'status_query', ref: ok('5723181068') }],
    // A mistyped ID is still the command, so the reply can say "check the number".
    ['CEK 5723181060', { type: 'status_query', ref: { ok: false, reason: 'check_digit', input: '5723181060' } }],
    ['5723181060 tambahan foto', { type: 'follow_up', ref: { ok: false, reason: 'check_digit', input: '5723181060' }, text: 'tambahan foto' }],
    ['CEK 123', { type: 'status_query', ref: { ok: false, reason: 'format', input: '123' } }],
    // Follow-ups, satisfaction.
    ['5723181068', { type: 'status_query', ref: ok('5723181068') }],
    ['#5723181068: lubang makin lebar', { type: 'follow_up', ref: ok('5723181068'), text: 'lubang makin lebar' }],
    ['REPLY 5723181068 more photos', { type: 'follow_up', ref: ok('5723181068'), text: 'more photos' }],
    ['BALAS 5723181068 2 foto', { type: 'follow_up', ref: ok('5723181068'), text: '2 foto' }],
    ['puas 5723181068', { type: 'satisfied', ref: ok('5723181068') }],
    ['SATISFIED 5723181068 thanks', { type: 'satisfied', ref: ok('5723181068'), text: 'thanks' }],
    ['TDK PUAS 5723181068 masih bocor', { type: 'dissatisfied', ref: ok('5723181068'), text: 'masih bocor' }],
    ['gak puas 5723181068', { type: 'dissatisfied', ref: ok('5723181068'), text: '' }],
    ['TIDAKPUAS 5723181068 belum', { type: 'dissatisfied', ref: ok('5723181068'), text: 'belum' }],
    ['not satisfied 5723181068 still broken', { type: 'dissatisfied', ref: ok('5723181068'), text: 'still broken' }],
    ['TIDAK PUAS', { type: 'dissatisfied', ref: noId, text: '' }],
    // Help, including Telegram commands.
    ['/start', { type: 'help' }],
    ['/help', { type: 'help' }],
    ['/start@lapor1708_bot', { type: 'help' }],
    ['Info?', { type: 'help' }],
    ['INFO cek', { type: 'help', topic: 'cek' }],
    ['/status@lapor1708_bot 5370467387', { type: 'status_query', ref: ok('5370467387') }],
    ['/lapor Jalan berlubang', report('Jalan berlubang')],
    ['@LAPOR1708 CEK 5520856467', { type: 'status_query', ref: ok('5520856467') }],
    // Empty.
    ['?!...', { type: 'empty' }],
    ['🙏🙏', { type: 'empty' }],
    ['LAPOR RAHASIA', { type: 'empty' }],
    ['\u0000\u0007\u200b', { type: 'empty' }],
    // Ordinary first words of a complaint stay reports, whole.
    ['Cek ombak di pantai Pelabuhan Ratu tidak pernah ada petugas', report('Cek ombak di pantai Pelabuhan Ratu tidak pernah ada petugas')],
    ['Cek 3 sekolah di kecamatan kami, semua atapnya bocor', report('Cek 3 sekolah di kecamatan kami, semua atapnya bocor')],
    ['Status tanah kami tidak jelas', report('Status tanah kami tidak jelas')],
    ['Info jalan rusak di Desa Sukamaju sudah 3 bulan', report('Info jalan rusak di Desa Sukamaju sudah 3 bulan')],
    ['Bantuan PKH ibu saya tidak cair 3 bulan', report('Bantuan PKH ibu saya tidak cair 3 bulan')],
    ['Tidak puas dengan pelayanan RSUD, antre 5 jam', report('Tidak puas dengan pelayanan RSUD, antre 5 jam')],
    ['Puas sekali tapi tolong lampunya ditambah', report('Puas sekali tapi tolong lampunya ditambah')],
    ['Balai desa dipakai untuk pesta pribadi', report('Balai desa dipakai untuk pesta pribadi')],
    ['Lapar warga, bansos tidak cair', report('Lapar warga, bansos tidak cair')],
    ['Repot urus KTP', report('Repot urus KTP')],
    ['Laporan warga: got mampet', report('Laporan warga: got mampet')],
    ['3374035610920007 NIK saya salah', report('3374035610920007 NIK saya salah')],
    ['0813 2745 9901 nomor saya', report('0813 2745 9901 nomor saya')],
    ['S D N 2 memungut biaya', report('S D N 2 memungut biaya')],
  ];
  it.each(cases)('%j', (input, expected) => {
    expect(parseCitizenMessage(input)).toEqual(expected);
  });

  it('reads keywords from the options', () => {
    const options = { ...defaultKeywords, report: [...defaultKeywords.report, 'adukan'], help: ['tolong'] };
    expect(parseCitizenMessage('adukan jalan rusak', options)).toEqual(report('jalan rusak'));
    expect(parseCitizenMessage('tolong', options)).toEqual({ type: 'help' });
    expect(parseCitizenMessage('INFO', options)).toEqual(report('INFO'));
  });
});

// ---------------------------------------------------------------------------------------------------------

// A short question naming one valid ID anywhere, with no command keyword in front (keywords.ts step 5).
describe('parseCitizenMessage, a status question anywhere in the message', () => {
  const id = withCheckDigit('595030944'); // 5950309441, the X corpus report of @hendro_sj
  const other = withCheckDigit('552085646'); // 5520856467
  const mistyped = `${id.slice(0, 9)}${(Number(id[9]) + 1) % 10}`;
  const status = (ref: string): CitizenCommand => ({ type: 'status_query', ref: ok(ref), inferred: true });
  const longComplaint =
    `Jalan di depan SDN 2 Sukamaju rusak lagi, lubangnya makin dalam dan sudah dua motor jatuh minggu ini. ` +
    `Dulu sudah saya laporkan dengan nomor ${id} dan sempat ditambal, tapi kapan diperbaiki dengan benar?`;

  // shared/corpus/twitter/mentions-status-new-thread.json, as the X adapter hands it over (our @handle and
  // #lapor removed: the hashtag addresses us, it is no LAPOR keyword).
  it('reads the X corpus question', () => {
    const tweet = 'min, laporan saya no 5950309441 udh 3 minggu blm ada kabar, gmn statusnya?';
    expect(parseCitizenMessage(tweet)).toEqual(status('5950309441'));
    expect(parseCitizenMessage(`@LAPOR1708 ${tweet}`)).toEqual(status('5950309441'));
  });

  const cases: readonly (readonly [string, CitizenCommand])[] = [
    [`what is the status of ${id}?`, status(id)],
    [`Pak, laporan ${id.slice(0, 3)} ${id.slice(3, 6)} ${id.slice(6)} sdh sampai mana ya`, status(id)],
    [`Kapan laporan #${id} ditindaklanjuti?`, status(id)],
    [`laporan ${id} blm ada tanggapan`, status(id)],
    [`Selamat siang Bapak/Ibu, saya mau menanyakan laporan saya nomor ${id} yang sudah 3 minggu belum ada kabar, bagaimana statusnya? Terima kasih.`, status(id)],
    // The same ID twice is still one report.
    [`Mau tanya statusnya laporan ${id}, laporan ${id} itu`, status(id)],
    // The keyword handlers keep their meaning: CEK declined ("cek laporan saya"), so step 5 reads the message.
    [`Cek laporan saya ${id} gimana?`, status(id)],
    // Not a status question, each for want of one thing: a valid ID, few words, one ID, a question word.
    [`Saya transfer ke rekening ${mistyped} kapan uangnya kembali?`, report(`Saya transfer ke rekening ${mistyped} kapan uangnya kembali?`)],
    [longComplaint, report(longComplaint)],
    [`laporan ${id} dan ${other} gimana statusnya?`, report(`laporan ${id} dan ${other} gimana statusnya?`)],
    [`Laporan ${id}: lampu jalan mati lagi`, report(`Laporan ${id}: lampu jalan mati lagi`)],
    // Legacy 8-digit IDs are read after CEK only; here they could be any number.
    ['laporan 13579024 gimana?', report('laporan 13579024 gimana?')],
    // Only where no keyword decided: LAPOR files, RAHASIA keeps its privacy, a leading ID stays a follow-up.
    [`LAPOR laporan ${id} gimana statusnya`, report(`laporan ${id} gimana statusnya`)],
    [`RAHASIA laporan ${id} gimana statusnya`, report(`laporan ${id} gimana statusnya`, 'rahasia')],
    [`${id} gimana statusnya?`, { type: 'follow_up', ref: ok(id), text: 'gimana statusnya?' }],
  ];
  it.each(cases)('%j', (input, expected) => {
    expect(parseCitizenMessage(input)).toEqual(expected);
  });

  it('counts words up to statusQuestionMaxWords, and reads the question words from the options', () => {
    const words = (n: number): string => Array.from({ length: n }, () => 'kata').join(' ');
    expect(parseCitizenMessage(`${words(22)} ${id} statusnya?`).type).toBe('status_query'); // 24 words
    expect(parseCitizenMessage(`${words(23)} ${id} statusnya?`).type).toBe('status_query'); // 25
    expect(parseCitizenMessage(`${words(24)} ${id} statusnya?`).type).toBe('new_report'); // 26
    // Only what the tokenizer read counts: a question hidden after 600 characters is a long message.
    expect(parseCitizenMessage(`laporan ${id}${'.'.repeat(700)} gimana?`).type).toBe('new_report');
    const options = { ...defaultKeywords, statusQuestion: ['piye'], statusQuestionMaxWords: 3 };
    expect(parseCitizenMessage(`laporan ${id} piye`, options)).toEqual(status(id));
    expect(parseCitizenMessage(`laporan ${id} gimana`, options)).toEqual(report(`laporan ${id} gimana`));
    expect(parseCitizenMessage(`laporan saya ${id} piye`, options)).toEqual(report(`laporan saya ${id} piye`));
  });

  it('finds any valid ID next to any question word, and never a mistyped one', () => {
    const phrase = fc.constantFrom(...defaultKeywords.statusQuestion);
    fc.assert(
      fc.property(validId, phrase, fc.nat({ max: 9 }), fc.integer({ min: 1, max: 9 }), (valid, question, position, delta) => {
        expect(parseCitizenMessage(`min, laporan ${valid} ${question}?`)).toEqual(status(valid));
        const digit = (Number(valid[position]) + delta) % 10;
        const typo = valid.slice(0, position) + String(digit) + valid.slice(position + 1);
        expect(parseCitizenMessage(`min, laporan ${typo} ${question}?`).type).toBe('new_report');
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

// Any UTF-16 code unit: lone surrogates, control characters, unassigned code points.
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
const validId = fc.stringMatching(/^[1-9][0-9]{8}$/).map(withCheckDigit);
// Messages built from the pieces the parser reacts to, so random runs reach every handler.
const piece = fc.oneof(
  fc.constantFrom('LAPOR', 'rahasia', 'ANONIM', 'cek', 'STATUS', 'balas', 'PUAS', 'tidak', 'INFO', '/start', '@LAPOR1708', 'C E K'),
  fc.constantFrom(' ', '  ', '\n', ':', ',', '#', '-', '.', '\u0301', '\ud800', '\u0000', '５'),
  validId,
  fc.string({ unit: anyUnit, maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const message = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));

const REPORT_KEYWORDS = [...defaultKeywords.report, ...defaultKeywords.rahasia, ...defaultKeywords.anonim];
const startsWithReportKeyword = (text: string): boolean => {
  const first = /^[\p{L}\p{M}]+/u.exec(text.normalize('NFKC'))?.[0].toLowerCase();
  return first !== undefined && REPORT_KEYWORDS.includes(first);
};

describe('parseCitizenMessage properties', () => {
  it('never throws and always returns a well-formed command', () => {
    fc.assert(
      fc.property(fc.oneof(message, fc.string({ unit: anyUnit, maxLength: 200 }), fc.string({ unit: 'binary' })), (text) => {
        const c = parseCitizenMessage(text);
        switch (c.type) {
          case 'new_report':
            // Filed text is the citizen's own characters, never empty.
            expect(text.includes(c.text)).toBe(true);
            expect(/[\p{L}\p{N}]/u.test(c.text)).toBe(true);
            break;
          case 'follow_up':
          case 'dissatisfied':
            expect(text.includes(c.text)).toBe(true);
            break;
          case 'status_query':
          case 'satisfied':
          case 'help':
          case 'empty':
            break;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('strips the report keywords: the filed text never starts with one', () => {
    fc.assert(
      fc.property(
        fc.mixedCase(fc.constantFrom(...REPORT_KEYWORDS)),
        fc.constantFrom(' ', ': ', ', ', '\n', '  ', '#'),
        fc.oneof(message, fc.string({ unit: 'grapheme', maxLength: 40 })),
        (keyword, sep, body) => {
          const c = parseCitizenMessage(`${keyword}${sep}${body}`);
          if (c.type === 'new_report') expect(startsWithReportKeyword(c.text), c.text).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('is stable under surrounding whitespace', () => {
    const ws = fc.array(fc.constantFrom(' ', '\n', '\t', '\r\n', '\u3000'), { maxLength: 4 }).map((a) => a.join(''));
    fc.assert(
      fc.property(ws, message, ws, (before, text, after) => {
        expect(parseCitizenMessage(`${before}${text}${after}`)).toEqual(parseCitizenMessage(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads plain ASCII (its fast path) exactly as the general path reads the same text', () => {
    // An ideographic space at the end sends the text down the general path (NFKC makes it a space,
    // which trimming then drops): both must give the same command, piece by piece.
    const piece = fc.oneof(
      fc.constantFrom('LAPOR', 'cek', 'C E K', 'puas', 'TIDAK PUAS', 'rahasia', 'anonim', 'lpaor', 'info', '@LAPOR1708', 'gmn', 'status'),
      fc.constantFrom(' ', '  ', ':', ', ', '\n', '-', '.', '#', '@', '_', '2'),
      validId,
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }).map((p) => p.join('')), (text) => {
        expect(parseCitizenMessage(`${text}\u3000`)).toEqual(parseCitizenMessage(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('is stable under changing the case of the keyword', () => {
    const keywords = Object.values({
      report: defaultKeywords.report, rahasia: defaultKeywords.rahasia, anonim: defaultKeywords.anonim,
      status: defaultKeywords.status, followUp: defaultKeywords.followUp, satisfied: defaultKeywords.satisfied,
      dissatisfied: defaultKeywords.dissatisfied, help: defaultKeywords.help,
    }).flat();
    // When the keyword turns out to be an ordinary first word, the message is filed whole, keyword and all:
    // compare that first word case-insensitively.
    const lowerFirst = (c: CitizenCommand, length: number): CitizenCommand =>
      c.type === 'new_report' ? { ...c, text: c.text.slice(0, length).toLowerCase() + c.text.slice(length) } : c;
    const keywordInTwoCases = fc.constantFrom(...keywords).chain((k) => fc.tuple(fc.constant(k), fc.mixedCase(fc.constant(k))));
    fc.assert(
      fc.property(keywordInTwoCases, fc.constantFrom(' ', ':', '\n'), fc.oneof(validId, message), ([keyword, mixed], sep, rest) => {
        const a = parseCitizenMessage(`${mixed}${sep}${rest}`);
        const b = parseCitizenMessage(`${keyword.toUpperCase()}${sep}${rest}`);
        expect(lowerFirst(a, keyword.length)).toEqual(lowerFirst(b, keyword.length));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads any valid ID, however it is spaced, and catches any single mistyped digit', () => {
    fc.assert(
      fc.property(validId, fc.nat({ max: 9 }), fc.integer({ min: 1, max: 9 }), (id, position, delta) => {
        const spaced = `${id.slice(0, 3)} ${id.slice(3, 6)} ${id.slice(6)}`;
        expect(parseCitizenMessage(`CEK ${spaced}`)).toEqual({ type: 'status_query', ref: ok(id) });
        expect(parseCitizenMessage(`${id} tambahan`)).toEqual({ type: 'follow_up', ref: ok(id), text: 'tambahan' });
        const digit = (Number(id[position]) + delta) % 10;
        const typo = id.slice(0, position) + String(digit) + id.slice(position + 1);
        const c = parseCitizenMessage(`CEK ${typo}`);
        expect(c.type).toBe('status_query');
        // A changed first digit may become 0, which is no longer ID-shaped: 'format' rather than 'check_digit'.
        expect(refOf(c)).toEqual({ ok: false, reason: typo.startsWith('0') ? 'format' : 'check_digit', input: typo });
      }),
      { numRuns: 500 },
    );
  });
});

describe('RAHASIA or ANONIM with a tracking ID alone', () => {
  const id = withCheckDigit('537046738'); // 5370467387, the Telegram corpus report
  it('asks for that report to be kept confidential or anonymous', () => {
    expect(parseCitizenMessage(`RAHASIA ${id}`)).toEqual({ type: 'set_privacy', ref: ok(id), privacy: 'rahasia' });
    expect(parseCitizenMessage(`anonim ${id}`)).toEqual({ type: 'set_privacy', ref: ok(id), privacy: 'anonim' });
  });
  it('stays a report when more is written, or the number is not a valid ID', () => {
    expect(parseCitizenMessage(`RAHASIA ${id} kepala desa minta jatah`)).toMatchObject({ type: 'new_report', privacy: 'rahasia' });
    expect(parseCitizenMessage(`RAHASIA ${id.slice(0, 9)}${(Number(id[9]) + 1) % 10}`)).toMatchObject({ type: 'new_report' });
    expect(parseCitizenMessage(`LAPOR ${id}`)).toMatchObject({ type: 'new_report', privacy: 'public' });
  });
});
