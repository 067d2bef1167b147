// Automatic verification of a new report: small pure rules whose verdicts help the human verifier.
// No I/O and no clock reads: the verify worker gathers the sender's recent reports and passes them in,
// and "now" is the message's own receivedAt, so the same input always gives the same answer.
import type { RulesConfig } from '../../config/rules.ts';

export type Weight = 'ringan' | 'sedang' | 'berat';
export type ReportKind = 'pengaduan' | 'aspirasi' | 'permintaan_informasi';
export type Verdict = 'accept' | 'needs_info' | 'reject' | 'flag';

// `recentFromSender` holds the sender's earlier reports and must NOT include the message being verified:
// the rate limit counts that one itself, and it would otherwise be its own duplicate.
export interface RuleInput { text: string; receivedAt: Date; recentFromSender: ReadonlyArray<{ trackingId: string; text: string; receivedAt: Date }> }
// reason: English, for operators, never containing personal data from the text.
// citizenReason: Bahasa Indonesia, shown to the citizen where it helps.
export interface RuleOutcome { rule: string; verdict: Verdict; reason: string; citizenReason?: string; duplicateOf?: string }
export interface Suggestions { weight?: Weight; agency?: string; kind?: ReportKind; rahasia?: boolean }
/** `outcomes` lists only the rules that fired: a plain accept has an empty list. */
export interface Verification { verdict: Verdict; outcomes: RuleOutcome[]; suggestions: Suggestions }

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const SEVERITY: Record<Verdict, number> = { accept: 0, flag: 1, needs_info: 2, reject: 3 };

// ---- text matching -------------------------------------------------------------------------------

/**
 * Lower-cased words without punctuation; NFKC folds full-width letters and digits into plain ones.
 * The rules tokenize the same text several times (and the intake stage runs them once per report),
 * so the last text's tokens are kept: the same frozen array also lets `phraseHits` reuse its count.
 */
let lastTokenized: { text: string; tokens: readonly string[] } | undefined;
const NON_WORD = /[^\p{L}\p{M}\p{N}]+/u;
const REDUPLICATED = /^(\p{L}{2,})2$/u;
export function tokenize(text: string): readonly string[] {
  if (lastTokenized?.text === text) return lastTokenized.tokens;
  const tokens: string[] = [];
  for (const t of text.normalize('NFKC').toLowerCase().split(NON_WORD)) {
    if (t.length === 0) continue;
    // SMS slang writes reduplication with a digit ("anak2" for "anak-anak"): keep the base word.
    tokens.push(t.endsWith('2') ? t.replace(REDUPLICATED, '$1') : t);
  }
  lastTokenized = { text, tokens: Object.freeze(tokens) };
  return lastTokenized.tokens;
}

// Common Indonesian (and Javanese -e/-ne) affixes, so a list entry "tilang" also finds "ditilang".
const PREFIXES = new Set(['', 'di', 'ke', 'se', 'ber', 'ter', 'pe', 'per', 'pen', 'pem', 'peng', 'me', 'mem', 'men', 'meng']);
const SUFFIXES = new Set(['', 'nya', 'an', 'kan', 'i', 'lah', 'kah', 'pun', 'e', 'ne']);

/**
 * The words a token can stand for: itself, and itself without a known prefix and/or suffix when
 * what is left has four letters or more (affixed short words — "kk", "rs", "air" — hit too much by
 * accident). Computed once per distinct token: a Set lookup then replaces scanning every phrase of
 * the keyword tables with string searches, which was most of the intake stage's CPU (bench:smpp
 * profile, 2026-12-06).
 */
const basesCache = new Map<string, ReadonlySet<string>>();
function basesOf(token: string): ReadonlySet<string> {
  let bases = basesCache.get(token);
  if (bases) return bases;
  const found = new Set([token]);
  for (const prefix of PREFIXES) {
    if (!token.startsWith(prefix)) continue;
    for (const suffix of SUFFIXES) {
      const length = token.length - prefix.length - suffix.length;
      if (length >= 4 && token.endsWith(suffix)) found.add(token.slice(prefix.length, prefix.length + length));
    }
  }
  // Bounded: citizens' texts bring new tokens for ever.
  if (basesCache.size >= 100_000) basesCache.clear();
  basesCache.set(token, (bases = found));
  return bases;
}

const wordMatches = (token: string, word: string): boolean => basesOf(token).has(word);

/**
 * The words of a configured phrase, tokenized once: the keyword tables are tokenized per phrase, and
 * doing it again for every report was most of the rules' cost (bench:smpp profile). The phrases come
 * from the rules config, so the cache is bounded by it.
 */
const phraseWords = new Map<string, readonly string[]>();
function wordsOf(phrase: string): readonly string[] {
  let words = phraseWords.get(phrase);
  if (!words) phraseWords.set(phrase, (words = tokenize(phrase)));
  return words;
}

function phraseAt(tokens: readonly string[], words: readonly string[], i: number): boolean {
  if (!words.length) return false;
  for (let j = 0; j < words.length; j++) if (!wordMatches(tokens[i + j] ?? '', words[j]!)) return false;
  return true;
}

/**
 * Every phrase of the lists asked about so far (the rules config's keyword tables), indexed by its
 * first word. `generation` changes when a list is added, so hits counted before are counted again.
 */
const firstWords = new Map<string, Set<string>>();
const indexedLists = new WeakSet<readonly string[]>();
let generation = 0;
function indexList(phrases: readonly string[]): void {
  if (indexedLists.has(phrases)) return;
  for (const phrase of phrases) {
    const first = wordsOf(phrase)[0];
    if (first !== undefined) firstWords.set(first, (firstWords.get(first) ?? new Set()).add(phrase));
  }
  indexedLists.add(phrases);
  generation++;
}

/**
 * Occurrences of every indexed phrase among the tokens, counted once per text: at each position only
 * the phrases whose first word the token can stand for are tried.
 */
const hitsOfText = new WeakMap<readonly string[], { generation: number; hits: Map<string, number> }>();
function phraseHits(tokens: readonly string[], phrases: readonly string[]): Map<string, number> {
  indexList(phrases);
  const cached = hitsOfText.get(tokens);
  if (cached?.generation === generation) return cached.hits;
  const hits = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) {
    for (const base of basesOf(tokens[i]!)) {
      for (const phrase of firstWords.get(base) ?? []) {
        const words = wordsOf(phrase);
        if (i + words.length <= tokens.length && phraseAt(tokens, words, i)) hits.set(phrase, (hits.get(phrase) ?? 0) + 1);
      }
    }
  }
  hitsOfText.set(tokens, { generation, hits });
  return hits;
}

/**
 * Blanks out the phrases (keeping a gap, so the words around them don't join into a new phrase). With
 * none of them in the text, the same array comes back, so the phrase counts made for it are reused.
 */
function withoutPhrases(tokens: readonly string[], phrases: readonly string[]): readonly string[] {
  let out: string[] | undefined;
  for (const words of phrases.map(wordsOf)) {
    for (let i = 0; i + words.length <= (out ?? tokens).length; i++) {
      if (!phraseAt(out ?? tokens, words, i)) continue;
      out ??= [...tokens];
      out.splice(i, words.length, '');
    }
  }
  return out ?? tokens;
}

function matching(tokens: readonly string[], phrases: readonly string[]): string[] {
  const hits = phraseHits(tokens, phrases);
  return phrases.filter((p) => hits.has(p));
}

/** How often each phrase appears in a list (a list may name one twice), computed once per list. */
const multiplicities = new WeakMap<readonly string[], ReadonlyMap<string, number>>();
function multiplicityOf(phrases: readonly string[]): ReadonlyMap<string, number> {
  let counts = multiplicities.get(phrases);
  if (!counts) {
    const built = new Map<string, number>();
    for (const p of phrases) built.set(p, (built.get(p) ?? 0) + 1);
    multiplicities.set(phrases, (counts = built));
  }
  return counts;
}

/**
 * Each occurrence of a phrase is worth its number of words (longer = more specific). Summed over the
 * text's hits (a few) rather than over the list's phrases (hundreds for the agencies).
 */
function totalScore(tokens: readonly string[], phrases: readonly string[]): number {
  const hits = phraseHits(tokens, phrases);
  const inList = multiplicityOf(phrases);
  let score = 0;
  for (const [phrase, n] of hits) score += n * (inList.get(phrase) ?? 0) * wordsOf(phrase).length;
  return score;
}

/** Highest-scoring entry; on a tie the earlier entry wins, so config order is the tie-break. */
function bestMatch<E extends { keywords: readonly string[] }>(tokens: readonly string[], entries: readonly E[]): E | undefined {
  let [best, top]: [E | undefined, number] = [undefined, 0];
  for (const entry of entries) {
    const score = totalScore(tokens, entry.keywords);
    if (score > top) [best, top] = [entry, score];
  }
  return best;
}

/** Jaccard similarity of two word sets; empty texts are similar to nothing. */
export function similarity(a: string, b: string): number {
  const x = new Set(tokenize(a));
  const y = new Set(tokenize(b));
  if (x.size === 0 || y.size === 0) return 0;
  let common = 0;
  for (const t of x) if (y.has(t)) common++;
  return common / (x.size + y.size - common);
}

// Half-open window: an earlier report exactly `windowMs` old is outside it. Reports received after this
// message (the worker ran late) are ignored: they can't make this one excessive or a copy of them.
function inWindow(earlier: Date, now: Date, windowMs: number): boolean {
  const age = now.getTime() - earlier.getTime();
  return age >= 0 && age < windowMs;
}

// ---- rules ---------------------------------------------------------------------------------------

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

export function tooShort(input: RuleInput, config: RulesConfig): RuleOutcome | null {
  const c = config.tooShort;
  if (!c.enabled) return null;
  // Letters and digits only, so emoji, punctuation and whitespace can't pad a message past the minimum.
  let chars = 0;
  for (const ch of input.text.normalize('NFKC')) {
    const ascii = ch.length === 1 && ch < '\x80';
    if (ascii ? (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') : LETTER_OR_DIGIT.test(ch)) chars++;
  }
  const words = tokenize(input.text).length;
  if (chars >= c.minChars && words >= c.minWords) return null;
  return {
    rule: 'tooShort', verdict: 'needs_info',
    reason: `Too short to act on: ${chars} letters/digits, ${words} words (minimum ${c.minChars} and ${c.minWords})`,
    citizenReason: 'Laporan Anda terlalu singkat. Mohon lengkapi: apa masalahnya, di mana lokasinya, dan kapan terjadinya.',
  };
}

export function spam(input: RuleInput, config: RulesConfig): RuleOutcome | null {
  const c = config.spam;
  if (!c.enabled) return null;
  const tokens = tokenize(input.text);
  const hits = matching(tokens, c.phrases);
  if (hits.length === 0 || hits.length < c.minMatches) return null;
  const list = hits.map((h) => `"${h}"`).join(', ');
  // No citizenReason: answering a spammer only confirms the number is read.
  if (matching(tokens, c.reportedScamWords).length > 0) {
    return { rule: 'spam', verdict: 'flag', reason: `Quotes spam phrases (${list}) but reads like a report about a scam: check by hand` };
  }
  return { rule: 'spam', verdict: 'reject', reason: `Spam phrases: ${list}` };
}

export function rateLimit(input: RuleInput, config: RulesConfig): RuleOutcome | null {
  const c = config.rateLimit;
  if (!c.enabled) return null;
  const windowMs = c.windowMinutes * MINUTE_MS;
  const count = input.recentFromSender.filter((r) => inWindow(r.receivedAt, input.receivedAt, windowMs)).length + 1;
  if (count <= c.maxReports) return null;
  return {
    rule: 'rateLimit', verdict: 'reject',
    reason: `${count} reports from this sender within ${c.windowMinutes} min, limit ${c.maxReports}`,
    citizenReason: `Anda telah mengirim ${count} laporan dalam ${c.windowMinutes} menit terakhir (batas ${c.maxReports}). Silakan coba lagi nanti.`,
  };
}

export function duplicate(input: RuleInput, config: RulesConfig): RuleOutcome | null {
  const c = config.duplicate;
  if (!c.enabled) return null;
  let best: { trackingId: string; score: number; at: number } | undefined;
  for (const r of input.recentFromSender) {
    if (!inWindow(r.receivedAt, input.receivedAt, c.windowDays * DAY_MS)) continue;
    const score = similarity(input.text, r.text);
    if (score === 0 || score < c.threshold) continue;
    // Closest match first, then the most recent one, so the answer doesn't depend on the list's order.
    const at = r.receivedAt.getTime();
    if (!best || score > best.score || (score === best.score && at > best.at)) best = { trackingId: r.trackingId, score, at };
  }
  if (!best) return null;
  const id = best.trackingId;
  const minutes = Math.round((input.receivedAt.getTime() - best.at) / MINUTE_MS);
  return {
    rule: 'duplicate', verdict: 'reject', duplicateOf: id,
    reason: `Same as report ${id} from this sender ${minutes} min earlier (similarity ${best.score.toFixed(2)}, threshold ${c.threshold})`,
    citizenReason: `Laporan ini sama dengan laporan Anda sebelumnya nomor ${id}. Untuk menambah keterangan, kirim: ${id} <keterangan>. Untuk cek status, kirim: CEK ${id}.`,
  };
}

type PersonalDataConfig = RulesConfig['personalData'];

// NIK = province(2) regency(2) district(2) DDMMYY (women: day + 40) serial(4).
function plausibleNik(d: string, c: PersonalDataConfig['nik']): boolean {
  const part = (from: number, len = 2) => Number(d.slice(from, from + len));
  const day = part(6) > 40 ? part(6) - 40 : part(6);
  return part(0) >= c.provinceMin && part(0) <= c.provinceMax && part(2) > 0 && part(4) > 0
    && day >= 1 && day <= 31 && part(8) >= 1 && part(8) <= 12 && part(12, 4) > 0;
}

/** Counts only: the matched numbers never leave this function, so no caller can echo them. */
export function countPersonalData(text: string, c: PersonalDataConfig): { nik: number; phone: number } {
  let rest = text.normalize('NFKC');
  let nik = 0;
  let phone = 0;
  if (c.nik.enabled) {
    // Blank out NIKs first so their digits can't also be read as part of a phone number.
    rest = rest.replace(/(?<!\d)\d{16}(?!\d)/g, (m) => (plausibleNik(m, c.nik) ? (nik++, ' ') : m));
  }
  if (c.phone.enabled && c.phone.minDigits >= 3 && c.phone.maxDigits >= c.phone.minDigits) {
    // National form 08…: "0" + "8" + the rest, optionally written +62 8… / 62 8…, single spaces, dots or dashes.
    const rest8 = `{${c.phone.minDigits - 2},${c.phone.maxDigits - 2}}`;
    phone = [...rest.matchAll(new RegExp(`(?<![\\d+])(?:\\+62|62|0)[ .-]?8(?:[ .-]?\\d)${rest8}(?!\\d)`, 'g'))].length;
  }
  return { nik, phone };
}

export function personalData(input: RuleInput, config: RulesConfig): RuleOutcome | null {
  const c = config.personalData;
  if (!c.enabled) return null;
  const { nik, phone } = countPersonalData(input.text, c);
  if (nik + phone === 0) return null;
  return {
    rule: 'personalData', verdict: 'flag',
    reason: `Text contains personal data (${nik} NIK, ${phone} mobile number): suggest rahasia, never quote it`,
    citizenReason: 'Laporan Anda memuat data pribadi (NIK atau nomor HP). Kami sarankan laporan ini dirahasiakan agar tidak tampil untuk publik.',
  };
}

/** Suggestions only, never a verdict: the verifier decides weight, agency and kind. */
export function classify(input: RuleInput, config: RulesConfig): Suggestions {
  const c = config.classifier;
  if (!c.enabled) return {};
  const tokens = withoutPhrases(tokenize(input.text), c.ignorePhrases);
  const kind = bestMatch(tokens, c.kind.kinds)?.kind ?? c.kind.default;
  const agency = bestMatch(tokens, c.agencies)?.slug;
  // Keyword tiers first (berat before ringan), then what the agency's remit or the kind implies.
  const weight = c.weight.tiers.find((t) => totalScore(tokens, t.keywords) > 0)?.weight
    ?? (agency === undefined ? undefined : c.weight.byAgency[agency]) ?? c.weight.byKind[kind] ?? c.weight.default;
  return agency === undefined ? { weight, kind } : { weight, agency, kind };
}

export function runRules(input: RuleInput, config: RulesConfig): Verification {
  const spamOutcome = spam(input, config);
  // A spammer's own phone number is not a reporter's data to protect.
  const privacy = spamOutcome?.verdict === 'reject' ? null : personalData(input, config);
  const outcomes = [tooShort(input, config), spamOutcome, rateLimit(input, config), duplicate(input, config), privacy]
    .filter((o): o is RuleOutcome => o !== null);
  const verdict = outcomes.reduce<Verdict>((v, o) => (SEVERITY[o.verdict] > SEVERITY[v] ? o.verdict : v), 'accept');
  // Nothing is filed from a rejected message, so classifying it would only mislead.
  const suggestions: Suggestions = verdict === 'reject' ? {} : classify(input, config);
  if (privacy) suggestions.rahasia = true;
  return { verdict, outcomes, suggestions };
}
