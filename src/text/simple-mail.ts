/**
 * A reader for the common e-mail: text/plain and text/html parts, alone or in multiparts
 * (alternative, mixed, signed, related), in 7bit/8bit, quoted-printable or base64, in a
 * well-known charset; other parts (attachments) are skipped undecoded. 97 % of the
 * SpamAssassin corpus is such a message.
 *
 * Why hand-written: postal-mime reads these correctly but slowly (each part's decoder
 * gathers its lines into a Blob and reads it back as an ArrayBuffer, a string input is
 * first encoded to bytes, and attachments are decoded too); that was ≈ 75 % of the clean
 * stage (docs/performance.md). This reader gives exactly what postal-mime 4 gives for the
 * messages it accepts (each rule names the postal-mime behaviour it repeats) and declines,
 * with `null`, anything else (nested messages, comments in structured
 * headers, unusual charsets...), which then goes to postal-mime.
 * test/text/simple-mail.test.ts checks the two agree on every corpus message and on edge
 * cases; test/text/clean-golden.test.ts that cleaning's output did not change.
 */
import type { TextDecoder } from 'node:util';
import { decodeWords } from 'postal-mime';
import { decodeBody, decodeFlowedText, decoderFor } from './mail-decode.js';
import type { MailText } from './mail-text.js';

/**
 * Headers (of all parts together) longer than this go to postal-mime, which enforces its
 * 2 MB limit in UTF-8 bytes; 500 000 UTF-16 units are at most 1.5 MB of UTF-8.
 */
const MAX_HEADER_CHARS = 500_000;
/** Deeper multiparts go to postal-mime (which allows 256 levels). */
const MAX_DEPTH = 16;

// `type/subtype` and `; name=value` parameters with a token or a plain quoted value, and
// nothing postal-mime's structured-header parser treats specially: no comments, escapes,
// RFC 2231 `name*` sections or stray text after a quoted value.
const MEDIA_TYPE = /^[ \t]*([A-Za-z0-9!#$%&'+.^_`|~-]+\/[A-Za-z0-9!#$%&'+.^_`|~-]+)[ \t]*/y;
const PARAMETER = /;[ \t]*([A-Za-z0-9_.-]+)[ \t]*=[ \t]*(?:"([^"\\()]*)"|([^ \t;"\\()]+))[ \t]*/y;
const TRAILING_SEMICOLON = /;?[ \t]*$/y;
// The disposition type, when nothing before the first ';' could be a comment or a quote.
const DISPOSITION = /^[ \t]*([A-Za-z0-9!#$%&'+.^_`|~-]+)[ \t]*(?:;|$)/;
const FIELDS = new Set(['subject', 'content-type', 'content-transfer-encoding', 'content-disposition']);
const SURROGATE = /[\uD800-\uDFFF]/;
const NON_ASCII = /[^\x00-\x7f]/;

/** Thrown inside the reader where postal-mime has to decide; `readSimpleMail` returns null. */
class Declined extends Error {}

interface ContentType {
  mediaType: string;
  params: Map<string, string>;
}

/** A MIME node as postal-mime's MimeNode tracks it, with the body as a range of `raw`. */
interface Part {
  parent: Part | null;
  depth: number;
  state: 'header' | 'body' | 'finished';
  headerLines: string[];
  /** The FIELDS among its header fields, unfolded, in order; set when the header ends. */
  headers: { key: string; value: string }[];
  /** Multipart subtype, or false for a leaf; set when the header ends. */
  multipart: string | false;
  children: Part[];
  finalizedChildren: number;
  bodyStart: number;
  bodyEnd: number;
}

interface Boundary {
  /** `--` and the boundary parameter. */
  marker: string;
  part: Part;
}

/** The Subject and bodies as postal-mime would report them, or null to leave it to postal-mime. */
export function readSimpleMail(raw: string): MailText | null {
  try {
    return new Reader(raw).read();
  } catch (err) {
    if (err instanceof Declined) return null;
    throw err;
  }
}

class Reader {
  private readonly root: Part = newPart(null);
  private readonly boundaries: Boundary[] = [];
  private headerChars = 0;

  constructor(private readonly raw: string) {}

  read(): MailText {
    const { raw, boundaries } = this;
    let current = this.root;
    let pos = 0;
    // postal-mime's parse loop: one line at a time; a boundary line of an open multipart
    // ends the current part, anything else is fed to it.
    while (pos < raw.length) {
      const newline = raw.indexOf('\n', pos);
      const lineStart = pos;
      // postal-mime's readLine drops a line's trailing CR (and LF) characters.
      let end = newline === -1 ? raw.length : newline;
      while (end > lineStart && raw.charCodeAt(end - 1) === 13) end--;
      pos = newline === -1 ? raw.length : newline + 1;
      const boundary =
        boundaries.length > 0 && end - lineStart > 2 && raw.startsWith('--', lineStart) ? this.matchBoundary(lineStart, end) : null;
      if (boundary === null) {
        this.feed(current, lineStart, end, pos);
        continue;
      }
      endBody(current, lineStart);
      if (boundary.terminator) {
        this.finalize(boundary.part);
        current = boundary.part.parent ?? this.root;
      } else {
        this.finalizeChildren(boundary.part);
        current = newPart(boundary.part);
      }
    }
    endBody(current, raw.length);
    this.finalize(this.root);
    return this.collect();
  }

  /** postal-mime's boundary test, innermost open multipart first: `--b` or `--b--`, then only SP/HTAB. */
  private matchBoundary(start: number, end: number): { part: Part; terminator: boolean } | null {
    const { raw } = this;
    for (let i = this.boundaries.length - 1; i >= 0; i--) {
      const { marker, part } = this.boundaries[i]!;
      if (end - start < marker.length || !raw.startsWith(marker, start)) continue;
      let after = start + marker.length;
      const terminator = end - after >= 2 && raw.startsWith('--', after);
      if (terminator) after += 2;
      while (after < end && (raw.charCodeAt(after) === 32 || raw.charCodeAt(after) === 9)) after++;
      if (after === end) return { part, terminator };
    }
    return null;
  }

  private feed(part: Part, start: number, end: number, next: number): void {
    if (part.state !== 'header') return;
    if (end === start) {
      part.state = 'body';
      part.bodyStart = next;
      this.processHeaders(part);
      return;
    }
    this.headerChars += end - start;
    if (this.headerChars > MAX_HEADER_CHARS) throw new Declined();
    part.headerLines.push(this.raw.slice(start, end));
  }

  /** postal-mime's processHeaders: unfold (only SP and HTAB fold), then read the content type. */
  private processHeaders(part: Part): void {
    const folded: string[][] = [];
    for (const line of part.headerLines) {
      // A lone surrogate postal-mime would decode to U+FFFD.
      if (SURROGATE.test(line)) throw new Declined();
      const folds = folded.length > 0 && (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9);
      if (folds) folded[folded.length - 1]!.push(line);
      else folded.push([line]);
    }
    part.headers = [];
    for (const lines of folded) {
      const unfolded = lines.length === 1 ? lines[0]! : lines.join('');
      const sep = unfolded.indexOf(':');
      const key = trimWsp(sep < 0 ? unfolded : unfolded.slice(0, sep)).toLowerCase();
      // Only the fields this reader looks at are kept (in order: the first one counts).
      if (!FIELDS.has(key)) continue;
      // A bare CR inside a field becomes a space.
      const value = sep < 0 ? '' : trimWsp(unfolded.slice(sep + 1).replace(/[\r\n]+/g, ' '));
      part.headers.push({ key, value });
    }
    // A multipart/digest's parts default to message/rfc822: left to postal-mime.
    if (part.parent?.multipart === 'digest') throw new Declined();
    const type = mediaTypeOf(part);
    if (!type.startsWith('multipart/')) return;
    part.multipart = type.slice('multipart/'.length);
    const boundary = contentTypeOf(part).params.get('boundary');
    // Without a boundary postal-mime reads no parts at all; a non-ASCII one it compares as bytes.
    if (!boundary || NON_ASCII.test(boundary) || part.depth >= MAX_DEPTH) throw new Declined();
    this.boundaries.push({ marker: `--${boundary}`, part });
  }

  private finalize(part: Part): void {
    if (part.state === 'finished') return;
    if (part.state === 'header') this.processHeaders(part);
    const i = this.boundaries.findLastIndex((b) => b.part === part);
    if (i >= 0) this.boundaries.splice(i, 1);
    this.finalizeChildren(part);
    part.state = 'finished';
  }

  private finalizeChildren(part: Part): void {
    while (part.finalizedChildren < part.children.length) this.finalize(part.children[part.finalizedChildren++]!);
  }

  /**
   * postal-mime's collectNode and renderTextContent for text parts: each text part is
   * filed under its closest multipart/alternative (or itself), and a body joins, per
   * entry, that entry's parts of its type. Where postal-mime would convert an entry to the
   * other type (HTML to text with its own converter), this reader declines.
   */
  private collect(): MailText {
    const entries = new Map<Part, { plain: string[]; html: string[] }>();
    const types = new Set<'plain' | 'html'>();
    const walk = (part: Part, alternative: Part | null): void => {
      if (part.multipart === false) {
        const type = mediaTypeOf(part);
        // Nested messages and delivery reports: postal-mime parses or files them specially.
        if (type.startsWith('message/')) throw new Declined();
        if ((type === 'text/plain' || type === 'text/html') && dispositionOf(part) !== 'attachment') {
          const kind = type === 'text/html' ? 'html' : 'plain';
          const key = alternative ?? part;
          const entry = entries.get(key) ?? { plain: [], html: [] };
          entries.set(key, entry);
          entry[kind].push(this.textOf(part));
          types.add(kind);
        }
        return;
      }
      const inner = part.multipart === 'alternative' ? part : alternative;
      for (const child of part.children) walk(child, inner);
    };
    walk(this.root, null);
    const out = { plain: [] as string[], html: [] as string[] };
    for (const entry of entries.values()) {
      for (const kind of types) {
        if (entry[kind].length === 0) throw new Declined();
        out[kind].push(...entry[kind]);
      }
    }
    const text = out.plain.join('\n');
    const html = out.html.join('\n');
    const subject = this.root.headers.find((h) => h.key === 'subject')?.value;
    return {
      // postal-mime: `header.value` truthy → decodeWords(value), else no subject.
      subject: subject ? decodeWords(subject) : undefined,
      // An empty body leaves the field out, as postal-mime's `if (textContent.plain)` does.
      text: text !== '' ? text : undefined,
      html: html !== '' ? html : undefined,
    };
  }

  /** postal-mime's getTextContent of a text part. */
  private textOf(part: Part): string {
    const type = contentTypeOf(part);
    const decoder: TextDecoder | null = decoderFor(type.params.get('charset'));
    if (decoder === null) throw new Declined();
    const encoding = firstHeader(part, 'content-transfer-encoding') ?? '';
    // Comments or quotes could change the token postal-mime reads.
    if (/[()"\\]/.test(encoding)) throw new Declined();
    const token = (/[\w-]+/.exec(encoding.toLowerCase()) ?? [''])[0];
    const text = decodeBody(this.raw.slice(part.bodyStart, part.bodyEnd), token, decoder);
    // postal-mime reads parameters it tests with a regular expression as strings ('undefined' when absent).
    const flowed = /^flowed$/i.test(String(type.params.get('format')));
    return flowed ? decodeFlowedText(text, /^yes$/i.test(String(type.params.get('delsp')))) : text;
  }
}

function newPart(parent: Part | null): Part {
  const part: Part = {
    parent,
    depth: parent === null ? 0 : parent.depth + 1,
    state: 'header',
    headerLines: [],
    headers: [],
    multipart: false,
    children: [],
    finalizedChildren: 0,
    bodyStart: 0,
    bodyEnd: 0,
  };
  parent?.children.push(part);
  return part;
}

/** A part's body is the lines it was fed: from its header's end to the line that moved on. */
function endBody(part: Part, at: number): void {
  if (part.state === 'body' && part.bodyEnd === 0) part.bodyEnd = at;
}

function firstHeader(part: Part, key: string): string | undefined {
  return part.headers.find((h) => h.key === key)?.value;
}

/** Strips SP and HTAB only, as postal-mime does (`trim` would also strip U+00A0 and the like). */
function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

/**
 * The media type (lower case) from the first Content-Type (text/plain without one). Only
 * the text before the first ';' is read, so an attachment's odd parameters do not matter.
 */
function mediaTypeOf(part: Part): string {
  const value = firstHeader(part, 'content-type');
  if (value === undefined) return 'text/plain';
  MEDIA_TYPE.lastIndex = 0;
  const type = MEDIA_TYPE.exec(value);
  if (type === null || (MEDIA_TYPE.lastIndex < value.length && value[MEDIA_TYPE.lastIndex] !== ';')) throw new Declined();
  return type[1]!.toLowerCase();
}

/** Media type and parameters (names lower case, first one wins) of a plainly written Content-Type. */
function contentTypeOf(part: Part): ContentType {
  const value = firstHeader(part, 'content-type');
  if (value === undefined) return { mediaType: 'text/plain', params: new Map() };
  const mediaType = mediaTypeOf(part);
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
  if (!TRAILING_SEMICOLON.test(value)) throw new Declined();
  return { mediaType, params };
}

/** The disposition type (lower case), '' without the header. */
function dispositionOf(part: Part): string {
  const value = firstHeader(part, 'content-disposition');
  if (value === undefined || value === '') return '';
  const type = DISPOSITION.exec(value);
  if (type === null) throw new Declined();
  return type[1]!.toLowerCase();
}
