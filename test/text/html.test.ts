import { test } from 'node:test';
import assert from 'node:assert/strict';
import { htmlToPlainText, looksLikeHtml } from '../../src/text/html.js';

test('should recognise HTML by known tags or entities', () => {
  for (const text of ['<HTML><BODY>x', 'a<br>b', 'x <p class="a">y', '<!DOCTYPE html>', '<!-- c -->', 'AT&amp;T', '&#169; 2002', '<o:p></o:p>']) {
    assert.equal(looksLikeHtml(text), true, text);
  }
});

test('should not take plain text with angle brackets or ampersands for HTML', () => {
  for (const text of ['a < b > c', 'Reply to <john@example.com>', 'AT&T rocks', '<<quoted>>', 'x <bold> y', 'x<y and b>a']) {
    assert.equal(looksLikeHtml(text), false, text);
  }
});

test('should convert HTML to text without CSS, scripts or link brackets', () => {
  const text = htmlToPlainText('<h1>Title</h1><style>.x{}</style><p>Go <a href="http://e.x/">here</a>&nbsp;now</p>');
  assert.equal(text.replace(/\s+/g, ' ').trim(), 'Title Go here http://e.x/ now');
});
