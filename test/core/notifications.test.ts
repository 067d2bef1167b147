import { describe, expect, it } from 'vitest';
import { PLACEHOLDER_LIMITS, TEMPLATES, type NotificationKind } from '../../config/templates.ts';
import { renderNotification } from '../../src/core/notifications.ts';

// The GSM 03.38 basic table (one septet each); the extension table costs two.
const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENSION = new Set('^{}\\[~]|€');
const septets = (text: string) => [...text].reduce((n, ch) => n + (GSM_BASIC.has(ch) ? 1 : GSM_EXTENSION.has(ch) ? 2 : Infinity), 0);
const THREE_SEGMENTS = 3 * 153;

const longest = Object.fromEntries(Object.entries(PLACEHOLDER_LIMITS).map(([k, n]) => [k, 'W'.repeat(n + 50)]));

describe('notification templates', () => {
  const kinds = Object.keys(TEMPLATES) as NotificationKind[];

  it.each(kinds)('%s fits three GSM-7 SMS segments in both languages with the longest values', (kind) => {
    for (const lang of ['id', 'en'] as const) {
      const text = renderNotification(kind, lang, longest);
      expect(septets(text), `${kind}/${lang}: ${text}`).toBeLessThanOrEqual(THREE_SEGMENTS);
    }
  });

  it('fills every placeholder and leaves none behind', () => {
    const text = renderNotification('needs_info', 'id', { trackingId: '5723181068', reason: 'Sebutkan lokasinya.' });
    expect(text).toContain('5723181068');
    expect(text).toContain('Sebutkan lokasinya.');
    for (const kind of kinds) expect(renderNotification(kind, 'en', {})).not.toMatch(/\{\w+\}/);
  });

  it('cuts an over-long value with a GSM-7 full stop, not an ellipsis', () => {
    const text = renderNotification('not_processable', 'id', { trackingId: '5723181068', reason: 'x'.repeat(500) });
    expect(text).toContain(`${'x'.repeat(PLACEHOLDER_LIMITS.reason - 1)}.`);
    expect(text).not.toContain('…');
  });
});
