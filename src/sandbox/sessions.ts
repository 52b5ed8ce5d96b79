// The TCP and UDP side of the sinkhole (as INetSim or FakeNet-NG give a Windows sandbox): a
// connection the sample makes off its loopback, to an address the DNS sinkhole answered
// (198.18.0.0/15) or to one it carries (a hard-coded C2), is not left to fail, it is taken, inside
// the sample's own network namespace, by one listener of sandtrace's: every address is local to the
// namespace's loopback, and an nftables rule of the namespace sends every such TCP connection to
// DNS_SERVER:SESSION_PORT, and every UDP datagram but DNS to the same port on UDP (dns.ts sets both
// up; IPv6 alike, to DNS_SERVER6's listeners). Nothing leaves the namespace, which has no other
// device. What the sample sends first is kept: an HTTP request's method, path, Host and
// User-Agent, a TLS ClientHello's server name (SNI), or the first bytes of anything else (of a UDP
// flow: its first datagram). An HTTP request is
// answered `200 OK` with an empty body, so the sample goes on to its next step, once its own body
// is whole (http-body.ts: what an upload carried is kept by size, SHA-256 and first bytes). A
// ClientHello is answered with a certificate for the name it asks for, issued by the sandbox's
// authority, which the container trusts (tls.ts, trust.ts): a sample that checks certificates
// against the system's trust store, or not at all, goes on, and its request (HTTPS) is read in the
// clear and answered as HTTP is; one that pins a key or brings its own CAs refuses it and is logged
// with its server name. A port whose server speaks first (SMTP, FTP, POP3, IMAP) is greeted as that
// server (greetings.ts); an FTP upload's data connection comes back to the catch-all as a session
// of its own. Everything else on TCP is closed once its first message is in; datagrams are never
// answered.
//
// The bytes are the sample's: parsed with bounds on everything, never trusted, never executed.
import { isIPv6, SocketAddress, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { closeSync, readSync } from 'node:fs';
import { escaped } from './escape.js';
import type { SinkholeTls } from './tls.js';
import { HttpBodyReader, type HttpBody } from './http-body.js';
import { IrcDialogue, isIrcStart, type IrcSession } from './irc.js';
import { FtpDataPorts, FtpDialogue, GREETING, ImapDialogue, Pop3Dialogue, SmtpDialogue, type FtpSession, type LineDialogue, type MailboxLogin, type ServerFirst, type SmtpEnvelope } from './greetings.js';

/** The listener's port on DNS_SERVER (below 1024: a sample that is no root in its namespace cannot take it). */
export const SESSION_PORT = 1;
/** Sessions listed per analysis; later ones are counted. */
export const SESSION_MAX = 1000;
/** Connections held open at once (more are closed at once, and counted). */
export const SESSION_MAX_OPEN = 64;
/** Bytes read per connection. */
export const SESSION_READ = 16 * 1024;
/** Bytes a greeted connection may send (SMTP's messages stream through the dialogue unkept); it is closed past them. */
export const DIALOGUE_READ_MAX = 32 << 20;
/** Characters of the first bytes kept, escaped. */
const PREVIEW = 256;
/** A connection that sends nothing, or stops sending before its message is whole, is closed after this. */
export const SESSION_IDLE_MS = 5000;

export interface HttpRequestHead {
  method: string;
  path: string;
  host?: string;
  userAgent?: string;
  /** A request with a body (Content-Length or chunked): what it carried (http-body.ts). */
  body?: HttpBody;
}

export interface SinkholeSession {
  /** Where the sample connected: address and port (port null when the namespace's connection table did not say). */
  address: string;
  port: number | null;
  /** 'udp': datagrams from one socket of the sample to one destination, the first kept (absent: TCP). */
  transport?: 'udp';
  /** The name the DNS sinkhole gave the address for. */
  domain?: string;
  /** smtp, ftp, pop3, imap: the port's server speaks first, and the catcher greeted the sample as one (greetings.ts); irc: the sample registered as an IRC client (irc.ts). */
  protocol: 'http' | 'tls' | ServerFirst | 'irc' | 'other' | 'none';
  http?: HttpRequestHead;
  /** TLS: the server name of the ClientHello. */
  sni?: string;
  /** Bytes received (at most SESSION_READ are read). */
  bytes: number;
  /** The first bytes, printable ASCII as it is, anything else as \xNN. */
  preview: string;
  /**
   * TLS, or SMTP after STARTTLS: what the sample sent after it accepted the catcher's certificate
   * (issued by the authority the container trusts, or not checked): bytes received in the clear
   * and their first bytes; `http` is then the request it made, `smtp` what it said inside the TLS.
   * Absent when the handshake was not completed (the sample refused the certificate); 0 bytes
   * when it was and nothing came (a client that pins a key checks it only then).
   */
  decrypted?: { bytes: number; preview: string };
  /** SMTP: the first message's envelope and subject (the catcher answered the sample as a mail server). */
  smtp?: SmtpEnvelope;
  /** FTP: the login and the files named by transfers (the catcher answered the sample as an FTP server). */
  ftp?: FtpSession;
  /** POP3, IMAP: the login to the mailbox (the catcher answered the sample as a mail server that takes any). */
  login?: MailboxLogin;
  /** IRC: what the client registered as, the channels it joined and the messages it sent (the catcher answered as an IRC server). */
  irc?: IrcSession;
}

const METHOD = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PROPFIND) /;

/** An HTTP/1 request head, once it is whole (up to the empty line); undefined before, or for anything else. */
export function parseHttpHead(buf: Buffer): HttpRequestHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0 || !METHOD.test(buf.subarray(0, 10).toString('latin1'))) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const [method, path] = (lines[0] ?? '').split(' ');
  const header = (name: string) => {
    const l = lines.slice(1).find((h) => h.slice(0, name.length + 1).toLowerCase() === `${name}:`);
    return l === undefined ? undefined : escaped(Buffer.from(l.slice(name.length + 1).trim().slice(0, 512), 'latin1'));
  };
  const host = header('host');
  const userAgent = header('user-agent');
  return {
    method: method ?? '', path: escaped(Buffer.from((path ?? '').slice(0, 2048), 'latin1')),
    ...(host !== undefined ? { host } : {}), ...(userAgent !== undefined ? { userAgent } : {}),
  };
}

/**
 * A TLS ClientHello (RFC 8446 4.1.2): 'incomplete' until its first record is whole, undefined when
 * the bytes are no TLS handshake, else its server name (SNI, RFC 6066 3), if it sends one.
 */
export function parseClientHello(buf: Buffer): { sni?: string } | 'incomplete' | undefined {
  if (buf.length < 1 || buf[0] !== 0x16) return undefined;
  if (buf.length < 5) return 'incomplete';
  if (buf[1] !== 0x03) return undefined;
  const recordEnd = 5 + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return 'incomplete';
  const r = buf.subarray(5, recordEnd);
  // handshake header: type 1 (client_hello), 3-byte length; then version 2, random 32
  if (r.length < 4 || r[0] !== 1) return undefined;
  let at = 4 + 2 + 32;
  const u8 = (): number | undefined => (at + 1 <= r.length ? r[at++] : undefined);
  const u16 = (): number | undefined => { if (at + 2 > r.length) return undefined; const v = r.readUInt16BE(at); at += 2; return v; };
  const sessionId = u8();
  if (sessionId === undefined) return {};
  at += sessionId;
  const suites = u16();
  if (suites === undefined) return {};
  at += suites;
  const compressions = u8();
  if (compressions === undefined) return {};
  at += compressions;
  const extLen = u16();
  if (extLen === undefined) return {};
  const extEnd = Math.min(r.length, at + extLen);
  while (at + 4 <= extEnd) {
    const type = r.readUInt16BE(at);
    const len = r.readUInt16BE(at + 2);
    at += 4;
    if (at + len > extEnd) break;
    if (type === 0 && len >= 5) {
      // server_name_list: length 2, then entries of type 1 + length 2 + name
      const listEnd = Math.min(at + len, at + 2 + r.readUInt16BE(at));
      let p = at + 2;
      while (p + 3 <= listEnd) {
        const nameType = r[p] as number;
        const nameLen = r.readUInt16BE(p + 1);
        p += 3;
        if (p + nameLen > listEnd) break;
        if (nameType === 0) return { sni: escaped(r.subarray(p, p + Math.min(nameLen, 255))).toLowerCase() };
        p += nameLen;
      }
    }
    at += len;
  }
  return {};
}

/** The sessions of one analysis: bounded. */
export class SessionLog {
  private readonly sessions: SinkholeSession[] = [];
  private omitted = 0;
  /** Sessions still open: log() ends them first, so one the sample left open is listed too. */
  readonly open = new Set<() => void>();
  /** The passive data ports the analysis's FTP dialogues named, for the catch-all to tell their connections. */
  readonly ftpData = new FtpDataPorts();

  add(s: SinkholeSession): void {
    if (this.sessions.length < SESSION_MAX) this.sessions.push(s);
    else this.omitted++;
  }

  /** A connection closed unread: SESSION_MAX_OPEN were open. */
  refuse(): void {
    this.omitted++;
  }

  log(): { sessions: SinkholeSession[]; sessionsOmitted: number } {
    for (const end of [...this.open]) end();
    return { sessions: [...this.sessions], sessionsOmitted: this.omitted };
  }
}

/**
 * What a caught connection is, from where it went and the first bytes read (`bytes` received in
 * all, default the bytes given); `decrypted`: what a TLS sample sent after accepting the catcher's
 * certificate; `httpBody`: what the request's body carried; `greeted`: the protocol the catcher greeted the sample as, `ftp` what an FTP dialogue took, `login` a POP3 or IMAP one, and `smtp` what an SMTP
 * dialogue took; `irc`: what an IRC client said (in the clear, or inside TLS).
 */
export function describeSession(
  dest: { address: string; port: number | null; domain?: string }, buf: Buffer,
  o: { bytes?: number; decrypted?: { buf: Buffer; bytes: number }; greeted?: ServerFirst; smtp?: SmtpEnvelope; ftp?: FtpSession; login?: MailboxLogin; irc?: IrcSession; httpBody?: HttpBody } = {},
): SinkholeSession {
  const { bytes = buf.length, decrypted } = o;
  const head = parseHttpHead(buf) ?? (decrypted ? parseHttpHead(decrypted.buf) : undefined);
  const http = head && o.httpBody ? { ...head, body: o.httpBody } : head;
  const hello = parseClientHello(buf);
  // a greeted protocol on an implicit-TLS port began with a ClientHello too: named by its listener
  const protocol = bytes === 0 ? 'none' : hello !== undefined && !o.greeted ? 'tls' : http ? 'http' : o.greeted ?? (o.irc ? 'irc' : 'other');
  return {
    ...dest, protocol, ...(http ? { http } : {}), ...(typeof hello === 'object' && hello.sni !== undefined ? { sni: hello.sni } : {}),
    bytes, preview: escaped(buf.subarray(0, PREVIEW)),
    ...(decrypted ? { decrypted: { bytes: decrypted.bytes, preview: escaped(decrypted.buf.subarray(0, PREVIEW)) } } : {}),
    ...(o.smtp && protocol === 'smtp' ? { smtp: o.smtp } : {}),
    ...(o.ftp && protocol === 'ftp' ? { ftp: o.ftp } : {}),
    ...(o.login && (protocol === 'pop3' || protocol === 'imap') ? { login: o.login } : {}),
    ...(o.irc && (protocol === 'irc' || protocol === 'tls') ? { irc: o.irc } : {}),
  };
}

const HTTP_OK = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');

/**
 * One caught connection: read until its first message is whole (an HTTP head, a TLS record),
 * SESSION_READ bytes, or SESSION_IDLE_MS without more; answer HTTP with an empty 200; then close
 * and log it. `where` names the original destination from the connection's remote end.
 * `opts.tls`: the authority whose certificates answer a ClientHello (tls.ts); the first message
 * inside the TLS is then read as above (an HTTPS request answered 200). Without it, TLS is closed
 * at the hello.
 * `opts.greet`: the connection came to the listener of a protocol whose server speaks first
 * (greetings.ts) and is greeted at once: SMTP is answered as a mail server until the client quits
 * (with `opts.tls`, STARTTLS is offered and the dialogue goes on inside the TLS), FTP as a server
 * taking every file (passive data connections come back to the catch-all), POP3 and IMAP as
 * servers taking any login. `opts.implicitTls` (SMTPS, POP3S, IMAPS): the
 * ClientHello is answered first, as on the catch-all, and the greeting and all that follows go
 * through the TLS.
 */
export function catchSession(
  conn: Socket, log: SessionLog, where: (remoteAddress: string, remotePort: number) => { address: string; port: number | null; domain?: string },
  opts: { tls?: () => SinkholeTls; greet?: ServerFirst; implicitTls?: boolean } = {},
): void {
  const dest = where(conn.remoteAddress ?? '', conn.remotePort ?? 0);
  // a server-first protocol (named by the listener it came to): greeted first, on an implicit-TLS
  // port once the TLS is up
  const greeted = opts.greet;
  const implicitTls = opts.implicitTls === true && opts.tls !== undefined;
  const smtp = greeted === 'smtp' ? new SmtpDialogue({ starttls: opts.tls !== undefined && !implicitTls }) : undefined;
  const ftp = greeted === 'ftp' ? new FtpDialogue(dest.address, log.ftpData) : undefined;
  const mailbox = greeted === 'pop3' ? new Pop3Dialogue() : greeted === 'imap' ? new ImapDialogue() : undefined;
  // each is answered line by line until the client quits; so is IRC, known by its first line on
  // the catch-all (irc.ts), in the clear or inside the TLS
  let irc: IrcDialogue | undefined;
  let dialogue: LineDialogue | undefined = smtp ?? ftp ?? mailbox;
  /** On the catch-all, `stream` (all bytes so far) begins as IRC does: the dialogue is IRC's from now on. */
  const startsIrc = (stream: Buffer): boolean => {
    if (greeted || dialogue || !isIrcStart(stream)) return false;
    dialogue = irc = new IrcDialogue();
    return true;
  };
  if (greeted && !implicitTls) conn.write(GREETING[greeted]);
  let buf: Buffer = Buffer.alloc(0);
  let bytes = 0;
  let done = false;
  // TLS (opts.tls): the catcher answers the ClientHello with a certificate for its name; once the
  // sample has accepted it, `clear` holds what the sample sends through it
  let secure: TLSSocket | undefined;
  let clear: Buffer | undefined;
  let clearBytes = 0;
  // an HTTP request whose head is whole: its body, read before the request is answered (null: it has none)
  let body: HttpBodyReader | null | undefined;
  /**
   * The HTTP side of the bytes read so far (`stream`, capped at SESSION_READ; `chunk` the last
   * read, `total` all read): 'answer' once a request is whole, its body included; 'wait' while its
   * body comes; 'no' when the bytes are no HTTP request (yet).
   */
  const http = (stream: Buffer, chunk: Buffer, total: number, out: Socket): 'answer' | 'wait' | 'no' => {
    if (body) {
      body.feed(chunk);
      return body.done ? 'answer' : 'wait';
    }
    if (body === null) return 'answer';
    if (!parseHttpHead(stream)) return 'no';
    const end = stream.indexOf('\r\n\r\n');
    body = HttpBodyReader.of(stream.subarray(0, end)) ?? null;
    if (!body) return 'answer';
    if (body.expectsContinue) out.write('HTTP/1.1 100 Continue\r\n\r\n');
    body.feed(chunk.subarray(Math.max(0, end + 4 - (total - chunk.length))));
    return body.done ? 'answer' : 'wait';
  };
  const finish = (reply?: Buffer) => {
    if (done) return;
    done = true;
    log.open.delete(flush);
    log.add(describeSession(dest, buf, {
      bytes, ...(clear === undefined ? {} : { decrypted: { buf: clear, bytes: clearBytes } }), ...(body ? { httpBody: body.result() } : {}), ...(greeted ? { greeted } : {}), ...(smtp ? { smtp: smtp.envelope } : {}), ...(ftp ? { ftp: ftp.session } : {}), ...(mailbox?.login ? { login: mailbox.login } : {}),
      ...(irc ? { irc: irc.session } : {}),
    }));
    const out = secure ?? conn;
    if (reply) out.end(reply); else out.end();
    out.destroySoon();
  };
  const flush = () => { finish(); secure?.destroy(); conn.destroy(); };
  log.open.add(flush);
  conn.setTimeout(SESSION_IDLE_MS, flush);
  conn.on('error', () => finish());
  conn.on('close', () => finish());
  // TLS on the connection, the authority's certificates answering: `pending` (a ClientHello, or what
  // followed an SMTP STARTTLS) goes back to the socket for the TLS server to read first; what the
  // sample then sends through it is read as `clear`, as HTTP (answered 200) or SMTP
  const intercept = (identity: SinkholeTls, pending: Buffer) => {
    conn.removeListener('data', onData);
    conn.setTimeout(0); // the TLS socket's own idle timeout takes over
    conn.pause();
    if (pending.length) conn.unshift(pending);
    // a certificate for the name the hello asks for; without SNI, for the name the sinkhole gave
    // the address (a client that connects by name but sends no SNI still checks that name)
    let secureContext: SecureContext;
    try {
      secureContext = identity.context(dest.domain, dest.address);
    } catch {
      finish();
      return;
    }
    const t = new TLSSocket(conn, {
      isServer: true, secureContext,
      SNICallback: (serverName, cb) => {
        try {
          cb(null, identity.context(serverName, dest.address));
        } catch (e) {
          cb(e instanceof Error ? e : new Error(String(e)), undefined);
        }
      },
    });
    secure = t;
    t.setTimeout(SESSION_IDLE_MS, flush);
    t.on('error', () => finish()); // a sample that pins a key or brings its own CAs refuses ours
    t.on('close', () => finish());
    t.on('secure', () => {
      clear ??= Buffer.alloc(0);
      if (!implicitTls) smtp?.restart();
      else if (greeted) t.write(GREETING[greeted]);
    });
    t.on('data', (d: Buffer) => {
      if (done) return;
      clearBytes += d.length;
      const had: Buffer = clear ?? Buffer.alloc(0);
      clear = Buffer.concat([had, d.subarray(0, Math.max(0, SESSION_READ - had.length))]);
      const first = !dialogue && clearBytes === clear.length && startsIrc(clear) ? clear : undefined;
      if (dialogue) {
        const reply = dialogue.feed(first ?? d);
        if (dialogue.done) finish(reply ? Buffer.from(reply, 'latin1') : undefined);
        else if (bytes + clearBytes >= DIALOGUE_READ_MAX) finish();
        else if (reply) t.write(reply);
      } else {
        const step = http(clear, d, clearBytes, t);
        if (step === 'answer') finish(HTTP_OK);
        else if (step === 'no' && clear.length >= SESSION_READ) finish();
      }
    });
  };
  /** The authority that answers TLS, if the catcher has one (never throws: no TLS then). */
  const tlsIdentity = (): SinkholeTls | undefined => {
    try {
      return opts.tls?.();
    } catch {
      return undefined;
    }
  };
  const onData = (d: Buffer) => {
    if (done) return;
    bytes += d.length;
    const room = SESSION_READ - buf.length;
    buf = Buffer.concat([buf, d.subarray(0, Math.max(0, room))]);
    const step = http(buf, d, bytes, conn);
    if (step === 'answer') { finish(HTTP_OK); return; }
    if (step === 'wait') return;
    // IRC's first line: the dialogue reads all that came so far (every byte of it was kept)
    const first = !dialogue && bytes === buf.length && startsIrc(buf) ? buf : undefined;
    if (dialogue && !implicitTls) {
      // answered command by command, every chunk read whole (an SMTP message streams through the
      // dialogue, only the preview is capped) until the client quits
      const reply = dialogue.feed(first ?? d);
      if (dialogue.done) { finish(reply ? Buffer.from(reply, 'latin1') : undefined); return; }
      if (reply) conn.write(reply);
      if (dialogue.upgrade) {
        // STARTTLS, told to go ahead: what followed its line is the start of the TLS
        const identity = tlsIdentity();
        if (identity) intercept(identity, dialogue.rest); else finish();
      } else if (bytes >= DIALOGUE_READ_MAX) finish();
      return;
    }
    const hello = parseClientHello(buf);
    if (hello !== undefined && hello !== 'incomplete') {
      // a ClientHello whose bytes were all kept can be answered; else (or without a certificate)
      // it is logged and closed
      const identity = bytes === buf.length ? tlsIdentity() : undefined;
      if (identity) intercept(identity, buf); else finish();
      return;
    }
    if (buf.length >= SESSION_READ) finish();
  };
  conn.on('data', onData);
  // the data connection of a passive port an FTP dialogue named: an upload's is read as above; a
  // download's (or a listing's) ends as soon as its command came, so the sample reads an empty
  // file at once
  const transfer = greeted ? undefined : log.ftpData.claim(dest.address, dest.port);
  if (transfer?.download) finish();
  else if (transfer) transfer.end = () => finish();
}

/** UDP flows followed (their later datagrams added to their bytes); a flow past these is only counted. */
const UDP_FLOWS = SESSION_MAX;

/**
 * The UDP side of the catcher: every datagram the namespace's nftables rule sent to the session
 * socket. A flow (the sample's source address and port: one socket to one destination) is one
 * session, logged at its first datagram with that datagram's first bytes; later datagrams of the
 * flow add to its bytes. Nothing is answered (no protocol is known). `where` names the original
 * destination as for TCP.
 */
export class DatagramCatcher {
  private readonly flows = new Map<string, SinkholeSession>();

  constructor(private readonly log: SessionLog, private readonly where: (remoteAddress: string, remotePort: number) => { address: string; port: number | null; domain?: string }) {}

  onDatagram(msg: Buffer, from: { address: string; port: number }): void {
    const key = `${from.address}:${from.port}`;
    const flow = this.flows.get(key);
    if (flow) {
      flow.bytes += msg.length;
      return;
    }
    const s: SinkholeSession = {
      ...this.where(from.address, from.port), transport: 'udp', protocol: msg.length === 0 ? 'none' : 'other', bytes: msg.length, preview: escaped(msg.subarray(0, PREVIEW)),
    };
    if (this.flows.size < UDP_FLOWS) this.flows.set(key, s);
    else { this.log.refuse(); return; }
    this.log.add(s);
  }
}

/** An IPv6 address as the conntrack table writes it: eight groups of four hex digits ('::' and short groups expanded). */
export function fullIpv6(address: string): string {
  const [head = '', tail] = address.toLowerCase().split('::', 2);
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

/** Bytes of the namespace's conntrack table read per lookup, and per analysis. */
export const CONNTRACK_READ = { lookup: 4 << 20, analysis: 64 << 20 };

/**
 * The original destinations of connections the namespace's nftables rule sent to the listener, from
 * the namespace's connection table (/proc/PID/net/nf_conntrack, opened while the sample's first
 * process lived: the descriptor keeps the namespace's table, re-read from the start each time). A
 * connection's reply direction is the one from the listener to the sample's port.
 *
 * Bounded: the sample fills the table as it likes (20,000 refused connects are 20,000 entries for
 * a while), so each lookup reads at most CONNTRACK_READ.lookup bytes and all of them together
 * CONNTRACK_READ.analysis; past that the port is left unknown (the report then takes the port of
 * the sample's connect to that address).
 */
export class ConntrackTable {
  private spent = 0;

  constructor(private fd: number | undefined, private readonly budget = CONNTRACK_READ) {}

  lookup(listener: string, remoteAddress: string, remotePort: number, proto: 'tcp' | 'udp' = 'tcp', listenerPort = SESSION_PORT): { address: string; port: number } | undefined {
    if (this.fd === undefined || this.spent >= this.budget.analysis) return undefined;
    const limit = Math.min(this.budget.lookup, this.budget.analysis - this.spent);
    const chunks: Buffer[] = [];
    let read = 0;
    try {
      const b = Buffer.alloc(Math.min(64 * 1024, limit));
      for (let n; read < limit && (n = readSync(this.fd, b, 0, Math.min(b.length, limit - read), read)) > 0; read += n) chunks.push(Buffer.from(b.subarray(0, n)));
    } catch { return undefined; } finally { this.spent += read; }
    // the table writes IPv6 addresses whole (2001:0db8:0000:...); the one found is given back short
    const v6 = isIPv6(listener);
    const reply = ` src=${v6 ? fullIpv6(listener) : listener} dst=${v6 ? fullIpv6(remoteAddress) : remoteAddress} sport=${listenerPort} dport=${remotePort} `;
    for (const line of Buffer.concat(chunks).toString('latin1').split('\n')) {
      const at = line.indexOf(reply);
      if (at < 0 || !line.includes(` ${proto} `) || !line.startsWith(v6 ? 'ipv6 ' : 'ipv4 ')) continue;
      const m = (v6 ? / dst=([0-9a-f:]{39}) sport=\d+ dport=(\d+) / : / dst=(\d+\.\d+\.\d+\.\d+) sport=\d+ dport=(\d+) /).exec(line.slice(0, at + 1));
      if (m) return { address: v6 ? new SocketAddress({ address: m[1] as string, family: 'ipv6' }).address : m[1] as string, port: Number(m[2]) };
    }
    return undefined;
  }

  close(): void {
    if (this.fd !== undefined) { try { closeSync(this.fd); } catch { /* closed */ } }
    this.fd = undefined;
  }
}
