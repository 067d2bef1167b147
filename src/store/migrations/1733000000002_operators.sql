-- Up Migration

-- What kind of body an agency is, for people reading lists (a ministry, a local government…).
ALTER TABLE agencies ADD COLUMN kind text NOT NULL DEFAULT 'lainnya'
  CHECK (kind IN ('kementerian', 'lembaga', 'pemda', 'bumn', 'polri', 'lainnya'));
ALTER TABLE agencies ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

-- An agency's own sub-bodies (a Pemda's dinas, a ministry's directorate). Slugs are unique across
-- agencies and units alike, so a slug alone names one body wherever it appears.
CREATE TABLE units (
  slug        text PRIMARY KEY CHECK (slug ~ '^[a-z0-9-]+$'),
  agency_slug text NOT NULL REFERENCES agencies (slug),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_agency ON units (agency_slug);

CREATE FUNCTION body_slug_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'units' AND EXISTS (SELECT 1 FROM agencies WHERE slug = NEW.slug)
     OR TG_TABLE_NAME = 'agencies' AND EXISTS (SELECT 1 FROM units WHERE slug = NEW.slug) THEN
    RAISE EXCEPTION 'slug % is taken', NEW.slug USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER units_slug_unique BEFORE INSERT OR UPDATE OF slug ON units
  FOR EACH ROW EXECUTE FUNCTION body_slug_unique();
CREATE TRIGGER agencies_slug_unique BEFORE INSERT OR UPDATE OF slug ON agencies
  FOR EACH ROW EXECUTE FUNCTION body_slug_unique();

-- The people who run LAPOR!. An agency admin belongs to an agency; a liaison officer (pejabat
-- penghubung) to a unit, and through it to the unit's agency (kept here too, for the queries).
CREATE TABLE users (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email         text NOT NULL UNIQUE CHECK (email = lower(email)),
  role          text NOT NULL CHECK (role IN ('super_admin', 'agency_admin', 'liaison', 'operator')),
  agency_slug   text REFERENCES agencies (slug),
  unit_slug     text REFERENCES units (slug),
  password_hash text NOT NULL,
  disabled_at   timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (CASE role
    WHEN 'agency_admin' THEN agency_slug IS NOT NULL AND unit_slug IS NULL
    WHEN 'liaison' THEN agency_slug IS NOT NULL AND unit_slug IS NOT NULL
    ELSE agency_slug IS NULL AND unit_slug IS NULL END)
);

-- Login tokens: only a hash of each is kept, so a copy of the table lets nobody in.
CREATE TABLE sessions (
  token_hash  text PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users (id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

-- The unit an agency admin assigned the report to, and the status a report in `tertunda` returns to.
ALTER TABLE reports ADD COLUMN unit_slug text REFERENCES units (slug);
ALTER TABLE reports ADD COLUMN resume_status text;
CREATE INDEX reports_agency_status ON reports (agency_slug, status);
CREATE INDEX reports_unit_status ON reports (unit_slug, status);
CREATE INDEX reports_received ON reports (received_at DESC, seq DESC);

-- Jobs to add once an operator's step has committed (notifications to the reporter): written in the
-- step's transaction, published after it, and published again by a sweep if the process died in
-- between. Job ids make a second publication harmless.
CREATE TABLE outbox (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  effects      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Which one-time data loads this database has had (the agencies of config/agencies.json…), so a
-- super admin's later changes are never overwritten by a restart.
CREATE TABLE seeds (
  name       text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE seeds, outbox, sessions, users;
ALTER TABLE reports DROP COLUMN resume_status, DROP COLUMN unit_slug;
DROP TABLE units;
DROP TRIGGER agencies_slug_unique ON agencies;
DROP FUNCTION body_slug_unique();
ALTER TABLE agencies DROP COLUMN created_at, DROP COLUMN kind;
