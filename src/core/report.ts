/**
 * The report's lifecycle, as the agency dashboards of LAPOR! show it (DESIGN.md, "The report").
 * Pure data and functions: who may trigger a transition is the operator API's business.
 */

export const STATUSES = [
  'belum_terverifikasi',
  'terverifikasi',
  'terdisposisi',
  'sedang_diproses',
  'selesai',
  'tertunda',
  'bukan_wewenang',
  'arsip',
  'tidak_dapat_diproses',
] as const;
export type ReportStatus = (typeof STATUSES)[number];

export const KINDS = ['pengaduan', 'aspirasi', 'permintaan_informasi'] as const;
export type ReportKind = (typeof KINDS)[number];

export const WEIGHTS = ['ringan', 'sedang', 'berat'] as const;
export type ReportWeight = (typeof WEIGHTS)[number];

export type Colour = 'merah' | 'kuning' | 'hijau';

/** Legal next states. `tertunda` (waiting for the reporter) returns to where the work stood. */
const TRANSITIONS: Record<ReportStatus, readonly ReportStatus[]> = {
  belum_terverifikasi: ['terverifikasi', 'terdisposisi', 'tertunda', 'tidak_dapat_diproses', 'arsip'],
  terverifikasi: ['terdisposisi', 'tertunda', 'tidak_dapat_diproses', 'arsip'],
  terdisposisi: ['sedang_diproses', 'selesai', 'bukan_wewenang', 'tertunda', 'terdisposisi', 'arsip'],
  sedang_diproses: ['selesai', 'tertunda', 'bukan_wewenang', 'terdisposisi', 'arsip'],
  tertunda: ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses', 'tidak_dapat_diproses', 'arsip'],
  bukan_wewenang: ['terdisposisi', 'tidak_dapat_diproses', 'arsip'],
  // TIDAK PUAS reopens a closed report; an archived one stays archived.
  selesai: ['sedang_diproses', 'arsip'],
  tidak_dapat_diproses: ['belum_terverifikasi', 'arsip'],
  arsip: [],
};

export function canTransition(from: ReportStatus, to: ReportStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  readonly code = 'LAPOR_ILLEGAL_TRANSITION';
  constructor(
    readonly from: ReportStatus,
    readonly to: ReportStatus,
  ) {
    super(`a report in status ${from} cannot move to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function assertTransition(from: ReportStatus, to: ReportStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

/** merah = not handled yet, kuning = in progress, hijau = done and closed. */
export function colourOf(status: ReportStatus): Colour {
  switch (status) {
    case 'belum_terverifikasi':
    case 'terverifikasi':
    case 'terdisposisi':
    case 'bukan_wewenang':
      return 'merah';
    case 'sedang_diproses':
    case 'tertunda':
      return 'kuning';
    case 'selesai':
    case 'arsip':
    case 'tidak_dapat_diproses':
      return 'hijau';
  }
}

/** Human labels, as citizens and agencies know them. */
export const STATUS_LABELS: Record<ReportStatus, { id: string; en: string }> = {
  belum_terverifikasi: { id: 'belum terverifikasi', en: 'not yet verified' },
  terverifikasi: { id: 'terverifikasi', en: 'verified' },
  terdisposisi: { id: 'terdisposisi', en: 'forwarded' },
  sedang_diproses: { id: 'sedang diproses', en: 'in progress' },
  selesai: { id: 'selesai', en: 'closed' },
  tertunda: { id: 'tertunda', en: 'waiting for the reporter' },
  bukan_wewenang: { id: 'bukan wewenang', en: 'returned: not the agency’s authority' },
  arsip: { id: 'arsip', en: 'archived' },
  tidak_dapat_diproses: { id: 'tidak dapat diproses', en: 'cannot be processed' },
};

/** One line of the append-only event log: who, when, what, why. */
export interface ReportEvent {
  type: string;
  actor: string;
  at: Date;
  fromStatus?: ReportStatus;
  toStatus?: ReportStatus;
  reason?: string;
  data?: Record<string, unknown>;
}
