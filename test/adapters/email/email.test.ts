import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers/env.ts';
import { account, call } from '../../helpers/operators.ts';
import { citizens, composeMail, emailContactHash, emailGateway, OUR_ADDRESS, type EmailTestGateway } from '../../helpers/email.ts';

/**
 * Email end to end against real servers: Debian's Dovecot holds the complaint mailbox, the gateway
 * reads it over IMAP, files reports in PostgreSQL, and answers through a real SMTP server
 * (smtp-server) whose received mail we read.
 */

let gw: EmailTestGateway;
const newCitizen = citizens();

beforeAll(async () => {
  gw = await emailGateway({ LAPOR_MAIL_SENDER_LIMIT_PER_HOUR: '3' });
}, 60_000);
afterAll(async () => {
  if (process.env.DEBUG_LOGS) console.log(gw?.env.logs.join('\n'));
  await gw?.close();
});

async function reportsOf(address: string) {
  const { rows } = await gw.env.runtime.db.query<{ seq: string; tracking_id: string; text: string; rahasia: boolean; anonim: boolean }>(
    `SELECT seq::text, tracking_id, text, rahasia, anonim FROM reports WHERE contact_hash = $1 ORDER BY seq`,
    [emailContactHash(gw.env, address)],
  );
  return rows;
}

async function oneReportOf(address: string) {
  const rows = await eventually(async () => {
    const found = await reportsOf(address);
    return found.length ? found : undefined;
  }, 15_000, `a report from ${address}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

/** The citizen's messages in a report's thread, opened. */
async function inboundTexts(seq: string): Promise<string[]> {
  const { rows } = await gw.env.runtime.db.query<{ sealed_text: string }>(`SELECT sealed_text FROM messages WHERE report_seq = $1 AND direction = 'in' ORDER BY id`, [seq]);
  return rows.map((r) => String(gw.env.runtime.keys.open('thread', r.sealed_text)));
}

/** The first mail the SMTP server received for `address` whose decoded subject or text matches. */
async function replyTo(address: string, matching: RegExp) {
  return eventually(async () => {
    for (const message of gw.sink.messages().filter((m) => m.envelope.to.includes(address))) {
      const parsed = await simpleParser(message.raw);
      if (matching.test(`${parsed.subject}\n${parsed.text}`)) return { envelope: message.envelope, parsed };
    }
    return undefined;
  }, 15_000, `a mail to ${address} matching ${matching}`);
}

describe('a citizen writes to the complaint mailbox', () => {
  it('a mail yields one report and a threaded reply with its tracking ID; it is moved to the processed folder', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({ from: `Warga <${from}>`, subject: 'Lampu jalan mati di Jl. Melati', text: 'Sudah seminggu lampu jalan di depan rumah no. 5 mati, gelap sekali.', messageId: `<first.${from}>` }));
    const report = await oneReportOf(from);
    expect(report.text).toBe('Lampu jalan mati di Jl. Melati\n\nSudah seminggu lampu jalan di depan rumah no. 5 mati, gelap sekali.');
    const { envelope, parsed } = await replyTo(from, /diterima/);
    expect(envelope.to).toEqual([from]);
    expect(parsed.subject).toBe(`[LAPOR! #${report.tracking_id}] Laporan Anda telah kami terima`);
    expect(parsed.inReplyTo).toBe(`<first.${from}>`);
    expect(parsed.messageId).toMatch(new RegExp(`^<report-${report.tracking_id}\\.[^@]+@lapor\\.example>$`));
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    expect(parsed.text).toContain(report.tracking_id);
    expect(parsed.html).toContain(report.tracking_id);
    const processed = await eventually(async () => {
      const list = await gw.folder('LAPOR/Diproses');
      return list.find((m) => m.messageId === `first.${from}`);
    }, 10_000, 'the mail in the processed folder');
    expect(processed.seen).toBe(true);
    expect((await gw.folder('INBOX')).find((m) => m.messageId === `first.${from}`)).toBeUndefined();
  });

  it('replying to our reply adds to the same report; a stranger replying files their own and learns nothing', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({ from, subject: 'Got mampet di gang Kenari', text: 'Got mampet, air meluap ke jalan setiap hujan.', messageId: `<orig.${from}>` }));
    const report = await oneReportOf(from);
    const { parsed } = await replyTo(from, /diterima/);
    const ours = parsed.messageId!;
    await gw.deliver(await composeMail({
      from,
      subject: `Re: ${parsed.subject}`,
      text: `Tambahan: sudah tiga hari.\n\nPada Sen, 3 Mar 2025 pukul 09.12, LAPOR! <${OUR_ADDRESS}> menulis:\n> ${parsed.text!.split('\n')[0]}`,
      inReplyTo: ours,
      references: `<orig.${from}> ${ours}`,
      messageId: `<second.${from}>`,
    }));
    await replyTo(from, /Tambahan informasi/);
    expect(await inboundTexts(report.seq)).toEqual([expect.stringContaining('Got mampet'), 'Tambahan: sudah tiga hari.']);
    expect(await reportsOf(from)).toHaveLength(1);

    const stranger = newCitizen();
    await gw.deliver(await composeMail({ from: stranger, subject: `Re: ${parsed.subject}`, text: 'saya juga mau tahu laporan ini', inReplyTo: ours, references: ours }));
    const own = await oneReportOf(stranger);
    expect(own.tracking_id).not.toBe(report.tracking_id);
    const { parsed: told } = await replyTo(stranger, /diterima/);
    expect(told.text).not.toContain(report.tracking_id);
  });
});

async function statusOf(trackingId: string, wanted: string) {
  return eventually(async () => {
    const { rows } = await gw.env.runtime.db.query<{ status: string }>('SELECT status FROM reports WHERE tracking_id = $1', [trackingId]);
    return rows[0]?.status === wanted ? true : undefined;
  }, 15_000, `report ${trackingId} ${wanted}`);
}

describe('an operator works the report', () => {
  it('the answer reaches the citizen as a threaded email; a reply of just PUAS closes the report', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({ from, subject: 'Listrik padam tiap malam', text: 'Listrik padam tiap malam di Desa Cibiru sejak seminggu.', messageId: `<pln.${from}>` }));
    const report = await oneReportOf(from);
    const admin = await account(gw.env, 'super_admin');
    const pln = await account(gw.env, 'agency_admin', { agency: 'pln' });
    const liaison = await account(gw.env, 'liaison', { unit: 'pln-uid-jabar' });
    const step = async (who: typeof admin, action: string, body: unknown) => {
      const res = await call(gw.env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/${action}`, who, body);
      expect(res.statusCode, res.body).toBe(200);
    };
    await step(admin, 'verify', { kind: 'pengaduan', weight: 'sedang' });
    await step(admin, 'dispose', { agency: 'pln' });
    await step(pln, 'dispose', { unit: 'pln-uid-jabar' });
    await step(liaison, 'answer', { text: 'Trafo sudah diganti, listrik menyala kembali.' });
    const { envelope, parsed } = await replyTo(from, /Tanggapan atas laporan/);
    expect(envelope.to).toEqual([from]);
    expect(parsed.text).toContain('Trafo sudah diganti');
    expect(parsed.inReplyTo).toBe(`<pln.${from}>`);
    expect(parsed.subject).toBe(`[LAPOR! #${report.tracking_id}] Tanggapan atas laporan Anda`);
    await gw.deliver(await composeMail({ from, subject: `Re: ${parsed.subject}`, text: 'PUAS', inReplyTo: parsed.messageId!, references: parsed.messageId! }));
    await replyTo(from, /penilaian Anda/);
    await statusOf(report.tracking_id, 'selesai');
  });
});

describe('mail that is never answered', () => {
  it('an out-of-office, a list post and a vacation reply file nothing and get no answer', async () => {
    const [ooo, list, bulk, control] = [newCitizen(), newCitizen(), newCitizen(), newCitizen()];
    await gw.deliver(await composeMail({ from: ooo, subject: 'Balasan Otomatis: cuti', text: 'Saya sedang cuti sampai 10 Maret.', headers: { 'Auto-Submitted': 'auto-replied' } }));
    await gw.deliver(await composeMail({ from: list, subject: '[Forum Warga] iuran', text: 'Iuran keamanan bulan Maret Rp 50.000.', headers: { 'List-Id': 'Forum Warga <forum.lists.example>', Precedence: 'list' } }));
    await gw.deliver(await composeMail({ from: bulk, subject: 'Re: laporan', text: 'Pesan otomatis: email Anda sudah saya terima.', headers: { Precedence: 'bulk', 'X-Autoreply': 'yes' } }));
    await gw.deliver(await composeMail({ from: control, subject: 'Trotoar rusak di Jl. Mawar', text: 'Trotoar di depan pasar rusak dan berlubang.' }));
    await replyTo(control, /diterima/); // read in order: the three before it are done
    for (const address of [ooo, list, bulk]) {
      expect(await reportsOf(address)).toHaveLength(0);
      expect(gw.sink.messages().filter((m) => m.envelope.to.includes(address))).toHaveLength(0);
    }
    const processed = await gw.folder('LAPOR/Diproses');
    expect(processed.length).toBeGreaterThanOrEqual(4);
  });

  it('a bounce of our notification marks it failed and the address undeliverable; nothing more is sent there', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({ from, subject: 'Sampah menumpuk di TPS', text: 'Sampah di TPS Jl. Cendana menumpuk dua minggu.' }));
    const report = await oneReportOf(from);
    const { parsed } = await replyTo(from, /diterima/);
    const ours = parsed.messageId!.replace(/^<|>$/g, '');
    await gw.deliver(bounceOf(from, ours));
    await eventually(async () => {
      const { rows } = await gw.env.runtime.db.query<{ status: string; error: string | null }>(`SELECT status, error FROM messages WHERE transport_id = $1`, [ours]);
      return rows[0]?.status === 'failed' ? rows[0] : undefined;
    }, 15_000, 'the receipt marked failed');
    // The citizen's mailbox is gone; a status reply to it is recorded undeliverable, never sent.
    gw.sink.clear();
    await gw.deliver(await composeMail({ from, subject: `CEK ${report.tracking_id}`, text: 'status?' }));
    const failed = await eventually(async () => {
      const { rows } = await gw.env.runtime.db.query<{ status: string; error: string }>(
        `SELECT status, error FROM messages WHERE report_seq = $1 AND direction = 'out' AND kind = 'status'`,
        [report.seq],
      );
      return rows[0]?.status === 'failed' ? rows[0] : undefined;
    }, 15_000, 'the status reply recorded undeliverable');
    expect(failed.error).toMatch(/bounced/);
    expect(gw.sink.messages().filter((m) => m.envelope.to.includes(from))).toHaveLength(0);
  });

  it('a forged bounce naming nothing we sent changes nothing', async () => {
    const from = newCitizen();
    await gw.deliver(bounceOf(from, `report-7741822739.forged@lapor.example`));
    await gw.deliver(await composeMail({ from, subject: 'Air PDAM keruh', text: 'Air PDAM di Perum Asri keruh seminggu ini.' }));
    await replyTo(from, /diterima/);
  });
});

describe('what a citizen sends', () => {
  it('a Cc is never copied, and the reply goes to the From address alone', async () => {
    const [from, copied] = [newCitizen(), newCitizen()];
    await gw.deliver(await composeMail({ from, cc: copied, subject: 'Pungutan liar di pasar', text: 'Petugas pasar menarik uang kebersihan tanpa karcis.' }));
    const { envelope, parsed } = await replyTo(from, /diterima/);
    expect(envelope.to).toEqual([from]);
    expect(parsed.cc).toBeUndefined();
    expect(gw.sink.messages().some((m) => m.envelope.to.includes(copied))).toBe(false);
  });

  it('RAHASIA in the subject with a PDF: a confidential report with the file; an executable is left out and named', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({
      from,
      subject: 'RAHASIA: Pungutan SKCK di Polsek',
      text: 'Saya diminta membayar Rp 150.000 untuk SKCK, kuitansi terlampir.',
      attachments: [
        { filename: 'kwitansi.pdf', content: Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n'), contentType: 'application/pdf' },
        { filename: 'foto.jpg', content: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200, 1)]), contentType: 'image/jpeg' },
      ],
    }));
    const report = await oneReportOf(from);
    expect(report).toMatchObject({ rahasia: true });
    expect(report.text).toMatch(/^Pungutan SKCK di Polsek/);
    expect(report.text).toContain('[lampiran tidak disimpan: foto.jpg: jenis berkas tidak diterima]');
    const { rows } = await gw.env.runtime.db.query<{ filename: string; content_type: string }>('SELECT filename, content_type FROM attachments WHERE report_seq = $1', [report.seq]);
    expect(rows).toEqual([{ filename: 'kwitansi.pdf', content_type: 'application/pdf' }]);
  });

  it('keeps at most LAPOR_MAIL_MAX_ATTACHMENTS files and names the rest in the report', async () => {
    const from = newCitizen();
    const jpeg = (i: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`foto ke-${i}`)]);
    await gw.deliver(await composeMail({
      from,
      subject: 'Tujuh foto jalan rusak',
      text: 'Foto-foto jalan rusak di sepanjang Jl. Raya Cipanas terlampir.',
      attachments: Array.from({ length: 7 }, (_, i) => ({ filename: `jalan-${i + 1}.jpg`, content: jpeg(i + 1), contentType: 'image/jpeg' })),
    }));
    const report = await oneReportOf(from);
    const { rows } = await gw.env.runtime.db.query<{ filename: string }>('SELECT filename FROM attachments WHERE report_seq = $1 ORDER BY id', [report.seq]);
    expect(rows.map((r) => r.filename)).toEqual(['jalan-1.jpg', 'jalan-2.jpg', 'jalan-3.jpg', 'jalan-4.jpg', 'jalan-5.jpg']);
    expect(report.text).toContain('[lampiran tidak disimpan: jalan-6.jpg: lebih dari 5 berkas]');
    expect(report.text).toContain('[lampiran tidak disimpan: jalan-7.jpg: lebih dari 5 berkas]');
  });

  it('one address may file a few mails an hour; more are kept but not filed nor answered', async () => {
    const from = newCitizen();
    for (let i = 0; i < 4; i++) await gw.deliver(await composeMail({ from, subject: `Keluhan ${i}`, text: `Antrean samsat panjang sekali hari ke-${i}, mohon ditertibkan.` }));
    await eventually(async () => ((await reportsOf(from)).length === 3 ? true : undefined), 15_000, 'three reports');
    const control = newCitizen();
    await gw.deliver(await composeMail({ from: control, subject: 'Halte rusak', text: 'Atap halte di Jl. Sudirman bocor dan roboh sebagian.' }));
    await replyTo(control, /diterima/);
    expect(await reportsOf(from)).toHaveLength(3);
  });
});

/** A delivery status notification as Postfix writes it, returning one of our messages. */
function bounceOf(recipient: string, ourMessageId: string): string {
  return [
    'Return-Path: <>',
    'From: Mail Delivery System <MAILER-DAEMON@mx.surel.example>',
    `To: ${OUR_ADDRESS}`,
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <bounce.${Date.now()}.${Math.random()}@mx.surel.example>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered.',
    '--B',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.surel.example',
    '',
    `Final-Recipient: rfc822; ${recipient}`,
    'Action: failed',
    'Status: 5.1.1',
    '',
    '--B',
    'Content-Type: text/rfc822-headers',
    '',
    `From: ${OUR_ADDRESS}`,
    `To: ${recipient}`,
    `Message-ID: <${ourMessageId}>`,
    '',
    '--B--',
    '',
  ].join('\r\n');
}

describe('a promotional mail', () => {
  it('is filed as spam (tidak dapat diproses) and answered once', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({
      from,
      subject: 'Promo spesial akhir tahun!',
      html: '<p>Diskon hingga 70% untuk semua produk. Penawaran terbatas!</p><p><a href="https://toko.example/u">Unsubscribe</a></p>',
    }));
    const report = await oneReportOf(from);
    await statusOf(report.tracking_id, 'tidak_dapat_diproses');
    await replyTo(from, /tidak dapat diproses/);
    const control = newCitizen();
    await gw.deliver(await composeMail({ from: control, subject: 'Lampu taman mati', text: 'Lampu taman kota di Jl. Veteran mati semua sejak kemarin.' }));
    await replyTo(control, /diterima/);
    expect(gw.sink.messages().filter((m) => m.envelope.to.includes(from))).toHaveLength(1);
  });
});

describe('hostile mail', () => {
  it('each is filed or quarantined with a reason, and the intake stays up', async () => {
    const [nested, huge, longHeader, noFrom, base64, charset] = [newCitizen(), newCitizen(), newCitizen(), newCitizen(), newCitizen(), newCitizen()];
    let deep = 'Content-Type: text/plain\r\n\r\nisi terdalam\r\n';
    for (let i = 60; i > 0; i--) deep = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${deep}--n${i}--\r\n`;
    await gw.deliver(`From: ${nested}\r\nSubject: bersarang\r\nMessage-ID: <nested.${nested}>\r\nMIME-Version: 1.0\r\n${deep}`);
    await gw.deliver(await composeMail({ from: huge, subject: 'Video jalan rusak', text: 'lihat lampiran', messageId: `<huge.${huge}>`, attachments: [{ filename: 'video.jpg', content: Buffer.alloc(30 * 1024 * 1024, 7) }] }));
    await gw.deliver(`From: ${longHeader}\r\nSubject: panjang\r\nMessage-ID: <long.${longHeader}>\r\nX-Junk: ${'x'.repeat(1024 * 1024)}\r\n\r\nlampu mati di gang Mawar`);
    await gw.deliver(`Subject: tanpa pengirim\r\nMessage-ID: <nofrom.${noFrom}>\r\n\r\nSaluran air tersumbat di Jl. Cemara sejak kemarin.`);
    await gw.deliver(`From: ${base64}\r\nSubject: base64 rusak\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSmFsYW4gcnVzYWsgZGkgSmwuIE1lbGF0aQ==!!!%%%\r\n`);
    await gw.deliver(Buffer.concat([Buffer.from(`From: ${charset}\r\nSubject: charset aneh\r\nContent-Type: text/plain; charset=x-tidak-ada\r\n\r\nPohon tumbang di Jl. Kenari menutup jalan `), Buffer.from([0xe9, 0x93, 0x94])]));

    // The intake is still up: a plain mail after them is filed and answered.
    const control = newCitizen();
    await gw.deliver(await composeMail({ from: control, subject: 'Banjir di underpass', text: 'Underpass Jl. Ahmad Yani banjir setinggi lutut.' }));
    await replyTo(control, /diterima/);

    const quarantined = await gw.folder('LAPOR/Karantina');
    expect(quarantined.map((m) => m.messageId)).toEqual(expect.arrayContaining([`nested.${nested}`, `huge.${huge}`, `long.${longHeader}`, `nofrom.${noFrom}`]));
    for (const address of [nested, huge, longHeader]) expect(await reportsOf(address)).toHaveLength(0);
    expect((await oneReportOf(base64)).text).toContain('Jalan rusak di Jl. Melati');
    expect((await oneReportOf(charset)).text).toContain('Pohon tumbang di Jl. Kenari');
    const reasons = gw.env.logs.filter((l) => l.includes('mail quarantined')).map((l) => (JSON.parse(l) as { reason: string }).reason);
    expect(reasons).toEqual(expect.arrayContaining([expect.stringContaining('multipart'), expect.stringContaining('larger than'), expect.stringContaining('header block'), 'no sender address (From)']));
  }, 60_000);
});

describe('the SMTP server refuses for a while', () => {
  it('a 451 is tried again and the reply arrives once', async () => {
    const from = newCitizen();
    gw.sink.failNext(451, '4.3.0 Try again later');
    await gw.deliver(await composeMail({ from, subject: 'Jembatan retak', text: 'Jembatan gantung di Desa Suka Maju retak di tengah.' }));
    await replyTo(from, /diterima/);
    await new Promise((r) => setTimeout(r, 500));
    expect(gw.sink.messages().filter((m) => m.envelope.to.includes(from))).toHaveLength(1);
  });
});

describe('an anonymous report by email', () => {
  it('shows an agency neither the address, the name nor the signature; the reporter is told by email', async () => {
    const from = newCitizen();
    await gw.deliver(await composeMail({
      from: `Budi Santoso <${from}>`,
      subject: 'ANONIM Pungutan surat pindah',
      text: 'Petugas kelurahan meminta Rp 200.000 untuk surat pindah tanpa kuitansi.\n\n-- \nBudi Santoso\nHP 0812 7777 1234',
    }));
    const report = await oneReportOf(from);
    expect(report.anonim).toBe(true);
    await replyTo(from, /diterima/);
    const admin = await account(gw.env, 'super_admin');
    const agency = await account(gw.env, 'agency_admin', { agency: 'dukcapil' });
    expect((await call(gw.env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/verify`, admin, { kind: 'pengaduan', weight: 'sedang' })).statusCode).toBe(200);
    expect((await call(gw.env, 'POST', `/api/v1/admin/reports/${report.tracking_id}/dispose`, admin, { agency: 'dukcapil' })).statusCode).toBe(200);
    const seen = [
      await call(gw.env, 'GET', `/api/v1/admin/reports/${report.tracking_id}`, agency),
      await call(gw.env, 'GET', '/api/v1/admin/reports?limit=200', agency),
      await call(gw.env, 'GET', `/api/v1/admin/reports/${report.tracking_id}/reporter`, agency),
    ];
    expect(seen[0]!.statusCode).toBe(200);
    expect(seen[0]!.body).toContain('Petugas kelurahan meminta');
    expect(seen[2]!.statusCode).toBe(403);
    for (const res of seen) for (const trace of ['Budi', 'Santoso', from, '7777 1234']) expect(res.body).not.toContain(trace);
  });
});

describe('personal data', () => {
  it('no address, name or subject of a citizen reaches the logs', async () => {
    const all = gw.env.logs.join('\n');
    expect(all).not.toMatch(/warga\d+@surel\.example/);
    expect(all).not.toContain('Listrik padam');
    expect(all).not.toContain('Pungutan SKCK');
    expect(all).not.toContain('Budi Santoso');
  });
});
