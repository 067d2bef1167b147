/**
 * A reporter's phone number as a citizen types it into a form, made E.164 (`+<country><number>`),
 * or refused with a reason. Indonesians write their numbers `0812…` (national, with the trunk 0),
 * `62812…` or `+62812…`, often grouped with spaces, dashes, dots or a parenthesised area code:
 * all of these become `+62812…`. Any other country's number must come with its `+`.
 *
 * E.164 allows at most 15 digits; no real number has fewer than 8 (a country code and the shortest
 * national numbers), so 8–15 digits, counted with the country code, are "plausible".
 */

export const PHONE_MIN_DIGITS = 8;
export const PHONE_MAX_DIGITS = 15;
/** Longest input accepted before normalizing: 15 digits with generous grouping. */
export const PHONE_MAX_INPUT_CHARS = 32;

export const PHONE_HINT = 'Write the number like 081234567890, 6281234567890 or +6281234567890: digits only, 8 to 15 of them.';

export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };

/** Separators people group digits with; nothing else but digits and a leading + is accepted. */
const SEPARATORS = /[\s().-]/g;

export function normalizePhone(input: string): PhoneResult {
  if (input.length > PHONE_MAX_INPUT_CHARS) return { ok: false, reason: `longer than ${PHONE_MAX_INPUT_CHARS} characters` };
  const compact = input.trim().replace(SEPARATORS, '');
  if (!/^\+?[0-9]+$/.test(compact)) return { ok: false, reason: 'a phone number has only digits (and a leading +)' };

  let e164: string;
  if (compact.startsWith('+')) e164 = compact;
  else if (compact.startsWith('62')) e164 = `+${compact}`;
  else if (compact.startsWith('0') && !compact.startsWith('00')) e164 = `+62${compact.slice(1)}`;
  else return { ok: false, reason: 'start the number with 0, 62 or +' };

  // A country code never starts with 0, and an Indonesian number is dialled without its trunk 0
  // after 62 (+62 0812… is a common mix-up of the two forms).
  if (e164.startsWith('+0')) return { ok: false, reason: 'a country code does not start with 0' };
  if (e164.startsWith('+620')) return { ok: false, reason: 'after 62, leave out the 0 of 08…' };
  const digits = e164.length - 1;
  if (digits < PHONE_MIN_DIGITS) return { ok: false, reason: `too short: ${digits} digits, at least ${PHONE_MIN_DIGITS}` };
  if (digits > PHONE_MAX_DIGITS) return { ok: false, reason: `too long: ${digits} digits, at most ${PHONE_MAX_DIGITS}` };
  return { ok: true, e164 };
}
