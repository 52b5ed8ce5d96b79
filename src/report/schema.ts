// report.json: the versioned analysis report. Bump REPORT_VERSION's minor for added keys,
// its major for anything renamed or removed.
import type { Backend } from '../capture/collector.js';
import type { Finding, Verdict } from '../engine/types.js';

export const REPORT_SCHEMA = 'sandtrace.report';
export const REPORT_VERSION = '1.9.0';

export type FileOp = 'read' | 'write' | 'create' | 'delete' | 'rename' | 'chmod' | 'chown' | 'exec' | 'mkdir' | 'link' | 'stat' | 'truncate' | 'mmap-exec';

export interface ReportProcess {
  pid: number;
  ppid: number;
  exe: string;
  argv: string[];
  uid: number;
  /** Seconds since the analysis started. */
  start: number;
  end: number | null;
  exit: number | null;
  signal: number | null;
  syscalls: number;
  /** Since 1.1: working directory when last seen, when known. */
  cwd?: string;
  /** Since 1.2: the file the executable was copied, moved or linked from during the analysis. */
  copiedFrom?: string;
}

export interface ReportFile {
  path: string;
  ops: FileOp[];
  pids: number[];
  /** Target path of a rename, or where a link points. */
  renamedTo?: string[];
}

export interface ReportDropped {
  path: string;
  /** null: too large to hash (a sparse file can claim exabytes); the copy holds its first bytes. */
  sha256: string | null;
  size: number;
  /** Whether the file was created (new) or an existing image file modified. */
  change: 'created' | 'modified';
  /** Relative path of the copy inside the analysis directory; absent when over the size cap. */
  copy?: string;
  truncated: boolean;
}

export interface ReportNetwork {
  /** sendmmsg/recvmmsg: one entry per address of the batch's messages, counted per message. */
  op: 'connect' | 'bind' | 'listen' | 'accept' | 'sendto' | 'recvfrom' | 'sendmsg' | 'recvmsg' | 'sendmmsg' | 'recvmmsg' | 'socket';
  proto: 'tcp' | 'udp' | 'unix' | 'raw' | 'other';
  family: 'inet' | 'inet6' | 'unix' | 'netlink' | 'packet' | 'other';
  address: string;
  port: number | null;
  /**
   * 'ok', or the errno name of the failure (ECONNREFUSED, ENETUNREACH, EINPROGRESS, ...); 'unknown'
   * for an entry the list had left out and that a finding's evidence put back without its result.
   */
  result: string;
  pid: number;
  count: number;
  /** Since 1.5: the name the sample looked up to get this address (the DNS sinkhole's answer). */
  domain?: string;
}

export interface ReportDns {
  name: string;
  /** 'A', 'AAAA', 'TXT', ... or TYPEnnn. */
  type: string;
  /** The address answered (A), the mail exchanger (MX, since 1.7: the name itself, whose A answer leads to the catcher), or null (no records, or NXDOMAIN). */
  answer: string | null;
  /** NOERROR, or NXDOMAIN when the analysis asked for every name to fail (`analyze --dns nxdomain`). */
  rcode: 'NOERROR' | 'NXDOMAIN';
  count: number;
}

/**
 * Since 1.6: a TCP connection (since 1.7 also a UDP flow) the sample made off its loopback, caught
 * inside its namespace (src/sandbox/sessions.ts): what it sent first. HTTP requests were answered 200 with an empty body;
 * a TLS ClientHello with the catcher's certificate (since 1.7; since 1.8 one issued for the name
 * asked by an authority the container trusts); anything else was closed after its first message.
 */
export interface ReportSession {
  /** The address connected to; since 1.9 also an IPv6 one (before, IPv6 was not caught). */
  address: string;
  /** The port it connected to (null when neither the namespace's connection table nor the capture told it). */
  port: number | null;
  /** Since 1.7: 'udp' for datagrams (one socket of the sample to one destination: the first kept, never answered); absent for TCP. */
  transport?: 'udp';
  domain?: string;
  /**
   * Since 1.7 also smtp, ftp, pop3 and imap: the port's server speaks first, and the catcher
   * greeted the sample as one. Since 1.9 irc: the sample's first line was IRC registration, on any
   * port, and the catcher answered as an IRC server (`irc`).
   */
  protocol: 'http' | 'tls' | 'smtp' | 'ftp' | 'pop3' | 'imap' | 'irc' | 'other' | 'none';
  /**
   * An HTTP (or decrypted HTTPS) request. Since 1.8 `body`: a POST's or PUT's body (by
   * Content-Length or chunked), read whole before the 200 was sent: its size, SHA-256 and first
   * 256 bytes (escaped); `incomplete` when the sample stopped before its end or it passed 32 MiB.
   */
  http?: { method: string; path: string; host?: string; userAgent?: string; body?: { bytes: number; sha256: string; preview: string; incomplete?: true } };
  /** TLS: the ClientHello's server name. */
  sni?: string;
  /** Bytes received (at most 16 KiB were read). */
  bytes: number;
  /** The first 256 bytes, printable ASCII as it is, anything else as \xNN. */
  preview: string;
  /**
   * Since 1.7, TLS (since 1.8 also SMTP after STARTTLS): what the sample sent in the clear after it
   * accepted the catcher's certificate (it checked it against the container's CAs, or not at all):
   * bytes, and the first 256 as `preview` shows them; `http` is then the request it made (HTTPS).
   * Absent when the sample refused the certificate during the handshake; 0 bytes when it completed
   * the handshake and sent nothing (a client that pins a key checks it only then).
   */
  decrypted?: { bytes: number; preview: string };
  /**
   * Since 1.7, SMTP: the catcher answered as a mail server; the first message's HELO
   * name, sender, first 16 recipients (`recipients` counts all) and subject, each escaped. Since
   * 1.8: `auth`, the account it logged in with (AUTH PLAIN or LOGIN: the catcher accepts any
   * password), `starttls`, the dialogue went on inside TLS (the sample accepted the catcher's
   * certificate), and `messages`, how many it sent on the connection when more than one (the
   * catcher now answers until the client quits, not only the first message).
   */
  smtp?: {
    helo?: string; from?: string; to: string[]; recipients: number; subject?: string;
    auth?: { mechanism: 'PLAIN' | 'LOGIN'; user: string; password: string }; starttls?: true; messages?: number;
  };
  /**
   * Since 1.8, FTP: the catcher answered as a server that takes any login and every file; the
   * login, the first 16 files named by transfers (STOR and APPE upload, RETR downloads) and the
   * transfers counted. An upload's bytes went over a data connection of its own, caught as
   * another session (to the port the passive reply named).
   */
  ftp?: { user?: string; password?: string; files: { command: 'STOR' | 'APPE' | 'RETR'; path: string }[]; uploads: number; downloads: number };
  /**
   * Since 1.8, POP3 and IMAP: the catcher answered as a server that takes any login and holds no
   * mail; the account the sample logged in with (USER and PASS, APOP with its digest as the
   * password, IMAP's LOGIN, or SASL PLAIN). Before 1.8 these were closed at their first line.
   */
  login?: { mechanism: 'USER' | 'APOP' | 'LOGIN' | 'PLAIN'; user: string; password: string };
  /**
   * Since 1.9, IRC (protocol irc, or tls when it came inside the catcher's TLS): the catcher
   * answered as a server that welcomes any nick; the nick, USER's user and real name, the server
   * password (PASS), the first 16 channels joined with their keys, the first 16 messages sent
   * (PRIVMSG, NOTICE), and the lines sent in all. Each field escaped, at most 256 characters.
   */
  irc?: {
    nick?: string; user?: string; realname?: string; password?: string;
    channels: { name: string; key?: string }[];
    messages: { command: 'PRIVMSG' | 'NOTICE'; target: string; text: string }[];
    lines: number;
  };
}

/**
 * Since 1.8: what an analyst copies into a blocklist or a threat-intel platform, gathered from the
 * rest of the report (report/indicators.ts); each list holds a value once, in the order first
 * seen, at most 1,000 entries.
 */
export interface ReportIndicators {
  /** Names the sample looked up, every type. */
  domains: string[];
  /** Addresses (with port) it connected or sent to that no lookup gave: hard-coded; loopback and the sandbox's own left out. */
  endpoints: string[];
  /** The caught HTTP(S) requests: scheme, Host (else the name or address looked up), path. */
  urls: string[];
  userAgents: string[];
  /** TLS server names (SNI). */
  serverNames: string[];
  /** Accounts it logged in with (SMTP, FTP, POP3, IMAP): its operator's, or ones it tests. */
  accounts: { protocol: string; user: string; password: string }[];
  /** Senders and recipients of the mail it sent. */
  mailAddresses: string[];
  /** SHA-256 of the files it wrote (`dropped`, with the path) and of what it uploaded whole (`upload`, with the URL). */
  hashes: { sha256: string; source: 'dropped' | 'upload'; name: string }[];
}

export interface ReportDiagnostic {
  code: string;
  message: string;
  where?: string;
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  version: string;
  tool: { name: 'sandtrace'; version: string };
  analysis: {
    id: string;
    started: string;
    ended: string;
    duration: number;
    timeout: number;
    timedOut: boolean;
    /** 'completed': the pipeline ran to the end (whatever the sample did). 'partial': something failed; see errors. */
    status: 'completed' | 'partial';
    isolation: { kind: 'container' | 'rootless' | 'vm' | 'none'; guarantees: string[]; weaker: string[] };
    errors: ReportDiagnostic[];
    warnings: ReportDiagnostic[];
    /**
     * Since 1.4: what the report's lists left out past their limits (REPORT_LIMITS: file
     * operations on paths past the listed ones, network operations, processes), when anything was.
     * Files and endpoints are kept by rank, not first-come: a listed one displaced by a higher-ranked
     * one counts here with its operations (a file's distinct ones, an endpoint's count).
     */
    omitted?: { files: number; network: number; processes: number };
  };
  sample: {
    name: string; size: number; sha256: string; sha1: string; md5: string; type: string; args: string[];
    /**
     * Since 1.5: the program the sample was run with (`interpreter... sample args...`), when the
     * kernel cannot run it itself: a script without a `#!` line, or one whose `#!` line ends in a CR.
     */
    interpreter?: string[];
  };
  processes: ReportProcess[];
  files: ReportFile[];
  dropped: ReportDropped[];
  deleted: string[];
  network: ReportNetwork[];
  /**
   * Since 1.5: the names the sample looked up, as the sandbox's DNS sinkhole answered them (A: an
   * address of 198.18.0.0/15 of the name's own, which leads only to sandtrace's catcher in the namespace; MX: the name itself; other types: no records; all
   * NXDOMAIN with `analyze --dns nxdomain`). Absent where the sandbox has no sinkhole (VM).
   */
  dns?: ReportDns[];
  /** Since 1.6: the sample's TCP connections (since 1.7 also UDP flows) off its loopback, as caught; absent where none could be. */
  sessions?: ReportSession[];
  indicators?: ReportIndicators;
  syscalls: { total: number; counts: Record<string, number>; denied: { name: string; pid: number; count: number }[] };
  capture: {
    backend: Backend; reason: string; events: number; lost: number; parseErrors: number; duration: number; notes: string[];
    /** Since 1.1: events with an argument cut at the capture's buffer (the path or argv shown is a prefix). */
    argsTruncated?: number;
    /** Since 1.1: events with an argument the capture could not read at all (e.g. a bad pointer from the sample). */
    argsUnreadable?: number;
    /** Since 1.1: events whose arguments were read at the call's return, not at the call (the sample could have changed them between). */
    argsReadAtExit?: number;
    /** Since 1.4: seconds the sample was paused (frozen) for the capture to keep up; the timeout ran on meanwhile. */
    paused?: number;
  };
  findings: Finding[];
  verdict: Verdict;
}
