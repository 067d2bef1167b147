import { readFileSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusFile, seedCorpusReports, type CorpusReport } from '../../helpers/corpus.ts';
import { emailContactHash, emailGateway, type EmailTestGateway } from '../../helpers/email.ts';
import { eventually } from '../../helpers/env.ts';

/**
 * The email corpus through real servers: every .eml is put into Dovecot's INBOX as delivered, the
 * gateway reads and files it, and each file's expected outcome is checked in the store and in what
 * reached the SMTP server. The reports the corpus refers to (reports.json) are seeded first, with
 * our notifications' Message-IDs, so replies and bounces find them.
 */

type Expectation = { intent: string; privacy: string; attachments: number; answer: boolean; notes: string };
const expectations = JSON.parse(readFileSync(corpusFile('email/expect.json'), 'utf8')) as Record<string, Expectation>;
const seeded = (JSON.parse(readFileSync(corpusFile('reports.json'), 'utf8')) as CorpusReport[]).filter((r) => r.channel === 'email');
const files = readdirSync(dirname(corpusFile('email/expect.json'))).filter((f) => f.endsWith('.eml')).sort();

let gw: EmailTestGateway;
let seqs: Map<string, string>;
const raw = (file: string) => readFileSync(corpusFile(`email/${file}`));
const fromOf = (file: string) => /^From:.*?<?([^\s<>]+@[^\s<>]+)>?\s*$/m.exec(raw(file).toString('utf8'))![1]!.toLowerCase();

beforeAll(async () => {
  // The corpus's own domain: replies to <report-…@lapor.example> are ours.
  gw = await emailGateway({ LAPOR_MAIL_FROM: 'LAPOR! 1708 <pengaduan@lapor.example>' });
  seqs = await seedCorpusReports(gw.env, seeded);
  for (const file of files) await gw.deliver(raw(file));
  await eventually(async () => ((await gw.folder('INBOX')).length === 0 ? true : undefined), 30_000, 'every corpus mail taken');
  // Answers go out after filing: wait for the last one expected.
  const answered = Object.entries(expectations).filter(([, e]) => e.answer).map(([f]) => fromOf(f));
  await eventually(async () => (answered.every((a) => gw.sink.messages().some((m) => m.envelope.to.includes(a))) ? true : undefined), 30_000, 'an answer to each');
}, 90_000);
afterAll(async () => {
  if (process.env.DEBUG_LOGS) console.log(gw?.env.logs.join('\n'));
  await gw?.close();
});

async function reportsFrom(address: string) {
  const { rows } = await gw.env.runtime.db.query<{ seq: string; tracking_id: string; anonim: boolean; rahasia: boolean; text: string }>(
    'SELECT seq::text, tracking_id, anonim, rahasia, text FROM reports WHERE contact_hash = $1 AND channel = $2 ORDER BY seq',
    [emailContactHash(gw.env, address), 'email'],
  );
  return rows;
}

async function answersTo(address: string) {
  return Promise.all(gw.sink.messages().filter((m) => m.envelope.to.includes(address)).map((m) => simpleParser(m.raw)));
}

async function threadOf(trackingId: string): Promise<string[]> {
  const { rows } = await gw.env.runtime.db.query<{ sealed_text: string }>(
    `SELECT sealed_text FROM messages WHERE report_seq = $1 AND direction = 'in' ORDER BY id`,
    [seqs.get(trackingId)],
  );
  return rows.map((r) => String(gw.env.runtime.keys.open('thread', r.sealed_text)));
}

describe('the email corpus through Dovecot', () => {
  it.each(Object.entries(expectations).filter(([, e]) => e.intent === 'new_report'))('%s files one report, answered with its ID', async (file, e) => {
    const from = fromOf(file);
    const [report, ...more] = await reportsFrom(from);
    expect(more).toHaveLength(0);
    expect(report).toMatchObject({ anonim: e.privacy === 'anonim', rahasia: e.privacy === 'rahasia' });
    const { rows } = await gw.env.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM attachments WHERE report_seq = $1', [report!.seq]);
    expect(rows[0]!.n).toBe(e.attachments);
    const answers = await answersTo(from);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.subject).toContain(report!.tracking_id);
    expect(answers[0]!.inReplyTo).toBe(`<${(await simpleParser(raw(file))).messageId!.replace(/^<|>$/g, '')}>`);
  });

  it('the anonymous report has its keyword out of the first line, the subject kept', async () => {
    const [report] = await reportsFrom(fromOf('multipart-alternative-qp.eml'));
    expect(report!.text.split('\n')[0]).toBe('Pungutan biaya percepatan KTP-el di Disdukcapil');
  });

  it('the reply to our notification adds only its own words to 7741822739; the status question is answered', async () => {
    const owner = fromOf('reply-to-notification.eml');
    // Only the seeded report: neither the follow-up, the status question nor the vacation reply filed one.
    expect((await reportsFrom(owner)).map((r) => r.tracking_id)).toEqual(['7741822739']);
    const thread = await threadOf('7741822739');
    expect(thread).toHaveLength(1);
    expect(thread[0]).toContain('lokasi persisnya di depan rumah');
    expect(thread[0]).not.toMatch(/menulis|^>/m);
    const answers = await answersTo(owner);
    expect(answers.map((a) => a.text).join('\n')).toMatch(/Tambahan informasi untuk laporan 7741822739/);
    expect(answers.map((a) => a.text).join('\n')).toMatch(/Status laporan 7741822739/);
    // Two answers: the follow-up's and the status question's. The owner's vacation reply got none.
    expect(answers).toHaveLength(2);
  });

  it('auto-replies and the list post file nothing and are never answered', async () => {
    for (const [file] of Object.entries(expectations).filter(([name, e]) => e.intent === 'ignored' && !name.startsWith('bounce'))) {
      const from = fromOf(file);
      if (from !== fromOf('reply-to-notification.eml')) {
        expect(await reportsFrom(from), file).toHaveLength(0);
        expect(await answersTo(from), file).toHaveLength(0);
      }
    }
    expect((await threadOf('7741822739')).join('\n')).not.toMatch(/cuti|Pesan otomatis/);
  });

  it('the bounce marks our notification to andi.prasetyo failed and sends nothing', async () => {
    const { rows } = await gw.env.runtime.db.query<{ status: string; error: string }>(`SELECT status, error FROM messages WHERE transport_id = 'report-9823745841@lapor.example'`);
    expect(rows).toEqual([{ status: 'failed', error: expect.stringContaining('bounced') }]);
    expect(await answersTo('andi.prasetyo@surel.example')).toHaveLength(0);
    expect(await answersTo('mailer-daemon@mx.surel.example')).toHaveLength(0);
  });

  it('every mail ended in the processed folder, none in quarantine', async () => {
    expect((await gw.folder('LAPOR/Diproses')).length).toBe(files.length);
    expect(await gw.folder('LAPOR/Karantina')).toEqual([]);
  });

  it('no name, address or words of the corpus reach the logs', () => {
    const logs = gw.env.logs.join('\n');
    for (const secret of ['rahmat', 'Rahmat', 'surel.example', 'andi.prasetyo', 'Pungutan', 'Lampu lalu lintas', 'Hendra']) expect(logs, secret).not.toContain(secret);
  });
});
