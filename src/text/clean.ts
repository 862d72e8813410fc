/**
 * Cleaning: the text a message's tokens are made from. `cleanText` is for plain-text
 * streams; `cleanEmail` is the extra step the pipeline turns on for e-mail sources.
 */
import { htmlToPlainText, looksLikeHtml } from './html.js';
import type { MailText } from './mail-text.js';
import { normalizeText } from './normalize.js';
import { readWithPostalMime } from './postal-mail.js';
import { readSimpleMail } from './simple-mail.js';

/**
 * Cleans a plain-text message: HTML (when the text looks like HTML) becomes its text,
 * then URLs, e-mail addresses and numbers become `xxurl`, `xxemail`, `xxnum`, Unicode is
 * NFKC-normalised, lower-cased, and whitespace collapsed to single spaces.
 */
export function cleanText(text: string): string {
  return normalizeText(looksLikeHtml(text) ? htmlToPlainText(text) : text);
}

// The end of the header block: the first empty line (CRLF or LF).
const HEADER_END = /\r?\n\r?\n/;
// Mail starts with a header field (`Name:`; printable ASCII without ':' or space), or with
// the mbox `From ` separator line that archives such as SpamAssassin's keep.
const MAIL_START = /^(?:From [^\n]*\n)?[!-9;-~]+:/;

/**
 * Cleans a raw RFC 822 e-mail: keeps the decoded Subject and body (text/plain preferred,
 * else the HTML part as text), drops every other header, then applies `cleanText`.
 * Never rejects: input that cannot be parsed as mail is cleaned as plain text.
 *
 * Bytes are accepted as well as strings: only bytes let 8-bit parts be decoded with the
 * charset the part declares (a string has already been decoded once, usually as UTF-8).
 */
export async function cleanEmail(raw: string | Uint8Array): Promise<string> {
  return cleanMail(raw, true);
}

/**
 * `cleanEmail` with every message parsed by postal-mime: the route before the single-part
 * reader, kept as the reference that reader is tested and benchmarked against.
 */
export async function cleanEmailWithPostalMime(raw: string | Uint8Array): Promise<string> {
  return cleanMail(raw, false);
}

async function cleanMail(raw: string | Uint8Array, simpleFirst: boolean): Promise<string> {
  const head = asString(raw.slice(0, 1024));
  // postal-mime reads any first line as a header, so "hello world" would lose its text.
  if (!MAIL_START.test(head.trimStart())) return cleanText(asString(raw));
  // Bytes stay with postal-mime: only it decodes 8-bit parts by their declared charset.
  let parsed = simpleFirst && typeof raw === 'string' ? readSimpleMailOrNull(raw) : null;
  if (parsed === null) {
    try {
      parsed = await readWithPostalMime(raw);
    } catch {
      // Malformed beyond postal-mime's tolerance (or over its header-size limit).
      return cleanText(asString(raw));
    }
  }
  return cleanParsedMail(parsed, raw);
}

/** The single-part reader, declining (null) where it throws: postal-mime then decides. */
function readSimpleMailOrNull(raw: string): MailText | null {
  try {
    return readSimpleMail(raw);
  } catch {
    return null;
  }
}

function cleanParsedMail(parsed: MailText, raw: string | Uint8Array): string {
  const subject = normalizeText(parsed.subject ?? '');
  let body: string;
  if (parsed.text !== undefined && parsed.text.trim() !== '') {
    // "text/plain" parts often carry HTML in spam; cleanText sniffs for it.
    body = cleanText(parsed.text);
  } else if (parsed.html !== undefined && parsed.html.trim() !== '') {
    body = normalizeText(htmlToPlainText(parsed.html));
  } else {
    // No usable text part, e.g. a multipart whose boundary never matches: the raw body
    // is still the best text there is, headers excluded.
    body = cleanText(rawBody(asString(raw)));
  }
  if (subject === '') return body;
  return body === '' ? subject : `${subject} ${body}`;
}

function asString(raw: string | Uint8Array): string {
  return typeof raw === 'string' ? raw : new TextDecoder('utf-8').decode(raw);
}

function rawBody(raw: string): string {
  const match = HEADER_END.exec(raw);
  return match === null ? '' : raw.slice(match.index + match[0].length);
}
