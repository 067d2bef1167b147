// The one citizen-keyword parser shared by every channel (SMS 1708, Telegram, WhatsApp, X, email).
// DESIGN.md "Channels": free text or LAPOR files a report, CEK/STATUS asks for status, <id>/BALAS adds to a
// report, RAHASIA/ANONIM set privacy, PUAS/TIDAK PUAS answer a follow-up, INFO/BANTUAN explains.
//
// How it reads a message, in order:
//   1. no letter or digit at all            -> empty
//   2. tokenize the start of the message     (words, digit groups, @mentions; everything else is a "gap")
//   3. the first token(s) name a keyword?    -> that keyword's handler decides, or declines
//   4. the first token is a tracking ID?     -> follow-up (or status query when nothing follows)
//   5. otherwise, or when a handler declined -> a short status question naming one valid ID anywhere?
//                                               ("laporan saya 5950309441 gmn statusnya?") -> status query
//   6. otherwise                             -> the whole message is a new public report
// A handler declines when the keyword is really the first word of a sentence ("Cek ombak di pantai ...",
// "Bantuan PKH tidak cair ..."), so a complaint is never swallowed by a command. Spam is not decided here:
// it comes out as a report and the verification rules deal with it.
import { looksLikeTrackingId, parseTrackingId } from './tracking-id.ts';

export type Privacy = 'public' | 'anonim' | 'rahasia';
export type TrackingRef = { ok: true; id: string } | { ok: false; reason: 'format' | 'check_digit'; input: string };
export type CitizenCommand =
  | { type: 'new_report'; text: string; privacy: Privacy } // text has the keyword(s) stripped
  // `inferred`: read from a question in the text, no CEK keyword. Should no report have that ID, the
  // message is filed as a report after all: a complaint quoting a number that happens to pass the
  // check digit (1 in 10 do) must not be answered "unknown ID" and lost.
  | { type: 'status_query'; ref: TrackingRef; inferred?: true }
  // `completes`: the words a photo sent without any were waiting for: they become the report's text
  // (set by intake, never by the parser).
  | { type: 'follow_up'; ref: TrackingRef; text: string; completes?: true }
  // `text` is the optional comment after "PUAS <id>"; the corpus keeps it in the report's thread (s-028).
  | { type: 'satisfied'; ref: TrackingRef; text?: string }
  | { type: 'dissatisfied'; ref: TrackingRef; text: string }
  // "RAHASIA <id>" with nothing else: make an existing report confidential (a bot's button says it so).
  | { type: 'set_privacy'; ref: TrackingRef; privacy: 'anonim' | 'rahasia' }
  | { type: 'help'; topic?: string }
  | { type: 'empty' };

/** The keyword lists, one per command; each entry is a word or a phrase of words ("tidak puas"). */
export type KeywordLists = {
  report: readonly string[];
  rahasia: readonly string[];
  anonim: readonly string[];
  status: readonly string[];
  followUp: readonly string[];
  satisfied: readonly string[];
  dissatisfied: readonly string[];
  help: readonly string[];
};

export type KeywordOptions = KeywordLists & {
  /**
   * Ordinary words one typo away from a keyword, which must stay words ("Lapar ..." is not LAPOR).
   * @defaultValue ['lapar', 'repot', 'balai', 'bales']
   */
  notKeywords: readonly string[];
  /** Keywords at least this long also match with one typo (Damerau–Levenshtein distance 1). @defaultValue 5 */
  fuzzyMinLength: number;
  /**
   * A number this long right after CEK/BALAS/PUAS is an attempted tracking ID even when text follows;
   * a shorter one followed by text is the start of a sentence ("Cek 3 sekolah di ..."). @defaultValue 6
   */
  idMinDigits: number;
  /** INFO/BANTUAN followed by at most this many words is a help request with a topic; more is a report. @defaultValue 2 */
  helpTopicMaxWords: number;
  /** ... and by at most this many characters. @defaultValue 40 */
  helpTopicMaxLength: number;
  /**
   * Words or phrases that ask how a report is doing, anywhere in a message without a command keyword.
   * Together with exactly one valid tracking ID in a short message they make a status query (step 5 above).
   * Matched exactly (after NFKC and lower-casing), never with a typo: these are common words.
   */
  statusQuestion: readonly string[];
  /**
   * A status question has at most this many words and numbers (@mentions not counted); a longer message is a
   * complaint, even one that mentions an earlier report. Above 31 it acts as 31: only the start of a message
   * is read.
   * @defaultValue 25
   */
  statusQuestionMaxWords: number;
};

// Bahasa Indonesia first, English accepted. Short words get their usual variants spelled out because
// typo tolerance only applies from `fuzzyMinLength` letters on ("cek" one edit away is "cak", "kek", ...).
export const defaultKeywords: KeywordOptions = {
  report: ['lapor', 'aduan', 'report'],
  rahasia: ['rahasia', 'confidential', 'secret'],
  anonim: ['anonim', 'anonymous', 'anon'],
  status: ['cek', 'cekk', 'cck', 'status', 'stats', 'check', 'cek status', 'cek laporan', 'status laporan'],
  followUp: ['balas', 'blas', 'bls', 'reply'],
  satisfied: ['puas', 'satisfied'],
  dissatisfied: [
    'tidak puas', 'tdk puas', 'tak puas', 'gak puas', 'ga puas', 'nggak puas', 'enggak puas', 'kurang puas',
    'belum puas', 'blm puas', 'not satisfied', 'unsatisfied', 'dissatisfied',
    // Written without the space, as people do on a phone keypad.
    'tidakpuas', 'tdkpuas', 'gakpuas',
  ],
  // 'start' is Telegram's /start: a leading slash is just a gap for the tokenizer.
  help: ['info', 'bantuan', 'help', 'start'],
  notKeywords: ['lapar', 'repot', 'balai', 'bales'],
  fuzzyMinLength: 5,
  idMinDigits: 6,
  helpTopicMaxWords: 2,
  helpTopicMaxLength: 40,
  // Informal spellings included ("gmn", "blm ada tanggapan"), since there is no typo tolerance here.
  // "kabar" also covers "blm ada kabar"; "sampai mana" covers "sdh sampai mana".
  statusQuestion: [
    'status', 'statusnya', 'kabar', 'kabarnya', 'perkembangan', 'perkembangannya', 'progres', 'progresnya',
    'progress', 'progressnya', 'tindak lanjut', 'tindak lanjutnya', 'tindaklanjut', 'sampai mana', 'sampai dimana',
    'sampai di mana', 'sejauh mana', 'gimana', 'gmn', 'gmna', 'bagaimana', 'bgmn', 'kapan', 'kpn',
    'belum ada tanggapan', 'blm ada tanggapan', 'belum ditanggapi', 'blm ditanggapi', 'belum ada respon',
    'blm ada respon', 'any news', 'any update', 'when',
  ],
  // 25 words holds a polite question with context ("Selamat siang Bapak/Ibu, saya mau menanyakan laporan saya
  // nomor ... yang sudah 3 minggu belum ada kabar, bagaimana statusnya? Terima kasih." has 23; the X corpus
  // question 13). Length alone does not tell a complaint (the SMS corpus reports have 18 to 73 words): the ID and
  // the question word do, and the limit keeps a long complaint that cites an earlier report a report.
  statusQuestionMaxWords: 25,
};

// DESIGN.md "The report": tracking IDs have at most 10 digits. Digit groups are joined up to this many.
const ID_MAX_DIGITS = 10;
// Keywords, an ID and a help topic all sit at the start, so only that much is tokenized: a multi-megabyte
// email body costs no more than a short SMS. The report text itself is always sliced from the full original.
const SCAN_MAX_CHARS = 600;
const SCAN_MAX_TOKENS = 32;

// ---------------------------------------------------------------------------------------------------------
// Tokenizer

type Token = {
  kind: 'word' | 'number' | 'mention';
  /** NFKC-normalised and lower-cased, for matching ("ＣＥＫ" -> "cek"). */
  value: string;
  /** The normalised characters between the previous token (or the start) and this one. */
  gap: string;
  /** Offsets into the ORIGINAL text, so a stripped keyword leaves the citizen's own characters untouched. */
  start: number;
  end: number;
};

type NormalisedChar = { ch: string; start: number; end: number };

// Each base character is normalised together with its combining marks (e + U+0301 -> é) and remembers
// where it came from. In a `u` regex `[^]` also matches a lone surrogate, so no input can break this.
// Plain ASCII (most SMS) is its own NFKC form, one character per cluster, so it skips the regex and
// the normalisation: they were most of the parser's CPU (bench:smpp profile, 2026-12-07).
const ASCII = /^[\x00-\x7f]*$/;
const CLUSTER = /[^]\p{M}*/gu;
/** The normalised start of a text: the ASCII text itself (character k came from offset k), or each character with its origin. */
type Chars = string | NormalisedChar[];
function normaliseStart(original: string): Chars {
  const head = original.slice(0, SCAN_MAX_CHARS);
  if (ASCII.test(head)) return head;
  const chars: NormalisedChar[] = [];
  for (const m of original.matchAll(CLUSTER)) {
    if (chars.length >= SCAN_MAX_CHARS) break;
    const start = m.index;
    const end = start + m[0].length;
    for (const ch of m[0].normalize('NFKC')) chars.push({ ch, start, end });
  }
  return chars;
}
const charAt = (chars: Chars, k: number): string | undefined => (typeof chars === 'string' ? chars[k] : chars[k]?.ch);
const startOf = (chars: Chars, k: number): number => (typeof chars === 'string' ? k : chars[k]!.start);
const endOf = (chars: Chars, k: number): number => (typeof chars === 'string' ? k + 1 : chars[k]!.end);

const LETTER = /[\p{L}\p{M}]/u;
const HANDLE_CHAR = /[\p{L}\p{N}_]/u;
const isAsciiLetter = (ch: string): boolean => (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
const isLetter = (ch: string | undefined): boolean => ch !== undefined && (isAsciiLetter(ch) || (ch > '\x7f' && LETTER.test(ch)));
const isDigit = (ch: string | undefined): boolean => ch !== undefined && ch >= '0' && ch <= '9';
const isHandleChar = (ch: string | undefined): boolean =>
  ch !== undefined && (isAsciiLetter(ch) || isDigit(ch) || ch === '_' || (ch > '\x7f' && HANDLE_CHAR.test(ch)));

function tokenize(original: string): Token[] {
  const chars = normaliseStart(original);
  const tokens: Token[] = [];
  let gap = '';
  let k = 0;
  while (k < chars.length && tokens.length < SCAN_MAX_TOKENS) {
    const from = k;
    let kind: Token['kind'];
    const ch = charAt(chars, k)!;
    if (ch === '@' && isHandleChar(charAt(chars, k + 1))) {
      // "@LAPOR1708" is an X mention or a Telegram "/cek@bot" suffix, never the keyword LAPOR.
      kind = 'mention';
      k += 1;
      while (isHandleChar(charAt(chars, k))) k += 1;
    } else if (isDigit(ch)) {
      // "572-318-1068" and "572.318.1068" are one number; a lone dash or dot between digits is a separator.
      kind = 'number';
      for (let c: string | undefined = ch; isDigit(c) || ((c === '-' || c === '.') && isDigit(charAt(chars, k + 1))); c = charAt(chars, k)) k += 1;
    } else if (isLetter(ch)) {
      // Letters and digits split apart, so "cek1443792415" is the keyword then the ID.
      kind = 'word';
      while (isLetter(charAt(chars, k))) k += 1;
    } else {
      gap += ch;
      k += 1;
      continue;
    }
    let text = '';
    for (let j = from; j < k; j++) text += charAt(chars, j);
    tokens.push({ kind, value: text.toLowerCase(), gap, start: startOf(chars, from), end: endOf(chars, k - 1) });
    gap = '';
  }
  return tokens;
}

// "C E K 3802516155": letters typed with spaces between them are joined, but only when the result is
// exactly a keyword, so an abbreviation spelled out ("S D N 2 ...") stays as it was.
function joinSpacedLetters(tokens: Token[], from: number, keywords: CompiledKeywords): Token[] {
  let n = from;
  while (tokens[n]?.kind === 'word' && tokens[n]?.value.length === 1 && (n === from || /^\s+$/u.test(tokens[n]?.gap ?? ''))) n += 1;
  const first = tokens[from];
  const last = tokens[n - 1];
  if (n - from < 2 || first === undefined || last === undefined) return tokens;
  const joined = tokens.slice(from, n).map((t) => t.value).join('');
  if (!keywords.exactWords.has(joined)) return tokens;
  const merged: Token = { kind: 'word', value: joined, gap: first.gap, start: first.start, end: last.end };
  return [...tokens.slice(0, from), merged, ...tokens.slice(n)];
}

// ---------------------------------------------------------------------------------------------------------
// Keyword matching

type KeywordKind = keyof KeywordLists;
// Table order breaks ties between equally long, equally exact matches.
const KINDS: readonly KeywordKind[] = ['dissatisfied', 'satisfied', 'status', 'followUp', 'help', 'rahasia', 'anonim', 'report'];

type CompiledKeywords = {
  options: KeywordOptions;
  phrases: readonly { kind: KeywordKind; words: readonly string[] }[];
  exactWords: ReadonlySet<string>;
  notKeywords: ReadonlySet<string>;
  statusQuestions: readonly (readonly string[])[];
  /** Each keyword word's length in code points (the fuzzy match's minimum length counts them). */
  codePoints: ReadonlyMap<string, number>;
};

const matchWords = (s: string): string[] => s.normalize('NFKC').toLowerCase().split(/\s+/u).filter((w) => w !== '');

const compiledCache = new WeakMap<KeywordOptions, CompiledKeywords>();

function compile(options: KeywordOptions): CompiledKeywords {
  const cached = compiledCache.get(options);
  if (cached) return cached;
  const phrases = KINDS.flatMap((kind) => options[kind].map((p) => ({ kind, words: matchWords(p) })).filter((p) => p.words.length > 0));
  const compiled: CompiledKeywords = {
    options,
    phrases,
    exactWords: new Set(phrases.flatMap((p) => p.words)),
    notKeywords: new Set(options.notKeywords.flatMap(matchWords)),
    statusQuestions: options.statusQuestion.map(matchWords).filter((words) => words.length > 0),
    codePoints: new Map(phrases.flatMap((p) => p.words).map((w) => [w, Array.from(w).length])),
  };
  compiledCache.set(options, compiled);
  return compiled;
}

// Whether two words are at most one edit apart in optimal-string-alignment distance (Damerau–Levenshtein
// where a transposition costs 1: LPAOR -> LAPOR), counted in code points. Only "at most 1" matters, so
// one pass finds the first difference and checks the rest: no table, no allocation for plain text (the
// table it replaces was a tenth of the SMS adapter's CPU in the bench:smpp profile).
const ASTRAL = /[\uD800-\uDFFF]/; // code units, not code points: finds surrogate pairs
function withinOneEdit(a: string, b: string): boolean {
  const s: ArrayLike<string> = ASTRAL.test(a) ? Array.from(a) : a;
  const t: ArrayLike<string> = ASTRAL.test(b) ? Array.from(b) : b;
  if (Math.abs(s.length - t.length) > 1) return false;
  const [long, short] = s.length >= t.length ? [s, t] : [t, s];
  let i = 0;
  while (i < short.length && long[i] === short[i]) i++;
  if (i === short.length) return true; // equal, or one extra character at the end
  if (long.length !== short.length) return sameFrom(long, short, i + 1, i); // one character inserted
  if (sameFrom(long, short, i + 1, i + 1)) return true; // one character replaced
  return long[i] === short[i + 1] && long[i + 1] === short[i] && sameFrom(long, short, i + 2, i + 2); // two swapped
}

/** Whether `long` from x on equals `short` from y on, to the end of both. */
function sameFrom(long: ArrayLike<string>, short: ArrayLike<string>, x: number, y: number): boolean {
  for (; x < long.length; x++, y++) if (long[x] !== short[y]) return false;
  return y === short.length;
}

function wordMatch(token: string, keyword: string, k: CompiledKeywords): 'exact' | 'typo' | undefined {
  if (token === keyword) return 'exact';
  if ((k.codePoints.get(keyword) ?? 0) < k.options.fuzzyMinLength || k.notKeywords.has(token)) return undefined;
  return withinOneEdit(token, keyword) ? 'typo' : undefined;
}

type KeywordMatch = { kind: KeywordKind; next: number; end: number };

// The longest phrase wins ("tidak puas" over nothing), then an exact spelling over a typo.
function findKeyword(tokens: readonly Token[], at: number, k: CompiledKeywords): KeywordMatch | undefined {
  let best: { kind: KeywordKind; length: number; exact: boolean } | undefined;
  for (const phrase of k.phrases) {
    let exact = true;
    let fits = true;
    for (let n = 0; n < phrase.words.length && fits; n++) {
      const token = tokens[at + n];
      const match = token?.kind === 'word' ? wordMatch(token.value, phrase.words[n]!, k) : undefined;
      if (match === 'typo') exact = false;
      fits = match !== undefined;
    }
    if (!fits) continue;
    const length = phrase.words.length;
    if (!best || length > best.length || (length === best.length && exact && !best.exact)) best = { kind: phrase.kind, length, exact };
  }
  if (!best) return undefined;
  let next = at + best.length;
  // Telegram addresses commands in groups as "/cek@lapor1708_bot": the glued @bot belongs to the keyword.
  if (tokens[next]?.kind === 'mention' && tokens[next]?.gap === '') next += 1;
  return { kind: best.kind, next, end: tokens[next - 1]?.end ?? 0 };
}

// ---------------------------------------------------------------------------------------------------------
// Text and ID helpers

// Punctuation right after a keyword ("Lapor, ...", "CEK: ...", "*LAPOR* ...") is not part of the message, but
// an opening quote or bracket, a #hashtag or an @mention is.
function isSeparator(ch: string): boolean {
  return /[\s\p{Cc}\p{Cf}\p{P}]/u.test(ch) && !/[\p{Ps}\p{Pi}"'@#]/u.test(ch);
}

function restAfter(original: string, from: number): string {
  let i = from;
  for (const ch of original.slice(from)) {
    if (!isSeparator(ch)) break;
    i += ch.length;
  }
  return original.slice(i).trim();
}

// Nothing to file or to add: no letter and no digit (whitespace, punctuation, emoji, control characters).
const hasContent = (s: string): boolean => /[\p{L}\p{N}]/u.test(s);

type IdCandidate = { value: string; digits: number; next: number; end: number };

// "572 318 1068": digit groups separated only by spaces (or stray dashes/dots) are joined while they fit in
// ID_MAX_DIGITS, so "BALAS 5723181068 2 foto" keeps the "2" in the text. `value` is the NFKC form, so
// fullwidth digits reach parseTrackingId as ASCII.
function readId(tokens: readonly Token[], at: number): IdCandidate | undefined {
  const first = tokens[at];
  if (first?.kind !== 'number') return undefined;
  const countDigits = (t: Token): number => t.value.replace(/[^0-9]/g, '').length;
  const parts = [first];
  let digits = countDigits(first);
  for (let next = tokens[at + parts.length]; next?.kind === 'number' && /^[\s.-]+$/u.test(next.gap); next = tokens[at + parts.length]) {
    if (digits + countDigits(next) > ID_MAX_DIGITS) break;
    parts.push(next);
    digits += countDigits(next);
  }
  const last = parts[parts.length - 1] ?? first;
  return { value: parts.map((t) => t.value).join(' '), digits, next: at + parts.length, end: last.end };
}

// ---------------------------------------------------------------------------------------------------------
// Handlers: one per keyword kind. `undefined` means "not a command after all": the message is a report.

type HandlerContext = { original: string; tokens: readonly Token[]; at: number; match: KeywordMatch; keywords: CompiledKeywords };
type Handler = (ctx: HandlerContext) => CitizenCommand | undefined;

// CEK, BALAS, PUAS and TIDAK PUAS take an ID. Alone, the keyword is still the command (the corpus expects
// a bare "CEK" to be a status query, so the reply can ask for the ID); followed by words without an ID,
// it is the first word of a sentence. A 10-digit ID with a wrong check digit stays the command, with
// ref.ok false, so the reply can say "mistyped" instead of "not found".
function withRef(ctx: HandlerContext, build: (ref: TrackingRef, text: string) => CitizenCommand): CitizenCommand | undefined {
  const id = readId(ctx.tokens, ctx.match.next);
  if (!id) return hasContent(restAfter(ctx.original, ctx.match.end)) ? undefined : build(parseTrackingId(''), '');
  const text = restAfter(ctx.original, id.end);
  if (id.digits < ctx.keywords.options.idMinDigits && hasContent(text)) return undefined;
  return build(parseTrackingId(id.value), text);
}

const PRIVACY_OF: Partial<Record<KeywordKind, Privacy>> = { report: 'public', anonim: 'anonim', rahasia: 'rahasia' };
const STRICTNESS: Record<Privacy, number> = { public: 0, anonim: 1, rahasia: 2 };

// LAPOR / ADUAN / RAHASIA / ANONIM in any order and number ("LAPOR RAHASIA ..."): all are stripped, and
// when both privacy words appear the stricter one (rahasia) wins.
const fileReport: Handler = ({ original, tokens, at, keywords }) => {
  let privacy: Privacy = 'public';
  let end = 0;
  for (let m = findKeyword(tokens, at, keywords); m; m = findKeyword(tokens, m.next, keywords)) {
    const p = PRIVACY_OF[m.kind];
    if (p === undefined) break;
    if (STRICTNESS[p] > STRICTNESS[privacy]) privacy = p;
    end = m.end;
  }
  const text = restAfter(original, end);
  // "RAHASIA 5370467387" names a report rather than describing one: it asks for that report to be kept
  // confidential (or anonymous). Only a valid ID, alone, reads so; anything more is a report.
  const named = text.trim();
  if (privacy !== 'public' && looksLikeTrackingId(named)) {
    const ref = parseTrackingId(named);
    if (ref.ok) return { type: 'set_privacy', ref, privacy };
  }
  // "LAPOR" with nothing after it: nothing to file (corpus s-035); the reply explains how to write one.
  return hasContent(text) ? { type: 'new_report', text, privacy } : { type: 'empty' };
};

// "INFO" alone, or with a short topic ("BANTUAN cek"), asks for help; "Info jalan rusak di ..." is a report.
const answerHelp: Handler = ({ original, tokens, match, keywords }) => {
  const topic = restAfter(original, match.end);
  if (!hasContent(topic)) return { type: 'help' };
  const words = tokens.length - match.next;
  const { helpTopicMaxWords, helpTopicMaxLength } = keywords.options;
  return words <= helpTopicMaxWords && topic.length <= helpTopicMaxLength ? { type: 'help', topic } : undefined;
};

const handlers: Record<KeywordKind, Handler> = {
  report: fileReport,
  rahasia: fileReport,
  anonim: fileReport,
  status: (ctx) => withRef(ctx, (ref) => ({ type: 'status_query', ref })),
  followUp: (ctx) => withRef(ctx, (ref, text) => ({ type: 'follow_up', ref, text })),
  satisfied: (ctx) => withRef(ctx, (ref, text) => (text === '' ? { type: 'satisfied', ref } : { type: 'satisfied', ref, text })),
  dissatisfied: (ctx) => withRef(ctx, (ref, text) => ({ type: 'dissatisfied', ref, text })),
  help: answerHelp,
};

// "5723181068 Tambahan: ..." adds to that report. Only something shaped like a full tracking ID counts, so
// "2 pengendara ..." or a phone number stays a report. An ID alone asks for its status: there is nothing to add.
function leadingId(original: string, tokens: readonly Token[], at: number): CitizenCommand | undefined {
  const id = readId(tokens, at);
  if (!id || !looksLikeTrackingId(id.value)) return undefined;
  const ref = parseTrackingId(id.value);
  const text = restAfter(original, id.end);
  return hasContent(text) ? { type: 'follow_up', ref, text } : { type: 'status_query', ref };
}

// "min, laporan saya no 5950309441 udh 3 minggu blm ada kabar, gmn statusnya?" asks for the status of
// 5950309441 though no CEK starts it. It takes all three: a short message (a complaint that mentions an earlier
// report is long, and stays a report), exactly one valid ID (two leave us guessing which one; a wrong check
// digit is likelier an account or phone number than a mistyped ID, so it never turns a complaint into a query),
// and a question word. Only full-length IDs count, as in `leadingId`: a 6-digit amount passes Damm 1 time in 10.
function statusQuestion(original: string, tokens: readonly Token[], from: number, k: CompiledKeywords): CitizenCommand | undefined {
  const { statusQuestionMaxWords } = k.options;
  const last = tokens[tokens.length - 1];
  // The tokenizer stops after SCAN_MAX_CHARS / SCAN_MAX_TOKENS: anything left after its last token means the
  // message is longer than what was read, so not short.
  if (last === undefined || hasContent(original.slice(last.end))) return undefined;
  if (tokens.slice(from).filter((t) => t.kind !== 'mention').length > statusQuestionMaxWords) return undefined;

  const asks = k.statusQuestions.some((words) =>
    tokens.some((_, i) => i >= from && words.every((word, n) => tokens[i + n]?.kind === 'word' && tokens[i + n]?.value === word)),
  );
  if (!asks) return undefined;

  // The same ID written twice is still one report.
  const ids = new Set<string>();
  for (let i = from; i < tokens.length; ) {
    const id = readId(tokens, i);
    if (!id) {
      i += 1;
      continue;
    }
    const ref = parseTrackingId(id.value);
    if (ref.ok && looksLikeTrackingId(id.value)) ids.add(ref.id);
    i = id.next;
  }
  const [only] = ids;
  return ids.size === 1 && only !== undefined ? { type: 'status_query', ref: { ok: true, id: only }, inferred: true } : undefined;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Reads a citizen's message, from any channel, as a command. Never throws. Reports keep the citizen's own
 * characters (not the NFKC form), minus the keywords and the punctuation right after them.
 * Pass `{ ...defaultKeywords, report: [...defaultKeywords.report, 'adukan'] }` to extend a list.
 */
export function parseCitizenMessage(text: string, options: KeywordOptions = defaultKeywords): CitizenCommand {
  if (!hasContent(text)) return { type: 'empty' };
  const keywords = compile(options);
  let tokens = tokenize(text);
  // Leading mentions ("@LAPOR1708 CEK ...") address us; the command comes after them.
  let at = 0;
  while (tokens[at]?.kind === 'mention') at += 1;
  tokens = joinSpacedLetters(tokens, at, keywords);

  const match = findKeyword(tokens, at, keywords);
  const command = match ? handlers[match.kind]({ original: text, tokens, at, match, keywords }) : leadingId(text, tokens, at);
  return command ?? statusQuestion(text, tokens, at, keywords) ?? { type: 'new_report', text: text.trim(), privacy: 'public' };
}
