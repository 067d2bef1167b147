/**
 * The buttons a chat channel shows under our messages (Telegram's inline keyboard, WhatsApp's reply
 * buttons), and the words each stands for. Pressing one is writing those words, so the owner check,
 * the change and the confirmation are the keyword parser's path (src/core/keywords.ts). A button's
 * id fits both providers' limits (Telegram: 64 bytes of callback data; WhatsApp: 256 characters).
 */
export const BUTTONS = {
  rahasia: (id: string) => `p:r:${id}`,
  anonim: (id: string) => `p:a:${id}`,
  puas: (id: string) => `s:y:${id}`,
  tidakPuas: (id: string) => `s:n:${id}`,
} as const;

const BUTTON_WORDS: Record<string, string> = { 'p:r': 'RAHASIA', 'p:a': 'ANONIM', 's:y': 'PUAS', 's:n': 'TIDAK PUAS' };

/** The words a pressed button stands for, or undefined for a button that is not ours. */
export function buttonText(id: string | undefined): string | undefined {
  const match = /^(p:r|p:a|s:y|s:n):([1-9][0-9]{9})$/.exec(id ?? '');
  const words = match ? BUTTON_WORDS[match[1]!] : undefined;
  if (words) return `${words} ${match![2]}`;
  // The earlier LAPOR! bot's privacy buttons, still under the receipts it sent. `privasi:publik:<id>`
  // stays unknown: a button never makes a report less private.
  const legacy = /^privasi:(anonim|rahasia):([1-9][0-9]{9})$/.exec(id ?? '');
  return legacy ? `${legacy[1]!.toUpperCase()} ${legacy[2]}` : undefined;
}

/** The buttons under a notification, by its kind and the report's privacy; labels in the citizen's language. */
export function buttonsFor(kind: string | undefined, privacy: string, trackingId: string | undefined, lang: 'id' | 'en'): { id: string; title: string }[] {
  if (!trackingId) return [];
  const en = lang === 'en';
  if (kind === 'received' && privacy === 'public') {
    return [
      { id: BUTTONS.rahasia(trackingId), title: en ? 'Keep confidential' : 'Rahasiakan' },
      { id: BUTTONS.anonim(trackingId), title: en ? 'Stay anonymous' : 'Anonimkan' },
    ];
  }
  if (kind === 'answered') {
    return [
      { id: BUTTONS.puas(trackingId), title: en ? 'Satisfied' : 'PUAS' },
      { id: BUTTONS.tidakPuas(trackingId), title: en ? 'Not satisfied' : 'TIDAK PUAS' },
    ];
  }
  return [];
}
