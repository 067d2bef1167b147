import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LuaScript } from '../../src/queue/redis.ts';

/**
 * Redis-backed reassembly of concatenated SMS, safe across processes (several adapters may hold
 * binds to the same SMSC, and an SMSC may redeliver a part on another bind).
 *
 * Layout, every key under the caller's prefix verbatim so a braced prefix (`{lapor}`) keeps a
 * group and the index in one Redis Cluster slot:
 * - `<prefix>:sms:concat:group:<hash>` — a hash per group: `key` (the caller's group key), `total`,
 *   `first` (ms), `received` (distinct parts with seq ≤ total), `complete` (ms, once whole), and per
 *   part `d:<seq>` (data) and `t:<seq>` (receivedAt).
 * - `<prefix>:sms:concat:open` — sorted set of group-hash keys scored by when the sweeper may take
 *   them: first-seen time at creation, completion time once complete, claim expiry once claimed.
 * - `<prefix>:sms:concat:released:<hash>` — the tombstone release() leaves for `tombstoneMs` (same
 *   `<hash>` as the group): `total`, and per released part `p:<seq>:<h>` → the group's `received`,
 *   `<h>` being the first 16 hex of SHA-1 of the part's data (computed in Lua: redis.sha1hex, so
 *   release and add hash the same bytes). It is the only key a released group leaves behind, and it
 *   expires on its own.
 *
 * Why tombstones: an SMSC redelivers a part whose deliver_sm_resp it never saw (the bind dropped
 * right after we stored and acknowledged it), possibly after the group completed and was released.
 * Without a trace of the released group such a copy would open a new group that later times out as
 * a one-part "incomplete" report — a duplicate of a message already reported. With it, add() knows
 * the copy. A part with the same group key but other data (the sender's 8-bit reference wrapped
 * around) is a new message and opens a new group as before. The trade-off: a new message under the
 * same key within `tombstoneMs` whose part is byte-identical, at the same seq, to a released one
 * (e.g. a templated text's shared tail) has that part taken for a duplicate — it needs the sender to
 * reuse the reference, i.e. 256 long messages to one destination within the window.
 *
 * Every change is one Lua script, so it is atomic; Redis replies only after the AOF write (fsync
 * `always` in the strict profile), which is what "add resolved ⇒ part stored" rests on. In Redis
 * Cluster a braced prefix keeps each script's keys (group, open set, tombstone) in one slot.
 */

export interface PartInput {
  /** Built by the caller (see concatGroupKey); hashed here, so its length and characters don't matter. */
  groupKey: string;
  seq: number;
  total: number;
  /** Opaque: decoded text, or base64 of the bytes. */
  data: string;
  receivedAt: string;
}

export interface StoredPart {
  seq: number;
  data: string;
  receivedAt: string;
}

export type AddResult =
  | { status: 'stored'; received: number; total: number }
  | { status: 'duplicate'; received: number; total: number }
  | { status: 'complete'; parts: StoredPart[] };

export interface ExpiredGroup {
  groupKey: string;
  total: number;
  parts: StoredPart[];
}

/** Safety-net TTL, in multiples of the timeout: long enough that the sweeper always comes first. */
const TTL_TIMEOUTS = 10;
/** How long a released group's tombstone lasts unless told otherwise: an SMSC's redelivery window. */
const DEFAULT_TOMBSTONE_MS = 60 * 60_000;
const DEFAULT_CLAIM_MS = 60_000;
const DEFAULT_LIMIT = 100;

/** Sets a key's TTL to at least `ttl` ms, never shortening one a longer claim has set. */
const EXTEND_LUA = `
local function extend(key, ttl)
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
end`;

/** The tombstone field of a part: its seq and the first 16 hex of SHA-1 of its data. */
const MARK_LUA = `
local function mark(seq, data)
  return 'p:' .. seq .. ':' .. string.sub(redis.sha1hex(data), 1, 16)
end`;

/**
 * KEYS: group hash, open set, tombstone. ARGV: groupKey, seq, total, data, receivedAt, nowMs, ttlMs.
 *
 * - A part matching a released one in the tombstone (same seq, same data hash) is a late
 *   redelivery: a duplicate, with the released group's counts, and nothing is written — neither a
 *   new group nor a TTL change. This is checked first, so it holds too while a new message under
 *   the same key (reference wrapped around) is open: the old text is not mixed into it.
 * - The group's total is the first part's; a later part announcing another total is still stored
 *   (its text must not be lost) but only seqs ≤ the group's total count towards completion. Parts
 *   beyond it are carried along in the parts returned.
 * - A part already present is a duplicate and changes nothing, even if its data differs (the first
 *   copy wins).
 * - Once complete, the group is closed: any further part is a duplicate until release() — and,
 *   for copies of its parts, for as long as its tombstone lives after that. The completion re-arms
 *   the sweeper's clock, so a caller that dies between 'complete' and release() has its message
 *   recovered by takeExpired a timeout later.
 */
const ADD_LUA = `${EXTEND_LUA}${MARK_LUA}
local group, open, tombstone = KEYS[1], KEYS[2], KEYS[3]
local seq, now, ttl = tonumber(ARGV[2]), ARGV[6], ARGV[7]
local released = redis.call('HGET', tombstone, mark(seq, ARGV[4]))
if released then
  return {'duplicate', tonumber(released), tonumber(redis.call('HGET', tombstone, 'total'))}
end
if redis.call('EXISTS', group) == 0 then
  redis.call('HSET', group, 'key', ARGV[1], 'total', ARGV[3], 'first', now, 'received', 0)
  redis.call('ZADD', open, now, group)
end
extend(group, ttl)
extend(open, ttl)
local total = tonumber(redis.call('HGET', group, 'total'))
local received = tonumber(redis.call('HGET', group, 'received'))
if redis.call('HEXISTS', group, 'complete') == 1 or redis.call('HSETNX', group, 'd:' .. seq, ARGV[4]) == 0 then
  return {'duplicate', received, total}
end
redis.call('HSET', group, 't:' .. seq, ARGV[5])
if seq > total then
  return {'stored', received, total}
end
received = redis.call('HINCRBY', group, 'received', 1)
if received < total then
  return {'stored', received, total}
end
redis.call('HSET', group, 'complete', now)
redis.call('ZADD', open, now, group)
return {'complete', received, total, redis.call('HGETALL', group)}
`;

/**
 * KEYS: group hash, open set. ARGV: cutoffMs, claimedScore, ttlMs.
 * Takes the group only if it is still due (another sweeper may have claimed it since the range
 * query), and pushes its score to the claim's end so nobody else takes it meanwhile.
 */
const CLAIM_LUA = `${EXTEND_LUA}
local group, open = KEYS[1], KEYS[2]
local score = redis.call('ZSCORE', open, group)
if not score or tonumber(score) > tonumber(ARGV[1]) then
  return false
end
if redis.call('EXISTS', group) == 0 then
  redis.call('ZREM', open, group)
  return false
end
redis.call('ZADD', open, ARGV[2], group)
extend(group, ARGV[3])
extend(open, ARGV[3])
return redis.call('HGETALL', group)
`;

/**
 * KEYS: group hash, open set, tombstone. ARGV: tombstoneMs.
 * Deletes the group and takes it out of the open set; if it existed and tombstoneMs > 0, records its
 * parts in the tombstone, in the same step, so a concurrent add() sees either the group or the
 * tombstone, never neither. Fields are added to a tombstone already there (an earlier message under
 * the same key, released within the window), never removed, and its TTL is reset to at least
 * tombstoneMs. Releasing a group that is gone (twice, or after its TTL) leaves the tombstone as is.
 */
const RELEASE_LUA = `${EXTEND_LUA}${MARK_LUA}
local group, open, tombstone = KEYS[1], KEYS[2], KEYS[3]
local ms = tonumber(ARGV[1])
local flat = redis.call('HGETALL', group)
if #flat > 0 and ms > 0 then
  local received, total = '0', '0'
  local marks = {}
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    if field == 'received' then
      received = value
    elseif field == 'total' then
      total = value
    elseif string.sub(field, 1, 2) == 'd:' then
      marks[#marks + 1] = mark(string.sub(field, 3), value)
    end
  end
  for _, field in ipairs(marks) do redis.call('HSET', tombstone, field, received) end
  redis.call('HSET', tombstone, 'total', total)
  extend(tombstone, ms)
end
redis.call('DEL', group)
redis.call('ZREM', open, group)
return 1
`;

const addScript = new LuaScript(ADD_LUA);
const claimScript = new LuaScript(CLAIM_LUA);
const releaseScript = new LuaScript(RELEASE_LUA);

export class Reassembler {
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly ttlMs: number;
  private readonly tombstoneMs: number;
  private readonly openKey: string;

  /**
   * `tombstoneMs`: how long release() remembers a group's parts so late redeliveries are known as
   * duplicates (see the file comment); should cover the SMSC's redelivery window — the adapter
   * passes its dedup window. Default 60 minutes; 0 leaves no tombstone.
   */
  constructor(
    private readonly redis: Redis | Cluster,
    options: { prefix: string; timeoutMs: number; tombstoneMs?: number },
  ) {
    if (!options.prefix) throw new Error('Reassembler needs a key prefix');
    if (!(options.timeoutMs > 0)) throw new Error(`Reassembler timeoutMs must be positive, got ${options.timeoutMs}`);
    const tombstoneMs = options.tombstoneMs ?? DEFAULT_TOMBSTONE_MS;
    if (!(tombstoneMs >= 0 && Number.isFinite(tombstoneMs))) {
      throw new Error(`Reassembler tombstoneMs must be a non-negative number, got ${tombstoneMs}`);
    }
    this.prefix = options.prefix;
    this.timeoutMs = options.timeoutMs;
    this.ttlMs = Math.ceil(options.timeoutMs * TTL_TIMEOUTS);
    this.tombstoneMs = Math.ceil(tombstoneMs);
    this.openKey = `${this.prefix}:sms:concat:open`;
  }

  async add(part: PartInput): Promise<AddResult> {
    const { seq, total } = part;
    // concat.ts has validated both; anything else here is a caller bug, not input to store.
    if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seq) || seq < 1 || seq > total) {
      throw new RangeError(`invalid concatenation part: seq ${seq} of ${total}`);
    }
    const { group, tombstone } = this.keysOf(part.groupKey);
    const reply = (await addScript.run(
      this.redis,
      [group, this.openKey, tombstone],
      [part.groupKey, seq, total, part.data, part.receivedAt, Date.now(), this.ttlMs],
    )) as [string, number, number, string[]?];
    const [status, received, groupTotal, fields] = reply;
    if (status === 'complete') return { status, parts: readGroup(fields ?? []).parts };
    if (status === 'stored' || status === 'duplicate') return { status, received, total: groupTotal };
    throw new Error(`unexpected reassembly reply ${String(status)}`);
  }

  /**
   * Removes the group (once its message is safely handed on: complete, or taken by the sweeper) and
   * leaves its tombstone for `tombstoneMs`, so that copies of its parts the SMSC redelivers later
   * are duplicates rather than the start of a new group that would time out as "incomplete".
   */
  async release(groupKey: string): Promise<void> {
    const { group, tombstone } = this.keysOf(groupKey);
    await releaseScript.run(this.redis, [group, this.openKey, tombstone], [this.tombstoneMs]);
  }

  async takeExpired(now: Date, options: { limit?: number; claimMs?: number } = {}): Promise<ExpiredGroup[]> {
    const limit = options.limit ?? DEFAULT_LIMIT;
    const claimMs = options.claimMs ?? DEFAULT_CLAIM_MS;
    const cutoff = now.getTime() - this.timeoutMs;
    // The claimed score becomes due again after claimMs, so a sweeper that dies after claiming
    // leaves the group to the next one rather than losing it.
    const claimedScore = now.getTime() + claimMs - this.timeoutMs;
    const due = await this.redis.zrangebyscore(this.openKey, '-inf', cutoff, 'LIMIT', 0, limit);
    const taken: ExpiredGroup[] = [];
    for (const key of due) {
      const fields = (await claimScript.run(this.redis, [key, this.openKey], [cutoff, claimedScore, Math.max(this.ttlMs, claimMs * 2)])) as
        | string[]
        | null;
      if (fields) taken.push(readGroup(fields));
    }
    return taken;
  }

  private keysOf(groupKey: string): { group: string; tombstone: string } {
    // Hashed so the key stays short and free of the caller's characters; 128 bits rule out collisions.
    const id = createHash('sha256').update(groupKey).digest('hex').slice(0, 32);
    return { group: `${this.prefix}:sms:concat:group:${id}`, tombstone: `${this.prefix}:sms:concat:released:${id}` };
  }
}

/** A group hash's HGETALL (flat field/value list) → its key, total and parts ordered by seq. */
function readGroup(flat: string[]): ExpiredGroup {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  const parts: StoredPart[] = [];
  for (const [field, data] of fields) {
    if (!field.startsWith('d:')) continue;
    const seq = Number(field.slice(2));
    parts.push({ seq, data, receivedAt: fields.get(`t:${seq}`) ?? '' });
  }
  parts.sort((a, b) => a.seq - b.seq);
  return { groupKey: fields.get('key') ?? '', total: Number(fields.get('total')), parts };
}
