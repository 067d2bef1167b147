import { PLACEHOLDER_LIMITS, TEMPLATES, type NotificationKind } from '../../config/templates.ts';

export type Lang = 'id' | 'en';
export type TemplateVars = Partial<Record<keyof typeof PLACEHOLDER_LIMITS, string>>;

/**
 * Fills a template. Each value is cut to its placeholder's limit so the whole text stays within
 * what the templates were sized for (three SMS segments); a missing value renders as '-'.
 */
export function renderNotification(kind: NotificationKind, lang: Lang, vars: TemplateVars): string {
  return TEMPLATES[kind][lang].replace(/\{(\w+)\}/g, (whole, name: string) => {
    if (!isPlaceholder(name)) return whole;
    const value = vars[name]?.trim() || '-';
    const limit = PLACEHOLDER_LIMITS[name];
    // '.' rather than '…': the ellipsis is not in the GSM-7 table and would force UCS-2.
    return value.length > limit ? `${value.slice(0, limit - 1)}.` : value;
  });
}

export function isNotificationKind(kind: string | null | undefined): kind is NotificationKind {
  return typeof kind === 'string' && Object.hasOwn(TEMPLATES, kind);
}

function isPlaceholder(name: string): name is keyof typeof PLACEHOLDER_LIMITS {
  return Object.hasOwn(PLACEHOLDER_LIMITS, name);
}

export type { NotificationKind };
