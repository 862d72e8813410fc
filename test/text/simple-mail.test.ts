/**
 * The single-part reader against postal-mime, the reader it stands in for: on every
 * message of the bundled corpus and on edge cases of each rule it repeats, it either
 * declines (null) or reports exactly what postal-mime reports. (That cleanEmail's output
 * is unchanged on the whole corpus is clean-golden.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corpusFiles, readCorpusText } from '../../bench/corpus-files.js';
import { cleanEmail, cleanEmailWithPostalMime } from '../../src/text/clean.js';
import { readWithPostalMime } from '../../src/text/postal-mail.js';
import { readSimpleMail } from '../../src/text/simple-mail.js';

function corpusMessages(): { name: string; raw: string }[] {
  return corpusFiles().map((name) => ({ name, raw: readCorpusText(name) }));
}

/** Fails unless the reader declines `raw` or agrees with postal-mime on it; returns whether it read it. */
async function assertAgrees(raw: string, name: string): Promise<boolean> {
  const simple = readSimpleMail(raw);
  if (simple === null) return false;
  assert.deepEqual(simple, await readWithPostalMime(raw), name);
  return true;
}

test('should read every corpus message exactly as postal-mime does, or decline it', async () => {
  const messages = corpusMessages();
  assert.equal(messages.length, 6046);
  let read = 0;
  for (const { name, raw } of messages) if (await assertAgrees(raw, name)) read++;
  // The point of the reader: nearly all of the corpus is text parts (5 991 of 6 046 when written).
  assert.ok(read > 0.95 * messages.length, `read ${read}`);
});

// Each case exercises one rule of the reader; `read: true` cases must not be declined.
const cases: { name: string; raw: string; read: boolean }[] = [
  { name: 'CRLF lines, trailing CRs', raw: 'Subject: a\r\n\r\nline one\r\r\nline\rtwo\r', read: true },
  { name: 'no blank line: headers only', raw: 'Subject: only\r\nFrom: x@y.z', read: true },
  { name: 'blank line of CRs ends the header', raw: 'Subject: s\n\r\r\nbody', read: true },
  { name: 'body of newlines', raw: 'Subject: s\n\n\n\n', read: true },
  { name: 'empty subject then another', raw: 'Subject:\nSubject: second\n\nbody', read: true },
  { name: 'folded subject, tabs and spaces kept', raw: 'Subject: one\n\t two\n  three  \n\nbody', read: true },
  { name: 'first line folded', raw: ' Subject: x\nSubject: y\n\nbody', read: true },
  { name: 'encoded-word subject', raw: 'Subject: =?iso-8859-1?Q?caf=E9?= =?utf-8?B?w6k=?=\n\nx', read: true },
  { name: 'mbox From line', raw: 'From a@b.c  Mon Sep 23 12:00:00 2002\nSubject: m\n\nhi', read: true },
  { name: 'UTF-8 body with BOM', raw: 'Subject: b\nContent-Type: text/plain; charset=utf-8\n\n\uFEFFcafé ☕', read: true },
  { name: 'latin-1 label on a UTF-8 string body', raw: 'Content-Type: text/plain; charset="ISO-8859-1"\n\ncafé', read: true },
  { name: 'lone surrogate in the body', raw: 'Subject: s\n\na\uD800b', read: true },
  { name: 'quoted-printable with soft breaks and bad escapes', raw: 'Content-Transfer-Encoding: Quoted-Printable\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf=E9 =\nsoft =ZZ =4 end=\r\n=3D=3d=\n', read: true },
  { name: 'quoted-printable UTF-8 bytes and raw non-ASCII', raw: 'Content-Transfer-Encoding: quoted-printable\nContent-Type: text/plain; charset=utf-8\n\n=E2=98=95 é=', read: true },
  { name: 'base64 padded per line', raw: 'Content-Transfer-Encoding: base64\n\nSGVs\nbG8=\nIHdv\ncmxk\nIQ==\n', read: true },
  { name: 'base64 with junk and a truncated group', raw: 'Content-Transfer-Encoding: BASE64\n\nSGVsbG8g!!d29y\nbGQhX', read: true },
  { name: 'base64 HTML', raw: 'Content-Type: TEXT/HTML\nContent-Transfer-Encoding: base64\n\nPHA+SGk8L3A+', read: true },
  { name: 'GB2312 in base64', raw: 'Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: base64\n\nxOO6ww==', read: true },
  { name: 'first Content-Type wins', raw: 'Content-Type: text/html\nContent-Type: text/plain\n\n<p>x</p>', read: true },
  { name: 'parameters: spaces, duplicates, trailing semicolon', raw: 'Content-Type: text/plain ;  charset = "us-ascii" ; charset=koi8-r;\n\nok', read: true },
  { name: 'inline disposition', raw: 'Content-Disposition: inline\n\ntext', read: true },
  { name: 'empty charset means UTF-8', raw: 'Content-Type: text/plain; charset=""\n\nt\u00e9', read: true },
  { name: 'unknown transfer encoding passes through', raw: 'Content-Transfer-Encoding: x-uuencode\n\nbegin', read: true },
  { name: 'format=flowed with space-stuffing and a signature', raw: 'Content-Type: text/plain; format=flowed\n\nsoft \nwrap\n stuffed\n-- \nsig \nend', read: true },
  { name: 'format=flowed with delsp=yes', raw: 'Content-Type: text/plain; format="Flowed"; delsp=yes\r\n\r\nab \r\ncd  \r\n \r\nx', read: true },
  { name: 'non-text single part', raw: 'Content-Type: application/pdf\n\n%PDF', read: true },
  {
    name: 'multipart/alternative: the plain twin',
    raw: 'Subject: alt\nContent-Type: multipart/alternative; boundary="b1"\n\npreamble\n--b1\nContent-Type: text/plain\n\nplain one\n--b1\nContent-Type: text/html\n\n<p>html</p>\n--b1--\nepilogue',
    read: true,
  },
  {
    name: 'multipart/mixed: two plain parts, an attachment, boundary with trailing blanks',
    raw: 'Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz \t\r\n\r\nfirst\r\n--zz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--zz\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsec=E9ond\r\n--zz--\r\n',
    read: true,
  },
  {
    name: 'nested alternative in mixed, with a text attachment',
    raw: 'Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\ninner plain\n--i\nContent-Type: text/html\n\n<b>h</b>\n--i--\n--o\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nattached\n--o--',
    read: true,
  },
  {
    name: 'outer boundary closes an inner multipart; a part whose header never ends',
    raw: 'Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/related; boundary=i\n\n--i\nContent-Type: text/html\n\n<p>r</p>\n--o\nContent-Type: text/html\n--o--',
    read: true,
  },
  { name: 'boundary never matches', raw: 'Subject: s\nContent-Type: multipart/alternative; boundary=nope\n\n--other\ntext\n', read: true },
  { name: 'a boundary-like line that is not one', raw: 'Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--bb\n--b-\n--b--x\ny\n--b--', read: true },
  { name: 'unclosed multipart', raw: 'Subject: t\nContent-Type: multipart/alternative; boundary="zz"\n\n--zz\nContent-Type: text/plain\n\nnever closed', read: true },
  // Declined or read: either way, never different.
  { name: 'attachment disposition', raw: 'Content-Disposition: attachment; filename=a.txt\n\ntext', read: false },
  { name: 'mixed plain and HTML entries: postal-mime converts the HTML', raw: 'Content-Type: multipart/mixed; boundary=b\n\n--b\n\nplain\n--b\nContent-Type: text/html\n\n<p>h</p>\n--b--', read: false },
  { name: 'nested message', raw: 'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nbody\n--b--', read: false },
  { name: 'digest', raw: 'Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: d\n\nx\n--b--', read: false },
  { name: 'multipart without a boundary', raw: 'Content-Type: multipart/mixed\n\n--b\n\nx', read: false },
  { name: 'comment in Content-Type', raw: 'Content-Type: text/plain (plain); charset=us-ascii\n\nx', read: false },
  { name: 'RFC 2231 charset', raw: "Content-Type: text/plain; charset*=utf-8''x\n\nx", read: false },
  { name: 'unknown charset label', raw: 'Content-Type: text/plain; charset=DEFAULT\n\nx\u00e9', read: false },
  { name: 'multipart', raw: 'Content-Type: multipart/alternative; boundary=b\n\n--b\n\nx\n--b--', read: false },
  { name: 'other media type', raw: 'Content-Type: text/enriched\n\nx', read: false },
  { name: 'comment in the transfer encoding', raw: 'Content-Transfer-Encoding: (x) base64\n\nSGk=', read: false },
  { name: 'surrogate in a header', raw: 'Subject: \uD83D\uDE00\n\nx', read: false },
  { name: 'header over the size bound', raw: `X-Big: ${'a'.repeat(600_000)}\n\nbody`, read: false },
];

test('should agree with postal-mime on each rule it repeats', async () => {
  for (const { name, raw, read } of cases) {
    const agreed = await assertAgrees(raw, name);
    if (read) assert.ok(agreed, `${name}: declined`);
    assert.equal(await cleanEmail(raw), await cleanEmailWithPostalMime(raw), name);
  }
});
