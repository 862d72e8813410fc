/**
 * Body decoding for the simple-mail reader: postal-mime 4's transfer decoders and charset
 * choice, repeated for the cases that reader accepts, working on a part's body as one
 * string instead of line by line through a Blob (see simple-mail.ts for why).
 */
import { TextDecoder } from 'node:util';

/**
 * Charset labels read here, all ASCII-compatible: postal-mime's `getDecoder` hands each of
 * them, as written (trimmed, lower-cased), to `new TextDecoder(label)`. Other labels go
 * through its normalisation and alias tables, so those parts go to postal-mime.
 */
const CHARSETS = new Set([
  'utf8', 'utf-8', 'us-ascii', 'ascii', 'iso-8859-1', 'latin1', 'iso-8859-2', 'iso-8859-4', 'iso-8859-5',
  'iso-8859-7', 'iso-8859-9', 'iso-8859-13', 'iso-8859-15', 'windows-1250', 'windows-1251', 'windows-1252',
  'windows-1253', 'windows-1254', 'windows-1255', 'windows-1256', 'windows-1257', 'koi8-r', 'koi8-u',
  'gb2312', 'gbk', 'gb18030', 'big5', 'euc-kr', 'ks_c_5601-1987', 'euc-jp', 'shift_jis',
]);
const decoders = new Map<string, TextDecoder | null>();
const NON_ASCII = /[^\x00-\x7f]/;
const NOT_BASE64 = /[^a-zA-Z0-9+/=]+/g;

/** postal-mime's `getDecoder` for a label it takes as written; null for any other label. */
export function decoderFor(charset: string | undefined): TextDecoder | null {
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

/**
 * A part's text as postal-mime's `getTextContent` gives it, from the part's body lines
 * (`body`: from after its header to the start of the line that ended it) and the
 * Content-Transfer-Encoding token. postal-mime picks the decoder by substring, so
 * 'x-base64' is base64 too, and any other token passes the bytes through.
 */
export function decodeBody(body: string, encoding: string, decoder: TextDecoder): string {
  if (/base64/i.test(encoding)) return decoder.decode(decodeBase64(body));
  if (/quoted-printable/i.test(encoding)) return decoder.decode(decodeQuotedPrintable(utf8Bytes(body)));
  return decodePassThrough(body, decoder);
}

/**
 * postal-mime's decodeFlowedText (RFC 3676), line for line: a line ending in a space is
 * joined to the next (less that space with DelSp=yes), except the signature separator;
 * one leading space of each line (space-stuffing) is dropped.
 */
export function decodeFlowedText(str: string, delSp: boolean): string {
  const parts: string[] = [];
  // The unfolded line being built starts at this index of parts and is this long.
  let lineStart = 0;
  let lineLength = 0;
  const lines = str.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.charAt(0) === ' ') line = line.slice(1);
    if (i > 0) {
      const last = parts.length > 0 ? parts[parts.length - 1]! : '';
      const isSignature = lineLength === 3 && parts.slice(lineStart).join('') === '-- ';
      if (last.endsWith(' ') && !isSignature) {
        if (delSp) {
          if (last.length > 1) parts[parts.length - 1] = last.slice(0, -1);
          else parts.pop();
          lineLength--;
        }
      } else {
        parts.push('\n');
        lineStart = parts.length;
        lineLength = 0;
      }
    }
    if (line !== '') {
      parts.push(line);
      lineLength += line.length;
    }
  }
  return parts.join('');
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
