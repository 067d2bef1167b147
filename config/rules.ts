// Tunable data for the automatic verification rules (src/core/rules.ts).
//
// Everything an operator may want to change without a code review lives here: thresholds, windows and
// the word lists. Every field has a default so `RulesConfigSchema.parse({})` yields a working set, and a
// deployment overrides only what it needs (e.g. from a JSON file validated with this schema).
//
// Word lists are matched on whole words after lower-casing and stripping punctuation, so "bit.ly" is
// the two words "bit ly" and "e-KTP" is "e ktp". Entries of four or more letters also match with common
// Indonesian (and Javanese) affixes: "tilang" matches "ditilang", "polisi" matches "kepolisian",
// "jalan" matches "jalanan". Shorter entries ("kk", "rs", "air") match only exactly, because affixes on
// two- or three-letter words produce too many accidental hits. Don't list an affixed form next to its
// base word ("kelurahan" next to "lurah"): the text would score twice. A multi-word entry scores one point
// per word, so "lampu jalan" (dishub) outweighs the bare "jalan" (pupr) it contains.
import { z } from 'zod';

const words = (defaults: string[]) => z.array(z.string().min(1)).default(defaults);
const flag = (on: boolean) => z.boolean().default(on);
const count = (n: number) => z.number().int().min(0).default(n);

const WeightSchema = z.enum(['ringan', 'sedang', 'berat']);
const KindSchema = z.enum(['pengaduan', 'aspirasi', 'permintaan_informasi']);

const TooShortSchema = z.object({
  enabled: flag(true),
  // Letters and digits only: spaces, punctuation and emoji do not make a report usable.
  minChars: count(15),
  minWords: count(3),
});

const SpamSchema = z.object({
  enabled: flag(true),
  // Typical Indonesian SMS spam and scams. Kept to phrases a genuine complaint rarely uses on its own:
  // "judi online" or a bare "cair" are left out because citizens report gambling and unpaid aid.
  phrases: words([
    'pinjaman online cair', 'pinjol cair', 'dana tunai cair', 'tanpa jaminan', 'tanpa agunan', 'pinjaman cepat',
    'bunga rendah', 'slot gacor', 'situs gacor', 'maxwin',
    'deposit pulsa', 'bonus deposit', 'menang undian', 'undian berhadiah', 'gebyar undian', 'nomor anda terpilih',
    'anda terpilih', 'selamat anda', 'mendapat hadiah', 'mendapatkan hadiah', 'klaim hadiah', 'hadiah tunai',
    'pulsa gratis', 'kuota gratis', 'klik link', 'klik tautan', 'kesempatan terbatas', 'bit.ly', 's.id',
    'tinyurl', 'cutt.ly',
    // Promotional e-mail: a newsletter or an offer that reached the complaint mailbox.
    'unsubscribe', 'berhenti berlangganan', 'promo spesial', 'diskon hingga', 'penawaran terbatas', 'limited time offer',
  ]),
  // How many distinct phrases must match before the message is treated as spam.
  minMatches: count(1),
  // A citizen reporting a scam quotes the scam: when one of these words is present the message is flagged
  // for a human instead of rejected, so scam reports (a common case for polri) are not thrown away.
  reportedScamWords: words(['tipu', 'menipu', 'penipuan', 'modus', 'korban', 'dibobol', 'terkena']),
});

const RateLimitSchema = z.object({
  enabled: flag(true),
  // Reports per sender within the window, the message being verified included.
  maxReports: count(5),
  windowMinutes: z.number().positive().default(60),
});

const DuplicateSchema = z.object({
  enabled: flag(true),
  windowDays: z.number().positive().default(7),
  // Jaccard similarity of the two messages' word sets, 0..1.
  threshold: z.number().min(0).max(1).default(0.8),
});

const PersonalDataSchema = z.object({
  enabled: flag(true),
  // NIK: 16 digits = province (2) regency (2) district (2) DDMMYY (women: day + 40) serial (4).
  nik: z.object({ enabled: flag(true), provinceMin: count(11), provinceMax: count(94) }).prefault({}),
  // Indonesian mobile numbers, counted in national form (08…): +62 8… and 62 8… are rewritten to 08….
  phone: z.object({ enabled: flag(true), minDigits: count(10), maxDigits: count(13) }).prefault({}),
});

const AgencySchema = z.object({ slug: z.string().min(1), keywords: z.array(z.string().min(1)) });
const KindKeywordsSchema = z.object({ kind: KindSchema, keywords: z.array(z.string().min(1)) });

// The order of this list breaks ties: specific bodies come before general ones, so "kartu BPJS ditolak
// di RSUD" goes to bpjs-kesehatan rather than dinkes when both score the same.
const defaultAgencies: Array<z.input<typeof AgencySchema>> = [
  { slug: 'bpjs-kesehatan', keywords: ['bpjs', 'jkn', 'jaminan kesehatan nasional', 'kis', 'kartu indonesia sehat', 'iuran', 'faskes', 'rujukan', 'fornas', 'formularium', 'peserta bpjs'] },
  { slug: 'imigrasi', keywords: ['imigrasi', 'paspor', 'visa', 'kitas', 'izin tinggal', 'wna', 'orang asing', 'deportasi'] },
  { slug: 'pln', keywords: ['pln', 'listrik', 'padam', 'pemadaman', 'token listrik', 'meteran listrik', 'kwh', 'tiang listrik', 'gardu', 'trafo'] },
  { slug: 'pdam', keywords: ['pdam', 'pam', 'air bersih', 'air minum', 'air', 'pipa', 'meteran air', 'tirta', 'perumda air minum'] },
  { slug: 'atr-bpn', keywords: ['bpn', 'atr', 'tanah', 'sertifikat', 'sertipikat', 'ptsl', 'balik nama', 'hak milik', 'shm', 'pengukuran', 'mafia tanah', 'sengketa tanah'] },
  { slug: 'kemensos', keywords: ['bansos', 'bantuan sosial', 'pkh', 'bpnt', 'blt', 'dtks', 'kks', 'kartu sembako', 'sembako', 'kemensos', 'dinsos', 'dinas sosial', 'penerima bantuan', 'panti asuhan', 'panti sosial', 'panti jompo', 'rehabilitasi sosial', 'disabilitas', 'terlantar'] },
  { slug: 'polri', keywords: ['polisi', 'polsek', 'polres', 'polda', 'polri', 'tilang', 'satlantas', 'polantas', 'pos lantas', 'pencurian', 'curanmor', 'begal', 'jambret', 'maling', 'preman', 'premanisme', 'narkoba', 'skck', 'laporan polisi'] },
  { slug: 'inspektorat', keywords: ['inspektorat', 'dana desa', 'alokasi dana desa', 'apbdes', 'anggaran desa', 'kades', 'kepala desa', 'perangkat desa', 'penyelewengan', 'penyalahgunaan anggaran', 'fiktif', 'mark up', 'asn', 'pns'] },
  { slug: 'dukcapil', keywords: ['dukcapil', 'disdukcapil', 'capil', 'ktp', 'ektp', 'kk', 'kartu keluarga', 'akta', 'akte', 'akta kelahiran', 'akta kematian', 'kia', 'nik', 'surat pindah', 'pindah domisili', 'kependudukan', 'adminduk'] },
  { slug: 'dishub', keywords: ['dishub', 'dinas perhubungan', 'perhubungan', 'lampu jalan', 'penerangan jalan', 'pju', 'lampu lalu lintas', 'lampu merah', 'traffic light', 'lalu lintas', 'macet', 'parkir', 'juru parkir', 'jukir', 'terminal', 'angkot', 'angkutan umum', 'bus', 'halte', 'rambu', 'marka', 'zebra cross', 'penyeberangan', 'uji kir'] },
  { slug: 'dlh', keywords: ['dlh', 'lingkungan hidup', 'sampah', 'tps', 'tpa', 'limbah', 'cemar', 'polusi', 'bau', 'asap', 'kebersihan', 'pembakaran sampah'] },
  { slug: 'disdik', keywords: ['sekolah', 'kepala sekolah', 'sd', 'sdn', 'smp', 'smpn', 'sma', 'sman', 'smk', 'smkn', 'guru', 'siswa', 'murid', 'ppdb', 'zonasi', 'disdik', 'dinas pendidikan', 'pendidikan', 'ijazah', 'seragam', 'uang gedung', 'kip'] },
  { slug: 'dinkes', keywords: ['puskesmas', 'pustu', 'posyandu', 'rumah sakit', 'rs', 'rsu', 'rsud', 'klinik', 'dokter', 'perawat', 'bidan', 'igd', 'ugd', 'dinkes', 'dinas kesehatan', 'nakes', 'imunisasi', 'vaksin', 'demam berdarah', 'dbd', 'fogging', 'stunting', 'ambulans'] },
  // "dalan" is Javanese for road: reports arrive in regional languages too.
  { slug: 'pupr', keywords: ['pupr', 'pekerjaan umum', 'jalan', 'dalan', 'jalan rusak', 'lubang', 'aspal', 'jembatan', 'drainase', 'saluran', 'selokan', 'gorong gorong', 'got', 'irigasi', 'tanggul', 'trotoar', 'banjir', 'genangan', 'kontraktor', 'proyek'] },
  { slug: 'kelurahan', keywords: ['lurah', 'kecamatan', 'camat', 'sktm', 'surat keterangan', 'surat pengantar', 'kantor desa', 'balai desa'] },
];

const ClassifierSchema = z.object({
  enabled: flag(true),
  weight: z.object({
    default: WeightSchema.default('sedang'),
    // Checked in this order; the first tier with a match wins, so "berat" overrides "ringan".
    tiers: z.array(z.object({ weight: WeightSchema, keywords: z.array(z.string().min(1)) })).default([
      { weight: 'berat', keywords: [
        'korupsi', 'pungli', 'pungutan liar', 'suap', 'menyuap', 'sogok', 'menyogok', 'gratifikasi', 'pemerasan',
        'memeras', 'diperas', 'oknum', 'penyelewengan', 'penyalahgunaan', 'fiktif', 'meninggal', 'tewas',
        'korban jiwa', 'kekerasan', 'penganiayaan', 'dianiaya', 'pelecehan', 'pemerkosaan', 'ancaman', 'diancam',
        'intimidasi', 'keracunan', 'gizi buruk', 'kebakaran', 'longsor', 'perdagangan orang',
      ] },
      { weight: 'ringan', keywords: [
        'informasi', 'info', 'saran', 'usul', 'usulan', 'pertanyaan', 'lampu jalan', 'lampu mati', 'penerangan jalan',
        'pju', 'sampah', 'kebersihan', 'toilet', 'parkir liar', 'salah tulis', 'salah ketik', 'perbaikan data',
        'blangko', 'antrean', 'antre', 'antri',
      ] },
    ]),
    // Bodies whose whole remit is serious: misuse of public funds is never a light matter.
    byAgency: z.record(z.string(), WeightSchema).default({ inspektorat: 'berat' }),
    // Aspirations and information requests have nothing to redress, so they get the short clock.
    byKind: z.record(z.string(), WeightSchema).default({ aspirasi: 'ringan', permintaan_informasi: 'ringan' }),
  }).prefault({}),
  agencies: z.array(AgencySchema).default(defaultAgencies),
  // Phrases that contain a listed word without being about that body: "anak sekolah" are schoolchildren
  // (the people affected, e.g. by a broken bridge), "jalan kaki" is walking. Removed before scoring.
  ignorePhrases: words(['anak sekolah', 'anak anak sekolah', 'bocah sekolah', 'jam sekolah', 'pulang sekolah',
    'berangkat sekolah', 'jalan kaki', 'berjalan kaki']),
  kind: z.object({
    default: KindSchema.default('pengaduan'),
    // Highest score wins; ties go to the earlier entry.
    kinds: z.array(KindKeywordsSchema).default([
      { kind: 'permintaan_informasi', keywords: [
        'mohon info', 'minta info', 'mohon informasi', 'minta informasi', 'bagaimana cara', 'gimana cara', 'gmn cara',
        'bagaimana prosedur', 'apa syarat', 'apa saja syarat', 'syarat apa', 'syaratnya apa', 'berapa biaya',
        'berapa lama', 'apakah', 'ingin bertanya', 'mau tanya',
      ] },
      { kind: 'aspirasi', keywords: [
        'usul', 'usulan', 'saran', 'aspirasi', 'mohon dibangun', 'mohon dibuat', 'mohon dibuatkan', 'mohon diadakan',
        'mohon ditambah', 'agar dibangun', 'agar dibuat', 'sebaiknya', 'alangkah baiknya', 'harapan kami',
      ] },
    ]),
  }).prefault({}),
});

export const RulesConfigSchema = z.object({
  tooShort: TooShortSchema.prefault({}),
  spam: SpamSchema.prefault({}),
  rateLimit: RateLimitSchema.prefault({}),
  duplicate: DuplicateSchema.prefault({}),
  personalData: PersonalDataSchema.prefault({}),
  classifier: ClassifierSchema.prefault({}),
});

export type RulesConfig = z.infer<typeof RulesConfigSchema>;

export const defaultRules: RulesConfig = RulesConfigSchema.parse({});
