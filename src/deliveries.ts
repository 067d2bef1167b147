import type { Logger } from 'pino';
import type { DeliverySink } from './core/channel.ts';
import { Coalescer } from './queue/coalescer.ts';
import type { Db } from './store/db.ts';
import { recordDeliveries, type DeliveryUpdate } from './store/reports.ts';

/**
 * Where adapters record what became of a message we sent (SMS delivery receipts, later chat read
 * receipts). An SMSC sends one receipt per segment of every reply — more statements than the
 * replies themselves took before they were batched — so receipts that arrive together are applied
 * in one statement (the same coalescer as inbound messages: no waiting when idle).
 *
 * A receipt can overtake the commit that records its message's transport id: notify marks a batch
 * of replies once all of it is sent, and an SMSC may answer within milliseconds. So a receipt that
 * names no message yet is tried again a few times, in the background (the provider is answered at
 * once), before it is logged as unknown. Receipts are status, not citizens' messages: one still
 * pending when the process stops is lost, and the log says so.
 */
export function createDeliverySink(db: Db, log: Logger, retryDelaysMs: readonly number[] = [250, 1_000, 5_000]): DeliverySink & { close(): void } {
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const batches = new Coalescer<DeliveryUpdate, 'updated' | 'unknown'>(
    { maxItems: 500, maxBytes: 1024 * 1024, maxWaitMs: 5, maxInFlight: 2 },
    (updates) => recordDeliveries(db, updates),
    (update) => update.transportId.length + update.detail.length,
  );

  const retry = (update: DeliveryUpdate, attempt: number) => {
    const delay = retryDelaysMs[attempt];
    if (closed) return;
    if (delay === undefined) {
      // Not the transport id: a wamid holds a phone number, a Message-ID often a name.
      log.info({ channel: update.channel, state: update.state }, 'receipt for a message we do not know');
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      batches.add(update).then(
        (result) => result === 'unknown' && retry(update, attempt + 1),
        (err: unknown) => {
          if (closed) return;
          log.warn({ err, channel: update.channel }, 'receipt not recorded');
          retry(update, attempt + 1);
        },
      );
    }, delay);
    timer.unref();
    timers.add(timer);
  };

  return {
    async record(update) {
      const result = await batches.add(update);
      if (result === 'updated') return result;
      retry(update, 0);
      return 'retrying';
    },
    close() {
      closed = true;
      if (timers.size) log.info({ receipts: timers.size }, 'receipts still waiting for their message dropped at shutdown');
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
