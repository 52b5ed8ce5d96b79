// Protocols where the server speaks first (SMTP, FTP, POP3, IMAP), for the connection catcher
// (sessions.ts): a sample that connects to one waits for a greeting before it sends anything, so
// without one it would be listed as sending nothing. The catcher greets it, as INetSim does: each
// protocol's ports are sent to a listener of its own (GREETED), which names the protocol, so that
// it is known even where the port is not. FTP, POP3 and IMAP are then logged at the client's
// first line (a login, as a rule); SMTP is led through one message (EHLO, MAIL FROM, RCPT TO,
// DATA) so that the report has its envelope and subject: what a spam bot sends, or where a stealer
// mails its loot.
//
// Everything read is the sample's: lines are bounded by the catcher's read cap, fields cut and
// escaped before they are kept.
import { escaped } from './escape.js';

export type ServerFirst = 'smtp' | 'ftp' | 'pop3' | 'imap';

/**
 * Each protocol's listener port on the sinkhole's address, and the ports the namespace's nftables
 * rules send to it (dns.ts): the listener a connection arrives at names its protocol, so that it
 * is greeted even when the port it was made to is unknown (the rootless sandbox cannot read the
 * namespace's connection table).
 */
export const GREETED: ReadonlyMap<ServerFirst, { listen: number; ports: readonly number[] }> = new Map([
  ['smtp', { listen: 25, ports: [25, 587, 2525] }], ['ftp', { listen: 21, ports: [21] }],
  ['pop3', { listen: 110, ports: [110] }], ['imap', { listen: 143, ports: [143] }],
] as const);

/** The name the greetings give the server. */
const SERVER = 'mail.example.test';

export const GREETING: Readonly<Record<ServerFirst, string>> = {
  smtp: `220 ${SERVER} ESMTP ready\r\n`,
  ftp: '220 FTP server ready\r\n',
  pop3: '+OK POP3 server ready\r\n',
  imap: '* OK IMAP4rev1 server ready\r\n',
};

/** What an SMTP client said of the first message it sent (each field escaped, at most FIELD characters). */
export interface SmtpEnvelope {
  helo?: string;
  from?: string;
  /** The first RECIPIENTS recipients; `recipients` counts them all. */
  to: string[];
  recipients: number;
  subject?: string;
}

const FIELD = 256;
const RECIPIENTS = 16;

/** The field as the report keeps it: cut at FIELD characters, then escaped. */
function clean(s: string): string {
  return escaped(Buffer.from(s.slice(0, FIELD), 'latin1'));
}

/** An address out of `MAIL FROM:<a@b> SIZE=1` or `RCPT TO:<c@d>` (the text after the colon when there are no brackets). */
function addressOf(arg: string): string {
  const m = /<([^>]*)>/.exec(arg);
  return clean((m ? m[1]! : arg.slice(arg.indexOf(':') + 1)).trim());
}

/**
 * One SMTP dialogue, fed the client's bytes so far (all of them, each time: the catcher's buffer);
 * answers each complete command line and ends after the first message's data (its `250`), or at
 * QUIT. STARTTLS is refused, so that the client goes on in the clear or gives up.
 */
export class SmtpDialogue {
  readonly envelope: SmtpEnvelope = { to: [], recipients: 0 };
  /** The first message was taken (or the client quit): the catcher sends the last replies and closes. */
  done = false;
  private at = 0;
  /** Where the message data starts while it is being read (after DATA), else -1. */
  private data = -1;

  /** The replies to what `buf` holds past what was read before. */
  feed(buf: Buffer): string {
    let out = '';
    while (!this.done) {
      if (this.data >= 0) {
        // the data ends at a line holding a single dot (the CRLF before it may be DATA's own)
        const end = buf.indexOf('\r\n.\r\n', this.data - 2);
        if (end < 0) break;
        const body = buf.subarray(this.data, Math.max(this.data, end)).toString('latin1');
        const head = body.split(/\r\n\r\n/, 1)[0] ?? '';
        const subject = /^subject:[ \t]*(.*)$/im.exec(head);
        if (subject) this.envelope.subject = clean(subject[1]!.trim());
        out += '250 2.0.0 OK: queued\r\n';
        this.done = true;
        break;
      }
      const nl = buf.indexOf('\n', this.at);
      if (nl < 0) break;
      const line = buf.subarray(this.at, nl).toString('latin1').replace(/\r$/, '');
      this.at = nl + 1;
      const verb = (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
      const arg = line.slice(verb.length).trim();
      switch (verb) {
        case 'EHLO': case 'HELO':
          this.envelope.helo = clean(arg);
          out += verb === 'EHLO' ? `250-${SERVER}\r\n250 8BITMIME\r\n` : `250 ${SERVER}\r\n`;
          break;
        case 'MAIL':
          this.envelope.from = addressOf(arg);
          out += '250 2.1.0 OK\r\n';
          break;
        case 'RCPT':
          if (this.envelope.to.length < RECIPIENTS) this.envelope.to.push(addressOf(arg));
          this.envelope.recipients++;
          out += '250 2.1.5 OK\r\n';
          break;
        case 'DATA':
          this.data = this.at;
          out += '354 End data with <CR><LF>.<CR><LF>\r\n';
          break;
        case 'QUIT':
          out += '221 2.0.0 Bye\r\n';
          this.done = true;
          break;
        case 'RSET': case 'NOOP':
          out += '250 2.0.0 OK\r\n';
          break;
        case 'STARTTLS':
          out += '454 4.7.0 TLS not available\r\n';
          break;
        default:
          out += '502 5.5.2 Command not recognized\r\n';
      }
    }
    return out;
  }
}
