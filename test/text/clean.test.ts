import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { cleanEmail, cleanText } from '../../src/text/clean.js';
import { textToWordSequence } from '../../src/text/word-sequence.js';

const corpusDir = path.join(repoRoot, 'node_modules', '@stdlib', 'datasets-spam-assassin', 'data');

/** The raw RFC 822 text of one SpamAssassin corpus message, by `<group>/<file stem>`. */
function corpusMessage(name: string): string {
  return (JSON.parse(readFileSync(path.join(corpusDir, `${name}.json`), 'utf8')) as { text: string }).text;
}

/** Fails if anything from a header block (other than the Subject) survived. */
function assertNoHeaders(cleaned: string, name: string): void {
  assert.doesNotMatch(cleaned, /\b(return-path|delivered-to|message-id|x-mailer|mime-version|content-transfer-encoding|content-type)\b/, name);
  assert.doesNotMatch(cleaned, /received: from|\besmtp\b|fetchmail/, name);
  assert.doesNotMatch(cleaned, /<\/?[a-z!][^>]*>/, `${name}: html tag`);
}

// ---- real corpus messages ----

test('should decode a quoted-printable ISO-8859-1 ham and keep subject and body only', async () => {
  const name = 'easy-ham-1/00063.0acbc484a73f0e0b727e06c100d8df7b';
  const raw = corpusMessage(name);
  assert.match(raw, /escribi=F3/, 'the raw text is quoted-printable');
  const cleaned = await cleanEmail(raw);
  assert.ok(cleaned.startsWith('re: tiny dns swap bob we are a commercial company'), cleaned.slice(0, 80));
  assert.ok(cleaned.includes('bob musser escribió'));
  assert.ok(cleaned.includes('integración tecnológica'));
  assert.doesNotMatch(cleaned, /=20|=f3|=a0/);
  // The quoted signature: BobM@dbsinfo.com, www.dbsinfo.com, 106 Longhorn Road, Winter Park FL 32792.
  assert.ok(cleaned.includes('> xxemail > xxurl > xxnum longhorn road > winter park fl xxnum'));
  assert.ok(!cleaned.includes('dbsinfo'));
  assertNoHeaders(cleaned, name);
});

test('should decode a base64 text/plain part exactly', async () => {
  const name = 'spam-1/00194.767c323b4ae7a4909397e42cbd0c56a4';
  assert.match(corpusMessage(name), /Content-Transfer-Encoding: base64\s+UGxlYXNlIGZvcmdpdmUg/);
  assert.equal(
    await cleanEmail(corpusMessage(name)),
    'testing a system, please delete please forgive the intrusion, this is a one time only test, please delete. ' +
      'you should not receive any additional emails from this address, if you do please send an email with remove as ' +
      'subject to: xxemail thank you for your understanding.',
  );
});

test('should decode a base64 GB2312 part with its declared charset', async () => {
  const name = 'spam-2/00853.ee1fe2f2d16e8b27be79a670b8597252';
  const cleaned = await cleanEmail(corpusMessage(name));
  assert.ok(cleaned.includes('黄山旅游天天发 xxurl 南京特价宾馆任你选 xxurl'), cleaned.slice(0, 120));
  assert.ok(!cleaned.includes('u8bjvcld087m7mzst6ig'), 'base64 text left undecoded');
  assertNoHeaders(cleaned, name);
});

test('should turn an HTML-only quoted-printable spam into its visible text', async () => {
  const name = 'spam-1/00001.7848dde101aa985090474a91ec93fcf0';
  const raw = corpusMessage(name);
  assert.match(raw, /Content-Type: text\/html/);
  const cleaned = await cleanEmail(raw);
  assert.ok(cleaned.startsWith('life insurance - why pay more? '), cleaned.slice(0, 80));
  // "Save up to 70% on Life Insurance." and a link to http://website.e365.cc/savequote/.
  assert.ok(cleaned.includes('save up to xxnum % on life insurance.'));
  assert.ok(cleaned.includes('click here for your free quote! xxurl'));
  assert.doesNotMatch(cleaned, /&nbsp;|&amp;|=3d|calypso|verdana|font/);
  assertNoHeaders(cleaned, name);
});

test('should decode a base64 HTML part exactly', async () => {
  const name = 'spam-1/00078.6944f51ce9c0586d8f9137d2d2207df0';
  assert.equal(
    await cleanEmail(corpusMessage(name)),
    "** you're -approved-! drywall your home refinance loan is approved! to get your approved amount go here xxurl " +
      'to be excluded from further notices go here xxurl drywall',
  );
});

test('should prefer the text/plain part of a multipart/alternative ham over its HTML twin', async () => {
  const name = 'easy-ham-1/00062.009f5a1a8fa88f0b38299ad01562bb37';
  const raw = corpusMessage(name);
  assert.match(raw, /multipart\/alternative/);
  assert.match(raw, /Content-Type: text\/html/);
  const cleaned = await cleanEmail(raw);
  assert.ok(cleaned.startsWith("tiny dns swap i'm using simple dns from jhsoft."), cleaned.slice(0, 80));
  assert.equal(cleaned.split("i'm using simple dns from jhsoft").length - 1, 1, 'body appears once');
  assert.ok(!cleaned.includes('nextpart') && !cleaned.includes('this is a multi-part message'));
  assertNoHeaders(cleaned, name);
});

test('should fall back to the raw body when a multipart boundary never matches', async () => {
  const name = 'spam-1/00467.5b733c506b7165424a0d4a298e67970f';
  const cleaned = await cleanEmail(corpusMessage(name));
  assert.ok(cleaned.startsWith('printer cartridges as low as $ xxnum each! '), cleaned.slice(0, 80));
  assert.ok(cleaned.includes('incredible deals on inkjet cartridges!'));
  assertNoHeaders(cleaned, name);
});

test('should clean a sample of every corpus group without throwing or leaking headers', async () => {
  for (const group of ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2']) {
    const files = readdirSync(path.join(corpusDir, group)).filter((f) => f.endsWith('.json')).sort();
    for (const file of files.filter((_, i) => i % 25 === 0)) {
      const name = `${group}/${file.slice(0, -5)}`;
      const raw = corpusMessage(name);
      const cleaned = await cleanEmail(raw);
      assert.ok(cleaned.length > 0, name);
      assert.equal(cleaned, cleaned.trim(), name);
      assert.doesNotMatch(cleaned, /\s\s|[\t\n\r]/, `${name}: whitespace not collapsed`);
      // A header name may only appear if the body itself has it (forwarded mail quotes headers).
      const body = raw.slice(raw.search(/\r?\n\r?\n/)).toLowerCase();
      for (const header of ['return-path:', 'delivered-to:', 'received: from', 'x-mailer:', 'mime-version:', 'message-id:']) {
        assert.ok(!cleaned.includes(header) || body.includes(header), `${name}: ${header}`);
      }
    }
  }
});

// ---- cleanText: one rule at a time ----

test('should strip HTML tags and decode entities when the text looks like HTML', () => {
  assert.equal(cleanText('<p>Hello&nbsp;<b>World</b></p><p>Again</p>'), 'hello world again');
  assert.equal(cleanText('Fish &amp; Chips &#8364;5'), 'fish & chips € xxnum');
  assert.equal(cleanText('<html><style>p{color:red}</style><p>Hi</p><script>alert(1)</script></html>'), 'hi');
  assert.equal(cleanText('<table><tr><td>cell</td><td>next</td></tr></table>'), 'cell next');
  assert.equal(cleanText('<a href="http://spam.example/buy">Buy now</a>'), 'buy now xxurl');
});

test('should leave angle brackets alone when the text is not HTML', () => {
  assert.equal(cleanText('if a < b and c > d then'), 'if a < b and c > d then');
  assert.equal(cleanText('Reply to <john@example.com> soon'), 'reply to < xxemail > soon');
});

test('should replace URLs, e-mail addresses and numbers with placeholder words', () => {
  assert.equal(cleanText('see http://example.com/a?b=1&c=2, https://x.org and WWW.Test.org.'), 'see xxurl xxurl and xxurl');
  assert.equal(cleanText('ftp://files.example.com/pub [http://bracketed.example]'), 'xxurl [ xxurl ]');
  assert.equal(cleanText('mail John.Doe+tag@mail.example.co.uk or mailto:a@b.io today'), 'mail xxemail or mailto: xxemail today');
  assert.equal(cleanText('$1,000.50 at 10:30 from 127.0.0.1, 42% and -7'), '$ xxnum at xxnum from xxnum , xxnum % and - xxnum');
  assert.equal(cleanText('mp3 y2k 3d 2nd a1b2'), 'mp3 y2k 3d 2nd a1b2');
});

test('should keep placeholders intact through the Keras filters', () => {
  assert.deepEqual(textToWordSequence(cleanText('Go to http://x.com/?a=1, write a@b.co; call 555.')), [
    'go', 'to', 'xxurl', 'write', 'xxemail', 'call', 'xxnum',
  ]);
});

test('should apply NFKC, lower-case, and collapse whitespace to single spaces', () => {
  assert.equal(cleanText('ﬁne Ｆｕｌｌ ① Ｆｕｌｌ①'), 'fine full xxnum full1');
  assert.equal(cleanText('  Hello\t\tWORLD \r\n\u00a0 again\u3000end  '), 'hello world again end');
  assert.equal(cleanText('E\u0301T\u00C9'), '\u00e9t\u00e9');
  assert.equal(cleanText(''), '');
  assert.equal(cleanText(' \n\t '), '');
});

test('should remove invisible characters that split words and blank out control characters', () => {
  assert.equal(cleanText('V\u200Bi\u200Ba\u200Bg\u200Br\u200Ba fr\u00ADee\uFEFF'), 'viagra free');
  assert.equal(cleanText('a\u0000b\u0007c\u007Fd'), 'a b c d');
  // C1 controls (NEL included) are blanked like C0 ones.
  assert.equal(cleanText('a\u0080b\u0085c\u009Fd'), 'a b c d');
});

test('should remove bidirectional controls like every other invisible format character', () => {
  // U+202E shows "yenom" as "money"; stored, it is "yenom", without the override.
  assert.equal(cleanText('free \u202Eyenom\u202C now'), 'free yenom now');
  assert.equal(cleanText('pay\u200Epal \u2066iso\u2069 \u200Fx\u061C'), 'paypal iso x');
  // Right-to-left letters themselves are text.
  assert.equal(cleanText('\u202Bשלום مرحبا\u202C'), 'שלום مرحبا');
  assert.equal(cleanText('\u202E\u200B\uFEFF\u2060'), '');
});

test('should read deeply nested HTML flat instead of overflowing the stack', () => {
  for (const html of [
    // Over the start-tag limit: read flat without parsing.
    `${'<div>'.repeat(100_000)}deep text${'</div>'.repeat(100_000)}`,
    `${'<b>'.repeat(200_000)}deep &amp; text`,
    `<html><body>${'<table><tr><td>'.repeat(30_000)}deep text`,
    // Elements the parser never closes implicitly, so every one nests.
    `${'<p><li>'.repeat(100_000)}deep text`,
    // Under the limit, but deeper than html-to-text's recursion survives.
    `${'<div>'.repeat(10_000)}deep text${'</div>'.repeat(10_000)}`,
  ]) {
    const started = performance.now();
    assert.match(cleanText(html), /^deep (& )?text$/);
    assert.ok(performance.now() - started < 1000, 'deep HTML parsed as a tree');
  }
  // Ordinary nesting still goes through the HTML converter (block elements, entities).
  assert.equal(cleanText(`${'<div>'.repeat(100)}a&amp;b${'</div>'.repeat(100)}`), 'a&b');
});

test('should stay linear on pathological input', () => {
  const started = performance.now();
  cleanText(`${'a'.repeat(1_000_000)} ${'1.'.repeat(200_000)} ${'x.'.repeat(200_000)}@`);
  assert.ok(performance.now() - started < 2000, 'a regex backtracks');
});

// ---- cleanEmail: malformed and non-mail input ----

test('should clean input that is not mail as plain text', async () => {
  assert.equal(await cleanEmail('hello world, no headers here'), 'hello world, no headers here');
  assert.equal(await cleanEmail(''), '');
  assert.equal(await cleanEmail('<p>just <b>html</b></p>'), 'just html');
});

test('should keep the subject of a header-only message and decode encoded words', async () => {
  assert.equal(await cleanEmail('Subject: Hi There'), 'hi there');
  assert.equal(await cleanEmail('Subject: =?utf-8?B?SGVsbG8gV8O2cmxk?=\r\nFrom: a@b.c\r\n\r\nBody'), 'hello wörld body');
});

test('should sniff HTML inside a text/plain part', async () => {
  const raw = 'Subject: s\nContent-Type: text/plain\n\n<html><body><p>Buy&nbsp;now</p></body></html>';
  assert.equal(await cleanEmail(raw), 's buy now');
});

test('should decode 8-bit parts with their declared charset when given bytes', async () => {
  const raw = Buffer.from(
    'Subject: menu\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf\xe9 cr\xe8me',
    'latin1',
  );
  assert.equal(await cleanEmail(new Uint8Array(raw)), 'menu café crème');
});

test('should never reject on malformed mail', async () => {
  const inputs: (string | Uint8Array)[] = [
    // Over postal-mime's 2 MB header limit: it throws, we clean the text instead.
    `X-Big: ${'a'.repeat(2_200_000)}\n\nbody`,
    // Nesting deeper than postal-mime allows.
    `Content-Type: multipart/mixed; boundary=a\n\n${Array.from({ length: 300 }, (_, i) => `--a\nContent-Type: multipart/mixed; boundary=a${i}\n\n`).join('')}`,
    'Subject: t\nContent-Type: multipart/alternative; boundary="zz"\n\n--zz\nContent-Type: text/plain\n\nnever closed',
    'Subject: b\nContent-Transfer-Encoding: base64\n\n!!!not base64@@@',
    'Content-Type: text/plain; charset=no-such-charset\n\nstill text',
    ':\n\n',
    new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
  ];
  for (const raw of inputs) {
    const cleaned = await cleanEmail(raw);
    assert.equal(typeof cleaned, 'string');
  }
  assert.equal(await cleanEmail(inputs[2]!), 't never closed');
  assert.equal(await cleanEmail(inputs[4]!), 'still text');
  assert.ok((await cleanEmail(inputs[0]!)).endsWith(' body'));
});
