/**
 * What cleaning needs from a parsed e-mail, whichever reader produced it: the decoded
 * Subject and the text/plain and text/html bodies, each as postal-mime's `parse` reports
 * them (`undefined` where postal-mime leaves the field out).
 */
export interface MailText {
  subject: string | undefined;
  text: string | undefined;
  html: string | undefined;
}
