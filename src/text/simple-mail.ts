/**
 * A reader for the common e-mail: one text/plain or text/html part (no multipart), in
 * 7bit/8bit/binary, quoted-printable or base64, in a well-known charset. 88 % of the
 * SpamAssassin corpus is such a message.
 *
 * Why hand-written: postal-mime reads these correctly but slowly (each part's decoder
 * gathers its lines into a Blob and reads it back as an ArrayBuffer, and a string input is
 * first encoded to bytes); that was ≈ 75 % of the clean stage (docs/performance.md). This
 * reader gives exactly what postal-mime 4 gives for the messages it accepts (each rule
 * below names the postal-mime behaviour it repeats) and declines, with `null`, anything
 * else, which then goes to postal-mime. test/text/simple-mail.test.ts checks the two
 * agree on every corpus message and on edge cases.
 */
import { TextDecoder } from 'node:util';
import { decodeWords } from 'postal-mime';
import type { MailText } from './mail-text.js';

/**
 * Headers longer than this go to postal-mime, which enforces its 2 MB header limit in
 * UTF-8 bytes; 500 000 UTF-16 units are at most 1.5 MB of UTF-8, safely under it.
 */
const MAX_HEADER_CHARS = 500_000;

/**
 * Charset labels read here, all ASCII-compatible: postal-mime's `getDecoder` hands each of
 * them, as written (trimmed, lower-cased), to `new TextDecoder(label)`. Other labels go
 * through its normalisation and alias tables, so those messages go to postal-mime.
 */
const CHARSETS = new Set([
  'utf8', 'utf-8', 'us-ascii', 'ascii', 'iso-8859-1', 'latin1', 'iso-8859-2', 'iso-8859-4', 'iso-8859-5',
  'iso-8859-7', 'iso-8859-9', 'iso-8859-13', 'iso-8859-15', 'windows-1250', 'windows-1251', 'windows-1252',
  'windows-1253', 'windows-1254', 'windows-1255', 'windows-1256', 'windows-1257', 'koi8-r', 'koi8-u',
  'gb2312', 'gbk', 'gb18030', 'big5', 'euc-kr', 'ks_c_5601-1987', 'euc-jp', 'shift_jis',
]);
const decoders = new Map<string, TextDecoder | null>();

// `type/subtype` and `; name=value` parameters with a token or a plain quoted value, and
// nothing postal-mime's structured-header parser treats specially: no comments, escapes,
// RFC 2231 `name*` sections or stray text after a quoted value.
const MEDIA_TYPE = /^[ \t]*([A-Za-z0-9!#$%&'+.^_`|~-]+\/[A-Za-z0-9!#$%&'+.^_`|~-]+)[ \t]*/y;
const PARAMETER = /;[ \t]*([A-Za-z0-9_.-]+)[ \t]*=[ \t]*(?:"([^"\\()]*)"|([^ \t;"\\()]+))[ \t]*/y;
const TRAILING_SEMICOLON = /;?[ \t]*$/y;
const NON_ASCII = /[^\x00-\x7f]/;
const SURROGATE = /[\uD800-\uDFFF]/;
const NOT_BASE64 = /[^a-zA-Z0-9+/=]+/g;

interface Header {
  key: string;
  value: string;
}

/** The Subject and body as postal-mime would report them, or null to leave it to postal-mime. */
export function readSimpleMail(raw: string): MailText | null {
  const head = readHeaders(raw);
  if (head === null) return null;
  const { headers, bodyStart } = head;
  const first = (key: string): string | undefined => headers.find((h) => h.key === key)?.value;

  const type = parseContentType(first('content-type') ?? 'text/plain');
  if (type === null || (type.mediaType !== 'text/plain' && type.mediaType !== 'text/html')) return null;
  // Flowed text is unwrapped by postal-mime; not done here.
  if (type.params.get('format') !== undefined && /^flowed$/i.test(type.params.get('format')!)) return null;
  const disposition = first('content-disposition');
  // A text part with `attachment` disposition is an attachment, not text.
  if (disposition !== undefined && !/^[ \t]*inline[ \t]*(?:;|$)/i.test(disposition)) return null;
  const decoder = decoderFor(type.params.get('charset'));
  if (decoder === null) return null;
  const encoding = transferEncoding(first('content-transfer-encoding') ?? '');
  if (encoding === null) return null;

  const body = raw.slice(bodyStart);
  let content: string;
  // postal-mime picks the decoder by substring: 'x-base64' is base64 too.
  if (/base64/i.test(encoding)) content = decoder.decode(decodeBase64(body));
  else if (/quoted-printable/i.test(encoding)) content = decoder.decode(decodeQuotedPrintable(utf8Bytes(body)));
  else content = decodePassThrough(body, decoder);

  const subject = first('subject');
  const html = type.mediaType === 'text/html';
  return {
    // postal-mime: `header.value` truthy → decodeWords(value), else no subject.
    subject: subject ? decodeWords(subject) : undefined,
    // An empty body leaves the field out, as postal-mime's `if (textContent.plain)` does.
    text: !html && content !== '' ? content : undefined,
    html: html && content !== '' ? content : undefined,
  };
}

/**
 * The header fields (first line to the first empty one) as postal-mime unfolds them, and
 * where the body starts. Null for headers this reader leaves to postal-mime.
 */
function readHeaders(raw: string): { headers: Header[]; bodyStart: number } | null {
  const lines: string[][] = [];
  let pos = 0;
  let bodyStart = raw.length;
  while (pos < raw.length) {
    const newline = raw.indexOf('\n', pos);
    const lineEnd = newline === -1 ? raw.length : newline;
    // postal-mime's readLine drops a line's trailing CR (and LF) characters.
    let end = lineEnd;
    while (end > pos && raw.charCodeAt(end - 1) === 13) end--;
    const line = raw.slice(pos, end);
    pos = newline === -1 ? raw.length : newline + 1;
    if (line === '') {
      bodyStart = pos;
      break;
    }
    // Only SP and HTAB fold; a first line starting with one is a field of its own.
    const folds = lines.length > 0 && (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9);
    if (folds) lines[lines.length - 1]!.push(line);
    else lines.push([line]);
  }
  // Over postal-mime's limit it throws; a lone surrogate it would decode to U+FFFD.
  if (bodyStart > MAX_HEADER_CHARS || SURROGATE.test(raw.slice(0, bodyStart))) return null;
  const headers = lines.map((parts): Header => {
    const unfolded = parts.join('');
    const sep = unfolded.indexOf(':');
    const key = trimWsp(sep < 0 ? unfolded : unfolded.slice(0, sep)).toLowerCase();
    const value = sep < 0 ? '' : trimWsp(unfolded.slice(sep + 1).replace(/[\r\n]+/g, ' '));
    return { key, value };
  });
  return { headers, bodyStart };
}

/** Strips SP and HTAB only, as postal-mime does (`trim` would also strip U+00A0 and the like). */
function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

/** Media type (lower case) and parameters (names lower case, first one wins), or null if not plain. */
function parseContentType(value: string): { mediaType: string; params: Map<string, string> } | null {
  MEDIA_TYPE.lastIndex = 0;
  const type = MEDIA_TYPE.exec(value);
  if (type === null) return null;
  const params = new Map<string, string>();
  let pos = MEDIA_TYPE.lastIndex;
  for (;;) {
    PARAMETER.lastIndex = pos;
    const param = PARAMETER.exec(value);
    if (param === null) break;
    const name = param[1]!.toLowerCase();
    if (!params.has(name)) params.set(name, param[2] ?? param[3]!);
    pos = PARAMETER.lastIndex;
  }
  TRAILING_SEMICOLON.lastIndex = pos;
  if (!TRAILING_SEMICOLON.test(value)) return null;
  return { mediaType: type[1]!.toLowerCase(), params };
}

/** The encoding token postal-mime picks the decoder by, or null if comments or quotes could change it. */
function transferEncoding(value: string): string | null {
  if (/[()"\\]/.test(value)) return null;
  return (/[\w-]+/.exec(value.toLowerCase()) ?? [''])[0];
}

/** postal-mime's `getDecoder` for a label it takes as written; null for any other label. */
function decoderFor(charset: string | undefined): TextDecoder | null {
  const label = (charset || 'utf8').trim().toLowerCase();
  if (!CHARSETS.has(label)) return null;
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(label);
    } catch {
      // A runtime without this encoding: postal-mime would try its aliases next.
      decoder = null;
    }
    decoders.set(label, decoder);
  }
  return decoder;
}

/** The string's UTF-8 bytes, as postal-mime's TextEncoder makes them; ASCII copied directly. */
function utf8Bytes(text: string): Uint8Array {
  return Buffer.from(text, NON_ASCII.test(text) ? 'utf8' : 'latin1');
}

/**
 * postal-mime's pass-through decoder: every line without its trailing CRs, each ended by
 * LF. ASCII text decodes to itself in every charset read here, so it skips the bytes.
 */
function decodePassThrough(body: string, decoder: TextDecoder): string {
  let text = body.includes('\r') ? body.replace(/\r+(?=\n)/g, '').replace(/\r+$/, '') : body;
  if (body !== '' && !text.endsWith('\n')) text += '\n';
  return NON_ASCII.test(text) ? decoder.decode(Buffer.from(text, 'utf8')) : text;
}

/** postal-mime's QPDecoder, over the whole body's bytes at once instead of line by line. */
function decodeQuotedPrintable(bytes: Uint8Array): Uint8Array {
  // Escapes only shrink a line, and each line gains at most its LF back.
  const out = new Uint8Array(bytes.length + 1);
  let o = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const newline = bytes.indexOf(10, pos);
    let end = newline === -1 ? bytes.length : newline;
    while (end > pos && bytes[end - 1] === 13) end--;
    // A line ending in '=' is a soft break: no LF after it.
    const soft = end > pos && bytes[end - 1] === 61;
    const len = soft ? end - 1 : end;
    for (let i = pos; i < len; i++) {
      const c = bytes[i]!;
      if (c === 61 && i + 2 < len) {
        const high = hexNibble(bytes[i + 1]!);
        const low = hexNibble(bytes[i + 2]!);
        if (high >= 0 && low >= 0) {
          out[o++] = (high << 4) | low;
          i += 2;
          continue;
        }
      }
      out[o++] = c;
    }
    if (!soft) out[o++] = 10;
    pos = newline === -1 ? bytes.length : newline + 1;
  }
  return out.subarray(0, o);
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * postal-mime's Base64Decoder: everything but base64 characters dropped, then each unit
 * between runs of '=' decoded on its own (some mailers pad every line), and a unit's
 * single leftover character (a truncated group) ignored.
 */
function decodeBase64(body: string): Uint8Array {
  const units = body.replace(NOT_BASE64, '').split(/=+/);
  return Buffer.concat(units.map((unit) => Buffer.from(unit.length % 4 === 1 ? unit.slice(0, -1) : unit, 'base64')));
}
