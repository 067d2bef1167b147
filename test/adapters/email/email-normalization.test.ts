import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanSubject, cutQuoted, cutSignature, ourMessageId, reportOfMessageId, screen, toInbound } from '../../../adapters/email/inbound.ts';
import { composeReply } from '../../../adapters/email/outbound.ts';
import { MAX_HEADER_BYTES, readMail, type Mail } from '../../../adapters/email/parse.ts';
import { InboundMessageSchema } from '../../../src/core/inbound.ts';
import { parseCitizenMessage } from '../../../src/core/keywords.ts';
import { corpusFile } from '../../helpers/corpus.ts';

/**
 * Mail is read (mailparser) and judged (screen, toInbound) without a server: every message of the
 * corpus, hostile MIME, quoting styles, and the reply we compose. The adapter over real Dovecot and
 * SMTP is tested in email.test.ts.
 */

type Expect = Record<string, { intent: string; privacy: string; attachments: number; answer: boolean; notes: string }>;
const expectations = JSON.parse(readFileSync(corpusFile('email/expect.json'), 'utf8')) as Expect;
const NOW = new Date('2026-12-06T00:00:00Z');
const DOMAIN = 'lapor.example';
const eml = (file: string) => readFileSync(corpusFile(`email/${file}`));

async function read(raw: Buffer | string): Promise<Mail> {
  const mail = await readMail(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
  if ('refused' in mail) throw new Error(`refused: ${mail.refused}`);
  return mail;
}

const context = { account: 'utama', domain: DOMAIN, contentHash: 'ab'.repeat(32), now: NOW, attachments: [], leftOut: [] };

describe('corpus mail', () => {
  it.each(Object.entries(expectations))('%s → %o', async (file, { intent, privacy, attachments }) => {
    const mail = await read(eml(file));
    const screened = screen(mail);
    if (intent === 'ignored') {
      expect(screened.kind).not.toBe('mail');
      return;
    }
    expect(screened).toEqual({ kind: 'mail' });
    expect(mail.files.filter((f) => !f.related)).toHaveLength(attachments);
    const message = InboundMessageSchema.parse(toInbound(mail, context));
    expect(message.dedupKey).toMatch(/^em_[A-Za-z0-9_-]{32}$/);
    expect(message.externalId).toBe(mail.messageId);
    const command = parseCitizenMessage(message.text);
    if (intent === 'follow_up') {
      // Named by our Message-ID in its thread; intake adds it when the sender owns the report.
      expect(message.thread?.report).toBe('7741822739');
      expect(command.type).toBe('new_report');
      return;
    }
    expect(command.type).toBe(intent);
    if (command.type === 'new_report') expect(command.privacy).toBe(privacy);
  });

  it('files the subject as the first line and the body below it', async () => {
    const message = toInbound(await read(eml('plain-text.eml')), context);
    expect(message.text.split('\n')[0]).toBe('Lampu lalu lintas mati di simpang Jl. Merdeka - Jl. Veteran');
    expect(message.text).toContain('Mohon lampu segera diperbaiki');
  });

  it('does not repeat a subject the body begins with; an empty subject adds nothing', async () => {
    const same = toInbound(await read('From: a@surel.example\r\nSubject: Jalan rusak di depan SDN 3\r\n\r\nJalan rusak di depan SDN 3, sudah sebulan.'), context);
    expect(same.text).toBe('Jalan rusak di depan SDN 3, sudah sebulan.');
    const none = toInbound(await read('From: a@surel.example\r\n\r\nSaluran air tersumbat.'), context);
    expect(none.text).toBe('Saluran air tersumbat.');
  });

  it('decodes RFC 2047 subjects and names, and HTML into clean text', async () => {
    const encoded = await read(eml('encoded-word-subject.eml'));
    expect(encoded.subject).toBe('Antre BPJS di RSUD Tanjung Seruni 6 jam 😤 — lansia sampai pingsan');
    expect(encoded.from?.name).toBe('Siti Nur’aini');
    const html = toInbound(await read(eml('html-only.eml')), context).text;
    expect(html).not.toMatch(/<[a-z]|&nbsp;|&amp;|&ldquo;|\{/i);
    expect(html).toContain('“sedang urus sertifikasi”');
    expect(html).toContain('Minggu 3–4: masuk 3 hari');
  });

  it('keeps only the reply above "Pada … menulis:" and names its report', async () => {
    const message = toInbound(await read(eml('reply-to-notification.eml')), context);
    expect(message.text).toContain('lokasi persisnya di depan rumah');
    expect(message.text).not.toMatch(/menulis|Laporan Anda telah kami terima|^>/m);
    expect(message.thread).toMatchObject({ report: '7741822739', ids: ['report-7741822739@lapor.example'] });
    expect(message.replyContext).toMatchObject({ messageId: 'CAO5uYt3mWq=rahmat.0303@mail.surel.example', mailbox: 'utama' });
  });

  it('reads the failed recipient and our Message-ID out of a bounce', async () => {
    expect(screen(await read(eml('bounce-dsn.eml')))).toEqual({ kind: 'bounce', recipients: ['andi.prasetyo@surel.example'], ours: ['report-9823745841@lapor.example'] });
  });

  it('says why each auto-reply and list mail is not answered', async () => {
    expect(screen(await read(eml('auto-reply-ooo.eml')))).toEqual({ kind: 'ignored', category: 'auto_reply', reason: 'Auto-Submitted: auto-replied' });
    expect(screen(await read(eml('auto-reply-precedence-bulk.eml')))).toEqual({ kind: 'ignored', category: 'auto_reply', reason: 'Precedence: bulk' });
    // Whatever a sender writes there, the metric label and the log stay within a few words.
    expect(screen(await read('From: a@surel.example\r\nAuto-Submitted: sembarang-teks-panjang\r\n\r\nx'))).toMatchObject({ reason: 'Auto-Submitted: other' });
    expect(screen(await read(eml('mailing-list.eml')))).toMatchObject({ kind: 'ignored' });
    const base = 'From: warga@surel.example\r\nSubject: x\r\n';
    expect(screen(await read(`${base}Auto-Submitted: no\r\n\r\njalan rusak`))).toEqual({ kind: 'mail' });
    expect(screen(await read(`${base}X-Autorespond: yes\r\n\r\nlagi cuti`))).toMatchObject({ kind: 'ignored' });
    expect(screen(await read(`Return-Path: <>\r\n${base}\r\nsesuatu`))).toMatchObject({ kind: 'ignored', reason: 'an empty return path (Return-Path: <>)' });
    expect(screen(await read(`Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example\r\nSubject: gagal\r\n\r\nundeliverable`))).toMatchObject({ kind: 'bounce' });
  });
});

describe('threads', () => {
  it('our Message-ID carries the tracking ID, and only ours is read back', () => {
    const id = ourMessageId('7741822739', 'n_key_received', DOMAIN);
    expect(id).toMatch(/^report-7741822739\.[A-Za-z0-9_-]{16}@lapor\.example$/);
    expect(reportOfMessageId(id, DOMAIN)).toBe('7741822739');
    expect(reportOfMessageId(id, 'other.example')).toBeUndefined();
    expect(reportOfMessageId('report-7741822738@lapor.example', DOMAIN)).toBeUndefined(); // bad check digit
  });

  it('a subject with our tag or a reply prefix names the report; a fresh "CEK <id>" is read by the parser', async () => {
    const reply = await read('From: a@surel.example\r\nSubject: Bls: [LAPOR! #7741822739] Laporan Anda\r\n\r\nini tambahan saya');
    expect(toInbound(reply, context)).toMatchObject({ thread: { report: '7741822739' }, text: 'ini tambahan saya' });
    const fresh = await read('From: a@surel.example\r\nSubject: CEK 7741822739\r\n\r\nmohon info');
    const message = toInbound(fresh, context);
    expect(message.thread).toBeUndefined();
    expect(parseCitizenMessage(message.text)).toMatchObject({ type: 'status_query' });
  });

  it('strips reply prefixes in several languages', () => {
    expect(cleanSubject('Re: RE: Fwd: Jalan rusak')).toEqual({ text: 'Jalan rusak', reply: true });
    expect(cleanSubject('Bls: Balas: Jalan rusak')).toEqual({ text: 'Jalan rusak', reply: true });
    expect(cleanSubject('Jalan rusak: tolong')).toEqual({ text: 'Jalan rusak: tolong', reply: false });
  });

  it('a mail without a Message-ID is keyed by its bytes', async () => {
    const mail = await read('From: a@surel.example\r\nSubject: jalan\r\n\r\njalan rusak parah');
    const one = toInbound(mail, context);
    expect(one.externalId).toBe(`sha256:${'ab'.repeat(32)}`);
    expect(toInbound(mail, { ...context, contentHash: 'cd'.repeat(32) }).dedupKey).not.toBe(one.dedupKey);
  });
});

describe('quoted text', () => {
  it.each([
    ['Indonesian Gmail', 'Tambahan: lubang makin besar.\n\nPada Sen, 3 Mar 2025 pukul 09.12, LAPOR! <noreply@lapor.example> menulis:\n> Laporan diterima', 'Tambahan: lubang makin besar.'],
    ['English, attribution over two lines', 'More info here.\n\nOn Mon, Mar 3, 2025 at 9:12 AM LAPOR! <noreply@lapor.example>\nwrote:\n> Your report', 'More info here.'],
    ['Outlook header block', 'Sudah diperbaiki, terima kasih.\n\n________________________________\nDari: LAPOR! <noreply@lapor.example>\nDikirim: Senin, 3 Maret 2025 09.12\nKepada: Budi\nSubjek: Laporan', 'Sudah diperbaiki, terima kasih.'],
    ['Outlook English', 'Fixed.\n\nFrom: LAPOR!\nSent: Monday\nTo: Budi\nSubject: Report', 'Fixed.'],
    ['original message marker', 'ok\n\n-----Original Message-----\nFrom: x', 'ok'],
    ['trailing > lines', 'jawaban saya\n\n> kutipan\n>\n> lagi', 'jawaban saya'],
  ])('%s', (_name, text, kept) => {
    expect(cutQuoted(text)).toBe(kept);
  });

  it('cuts the signature below "-- " (it names the sender, in an anonymous report too)', () => {
    expect(cutSignature('Jalan rusak parah.\n\n-- \nBudi Santoso\nHP 0812 3456 7890')).toBe('Jalan rusak parah.');
    expect(cutSignature('Jalan rusak.\n--\nBudi')).toBe('Jalan rusak.');
    expect(cutSignature('harga naik -- lagi\nmahal')).toBe('harga naik -- lagi\nmahal');
    expect(cutSignature('-- \nhanya tanda tangan')).toBe('-- \nhanya tanda tangan');
  });

  it('keeps > lines in the middle (a citizen quoting a sign) and text that is all quote', () => {
    expect(cutQuoted('Di papan tertulis:\n> DILARANG PARKIR\npadahal itu jalan umum.')).toContain('padahal itu jalan umum.');
    expect(cutQuoted('> hanya kutipan')).toBe('> hanya kutipan');
    expect(cutQuoted('From: saya sendiri, warga RT 3\nlampu mati')).toContain('lampu mati');
  });
});

describe('hostile mail', () => {
  const nested = (depth: number) => {
    let body = 'Content-Type: text/plain\r\n\r\nisi terdalam\r\n';
    for (let i = depth; i > 0; i--) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}--b${i}--\r\n`;
    return `From: a@surel.example\r\nSubject: dalam\r\nMIME-Version: 1.0\r\n${body}`;
  };

  it('refuses multiparts nested sixty deep, and reads ordinary nesting', async () => {
    await expect(readMail(Buffer.from(nested(60)))).resolves.toMatchObject({ refused: expect.stringContaining('multipart') });
    const fine = await read(nested(3));
    expect(fine.text).toContain('isi terdalam');
  });

  it('refuses a header line of a megabyte', async () => {
    const raw = `From: a@surel.example\r\nX-Long: ${'a'.repeat(1024 * 1024)}\r\nSubject: x\r\n\r\nisi`;
    expect(raw.length).toBeGreaterThan(MAX_HEADER_BYTES);
    await expect(readMail(Buffer.from(raw))).resolves.toMatchObject({ refused: expect.stringContaining('header') });
  });

  it('reads a mail without From (the adapter quarantines it) and broken base64 without throwing', async () => {
    const noFrom = await read('Subject: tanpa pengirim\r\n\r\njalan rusak');
    expect(noFrom.from).toBeUndefined();
    const broken = await read('From: a@surel.example\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSmFsYW4g!!!cnVzYWs=@@@\r\n%%%\r\n');
    expect(broken.text).toContain('Jalan');
  });

  it('reads a charset nobody knows as UTF-8 and says so', async () => {
    const raw = Buffer.concat([Buffer.from('From: a@surel.example\r\nSubject: x\r\nContent-Type: text/plain; charset=x-tidak-ada\r\n\r\nJalan '), Buffer.from([0xe9, 0x93]), Buffer.from(' rusak')]);
    const mail = await read(raw);
    expect(mail.text).toMatch(/^Jalan .*rusak/);
    expect(mail.problems.join()).toContain('unknown charset x-tidak-ada');
    const latin = await read(Buffer.concat([Buffer.from('From: a@surel.example\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nCaf'), Buffer.from([0xe9])]));
    expect(latin.text).toBe('Café');
    expect(latin.problems).toEqual([]);
  });

  it('reads lone surrogates and invalid UTF-8 into text the inbound schema takes', async () => {
    // A UTF-8-encoded lone surrogate (ED A0 80) in an encoded word, and bytes that are no UTF-8 at all.
    const subject = Buffer.from([0xed, 0xa0, 0x80, 0x41]).toString('base64');
    const raw = Buffer.concat([Buffer.from(`From: a@surel.example\r\nSubject: =?utf-8?B?${subject}?=\r\n\r\nisi `), Buffer.from([0xff, 0xfe]), Buffer.from(' laporan jalan rusak')]);
    const mail = await read(raw);
    const message = InboundMessageSchema.parse(toInbound(mail, context));
    expect(message.text).toContain('laporan jalan rusak');
  });
});

describe('the reply we compose', () => {
  const outbound = {
    trackingId: '7741822739',
    key: 'n_em_x_received',
    text: 'LAPOR! Laporan Anda telah diterima dengan nomor 7741822739.',
    to: 'rahmat.hidayat@surel.example',
    replyContext: { mailbox: 'utama', messageId: 'CAO5uYt3@mail.surel.example', references: 'older@x.example', subject: 'Jalan rusak' },
    kind: 'received' as const,
    privacy: 'public' as const,
    lang: 'id' as const,
  };
  const box = { from: 'LAPOR! <pengaduan@lapor.example>', fromAddress: 'pengaduan@lapor.example', domain: DOMAIN };

  it('threads under the citizen mail, is marked automatic, and goes to the sender alone', () => {
    const reply = composeReply(outbound, box);
    expect(reply.messageId).toMatch(/^report-7741822739\./);
    expect(reply.options).toMatchObject({
      to: 'rahmat.hidayat@surel.example',
      subject: '[LAPOR! #7741822739] Laporan Anda telah kami terima',
      messageId: `<${reply.messageId}>`,
      inReplyTo: '<CAO5uYt3@mail.surel.example>',
      references: '<older@x.example> <CAO5uYt3@mail.surel.example>',
      headers: { 'Auto-Submitted': 'auto-replied' },
      envelope: { from: 'pengaduan@lapor.example', to: 'rahmat.hidayat@surel.example' },
    });
    expect(reply.options.cc).toBeUndefined();
    expect(reply.options.bcc).toBeUndefined();
    expect(String(reply.options.html)).toContain('Laporan Anda telah diterima');
    expect(String(reply.options.text)).toContain('Balas email ini');
  });

  it('escapes what an operator wrote in the HTML part', () => {
    const reply = composeReply({ ...outbound, text: 'Jawaban <script>alert(1)</script> & "x"' }, box);
    expect(String(reply.options.html)).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;');
  });

  it('refuses a reply with no address', () => {
    expect(() => composeReply({ ...outbound, to: undefined }, box)).toThrow(/no address/);
  });
});
