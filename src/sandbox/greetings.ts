// Protocols where the server speaks first (SMTP, FTP, POP3, IMAP), for the connection catcher
// (sessions.ts): a sample that connects to one waits for a greeting before it sends anything, so
// without one it would be listed as sending nothing. The catcher greets it, as INetSim does: each
// protocol's ports are sent to a listener of its own (GREETERS), which names the protocol, so that
// it is known even where the port is not; on the implicit-TLS ports (465, 995, 993) the greeting
// comes inside the TLS.
//
// SMTP is answered as a mail server (EHLO, MAIL FROM, RCPT TO, DATA) until the client quits, so
// that the report has the first message's envelope and subject: what a spam bot sends, or where a
// stealer mails its loot. Stealers log in to a mailbox of their operator's first (AUTH), most of
// them over STARTTLS: both are accepted, so that they go on to send, and the account is reported.
// FTP is answered as a server that takes any login and every file, for stealers that upload their
// loot: the login and the files are kept. POP3 and IMAP are answered as servers that take any
// login and hold no mail (credential checkers, implants polling a mailbox): the login is kept.
//
// Everything read is the sample's: lines are bounded, fields cut and escaped before they are kept.
import { escaped } from './escape.js';

export type ServerFirst = 'smtp' | 'ftp' | 'pop3' | 'imap';

/**
 * The listeners of the server-first protocols on the sinkhole's address, and the ports the
 * namespace's nftables rules send to each (dns.ts): the listener a connection arrives at names its
 * protocol, so that it is greeted even when the port it was made to is unknown (the rootless
 * sandbox cannot read the namespace's connection table). `tls`: the protocol's implicit-TLS port
 * (SMTPS, POP3S, IMAPS): the ClientHello is answered with the catcher's certificate and the
 * greeting is sent inside the TLS.
 */
export interface Greeter {
  protocol: ServerFirst;
  listen: number;
  ports: readonly number[];
  tls?: true;
}

export const GREETERS: readonly Greeter[] = [
  { protocol: 'smtp', listen: 25, ports: [25, 587, 2525] },
  { protocol: 'smtp', listen: 465, ports: [465], tls: true },
  { protocol: 'ftp', listen: 21, ports: [21] },
  { protocol: 'pop3', listen: 110, ports: [110] },
  { protocol: 'pop3', listen: 995, ports: [995], tls: true },
  { protocol: 'imap', listen: 143, ports: [143] },
  { protocol: 'imap', listen: 993, ports: [993], tls: true },
];

/** The name the greetings give the server. */
const SERVER = 'mail.example.test';

export const GREETING: Readonly<Record<ServerFirst, string>> = {
  smtp: `220 ${SERVER} ESMTP ready\r\n`,
  ftp: '220 FTP server ready\r\n',
  pop3: '+OK POP3 server ready\r\n',
  imap: '* OK IMAP4rev1 server ready\r\n',
};

/** What an SMTP client said of the first message it sent (each field escaped, at most FIELD characters), and how it logged in. */
export interface SmtpEnvelope {
  helo?: string;
  from?: string;
  /** The first RECIPIENTS recipients; `recipients` counts them all. */
  to: string[];
  recipients: number;
  subject?: string;
  /**
   * AUTH PLAIN or LOGIN (the ones offered; others are refused): the mechanism and the user name and
   * password the client logged in with: the mailbox a stealer mails its loot to, its operator's.
   */
  auth?: { mechanism: 'PLAIN' | 'LOGIN'; user: string; password: string };
  /** The client upgraded with STARTTLS and went on inside the TLS (it accepted the catcher's certificate). */
  starttls?: true;
  /** Messages sent on the connection, when more than the one whose envelope this is. */
  messages?: number;
}

/** What an FTP client did (each field escaped, at most FIELD characters): how it logged in, and the files it moved. */
export interface FtpSession {
  user?: string;
  password?: string;
  /** The first FILES files named by a transfer (STOR, APPE: uploads; RETR: downloads), with the command. */
  files: { command: 'STOR' | 'APPE' | 'RETR'; path: string }[];
  /** Transfers asked for, all counted: uploads (STOR, APPE, STOU) and downloads (RETR). */
  uploads: number;
  downloads: number;
}

const FIELD = 256;
const RECIPIENTS = 16;
const FILES = 16;

/** The field as the report keeps it: cut at FIELD characters, then escaped. */
export function clean(s: string): string {
  return escaped(Buffer.from(s.slice(0, FIELD), 'latin1'));
}

/** An address out of `MAIL FROM:<a@b> SIZE=1` or `RCPT TO:<c@d>` (the text after the colon when there are no brackets). */
function addressOf(arg: string): string {
  const m = /<([^>]*)>/.exec(arg);
  return clean((m ? m[1]! : arg.slice(arg.indexOf(':') + 1)).trim());
}

/** A base64 line of the client's, decoded (Node's decoder skips what is not base64). */
function base64(line: string): string {
  return Buffer.from(line.trim(), 'base64').toString('latin1');
}

/** SASL PLAIN's decoded answer (RFC 4616: `authzid NUL authcid NUL password`): the authentication identity, else the authorization one. */
function plainCredentials(text: string): { user: string; password: string } {
  const [authzid = '', authcid = '', password = ''] = text.split('\0');
  return { user: clean(authcid || authzid), password: clean(password) };
}

/** A login to a mailbox (POP3, IMAP): how, and the account. */
export interface MailboxLogin {
  /** USER and PASS, APOP (the password is then its digest), LOGIN (IMAP's command), or SASL PLAIN. */
  mechanism: 'USER' | 'APOP' | 'LOGIN' | 'PLAIN';
  user: string;
  password: string;
}

/** Bytes of one command line kept (RFC 5321 allows 512; longer ones are answered 500 and skipped). */
const LINE_MAX = 4096;
/** Bytes of the first message's header kept to find its subject. */
const HEAD_MAX = 16 * 1024;

/**
 * A dialogue of command lines, fed the client's bytes as they come (each chunk once), line by line
 * with a bounded line buffer: whatever the client sends, at most LINE_MAX bytes are held.
 */
export abstract class LineDialogue {
  /** The client quit: the catcher sends the last reply and closes. */
  done = false;
  /** The client was told to start TLS: the catcher starts it on the socket (SMTP's STARTTLS). */
  upgrade = false;
  /** What the last chunk held after the line that ended the dialogue's reading (STARTTLS: the start of the TLS). */
  rest: Buffer = Buffer.alloc(0);
  /** The line read so far (at most LINE_MAX bytes) and whether more of it was dropped. */
  private line: Buffer = Buffer.alloc(0);
  private long = false;

  /** The replies to the lines `chunk` completes. */
  feed(chunk: Buffer): string {
    let out = '';
    let at = 0;
    while (!this.done && !this.upgrade) {
      const nl = chunk.indexOf(0x0a, at);
      this.keep(chunk.subarray(at, nl < 0 ? chunk.length : nl));
      at = nl < 0 ? chunk.length : nl + 1;
      if (nl < 0) break;
      const line = this.line.toString('latin1').replace(/\r$/, '');
      const long = this.long;
      this.line = Buffer.alloc(0);
      this.long = false;
      out += this.onLine(line, long);
    }
    this.rest = chunk.subarray(at);
    return out;
  }

  /** The reply to one whole line (`long`: more than LINE_MAX bytes of it were dropped). */
  protected abstract onLine(line: string, long: boolean): string;

  /** Forgets a line half read (the stream it came from is left for TLS). */
  protected forgetLine(): void {
    this.rest = Buffer.alloc(0);
    this.line = Buffer.alloc(0);
    this.long = false;
  }

  private keep(piece: Buffer): void {
    const room = LINE_MAX - this.line.length;
    if (piece.length > room) this.long = true;
    if (room > 0 && piece.length) this.line = Buffer.concat([this.line, piece.subarray(0, room)]);
  }
}

/**
 * One SMTP dialogue, fed the client's bytes as they come (each chunk once), line by line with a
 * bounded line buffer, so that a message of any size streams through without being kept: a
 * stealer mailing a large archive is answered to its end. Every message is answered `250`; the
 * first one's envelope and subject are kept, later ones counted. It ends at QUIT. AUTH PLAIN and
 * LOGIN are accepted whatever the password. STARTTLS is offered when the catcher can answer TLS
 * (`starttls`): the dialogue then stops at `upgrade`, the catcher starts TLS on the socket (with
 * `rest`, what followed the STARTTLS line) and calls `restart()`, and the dialogue goes on with the
 * bytes read inside the TLS. Without it STARTTLS is refused, so that the client goes on in the
 * clear or gives up.
 */
export class SmtpDialogue extends LineDialogue {
  readonly envelope: SmtpEnvelope = { to: [], recipients: 0 };
  /** Message data being read (after DATA): the header so far, until its blank line (`head` undefined then). */
  private data: { head: string | undefined } | undefined;
  private messages = 0;
  /** An AUTH exchange in progress: the next line is the client's base64 answer to a `334`. */
  private auth: { mechanism: 'PLAIN' | 'LOGIN'; user?: string } | undefined;

  constructor(private readonly opts: { starttls?: boolean } = {}) {
    super();
  }

  /** TLS is up (`upgrade` was the `220` to STARTTLS): the dialogue starts again inside it (RFC 3207: the client says EHLO again). */
  restart(): void {
    this.upgrade = false;
    this.forgetLine();
    this.data = undefined;
    this.auth = undefined;
    this.envelope.starttls = true;
  }

  protected onLine(line: string, long: boolean): string {
    return this.data ? this.dataLine(line, long) : long ? '500 5.5.6 Line too long\r\n' : this.auth ? this.answer(line) : this.command(line);
  }

  /** A line of message data: a lone dot ends the message; the first message's header is read for its subject. */
  private dataLine(line: string, long: boolean): string {
    const d = this.data!;
    if (line === '.' && !long) {
      if (this.messages === 0 && d.head !== undefined) this.subjectOf(d.head);
      this.data = undefined;
      this.messages++;
      if (this.messages > 1) this.envelope.messages = this.messages;
      return '250 2.0.0 OK: queued\r\n';
    }
    if (d.head !== undefined) {
      if (line === '') {
        if (this.messages === 0) this.subjectOf(d.head);
        d.head = undefined;
      } else if (d.head.length < HEAD_MAX) d.head += `${line}\n`;
    }
    return '';
  }

  private subjectOf(head: string): void {
    const subject = /^subject:[ \t]*(.*)$/im.exec(head);
    if (subject) this.envelope.subject = clean(subject[1]!.trim());
  }

  private command(line: string): string {
    const verb = (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
    const arg = line.slice(verb.length).trim();
    const first = this.messages === 0;
    switch (verb) {
      case 'EHLO': case 'HELO': {
        this.envelope.helo = clean(arg);
        const offers = [SERVER, '8BITMIME', 'AUTH PLAIN LOGIN', ...(this.canStartTls ? ['STARTTLS'] : [])];
        return verb === 'EHLO' ? offers.map((o, i) => `250${i === offers.length - 1 ? ' ' : '-'}${o}\r\n`).join('') : `250 ${SERVER}\r\n`;
      }
      case 'AUTH': {
        const [mechanism = '', initial] = arg.split(/\s+/, 2);
        const m = mechanism.toUpperCase();
        if (this.envelope.auth) return '503 5.5.1 Already authenticated\r\n';
        if (m !== 'PLAIN' && m !== 'LOGIN') return '504 5.5.4 Unrecognized authentication type\r\n';
        this.auth = { mechanism: m };
        // PLAIN's first answer is its credentials; LOGIN's is the user name: either may come with the command
        return initial !== undefined && initial !== '=' ? this.answer(initial) : m === 'PLAIN' ? '334 \r\n' : '334 VXNlcm5hbWU6\r\n';
      }
      case 'MAIL':
        if (first) this.envelope.from = addressOf(arg);
        return '250 2.1.0 OK\r\n';
      case 'RCPT':
        if (first) {
          if (this.envelope.to.length < RECIPIENTS) this.envelope.to.push(addressOf(arg));
          this.envelope.recipients++;
        }
        return '250 2.1.5 OK\r\n';
      case 'DATA':
        this.data = { head: '' };
        return '354 End data with <CR><LF>.<CR><LF>\r\n';
      case 'QUIT':
        this.done = true;
        return '221 2.0.0 Bye\r\n';
      case 'RSET': case 'NOOP':
        return '250 2.0.0 OK\r\n';
      case 'STARTTLS':
        if (this.canStartTls) {
          this.upgrade = true;
          return '220 2.0.0 Ready to start TLS\r\n';
        }
        return this.envelope.starttls ? '503 5.5.1 TLS already active\r\n' : '454 4.7.0 TLS not available\r\n';
      default:
        return '502 5.5.2 Command not recognized\r\n';
    }
  }

  private get canStartTls(): boolean {
    return this.opts.starttls === true && this.envelope.starttls !== true;
  }

  /** The client's answer to a `334` of AUTH (RFC 4954): PLAIN's `authzid NUL user NUL password`, or LOGIN's user name, then password. */
  private answer(line: string): string {
    const a = this.auth!;
    if (line.trim() === '*') {
      this.auth = undefined;
      return '501 5.7.0 Authentication cancelled\r\n';
    }
    const text = base64(line);
    if (a.mechanism === 'LOGIN' && a.user === undefined) {
      a.user = text;
      return '334 UGFzc3dvcmQ6\r\n';
    }
    this.auth = undefined;
    this.envelope.auth = { mechanism: a.mechanism, ...(a.mechanism === 'PLAIN' ? plainCredentials(text) : { user: clean(a.user ?? ''), password: clean(text) }) };
    return '235 2.7.0 Authentication successful\r\n';
  }
}

/** Passive ports waiting for their data connection, per analysis; past this the oldest is forgotten (its connection is then read as any other). */
const PASSIVE_WAITING = 64;

/** One passive port an FTP dialogue named: what its transfer is, once the command came, and how to end its connection. */
export interface PassiveTransfer {
  /** Set by the control dialogue: RETR, LIST, NLST, MLSD send from the server; anything else sends to it. */
  download?: boolean;
  /** Set by the catcher once the data connection came: ends it (the download is then complete). */
  end?: () => void;
}

/**
 * The passive data ports of one analysis's FTP dialogues (30000-39999, in turn from 30000 for each
 * analysis), so that the catch-all can tell a data connection when it comes: an upload's is read
 * as any connection is; a download's (or a listing's) is ended as soon as the command came, so the
 * sample reads an empty file at once instead of waiting for the catch-all's idle close.
 */
export class FtpDataPorts {
  private next = 0;
  private readonly waiting = new Map<string, PassiveTransfer>();

  /** A port of `address` for the next data connection, and its transfer. */
  open(address: string): { port: number; transfer: PassiveTransfer } {
    const port = 30000 + (this.next++ % 10000);
    const transfer: PassiveTransfer = {};
    const key = `${address}:${port}`;
    this.waiting.delete(key);
    this.waiting.set(key, transfer);
    if (this.waiting.size > PASSIVE_WAITING) this.waiting.delete(this.waiting.keys().next().value as string);
    return { port, transfer };
  }

  /** The transfer a connection to `address`:`port` is the data connection of, taken once; undefined for any other connection. */
  claim(address: string, port: number | null): PassiveTransfer | undefined {
    if (port === null) return undefined;
    const key = `${address}:${port}`;
    const t = this.waiting.get(key);
    this.waiting.delete(key);
    return t;
  }
}

/**
 * One FTP control dialogue (RFC 959), as a server that takes any login and every file: what
 * stealers do that upload their loot over FTP. The login (USER, PASS) and the files named by
 * transfers are kept. Passive mode (PASV, EPSV) names a port of the address the sample connected
 * to (`ports`, the analysis's FtpDataPorts): the data connection is caught there by the catch-all
 * listener like any other, so an upload's first bytes are a session of their own (the port in
 * `227` is the one it is listed with). A transfer is answered `150` and `226` at once: the data
 * connection carries nothing from the catcher, and a download's is ended as soon as its command
 * came (the sample reads an empty file). Active mode (PORT, EPRT) is accepted, but its transfers
 * are refused (`425`): the catcher never connects out. It ends at QUIT.
 */
export class FtpDialogue extends LineDialogue {
  readonly session: FtpSession = { files: [], uploads: 0, downloads: 0 };
  /** The data connection PASV or EPSV announced, until a transfer uses it. */
  private passive: PassiveTransfer | undefined;

  /** `address`: the IPv4 address the sample connected to, named in the passive reply. */
  constructor(private readonly address: string, private readonly ports = new FtpDataPorts()) {
    super();
  }

  protected onLine(line: string, long: boolean): string {
    if (long) return '500 Line too long\r\n';
    const verb = (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
    const arg = line.slice(verb.length).replace(/^ /, '');
    const s = this.session;
    switch (verb) {
      case 'USER':
        s.user = clean(arg);
        return '331 Password required\r\n';
      case 'PASS':
        s.password = clean(arg);
        return '230 Logged in\r\n';
      case 'SYST':
        return '215 UNIX Type: L8\r\n';
      case 'FEAT':
        return '211-Features:\r\n PASV\r\n EPSV\r\n UTF8\r\n211 End\r\n';
      case 'PWD': case 'XPWD':
        return '257 "/" is the current directory\r\n';
      case 'CWD': case 'CDUP': case 'DELE': case 'RMD': case 'RNTO':
        return '250 OK\r\n';
      case 'RNFR':
        return '350 Ready for RNTO\r\n';
      case 'MKD': case 'XMKD':
        return `257 "${arg.replace(/["\r\n]/g, '')}" created\r\n`;
      case 'TYPE': case 'MODE': case 'STRU': case 'NOOP': case 'OPTS': case 'ALLO':
        return '200 OK\r\n';
      case 'SIZE': case 'MDTM':
        return '550 No such file\r\n';
      case 'PASV': {
        const octets = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(this.address);
        if (!octets) return '425 Passive mode not available\r\n';
        const { port, transfer } = this.ports.open(this.address);
        this.passive = transfer;
        return `227 Entering Passive Mode (${octets.slice(1).join(',')},${port >> 8},${port & 0xff})\r\n`;
      }
      case 'EPSV': {
        const { port, transfer } = this.ports.open(this.address);
        this.passive = transfer;
        return `229 Entering Extended Passive Mode (|||${port}|)\r\n`;
      }
      case 'PORT': case 'EPRT':
        this.passive = undefined;
        return '200 PORT command successful\r\n';
      case 'STOR': case 'APPE': case 'STOU': case 'RETR':
        if (verb === 'RETR') s.downloads++; else s.uploads++;
        if (verb !== 'STOU' && s.files.length < FILES) s.files.push({ command: verb, path: clean(arg) });
        return this.transfer(verb === 'RETR');
      case 'LIST': case 'NLST': case 'MLSD':
        return this.transfer(true);
      case 'QUIT':
        this.done = true;
        return '221 Goodbye\r\n';
      default:
        return '502 Command not implemented\r\n';
    }
  }

  private transfer(download: boolean): string {
    const t = this.passive;
    if (!t) return '425 Use PASV first\r\n';
    this.passive = undefined;
    // a download's data connection is ended now if it came already, else as soon as it comes
    t.download = download;
    if (download) t.end?.();
    return '150 Opening data connection\r\n226 Transfer complete\r\n';
  }
}

/**
 * One POP3 dialogue (RFC 1939), as a server that takes any login and holds no mail: what a
 * credential checker or a mailbox-polling implant does. The login (USER and PASS, APOP, or AUTH
 * PLAIN) is kept. It ends at QUIT.
 */
export class Pop3Dialogue extends LineDialogue {
  login: MailboxLogin | undefined;
  private user: string | undefined;
  /** AUTH PLAIN sent without its answer: the next line is it. */
  private plain = false;

  protected onLine(line: string, long: boolean): string {
    if (long) return '-ERR line too long\r\n';
    if (this.plain) {
      this.plain = false;
      if (line.trim() === '*') return '-ERR authentication cancelled\r\n';
      this.login = { mechanism: 'PLAIN', ...plainCredentials(base64(line)) };
      return '+OK logged in\r\n';
    }
    const verb = (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
    const arg = line.slice(verb.length).replace(/^ /, '');
    switch (verb) {
      case 'CAPA':
        return '+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n';
      case 'USER':
        this.user = arg;
        return '+OK\r\n';
      case 'PASS':
        if (this.user === undefined) return '-ERR USER first\r\n';
        this.login = { mechanism: 'USER', user: clean(this.user), password: clean(arg) };
        return '+OK logged in\r\n';
      case 'APOP': {
        const [name = '', digest = ''] = arg.split(/\s+/, 2);
        this.login = { mechanism: 'APOP', user: clean(name), password: clean(digest) };
        return '+OK logged in\r\n';
      }
      case 'AUTH': {
        const [mechanism = '', initial] = arg.split(/\s+/, 2);
        if (mechanism.toUpperCase() !== 'PLAIN') return '-ERR unsupported mechanism\r\n';
        if (initial === undefined) {
          this.plain = true;
          return '+ \r\n';
        }
        this.login = { mechanism: 'PLAIN', ...plainCredentials(base64(initial)) };
        return '+OK logged in\r\n';
      }
      case 'STAT':
        return '+OK 0 0\r\n';
      case 'LIST': case 'UIDL':
        return arg ? '-ERR no such message\r\n' : '+OK 0 messages\r\n.\r\n';
      case 'NOOP': case 'RSET':
        return '+OK\r\n';
      case 'QUIT':
        this.done = true;
        return '+OK bye\r\n';
      case 'RETR': case 'TOP': case 'DELE':
        return '-ERR no such message\r\n';
      default:
        return '-ERR unknown command\r\n';
    }
  }
}

/** An IMAP astring (RFC 3501): a quoted string (with its escapes) or an atom; `rest` what follows it. */
function astring(s: string): { value: string; rest: string } | undefined {
  const t = s.replace(/^ +/, '');
  if (t.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"(.*)$/.exec(t);
    return m ? { value: m[1]!.replace(/\\(.)/g, '$1'), rest: m[2]! } : undefined;
  }
  const m = /^([^\s"(){]+)(.*)$/.exec(t);
  return m ? { value: m[1]!, rest: m[2]! } : undefined;
}

/**
 * One IMAP dialogue (RFC 3501), as a server that takes any login and holds an empty INBOX: what a
 * credential checker or an implant that takes its orders from a mailbox does. The login (LOGIN,
 * or AUTHENTICATE PLAIN) is kept. Literals (`{n}`) are refused: clients send logins as quoted
 * strings unless they hold line breaks. It ends at LOGOUT.
 */
export class ImapDialogue extends LineDialogue {
  login: MailboxLogin | undefined;
  /** The tag of an AUTHENTICATE PLAIN waiting for its answer. */
  private plain: string | undefined;

  protected onLine(line: string, long: boolean): string {
    if (long) return '* BAD line too long\r\n';
    if (this.plain !== undefined) {
      const tag = this.plain;
      this.plain = undefined;
      if (line.trim() === '*') return `${tag} BAD authentication cancelled\r\n`;
      this.login = { mechanism: 'PLAIN', ...plainCredentials(base64(line)) };
      return `${tag} OK AUTHENTICATE completed\r\n`;
    }
    const m = /^(\S+) +(\S+) ?(.*)$/.exec(line);
    if (!m) return '* BAD no command\r\n';
    const tag = clean(m[1]!).replace(/[^\x21-\x7e]/g, '');
    const command = m[2]!.toUpperCase();
    const args = m[3]!;
    switch (command) {
      case 'CAPABILITY':
        return `* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n${tag} OK CAPABILITY completed\r\n`;
      case 'LOGIN': {
        const user = astring(args);
        const password = user && astring(user.rest);
        if (!user || !password) return `${tag} BAD LOGIN needs a user name and a password, quoted or atoms\r\n`;
        this.login = { mechanism: 'LOGIN', user: clean(user.value), password: clean(password.value) };
        return `${tag} OK LOGIN completed\r\n`;
      }
      case 'AUTHENTICATE': {
        const [mechanism = '', initial] = args.split(/\s+/, 2);
        if (mechanism.toUpperCase() !== 'PLAIN') return `${tag} NO unsupported mechanism\r\n`;
        if (initial === undefined || initial === '') {
          this.plain = tag;
          return '+ \r\n';
        }
        this.login = { mechanism: 'PLAIN', ...plainCredentials(base64(initial)) };
        return `${tag} OK AUTHENTICATE completed\r\n`;
      }
      case 'SELECT': case 'EXAMINE':
        return `* 0 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Deleted)\r\n${tag} OK [READ-WRITE] ${command} completed\r\n`;
      case 'SEARCH': case 'UID':
        return `* SEARCH\r\n${tag} OK ${command} completed\r\n`;
      case 'ID':
        return `* ID NIL\r\n${tag} OK ID completed\r\n`;
      case 'LIST': case 'LSUB': case 'NOOP': case 'CHECK': case 'CLOSE': case 'EXPUNGE': case 'FETCH': case 'STATUS': case 'CREATE': case 'SUBSCRIBE':
        return `${tag} OK ${command} completed\r\n`;
      case 'LOGOUT':
        this.done = true;
        return `* BYE\r\n${tag} OK LOGOUT completed\r\n`;
      default:
        return `${tag} BAD unknown command\r\n`;
    }
  }
}
