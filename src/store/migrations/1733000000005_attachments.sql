-- Up Migration

-- Files citizens attach to reports (a photo, a PDF). Uploaded first, claimed by the report that
-- names their token; the bytes are kept here, beside the report, so a backup of the database is a
-- backup of the case. Unclaimed uploads older than a day can be removed (nothing references them).
CREATE TABLE attachments (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token        text NOT NULL UNIQUE,
  report_seq   bigint REFERENCES reports (seq),
  filename     text NOT NULL,
  content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
  size         integer NOT NULL CHECK (size > 0),
  sha256       text NOT NULL,
  data         bytea NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_report ON attachments (report_seq) WHERE report_seq IS NOT NULL;

-- Down Migration
DROP TABLE attachments;
