import type { AgencySeed } from '../../config/agencies.ts';
import { withTransaction, type Db, type Tx } from './db.ts';

type Queryable = Db | Tx;

export interface Unit {
  slug: string;
  name: string;
}

export interface Agency {
  slug: string;
  name: string;
  kind: string;
  units: Unit[];
}

/**
 * Loads the sample agencies into a database that never had them; a database that had them keeps
 * whatever super admins made of them since. Safe to run from several processes at once.
 */
export async function seedAgencies(db: Db, agencies: readonly AgencySeed[]): Promise<boolean> {
  return withTransaction(db, async (tx) => {
    const { rowCount } = await tx.query(`INSERT INTO seeds (name) VALUES ('agencies') ON CONFLICT DO NOTHING`);
    if (!rowCount) return false;
    for (const agency of agencies) {
      await tx.query(
        `INSERT INTO agencies (slug, name, kind) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind`,
        [agency.slug, agency.name, agency.kind],
      );
      for (const unit of agency.units) {
        await tx.query(`INSERT INTO units (slug, agency_slug, name) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING`, [unit.slug, agency.slug, unit.name]);
      }
    }
    return true;
  });
}

export async function listAgencies(db: Queryable): Promise<Agency[]> {
  const { rows } = await db.query<Agency>(
    `SELECT a.slug, a.name, a.kind,
            COALESCE(json_agg(json_build_object('slug', u.slug, 'name', u.name) ORDER BY u.name) FILTER (WHERE u.slug IS NOT NULL), '[]') AS units
     FROM agencies a LEFT JOIN units u ON u.agency_slug = a.slug
     GROUP BY a.slug ORDER BY a.name`,
  );
  return rows;
}

export async function findAgency(db: Queryable, slug: string): Promise<Agency | undefined> {
  return (await listAgencies(db)).find((a) => a.slug === slug);
}

export async function findUnit(db: Queryable, slug: string): Promise<(Unit & { agencySlug: string }) | undefined> {
  const { rows } = await db.query<Unit & { agencySlug: string }>(`SELECT slug, name, agency_slug AS "agencySlug" FROM units WHERE slug = $1`, [slug]);
  return rows[0];
}

/** Creates an agency, or renames it; `false` when the slug is a unit's. */
export async function upsertAgency(db: Queryable, agency: { slug: string; name: string; kind: string }): Promise<'created' | 'updated' | 'taken'> {
  try {
    const { rows } = await db.query<{ inserted: boolean }>(
      `INSERT INTO agencies (slug, name, kind) VALUES ($1, $2, $3)
       ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind
       RETURNING (xmax = 0) AS inserted`,
      [agency.slug, agency.name, agency.kind],
    );
    return rows[0]!.inserted ? 'created' : 'updated';
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return 'taken';
    throw err;
  }
}

/** Creates a unit of an agency, or renames it; a unit never moves to another agency. */
export async function upsertUnit(db: Queryable, unit: { slug: string; agencySlug: string; name: string }): Promise<'created' | 'updated' | 'taken'> {
  try {
    const { rows } = await db.query<{ inserted: boolean }>(
      `INSERT INTO units (slug, agency_slug, name) VALUES ($1, $2, $3)
       ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name WHERE units.agency_slug = EXCLUDED.agency_slug
       RETURNING (xmax = 0) AS inserted`,
      [unit.slug, unit.agencySlug, unit.name],
    );
    if (!rows[0]) return 'taken';
    return rows[0].inserted ? 'created' : 'updated';
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return 'taken';
    throw err;
  }
}
