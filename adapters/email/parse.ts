import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';

/**
 * Raw RFC 5322 bytes → the parts of a mail the gateway reads, through mailparser. Whatever a sender
 * can break (a charset nobody knows, broken base64, a header line of a megabyte, multiparts nested
 * sixty deep) either parses with a problem noted or is refused with the reason: it never throws
 * past `readMail`.
 */

export interface MailFile {
  filename: string | undefined;
  /** As the sender declared it; the kept type is read from the bytes (AttachmentSink). */
  contentType: string;
  data: Buffer;
  /** Shown inside the HTML (a signature's logo, referenced by cid:), not sent as a file. */
  related: boolean;
}

export interface Mail {
  /** Message-ID without the angle brackets. */
  messageId: string | undefined;
  /** In-Reply-To and References, without angle brackets, nearest first. */
  thread: string[];
  subject: string;
  from: { address: string; name: string } | undefined;
  /** `''` for `Return-Path: <>` (a bounce or an auto-reply), undefined when absent. */
  returnPath: string | undefined;
  /** Lower-cased header name → its first raw value (the few the loop checks read). */
  headers: Map<string, string>;
  contentType: string;
  reportType: string | undefined;
  /** The body as text: text/plain, else the HTML turned into text. */
  text: string;
  files: MailFile[];
  /** A bounce's delivery-status part and the headers of the message it returns. */
  deliveryStatus: string | undefined;
  returnedHeaders: string | undefined;
  /** What went wrong but did not stop the reading (shown to operators, logged without content). */
  problems: string[];
}

/** How many multipart containers a message may have (real mail has a handful; sixty nested is an attack). */
export const MAX_MULTIPARTS = 20;
/** Longest header block read; a larger one is refused (a mail client writes a few kilobytes). */
export const MAX_HEADER_BYTES = 256 * 1024;

export async function readMail(raw: Buffer): Promise<Mail | { refused: string }> {
  if (!headerFits(raw)) return { refused: `the header block is larger than ${MAX_HEADER_BYTES / 1024} KiB` };
  const multiparts = multipartCount(raw);
  if (multiparts > MAX_MULTIPARTS) return { refused: `${multiparts} multipart containers, nested or not (at most ${MAX_MULTIPARTS})` };

  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(raw, {
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
      keepDeliveryStatus: true,
      // html-to-text on megabytes of markup takes seconds: the text is cut long before that anyway.
      maxHtmlLengthToParse: 2 * 1024 * 1024,
    });
  } catch (err) {
    return { refused: `not a readable message: ${(err as Error).message}` };
  }

  const problems: string[] = [];
  const headers = new Map<string, string>();
  for (const line of parsed.headerLines) {
    const value = line.line.slice(line.line.indexOf(':') + 1).trim();
    if (!headers.has(line.key)) headers.set(line.key, value);
  }
  const contentType = parsed.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  const from = firstAddress(parsed.from);
  if (parsed.from && !from) problems.push('the From header holds no address');

  const text = parsed.text ?? '';
  if (!parsed.text && parsed.textConversionError) problems.push('the HTML body could not be turned into text');
  // mailparser reads a charset it does not know as UTF-8: what was not UTF-8 becomes U+FFFD.
  const unknown = declaredCharsets(raw).filter((c) => !knownCharset(c));
  if (unknown.length) problems.push(`unknown charset ${unknown.join(', ')}: read as UTF-8, unreadable bytes replaced by �`);
  else if (text.includes('\ufffd')) problems.push('part of the text could not be decoded: unreadable bytes replaced by �');

  const files: MailFile[] = [];
  let deliveryStatus: string | undefined;
  let returnedHeaders: string | undefined;
  for (const attachment of parsed.attachments) {
    const type = attachment.contentType.toLowerCase();
    if (type === 'message/delivery-status' || type === 'message/global-delivery-status') deliveryStatus = attachment.content.toString('utf8');
    else if (type === 'text/rfc822-headers' || type === 'message/rfc822' || type === 'message/global-headers') {
      returnedHeaders = attachment.content.toString('utf8').split(/\r?\n\r?\n/)[0];
    } else files.push({ filename: attachment.filename, contentType: type, data: attachment.content, related: Boolean(attachment.related) });
  }

  const returnPath = headers.get('return-path');
  return {
    messageId: bare(parsed.messageId),
    thread: [...new Set([...ids(parsed.inReplyTo), ...ids(parsed.references).reverse()])].slice(0, 10),
    subject: parsed.subject ?? '',
    from,
    returnPath: returnPath === undefined ? undefined : bare(returnPath) ?? '',
    headers,
    contentType: contentType?.value?.toLowerCase() ?? 'text/plain',
    reportType: contentType?.params?.['report-type']?.toLowerCase(),
    text,
    files,
    deliveryStatus,
    returnedHeaders,
    problems,
  };
}

function firstAddress(value: AddressObject | AddressObject[] | undefined): Mail['from'] {
  const list = Array.isArray(value) ? value : value ? [value] : [];
  for (const object of list) {
    for (const entry of object.value) {
      if (entry.address && entry.address.includes('@')) return { address: entry.address, name: entry.name ?? '' };
    }
  }
  return undefined;
}

function bare(id: string | undefined): string | undefined {
  const trimmed = id?.trim().replace(/^<|>$/g, '').trim();
  return trimmed || undefined;
}

/** Message-IDs from In-Reply-To / References, which mailparser gives as a string or a list. */
function ids(value: string | string[] | undefined): string[] {
  const all = (Array.isArray(value) ? value : value ? [value] : []).flatMap((v) => v.match(/<[^<>\s]{1,500}>/g) ?? [v]);
  return all.map(bare).filter((id): id is string => id !== undefined && id.length <= 500);
}

/** Whether the header block ends within the bytes we read. */
function headerFits(raw: Buffer): boolean {
  if (raw.length <= MAX_HEADER_BYTES) return true;
  const head = raw.subarray(0, MAX_HEADER_BYTES);
  return head.includes('\r\n\r\n') || head.includes('\n\n');
}

/**
 * Multipart containers declared anywhere in the message. mailparser follows any nesting, so a
 * hostile message is stopped here first; counting all of them (not just the depth) also bounds
 * a message of thousands of sibling parts.
 */
function multipartCount(raw: Buffer): number {
  let count = 0;
  for (const match of raw.toString('latin1').matchAll(/^content-type:[ \t]*(?:\r?\n[ \t]+)?multipart\//gim)) if (match) count++;
  return count;
}

/** Charsets the message declares (in any part's Content-Type or an encoded word), lower-cased. */
function declaredCharsets(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  const names = new Set<string>();
  for (const m of text.matchAll(/charset\s*=\s*"?([A-Za-z0-9_.:+-]{1,40})/gi)) names.add(m[1]!.toLowerCase());
  for (const m of text.matchAll(/=\?([A-Za-z0-9_.:+-]{1,40})(?:\*[A-Za-z-]+)?\?[BbQq]\?/g)) names.add(m[1]!.toLowerCase());
  return [...names];
}

/** Whether a charset is one we can decode (Node's decoders; UTF-7 mailparser decodes itself). */
function knownCharset(name: string): boolean {
  if (name === 'utf-7' || name === 'unicode-1-1-utf-7') return true;
  try {
    new TextDecoder(name);
    return true;
  } catch {
    return false;
  }
}
