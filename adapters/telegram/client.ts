import http from 'node:http';
import https from 'node:https';
import { Telegram, TelegramError } from 'telegraf';
import type { TelegramSettings } from './config.ts';

/**
 * The only file that knows telegraf. Only its API client (`Telegram`) is used: telegraf's own polling
 * loop and webhook callback confirm an update even when handling it failed (DESIGN.md, known traps),
 * so the adapter runs its own (index.ts), confirming an update only once it is stored.
 */

/** Any failure of a call: `status` 0 when no answer came; `retryAfterS` from a 429's parameters. */
export class TelegramApiError extends Error {
  readonly code = 'LAPOR_TELEGRAM_API';
  constructor(
    readonly status: number,
    /** The Bot API's own description ("Forbidden: bot was blocked by the user"): never personal data. */
    readonly description: string,
    readonly retryAfterS: number | undefined,
  ) {
    super(`telegram ${status || 'unreachable'}: ${description}`);
    this.name = 'TelegramApiError';
  }
}

export interface InlineButton {
  text: string;
  callback_data: string;
}

export interface TelegramClient {
  /** Long polling; `signal` ends the wait at once (a stopping process must not wait `timeoutS`). */
  getUpdates(offset: number, timeoutS: number, signal?: AbortSignal): Promise<unknown[]>;
  sendMessage(chatId: string, text: string, options?: { replyTo?: number; buttons?: InlineButton[][] }): Promise<{ message_id: number }>;
  answerCallbackQuery(id: string, text?: string): Promise<void>;
  /** A file's bytes (getFile, then the file URL, which holds the token: never logged). */
  download(fileId: string, maxBytes: number): Promise<Buffer>;
}

export function createTelegramClient(settings: TelegramSettings): TelegramClient {
  const plain = new URL(settings.apiRoot).protocol === 'http:';
  const telegram = new Telegram(settings.token, {
    apiRoot: settings.apiRoot.replace(/\/$/, ''),
    agent: plain ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true }),
  });

  async function call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof TelegramError) throw new TelegramApiError(err.code, err.description, err.parameters?.retry_after);
      throw new TelegramApiError(0, (err as Error).message, undefined);
    }
  }

  return {
    getUpdates: (offset, timeoutS, signal) =>
      // callApi, for its signal (telegraf types it with the abort-controller package's AbortSignal).
      call(() => telegram.callApi('getUpdates', { offset, limit: 100, timeout: timeoutS }, signal ? { signal: signal as never } : {})),
    sendMessage: (chatId, text, options = {}) =>
      call(() =>
        telegram.sendMessage(chatId, text, {
          ...(options.replyTo ? { reply_parameters: { message_id: options.replyTo, allow_sending_without_reply: true } } : {}),
          ...(options.buttons ? { reply_markup: { inline_keyboard: options.buttons } } : {}),
        }),
      ),
    answerCallbackQuery: async (id, text) => {
      await call(() => telegram.answerCbQuery(id, text));
    },
    download: async (fileId, maxBytes) => {
      const file = await call(() => telegram.getFile(fileId));
      if (file.file_size !== undefined && file.file_size > maxBytes) throw new TelegramApiError(413, `file larger than ${maxBytes} bytes`, undefined);
      if (!file.file_path) throw new TelegramApiError(400, 'file has no path', undefined);
      const res = await fetch(`${settings.apiRoot.replace(/\/$/, '')}/file/bot${settings.token}/${file.file_path}`, { signal: AbortSignal.timeout(20_000) });
      if (!res.ok || !res.body) throw new TelegramApiError(res.status, 'file download failed', undefined);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += chunk.length;
        if (size > maxBytes) throw new TelegramApiError(413, `file larger than ${maxBytes} bytes`, undefined);
        chunks.push(Buffer.from(chunk));
      }
      return Buffer.concat(chunks);
    },
  };
}
