/**
 * The general MIME reader: postal-mime, for every message the single-part reader
 * (simple-mail.ts) declines, and as the reference that reader is tested against.
 */
import PostalMime from 'postal-mime';
import type { MailText } from './mail-text.js';

/** Parses with postal-mime; rejects on mail beyond its tolerance (or its header-size limit). */
export async function readWithPostalMime(raw: string | Uint8Array): Promise<MailText> {
  const parsed = await PostalMime.parse(raw);
  return { subject: parsed.subject, text: parsed.text, html: parsed.html };
}
