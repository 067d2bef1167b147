// How long a post is for X, and how to cut one to fit. X does not count UTF-16 units or code points: it
// weighs them, per twitter-text's configuration v3 (config/v3.json in twitter/twitter-text), which is
//   maxWeightedTweetLength 280, scale 100, defaultWeight 200, emojiParsingEnabled, transformedURLLength 23,
//   ranges of weight 100: U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F, U+2032–U+2037.
// In X's units (weight / scale): a code point in those ranges counts 1 (Latin, Indonesian, most punctuation),
// any other code point 2 (CJK, "…" U+2026, lone surrogates), an emoji sequence 2 however many code points it
// has (ZWJ families, skin tones, flags, keycaps), and a URL 23 however long it is. Text is NFC-normalised first.
//
// X rejects a post that is too long, while a post a little shorter than it could be costs nothing, so where
// this module cannot know what X will do it counts high, never low: see `urlWeight`.

export const URL_WEIGHT = 23;

const MAX_WEIGHT = 280;
const ELLIPSIS = '…';

// [first, last] code point of each range weighing 1; everything else weighs 2.
const LIGHT_RANGES: readonly (readonly [number, number])[] = [
  [0x0000, 0x10ff],
  [0x2000, 0x200d],
  [0x2010, 0x201f],
  [0x2032, 0x2037],
];

// © and ® sit in the light range but are emoji to twemoji, X's emoji parser, even without U+FE0F.
const EMOJI_IN_LIGHT_RANGE = new Set([0x00a9, 0x00ae]);

function codePointWeight(cp: number): number {
  if (EMOJI_IN_LIGHT_RANGE.has(cp)) return 2;
  return LIGHT_RANGES.some(([first, last]) => cp >= first && cp <= last) ? 1 : 2;
}

// Every RGI emoji sequence as one match, longest first. Built at run time because the `v` flag is ES2024
// syntax and the project compiles for ES2023; Node 20 supports it.
const EMOJI = new RegExp('\\p{RGI_Emoji}', 'gv');

// Anything that might be a URL to X: a scheme or the start of a run of label characters, dot-separated labels
// ending in a letters-only top label, then an optional port, path and query. Deliberately broad (a broad match
// only ever counts high). Path characters are the ASCII ones twitter-text accepts, so a URL here never runs
// past where X's ends. Each label is taken whole by a lookahead and a backreference (an atomic group), and a
// match only starts where a run starts, so "a.a.a.…" or a megabyte without spaces is scanned in linear time.
const URL_LIKE = new RegExp(
  String.raw`(?:https?:\/\/|(?<![\p{L}\p{N}\p{M}_.\-]))` +
    String.raw`(?:(?=(?<label>[\p{L}\p{N}\p{M}_\-]+))\k<label>\.)+(?=(?<tld>[\p{L}\p{M}]{2,}))\k<tld>` +
    String.raw`(?::[0-9]+)?(?:[\/?][A-Za-z0-9!*';:=+,.$\/%#\[\]\-_~&|@?]*)?`,
  'giu',
);
// twitter-text ends a path or query on one of these; punctuation after them is the sentence's.
const URL_TRAILING_PUNCTUATION = /[^A-Za-z0-9=_#/+\-&\p{L}\p{M}]+$/u;
// A URL X reads the same way in every version of twitter-text: an ASCII host (scheme optional), port, path.
const PLAIN_URL = /^(https?:\/\/)?((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+([A-Za-z]{2,}))(?::[0-9]+)?(?:[/?]|$)/i;
// twitter-text only starts a URL after none of these; one without a scheme not after these either.
const NOT_BEFORE_URL = /[A-Za-z0-9@＠$#＃\u202a-\u202e]/;
const NOT_BEFORE_BARE_URL = /[-_./]/;
// Top-level domains every version of twitter-text knows. A URL under another one may or may not count 23.
const KNOWN_TLDS = new Set([
  'com', 'net', 'org', 'info', 'biz', 'edu', 'gov', 'mil', 'int', 'app', 'dev', 'io', 'ai', 'me', 'co', 'tv',
  'id', 'my', 'sg', 'au', 'jp', 'kr', 'cn', 'hk', 'tw', 'in', 'uk', 'us', 'de', 'fr', 'nl', 'eu', 'ly',
]);
// twitter-text drops longer URLs.
const MAX_URL_LENGTH = 4096;

/**
 * What X counts for a URL-like span. Exactly 23 only when X certainly reads it as one URL: an ASCII host under
 * a well-known top-level domain, a character before it that X accepts, and either a scheme or a host that no
 * version of twitter-text calls too short ("lapor.go.id" and "google.com" are URLs; whether "detik.id" is
 * depends on the version). Anything else ("Jl.Merdeka", "S.Pd", a t.co link, whose slug X cuts short) counts
 * the larger of 23 and its characters, which is at least what X counts either way it decides.
 */
function urlWeight(span: string, before: string | undefined): number {
  const m = PLAIN_URL.exec(span);
  const [, scheme, host = '', tld = ''] = m ?? [];
  const labels = host.split('.').length;
  const certain =
    m !== null &&
    KNOWN_TLDS.has(tld.toLowerCase()) &&
    span.length <= MAX_URL_LENGTH &&
    host.toLowerCase() !== 't.co' &&
    (before === undefined || !NOT_BEFORE_URL.test(before)) &&
    (scheme !== undefined || ((labels > 2 || tld.length > 2) && (before === undefined || !NOT_BEFORE_BARE_URL.test(before))));
  if (certain) return URL_WEIGHT;
  let own = 0;
  for (const ch of span) own += codePointWeight(ch.codePointAt(0) ?? 0);
  return Math.max(URL_WEIGHT, own);
}

/** One piece X weighs as a whole: a URL, an emoji sequence, or a single code point. Offsets in UTF-16 units. */
type Unit = { start: number; end: number; weight: number };

// Splits NFC text into units. URLs are found first and emoji starting inside one are ignored, as twitter-text
// does (it looks for a URL at each position before looking for an emoji).
function measure(nfc: string): Unit[] {
  const urls: Unit[] = [];
  for (const m of nfc.matchAll(URL_LIKE)) {
    const span = m[0].replace(URL_TRAILING_PUNCTUATION, '');
    const before = m.index > 0 ? String.fromCodePoint(nfc.codePointAt(m.index - 1) ?? 0) : undefined;
    urls.push({ start: m.index, end: m.index + span.length, weight: urlWeight(span, before) });
  }
  const emoji = [...nfc.matchAll(EMOJI)].map((m) => ({ start: m.index, end: m.index + m[0].length, weight: 2 }));

  const units: Unit[] = [];
  let u = 0;
  let e = 0;
  for (let i = 0; i < nfc.length; ) {
    while (urls[u] !== undefined && urls[u]!.start < i) u++;
    while (emoji[e] !== undefined && emoji[e]!.start < i) e++;
    const unit = urls[u]?.start === i ? urls[u] : emoji[e]?.start === i ? emoji[e] : undefined;
    if (unit) {
      units.push(unit);
      i = unit.end;
      continue;
    }
    // A lone surrogate is one unit weighing 2, as in twitter-text.
    const cp = nfc.codePointAt(i) ?? 0;
    const end = i + (cp > 0xffff ? 2 : 1);
    units.push({ start: i, end, weight: codePointWeight(cp) });
    i = end;
  }
  return units;
}

/** The length X gives `text`, in its units (at most 280 per post). Never less than X's own count. */
export function weightedLength(text: string): number {
  return measure(text.normalize('NFC')).reduce((sum, unit) => sum + unit.weight, 0);
}

// Half a surrogate pair cannot be posted (and is not text): it becomes U+FFFD, which weighs the same 2.
const wellFormed = (s: string): string => s.replace(/\p{Cs}/gu, '\ufffd');

export type FitOptions = {
  /** @defaultValue 280 */
  max?: number;
  /** Where to read the rest ("https://…/r/5950309441"): appended after the cut, counted as X counts it. */
  link?: string;
  /** Strings never cut in half, such as a tracking ID: the cut moves before them instead. */
  keep?: readonly string[];
};

/**
 * `text` when it fits in `max`; otherwise its longest start that fits together with "…" (which weighs 2) and,
 * when given, " " + link. The cut falls at the end of a word when that keeps at least half of the room, else
 * at a word boundary as Unicode defines it (CJK has no spaces), else between two characters; never inside a
 * surrogate pair, an emoji sequence, a URL, or a `keep` string. Half surrogate pairs become U+FFFD, and a
 * text that had to be cut comes back NFC-normalised (as X stores it anyway).
 * @throws RangeError when even "…" and the link do not fit in `max`.
 */
export function fitPost(text: string, options: FitOptions = {}): string {
  const max = options.max ?? MAX_WEIGHT;
  const whole = wellFormed(text);
  if (weightedLength(whole) <= max) return whole;

  const suffix = options.link ? `${ELLIPSIS} ${wellFormed(options.link)}` : ELLIPSIS;
  const budget = max - weightedLength(suffix);
  if (budget < 0) throw new RangeError(`fitPost: "${suffix}" alone weighs more than max ${max}`);

  const nfc = whole.normalize('NFC');
  for (const cut of cutPositions(nfc, budget, options.keep ?? [])) {
    const post = `${nfc.slice(0, cut).trimEnd()}${suffix}`;
    // The weights add up, but a cut could in theory join what X reads as one URL or emoji: measure the result.
    if (weightedLength(post) <= max) return post;
  }
  return suffix;
}

// Where the text may be cut, best first. Every position returned is between two units and two grapheme
// clusters, outside every `keep` string, and leaves at most `budget` before it (with something visible).
function cutPositions(nfc: string, budget: number, keep: readonly string[]): number[] {
  // Unit boundaries with the weight before them, up to the last one within budget.
  const weightBefore = new Map<number, number>();
  let total = 0;
  for (const unit of measure(nfc)) {
    if (total > budget) break;
    weightBefore.set(unit.start, total);
    total += unit.weight;
  }
  const limit = Math.max(0, ...weightBefore.keys());
  // A cut that keeps only spaces or invisible characters is no better than none.
  const firstVisible = nfc.search(/[\p{L}\p{N}\p{S}\p{P}]/u);

  const protectedSpans = keep
    .map((k) => wellFormed(k).normalize('NFC'))
    .filter((k) => k !== '')
    .flatMap((k) => {
      const spans: [number, number][] = [];
      for (let at = nfc.indexOf(k); at !== -1 && at < limit; at = nfc.indexOf(k, at + 1)) spans.push([at, at + k.length]);
      return spans;
    });

  // Boundaries depend on at most a few characters after them, so a generous slice past the limit gives the
  // same ones as the whole text without segmenting a megabyte.
  const head = nfc.slice(0, limit + 1024);
  const boundaries = (granularity: 'grapheme' | 'word'): Set<number> =>
    new Set([...new Intl.Segmenter('id', { granularity }).segment(head)].map((s) => s.index));
  const graphemes = boundaries('grapheme');

  const usable = (at: number): boolean =>
    at > 0 &&
    at <= limit &&
    graphemes.has(at) &&
    (weightBefore.get(at) ?? Infinity) <= budget &&
    firstVisible !== -1 &&
    at > firstVisible &&
    !protectedSpans.some(([start, end]) => start < at && at < end);
  const best = (positions: Iterable<number>): number[] => [...positions].filter(usable).sort((a, b) => b - a);

  const wordEnds = best([...graphemes].filter((at) => /\s/u.test(nfc[at] ?? '')));
  const wordBoundaries = best(boundaries('word'));
  const anywhere = best(graphemes);
  // A word end is the nicest cut, unless it throws away more than half the room (one long word, or CJK);
  // then a word boundary, then simply the longest start. The others follow as fallbacks.
  const keepsHalf = (cuts: number[]): boolean => cuts[0] !== undefined && (weightBefore.get(cuts[0]) ?? 0) * 2 >= budget;
  const preferred = [wordEnds, wordBoundaries].find(keepsHalf) ?? anywhere;
  return [...new Set([...preferred, ...wordEnds, ...wordBoundaries, ...anywhere])];
}
