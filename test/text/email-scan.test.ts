import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replaceEmailAddresses } from '../../src/text/email-scan.js';
import { EMAIL } from '../../src/text/normalize.js';

const reference = (text: string): string => text.replace(EMAIL, '<E>');

test('should replace addresses exactly where the pattern matches', () => {
  for (const text of [
    '',
    'no at sign',
    'mail John.Doe+tag@mail.example.co.uk or a@b.io today',
    'a@b', 'a@b.', 'a@.b', '@b.c', 'a@b.c', 'a@b.c.', 'a@b..c', 'a@b.c-d.e-', 'A@B.C',
    'a@b@c.d', 'x@y.z@w.v', 'x@y.zw@v.u', 'a.b@c.d.e@f.g', '..@..', '-@-.-',
    'é@b.c', 'aé@b.c', 'a@bé.c', 'a@b.cé', 'ab@cd.ef%gh@ij.kl',
    'user@host.com,other@host.org;third@x.y',
  ]) {
    assert.equal(replaceEmailAddresses(text, '<E>'), reference(text), JSON.stringify(text));
  }
});

test('should agree with the pattern on random text over the characters that matter', () => {
  // A fixed linear congruential generator: the same strings on every run.
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const alphabet = 'aZ09._%+-@@@..  \n\u00e9K\u212A';
  for (let i = 0; i < 20_000; i++) {
    let text = '';
    for (let n = next(24); n > 0; n--) text += alphabet[next(alphabet.length)];
    assert.equal(replaceEmailAddresses(text, '<E>'), reference(text), JSON.stringify(text));
  }
});

test('should stay linear on long runs around many at signs', () => {
  for (const text of [`${'a'.repeat(200_000)}@${'b.'.repeat(100_000)}`, 'a@'.repeat(200_000), `${'x.'.repeat(100_000)}@`]) {
    assert.equal(replaceEmailAddresses(text, '<E>'), reference(text));
  }
});
