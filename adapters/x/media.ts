import type { Logger } from 'pino';
import { z } from 'zod';
import type { AttachmentSink } from '../../src/core/channel.ts';
import type { Attachment } from '../../src/core/inbound.ts';
import type { Tweet } from './inbound.ts';

/**
 * The photos of a tweet, kept as the message's attachments. X names them in the tweet
 * (`attachments.media_keys`) and describes them in the page's `includes.media`; a photo's `url`
 * (pbs.twimg.com) needs no credentials. Videos and GIFs are not fetched (X gives only a preview
 * image). A photo that cannot be had — gone, too large, not an image — is left out and logged: the
 * citizen's words are filed without it, never held back for it.
 */

export const MediaSchema = z.object({ media_key: z.string(), type: z.string(), url: z.string().optional() });
export type Media = z.infer<typeof MediaSchema>;

const FETCH_TIMEOUT_MS = 10_000;
const MAX_PHOTOS = 4;

export async function photosOf(tweet: Tweet, media: ReadonlyMap<string, Media>, sink: AttachmentSink, log: Logger): Promise<Attachment[]> {
  const keys = (tweet.attachments?.media_keys ?? []).slice(0, MAX_PHOTOS);
  const attachments: Attachment[] = [];
  for (const [i, key] of keys.entries()) {
    const item = media.get(key);
    if (!item || item.type !== 'photo' || !item.url || !/^https?:\/\//.test(item.url)) continue;
    try {
      const data = await download(item.url, sink.maxBytes);
      const stored = await sink.store({ name: `x-${tweet.id}-${i + 1}`, data });
      if ('refused' in stored) log.warn({ tweetId: tweet.id, reason: stored.refused }, 'x photo left out');
      else attachments.push(stored);
    } catch (err) {
      log.warn({ tweetId: tweet.id, err: { message: (err as Error).message } }, 'x photo could not be fetched: filed without it');
    }
  }
  return attachments;
}

/** The body of `url`, refused past `maxBytes` without reading it all. */
async function download(url: string, maxBytes: number): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`photo answered ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > maxBytes) throw new Error(`photo larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`photo larger than ${maxBytes} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
