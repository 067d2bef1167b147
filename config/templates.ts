/**
 * What the citizen reads, per notification and language. Bahasa Indonesia is the default; English is
 * there for whoever asks for it. Every text must fit three GSM-7 SMS segments (459 characters) with
 * the longest values its placeholders can take — test/core/notifications.test.ts checks it — and use
 * only characters of the GSM 03.38 basic table, so one SMS segment is not silently cut to 70.
 *
 * Placeholders: {trackingId} {status} {agency} {reason} {answer} {link}.
 */
export const TEMPLATES = {
  received: {
    id: 'LAPOR! Laporan Anda telah diterima dengan nomor {trackingId}. Simpan nomor ini. Laporan akan diverifikasi dalam 3 hari kerja. Cek status: kirim CEK {trackingId}.',
    en: 'LAPOR! Your report was received with number {trackingId}. Keep this number. It will be verified within 3 working days. Check status: send CEK {trackingId}.',
  },
  needs_info: {
    id: 'LAPOR! Laporan {trackingId} perlu informasi tambahan: {reason} Balas dengan: {trackingId} <keterangan>.',
    en: 'LAPOR! Report {trackingId} needs more information: {reason} Reply with: {trackingId} <details>.',
  },
  forwarded: {
    id: 'LAPOR! Laporan {trackingId} telah diteruskan ke {agency} untuk ditindaklanjuti.',
    en: 'LAPOR! Report {trackingId} has been forwarded to {agency} for follow-up.',
  },
  answered: {
    id: 'LAPOR! {agency} menanggapi laporan {trackingId}: {answer} Selengkapnya: {link} Puas? Kirim PUAS {trackingId} atau TIDAK PUAS {trackingId} <alasan>.',
    en: 'LAPOR! {agency} answered report {trackingId}: {answer} More: {link} Satisfied? Send PUAS {trackingId} or TIDAK PUAS {trackingId} <reason>.',
  },
  closed: {
    id: 'LAPOR! Laporan {trackingId} telah selesai. Belum tuntas? Kirim TIDAK PUAS {trackingId} <alasan>. Terima kasih telah menggunakan LAPOR!',
    en: 'LAPOR! Report {trackingId} is closed. Not resolved? Send TIDAK PUAS {trackingId} <reason>. Thank you for using LAPOR!',
  },
  not_processable: {
    id: 'LAPOR! Maaf, laporan {trackingId} tidak dapat diproses: {reason}',
    en: 'LAPOR! Sorry, report {trackingId} cannot be processed: {reason}',
  },
  status: {
    id: 'LAPOR! Status laporan {trackingId}: {status}.',
    en: 'LAPOR! Status of report {trackingId}: {status}.',
  },
  follow_up_added: {
    id: 'LAPOR! Tambahan informasi untuk laporan {trackingId} telah diterima.',
    en: 'LAPOR! The additional information for report {trackingId} was received.',
  },
  satisfaction_recorded: {
    id: 'LAPOR! Terima kasih, penilaian Anda untuk laporan {trackingId} telah dicatat.',
    en: 'LAPOR! Thank you, your rating of report {trackingId} was recorded.',
  },
  nothing_to_rate: {
    id: 'LAPOR! Laporan {trackingId} belum ditanggapi, jadi belum dapat dinilai. Anda akan dikabari saat ada tanggapan.',
    en: 'LAPOR! Report {trackingId} has not been answered yet, so it cannot be rated. You will be told when it is answered.',
  },
  unknown_id: {
    id: 'LAPOR! Nomor laporan {trackingId} tidak ditemukan, atau bukan laporan dari nomor ini. Periksa kembali nomornya.',
    en: 'LAPOR! Report number {trackingId} was not found, or was not sent from this number. Please check the number.',
  },
  mistyped_id: {
    id: 'LAPOR! Nomor laporan {trackingId} tidak valid, mungkin salah ketik. Periksa kembali 10 angka nomor laporan Anda.',
    en: 'LAPOR! Report number {trackingId} is not valid, maybe a typo. Please check the 10 digits of your report number.',
  },
  privacy_changed: {
    id: 'LAPOR! Laporan {trackingId} sekarang {status}.',
    en: 'LAPOR! Report {trackingId} is now {status}.',
  },
  help: {
    id: 'LAPOR! 1708: kirim keluhan Anda langsung, atau LAPOR <isi>. RAHASIA <isi> agar laporan tidak dipublikasikan, ANONIM <isi> agar identitas disembunyikan. CEK <nomor> untuk status. <nomor> <isi> untuk menambah keterangan.',
    en: 'LAPOR! 1708: send your complaint as is, or LAPOR <text>. RAHASIA <text> keeps the report private, ANONIM <text> hides your identity. CEK <number> for status. <number> <text> to add details.',
  },
  empty: {
    id: 'LAPOR! Pesan Anda kosong. Tulis keluhan Anda: apa, di mana, kapan. Kirim BANTUAN untuk petunjuk.',
    en: 'LAPOR! Your message is empty. Write your complaint: what, where, when. Send HELP for instructions.',
  },
} as const satisfies Record<string, { id: string; en: string }>;

export type NotificationKind = keyof typeof TEMPLATES;

/** The longest value each placeholder may take once rendered (render() truncates to these). */
export const PLACEHOLDER_LIMITS = { trackingId: 10, status: 40, agency: 60, reason: 160, answer: 160, link: 60 } as const;
