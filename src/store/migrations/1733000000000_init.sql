-- Up Migration

-- Tracking IDs are a keyed permutation of this sequence (src/core/tracking-id.ts): the sequence
-- never repeats, so the IDs never collide.
CREATE SEQUENCE report_seq AS bigint MINVALUE 0 START 0;

CREATE TABLE agencies (
  slug        text PRIMARY KEY CHECK (slug ~ '^[a-z0-9-]+$'),
  name        text NOT NULL,
  parent_slug text REFERENCES agencies (slug)
);

-- Personal data of reporters, apart from the reports and sealed (AES-GCM) with a key from the
-- configuration. contact_hash is a keyed hash of the normalized address, for ownership checks.
CREATE TABLE reporters (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  contact_hash text,
  sealed       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reporters_contact_hash ON reporters (contact_hash);

CREATE TABLE reports (
  seq          bigint PRIMARY KEY,
  -- 10 digits as we issue them; 6-9 for reports imported from the earlier LAPOR! system.
  tracking_id  text NOT NULL UNIQUE CHECK (tracking_id ~ '^[1-9][0-9]{5,9}$'),
  channel      text NOT NULL,
  kind         text NOT NULL DEFAULT 'pengaduan'
               CHECK (kind IN ('pengaduan', 'aspirasi', 'permintaan_informasi')),
  weight       text CHECK (weight IN ('ringan', 'sedang', 'berat')),
  status       text NOT NULL DEFAULT 'belum_terverifikasi'
               CHECK (status IN ('belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses',
                                 'selesai', 'tertunda', 'bukan_wewenang', 'arsip', 'tidak_dapat_diproses')),
  anonim       boolean NOT NULL DEFAULT false,
  rahasia      boolean NOT NULL DEFAULT false,
  agency_slug  text REFERENCES agencies (slug),
  text         text NOT NULL,
  lang         text NOT NULL DEFAULT 'id' CHECK (lang IN ('id', 'en')),
  reporter_id  bigint REFERENCES reporters (id),
  -- Same keyed hash as reporters.contact_hash, of the address the report came from.
  contact_hash text,
  verification jsonb,
  received_at  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_contact_hash_received ON reports (contact_hash, received_at DESC);
CREATE INDEX reports_status ON reports (status);

-- Every inbound message the gateway accepted, once: the lasting dedup filter behind the Redis key
-- (a BullMQ job id stops deduplicating once the job is removed). A replayed job hits the primary key.
CREATE TABLE inbound_receipts (
  channel     text NOT NULL,
  external_id text NOT NULL,
  dedup_key   text NOT NULL,
  outcome     text NOT NULL,
  report_seq  bigint REFERENCES reports (seq),
  -- The jobs this message led to (notifications, verification), added after the commit. A job
  -- replayed after a crash re-adds them: job ids make that harmless (a small transactional outbox).
  effects     jsonb NOT NULL DEFAULT '[]',
  received_at timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, external_id)
);

-- The thread: every message in and out of a report, with its transport ids and delivery state.
-- Message text is sealed: it is the citizen's own words, and may name people.
CREATE TABLE messages (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  report_seq    bigint REFERENCES reports (seq),
  direction     text NOT NULL CHECK (direction IN ('in', 'out')),
  channel       text NOT NULL,
  account       text,
  external_id   text,
  -- For outbound: the notification's own key, so a replayed notify job never sends twice.
  notify_key    text UNIQUE,
  kind          text,
  sealed_text   text NOT NULL,
  status        text NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'stored', 'delivered', 'failed')),
  transport_id  text,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_report ON messages (report_seq, id);

-- Append-only: who, when, what, why. Updates and deletes are refused by the trigger below.
CREATE TABLE report_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  report_seq  bigint NOT NULL REFERENCES reports (seq),
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  type        text NOT NULL,
  from_status text,
  to_status   text,
  reason      text,
  data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX report_events_report ON report_events (report_seq, id);

CREATE FUNCTION report_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'report_events is append-only';
END $$;
CREATE TRIGGER report_events_append_only BEFORE UPDATE OR DELETE ON report_events
  FOR EACH ROW EXECUTE FUNCTION report_events_append_only();

INSERT INTO agencies (slug, name) VALUES
  ('pupr', 'Dinas Pekerjaan Umum dan Penataan Ruang'),
  ('dishub', 'Dinas Perhubungan'),
  ('disdik', 'Dinas Pendidikan'),
  ('dinkes', 'Dinas Kesehatan'),
  ('bpjs-kesehatan', 'BPJS Kesehatan'),
  ('dukcapil', 'Dinas Kependudukan dan Pencatatan Sipil'),
  ('kelurahan', 'Kelurahan'),
  ('pln', 'PT PLN (Persero)'),
  ('pdam', 'Perusahaan Daerah Air Minum'),
  ('polri', 'Kepolisian Negara Republik Indonesia'),
  ('inspektorat', 'Inspektorat Daerah'),
  ('atr-bpn', 'Kementerian ATR/BPN'),
  ('kemensos', 'Kementerian Sosial'),
  ('imigrasi', 'Direktorat Jenderal Imigrasi'),
  ('dlh', 'Dinas Lingkungan Hidup');

-- Down Migration
DROP TABLE report_events, messages, inbound_receipts, reports, reporters, agencies;
DROP FUNCTION report_events_append_only();
DROP SEQUENCE report_seq;
