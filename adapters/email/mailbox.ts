import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { crashPoint } from '../../src/core/crash.ts';
import { imapTarget, type Mailbox, type MailSettings } from './config.ts';

/**
 * The only file that speaks IMAP (imapflow). One reader per mailbox: connect, read every message
 * still in the folder, hand each to `handle`, and once it is stored flag it \Seen and move it to
 * the processed folder; then wait for the server to announce more (IDLE, or imapflow's NOOP polling
 * where IDLE is missing) and read again. Any error ends the connection; it is made again after a
 * backoff.
 *
 * The folder holds only what is not yet stored, so no UID cursor is needed to find new mail, and a
 * change of UIDVALIDITY re-imports nothing: a message left in the folder by a crash between storing
 * and moving is read again and its dedup key (its Message-ID) finds it stored.
 */

export interface FetchedMail {
  uid: number;
  uidValidity: string;
  size: number;
  /** Absent when the message is larger than LAPOR_MAIL_MAX_MESSAGE_BYTES: it is not downloaded. */
  source: Buffer | undefined;
}

export type Verdict =
  /** Stored (or never to be stored, like an auto-reply): flagged and moved to the processed folder. */
  | { to: 'processed' }
  /** Can never be stored: moved to quarantine, the reason logged. */
  | { to: 'quarantine'; reason: string }
  /** Storing failed for now (Redis down): left where it is, read again after a pause. */
  | { to: 'stay'; reason: string };

export interface MailboxReaderOptions {
  mailbox: Mailbox;
  settings: MailSettings;
  log: Logger;
  handle(mail: FetchedMail): Promise<Verdict>;
  /** The mailbox's UIDVALIDITY at each connection, so a change can be noticed and logged. */
  onOpen?(uidValidity: string): Promise<void>;
}

export class MailboxReader {
  state: 'stopped' | 'connecting' | 'reading' | 'waiting' | 'down' = 'stopped';
  private running = false;
  private client: ImapFlow | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> | undefined;
  private readonly target;

  constructor(private readonly options: MailboxReaderOptions) {
    this.target = imapTarget(options.mailbox.imapUrl);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    const client = this.client;
    if (client) await client.logout().catch(() => client.close());
    await this.loop;
    this.state = 'stopped';
  }

  private async run(): Promise<void> {
    const { settings, log } = this.options;
    let delay = settings.reconnectMinMs;
    while (this.running) {
      const began = Date.now();
      try {
        await this.session();
      } catch (err) {
        if (!this.running) break;
        this.state = 'down';
        log.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'mailbox connection lost: reconnecting');
      } finally {
        this.client?.close();
        this.client = undefined;
      }
      if (!this.running) break;
      // A connection that lasted a while starts the backoff over.
      if (Date.now() - began > settings.reconnectMaxMs) delay = settings.reconnectMinMs;
      await this.sleep(delay * (0.75 + Math.random() / 2));
      delay = Math.min(delay * 2, settings.reconnectMaxMs);
    }
  }

  /** One connection: read, wait for news, read again — until an error or stop(). */
  private async session(): Promise<void> {
    const { settings, log } = this.options;
    this.state = 'connecting';
    const client = new ImapFlow({
      host: this.target.host,
      port: this.target.port,
      secure: this.target.secure,
      auth: { user: this.target.user, pass: this.target.pass },
      // imapflow's own debug lines carry addresses and subjects: only its warnings reach our log.
      logger: quietLogger(log),
      maxIdleTime: settings.idleRenewMs,
      // Between reads the connection is idle at once: new mail is announced only during IDLE
      // (imapflow waits 15 s by default before starting it). Reads hold the mailbox lock, so IDLE
      // never interrupts one.
      autoIdleDelay: 250,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 5 * 60_000,
    });
    this.client = client;
    const closed = new Promise<never>((_, reject) => {
      client.on('close', () => reject(new Error('connection closed')));
      client.on('error', (err: Error) => reject(err));
    });
    closed.catch(() => undefined);
    client.on('exists', () => this.wake());
    await Promise.race([client.connect(), closed]);
    await this.ensureFolders(client);

    while (this.running) {
      this.state = 'reading';
      const pause = await Promise.race([this.readFolder(client), closed]);
      if (!this.running) return;
      this.state = 'waiting';
      // News ('exists' during IDLE) wakes us; without it the folder is read again now and then, so a
      // message left behind by a failed store is tried again.
      await Promise.race([this.sleep(pause ? settings.reconnectMinMs * 5 : Math.max(1_000, settings.idleRenewMs / 10)), closed]);
    }
  }

  /** The processed and quarantine folders, created when missing (named with `/`, whatever the server's separator). */
  private async ensureFolders(client: ImapFlow): Promise<void> {
    const entries = await client.list();
    const delimiter = entries[0]?.delimiter ?? '/';
    const existing = new Set(entries.map((entry) => entry.path));
    for (const folder of [this.options.settings.processedFolder, this.options.settings.quarantineFolder]) {
      if (!existing.has(folder.split('/').join(delimiter))) await client.mailboxCreate(folder.split('/'));
    }
  }

  /** Reads every message in the folder once; true when storing failed and we should pause. */
  private async readFolder(client: ImapFlow): Promise<boolean> {
    const { settings, log, handle } = this.options;
    const lock = await client.getMailboxLock(this.target.folder);
    try {
      const box = client.mailbox;
      if (!box) throw new Error('mailbox not selected');
      const uidValidity = String(box.uidValidity);
      await this.options.onOpen?.(uidValidity);
      if (!box.exists) return false;
      const list = (await client.fetchAll('1:*', { uid: true, size: true })).sort((a, b) => a.uid - b.uid);
      for (const item of list) {
        if (!this.running) return false;
        const size = item.size ?? 0;
        let source: Buffer | undefined;
        if (size <= settings.maxMessageBytes) {
          const one = await client.fetchOne(String(item.uid), { source: true }, { uid: true });
          if (!one || !one.source) continue; // expunged meanwhile
          source = one.source;
        }
        const verdict = await handle({ uid: item.uid, uidValidity, size, source });
        if (verdict.to === 'stay') {
          log.warn({ uid: item.uid, reason: verdict.reason }, 'mail left in the mailbox: it will be read again');
          return true;
        }
        crashPoint('mail-stored');
        await client.messageFlagsAdd(String(item.uid), ['\\Seen'], { uid: true });
        crashPoint('mail-flagged');
        const destination = verdict.to === 'processed' ? settings.processedFolder : settings.quarantineFolder;
        await client.messageMove(String(item.uid), destination.split('/'), { uid: true });
        if (verdict.to === 'quarantine') log.warn({ uid: item.uid, size, reason: verdict.reason, folder: destination }, 'mail quarantined');
      }
      return false;
    } finally {
      lock.release();
    }
  }

  /**
   * Waits `ms`, or less when news came: news that arrives while a read is still running (the server
   * announces new mail in any response) is remembered, so the next wait ends at once.
   */
  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = undefined;
        self.woken = false;
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }
}

/** imapflow logs through a pino-like object; ours passes on warnings and errors, without raw data. */
function quietLogger(log: Logger) {
  const pass = (level: 'warn' | 'error') => (entry: { msg?: string; err?: Error; code?: string }) =>
    log[level]({ imap: entry.msg, code: entry.code ?? entry.err?.message }, 'imap client');
  const ignore = () => undefined;
  return { debug: ignore, info: ignore, warn: pass('warn'), error: pass('error') };
}
