import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UpdateSchema, commandText, toInbound } from '../../../adapters/telegram/inbound.ts';
import { InboundMessageSchema } from '../../../src/core/inbound.ts';
import { parseCitizenMessage } from '../../../src/core/keywords.ts';
import { corpusFile } from '../../helpers/corpus.ts';

/**
 * The Telegram normalizer is pure: every update of the corpus in, the message (or the reason it is
 * none) out, then the keyword parser intake runs next. Buttons and chat-member updates are handled
 * by the adapter itself, not here.
 */

type Expect = Record<string, { intent: string; privacy: string; notes: string }>;
const expectations = JSON.parse(readFileSync(corpusFile('telegram/expect.json'), 'utf8')) as Expect;
const NOW = new Date('2026-12-06T00:00:00Z');
const update = (file: string) => UpdateSchema.parse(JSON.parse(readFileSync(corpusFile(`telegram/${file}`), 'utf8')));

const messages = Object.entries(expectations).filter(([, e]) => !['set_privacy', 'unreachable'].includes(e.intent));

describe('corpus updates', () => {
  it.each(messages)('%s → %o', (file, { intent }) => {
    const u = update(file);
    const message = toInbound(u, { bot: 'lapor1708_bot', now: NOW });
    if (intent === 'ignored') {
      expect(message).toMatchObject({ ignored: true });
      return;
    }
    if ('ignored' in message) throw new Error(`ignored: ${message.reason}`);
    const parsed = InboundMessageSchema.parse(message);
    expect(parsed.dedupKey).toBe(`tg_${u.update_id}`);
    expect(parsed.sender?.address).toMatch(/^tg:\d+$/);
    const command = parseCitizenMessage(parsed.text);
    // A follow-up naming no report is placed by its thread (a reply to our message, an edit).
    if (intent === 'follow_up' && command.type === 'new_report') {
      expect(parsed.thread?.ids.length).toBeGreaterThan(0);
      return;
    }
    expect(command.type).toBe(intent);
  });
});

describe('commands', () => {
  it('turn into the keyword parser\'s words, addressed or not, and leave other commands alone', () => {
    expect(commandText('/lapor jalan rusak', 'lapor1708_bot')).toBe('LAPOR jalan rusak');
    expect(commandText('/status@lapor1708_bot 5370467387', 'lapor1708_bot')).toBe('CEK 5370467387');
    expect(commandText('/status@other_bot 5370467387', 'lapor1708_bot')).toBe('/status@other_bot 5370467387');
    expect(commandText('/start kampanye-2026', 'lapor1708_bot')).toBe('BANTUAN');
    expect(commandText('/RAHASIA pungli', 'lapor1708_bot')).toBe('RAHASIA pungli');
    expect(commandText('/unknown x', 'lapor1708_bot')).toBe('/unknown x');
    expect(commandText('jalan /lapor', 'lapor1708_bot')).toBe('jalan /lapor');
  });

  it('an edit is its own message in the thread of the one it edits, only for its author', () => {
    const u = update('edited-message.json');
    const message = toInbound(u, { bot: 'lapor1708_bot', now: NOW });
    expect(message).toMatchObject({ thread: { ownerOnly: true, ids: [`${u.edited_message!.chat.id}_${u.edited_message!.message_id}`] } });
    expect('ignored' in message ? '' : message.externalId).toMatch(/_e\d+$/);
  });

  it('skips a message without a sender, and an update that is not a message', () => {
    expect(toInbound(UpdateSchema.parse({ update_id: 1, message: { message_id: 1, chat: { id: 5, type: 'private' }, text: 'hai' } }), { bot: 'b', now: NOW })).toMatchObject({ ignored: true, reason: 'no sender' });
    expect(toInbound(UpdateSchema.parse({ update_id: 2, poll: { id: 'x' } }), { bot: 'b', now: NOW })).toMatchObject({ ignored: true, reason: 'not a message' });
  });
});
