import type { CursorStore } from '../core/channel.ts';
import type { Db } from './db.ts';

/** The channel_cursors table: one JSON value per channel account (see migration 0010). */
export function createCursorStore(db: Db): CursorStore {
  return {
    async get(channel, account) {
      const { rows } = await db.query<{ cursor: unknown }>('SELECT cursor FROM channel_cursors WHERE channel = $1 AND account = $2', [channel, account]);
      return rows[0]?.cursor;
    },
    async set(channel, account, cursor) {
      await db.query(
        `INSERT INTO channel_cursors (channel, account, cursor) VALUES ($1, $2, $3)
         ON CONFLICT (channel, account) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`,
        [channel, account, JSON.stringify(cursor)],
      );
    },
  };
}
