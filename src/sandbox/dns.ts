// A DNS sinkhole inside the sample's network namespace (as INetSim or FakeNet give a Windows
// sandbox): the image's resolver address (192.0.2.53, TEST-NET-1, in /etc/resolv.conf) is added to
// the sample's own loopback and answered from here, so that the names a sample looks up, its C2
// domains, are in the report, and its next step (a connect to the answer) is seen too. Every A
// question gets an address of its own from 198.18.0.0/15 (RFC 2544, benchmarking: never routed);
// a connect to it names the domain in the report, and is caught inside the namespace, as every
// TCP connection and datagram off its loopback is (sessions.ts): nothing leaves. An MX question is
// answered with the name itself as the exchanger. Other questions get an empty answer (NOERROR, no records), so resolvers
// fall back to A. In 'nxdomain' mode every question is answered NXDOMAIN instead (for a sample
// that stops when a name that should not exist resolves, as WannaCry's kill switch did); the
// names are listed all the same.
//
// The packets are the sample's: parsed with bounds on everything, never trusted; a malformed one is
// answered FORMERR or dropped, and counted. Questions come over UDP and over TCP (RFC 7766: a
// resolver retries there, and some samples ask there from the start), answered alike.
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { Socket } from 'node:dgram';
import type { Server, Socket as TcpSocket } from 'node:net';
import { SandtraceError } from '../errors.js';
import { catchSession, ConntrackTable, DatagramCatcher, SESSION_MAX_OPEN, SESSION_PORT, SessionLog } from './sessions.js';
import { sandboxCa } from './tls.js';
import { GREETERS } from './greetings.js';
import type { SandboxDns } from './types.js';

/** The resolver the base image's /etc/resolv.conf names. */
export const DNS_SERVER = '192.0.2.53';
/**
 * The sinkhole's IPv6 address (2001:db8::/32, the documentation prefix, as TEST-NET-1 for IPv4):
 * IPv6 connections and datagrams are caught on its listeners, as IPv4 ones are on DNS_SERVER's.
 */
export const DNS_SERVER6 = '2001:db8::53';
/** Names remembered (and given an address of their own) per analysis; later ones share one address and are counted. */
export const DNS_MAX_NAMES = 10_000;
/** DNS over TCP: connections open at once (more are closed at once), and how long one may sit idle. */
export const DNS_TCP_MAX_CONNECTIONS = 64;
const DNS_TCP_IDLE_MS = 10_000;

const SINKHOLE_BASE = (198 << 24) | (18 << 16); // 198.18.0.0/15
const SINKHOLE_SIZE = 1 << 17;
/** The address every name past DNS_MAX_NAMES gets: the last of the range. */
const SHARED_ADDRESS = ipv4(SINKHOLE_BASE + SINKHOLE_SIZE - 2);

/** An address the sinkhole gives out (198.18.0.0/15): it leads to sandtrace inside the namespace, and stands for the name asked. */
export function isSinkholeAddress(address: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!m) return false;
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  return n - (SINKHOLE_BASE >>> 0) >= 0 && n - (SINKHOLE_BASE >>> 0) < SINKHOLE_SIZE;
}

const TYPES: Readonly<Record<number, string>> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY',
};

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** A name as presentation text (RFC 1035 5.1): lower case, bytes outside printable ASCII and the dot inside a label as \DDD. */
function labelText(b: Buffer): string {
  let s = '';
  for (const c of b) {
    if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c).toLowerCase();
    else s += `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}

export interface DnsQuestion {
  id: number;
  /** Presentation form, lower case, without the final dot ('.' for the root). */
  name: string;
  type: number;
  qclass: number;
  /** Bytes of the question section (to echo in the answer). */
  question: Buffer;
  rd: boolean;
}

/** The question of a standard query; a string saying what is wrong with anything else. */
export function parseQuery(msg: Buffer): DnsQuestion | string {
  if (msg.length < 12) return 'shorter than a DNS header';
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return 'a response, not a query';
  if ((flags >> 11) & 0xf) return `opcode ${(flags >> 11) & 0xf}, not a standard query`;
  if (msg.readUInt16BE(4) !== 1) return `${msg.readUInt16BE(4)} questions, not one`;
  const labels: string[] = [];
  let at = 12;
  let wire = 0;
  for (;;) {
    if (at >= msg.length) return 'the name runs past the end';
    const len = msg[at] as number;
    if (len === 0) { at++; wire++; break; }
    if (len > 63) return 'a compressed or extended label in the question';
    wire += len + 1;
    if (wire > 255) return 'a name longer than 255 bytes';
    if (at + 1 + len > msg.length) return 'a label runs past the end';
    labels.push(labelText(msg.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  if (at + 4 > msg.length) return 'no type and class after the name';
  return {
    id: msg.readUInt16BE(0), name: labels.length ? labels.join('.') : '.', type: msg.readUInt16BE(at), qclass: msg.readUInt16BE(at + 2),
    question: msg.subarray(12, at + 4), rd: (flags & 0x0100) !== 0,
  };
}

/**
 * A response to `q`: rcode, and its one record if any: an A record's address, or `'MX'`, a mail
 * exchanger record naming the question's name itself (preference 10), whose A question then gets
 * a sinkhole address as any name does.
 */
export function buildResponse(q: Pick<DnsQuestion, 'id' | 'question' | 'rd'>, rcode: number, record?: string): Buffer {
  const answer = record === undefined ? Buffer.alloc(0) : Buffer.alloc(16);
  if (record !== undefined) {
    answer.writeUInt16BE(0xc00c, 0); // the question's name
    answer.writeUInt16BE(record === 'MX' ? 15 : 1, 2);
    answer.writeUInt16BE(1, 4); // IN
    answer.writeUInt32BE(60, 6); // TTL
    answer.writeUInt16BE(4, 10);
    if (record === 'MX') {
      answer.writeUInt16BE(10, 12); // preference
      answer.writeUInt16BE(0xc00c, 14); // exchange: the question's name
    } else record.split('.').forEach((o, i) => answer.writeUInt8(Number(o), 12 + i));
  }
  const h = Buffer.alloc(12);
  h.writeUInt16BE(q.id, 0);
  h.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf), 2); // QR AA RD RA
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(record === undefined ? 0 : 1, 6);
  return Buffer.concat([h, q.question, answer]);
}

export type DnsMode = 'sinkhole' | 'nxdomain';

export interface DnsRecord {
  name: string;
  /** 'A', 'AAAA', 'TXT', ... or TYPEnnn. */
  type: string;
  /** The sinkhole address answered, for A; for MX the mail exchanger named, the name itself; null for the empty answers. */
  answer: string | null;
  /** NOERROR (an address, or no records), or NXDOMAIN (mode 'nxdomain'). */
  rcode: 'NOERROR' | 'NXDOMAIN';
  count: number;
}

/**
 * What the sample asked the sinkhole about one domain (the last two labels of the names: a tunnel
 * puts its data in the labels below its own domain): the event a rule of source `dns` sees.
 */
export interface DnsDomainActivity {
  domain: string;
  /** Distinct names asked under it, and questions in all (every type, each repeat counted). */
  names: number;
  queries: number;
  /** The longest label of any of the names (DNS allows 63 bytes), and the longest name. */
  labelMax: number;
  longest: string;
  /** The types asked, in the order first asked; and how many questions were TXT (the answers a tunnel reads its data from). */
  types: string[];
  txt: number;
}

/** The domain a name is counted under: its last two labels (the name itself when it has fewer). */
export function domainOf(name: string): string {
  const labels = name.split('.').filter((l) => l !== '');
  return labels.slice(-2).join('.');
}

/** The sinkhole's log, domain by domain, in the order each domain was first asked about. */
export function dnsActivity(queries: readonly DnsRecord[]): DnsDomainActivity[] {
  const by = new Map<string, DnsDomainActivity & { seen: Set<string> }>();
  for (const q of queries) {
    const domain = domainOf(q.name);
    let a = by.get(domain);
    if (!a) by.set(domain, (a = { domain, names: 0, queries: 0, labelMax: 0, longest: '', types: [], txt: 0, seen: new Set() }));
    if (!a.seen.has(q.name)) {
      a.seen.add(q.name);
      a.names++;
      if (q.name.length > a.longest.length) a.longest = q.name;
      for (const l of q.name.split('.')) a.labelMax = Math.max(a.labelMax, l.length);
    }
    a.queries += q.count;
    if (!a.types.includes(q.type)) a.types.push(q.type);
    if (q.type === 'TXT') a.txt += q.count;
  }
  return [...by.values()].map(({ seen: _seen, ...a }) => a);
}

/** Address → name for the A answers of a log: the names behind fd.sip.name and the report's `domain`. */
export function namesByAddress(queries: readonly DnsRecord[]): Map<string, string> {
  return new Map(queries.flatMap((q) => (q.answer === null || q.type !== 'A' ? [] : [[q.answer, q.name] as const])));
}

export interface DnsLog {
  queries: DnsRecord[];
  /** Queries about names past DNS_MAX_NAMES (answered with one shared address, not listed). */
  omitted: number;
  /** Packets that were no standard query of one question (answered FORMERR when they had a header, else dropped). */
  malformed: number;
}

/** The sinkhole's answers and memory: pure, so it is tested without a namespace. */
export class DnsSinkhole {
  private readonly records = new Map<string, DnsRecord>();
  private readonly addressOf = new Map<string, string>();
  private readonly nameAt = new Map<string, string>();
  private omitted = 0;
  private malformed = 0;

  constructor(private readonly mode: DnsMode = 'sinkhole', private readonly maxNames = DNS_MAX_NAMES) {}

  /** The reply to one datagram, or undefined to drop it. */
  answer(msg: Buffer): Buffer | undefined {
    const q = parseQuery(msg);
    if (typeof q === 'string') {
      this.malformed++;
      // a header we can answer: FORMERR with no question, so the sender stops waiting
      if (msg.length < 12 || msg.readUInt16BE(2) & 0x8000) return undefined;
      return buildResponse({ id: msg.readUInt16BE(0), question: Buffer.alloc(0), rd: false }, 1).fill(0, 4, 6);
    }
    const type = TYPES[q.type] ?? `TYPE${q.type}`;
    let address: string | undefined;
    const nx = this.mode === 'nxdomain';
    if (!nx && q.type === 1 && q.qclass === 1) {
      address = this.addressOf.get(q.name);
      if (address === undefined && this.addressOf.size < this.maxNames && this.addressOf.size < SINKHOLE_SIZE - 3) {
        address = ipv4(SINKHOLE_BASE + 1 + this.addressOf.size);
        this.addressOf.set(q.name, address);
        this.nameAt.set(address, q.name);
      }
      address ??= SHARED_ADDRESS;
    }
    // a mail exchanger: the name itself, so that a mailer that asks MX first (spam bots) comes on
    // to the name's A answer and its port 25, where the catcher greets it (greetings.ts)
    const mx = !nx && q.type === 15 && q.qclass === 1;
    const key = `${type} ${q.name}`;
    const rec = this.records.get(key);
    if (rec) rec.count++;
    else if (this.records.size < this.maxNames) this.records.set(key, { name: q.name, type, answer: address ?? (mx ? q.name : null), rcode: nx ? 'NXDOMAIN' : 'NOERROR', count: 1 });
    else this.omitted++;
    return buildResponse(q, nx ? 3 : 0, mx ? 'MX' : address);
  }

  /** The name a sinkhole address was given for. */
  nameOf(address: string): string | undefined {
    return this.nameAt.get(address);
  }

  log(): DnsLog {
    return { queries: [...this.records.values()], omitted: this.omitted, malformed: this.malformed };
  }
}

/**
 * python3 -c ENTER_OWNER PID CMD...: runs CMD in the network namespace of PID and in the user
 * namespace that owns it (nsenter --preserve-credentials: the creator is already root there, and
 * bwrap denies setgroups). Both namespaces are opened once, by descriptor, so a recycled pid
 * cannot swap them between the ioctl and nsenter.
 */
const ENTER_OWNER = `import fcntl, os, sys
net = os.open('/proc/%s/ns/net' % sys.argv[1], os.O_RDONLY)
user = fcntl.ioctl(net, 0xb701)  # NS_GET_USERNS
os.set_inheritable(net, True)
os.set_inheritable(user, True)
os.execvp('nsenter', ['nsenter', '--preserve-credentials', '--user=/proc/self/fd/%d' % user, '--net=/proc/self/fd/%d' % net, '--'] + sys.argv[2:])
`;

/** What a served sinkhole gives back: close() closes its sockets; `sessionsUnavailable`, why connections are not caught. */
export interface ServedSinkhole {
  close(): void;
  sessionsUnavailable?: string;
  /** Why IPv6 connections are not caught (the namespace has no IPv6, say) while IPv4 ones are. */
  ipv6Unavailable?: string;
}

/**
 * Answers `sinkhole`'s questions on DNS_SERVER:53 inside the network namespace of `pid`: a short
 * helper (nsenter into that namespace only: it stays in sandtrace's cgroup, outside the sample's)
 * adds the address to the namespace's loopback, binds the sockets and hands them over, then exits;
 * the sockets are served here. close() closes them.
 *
 * `sessions`: the sample's connections off its loopback are caught too (sessions.ts): the helper
 * makes every IPv4 address local to the namespace (a `local default` route on the loopback, so a
 * caught connection comes from the address it was made to) and adds an nftables rule of the
 * namespace sending every TCP connection to an address outside 127.0.0.0/8 and DNS_SERVER to
 * DNS_SERVER:SESSION_PORT, where the third socket listens, every UDP datagram to port 53 to the
 * sinkhole (a sample with its own resolver, 8.8.8.8 say, is answered too), and every other UDP
 * datagram to DNS_SERVER:SESSION_PORT too, where a fourth socket reads them; TCP to a port whose
 * server speaks first goes to that protocol's own listener instead (greetings.ts: DNS_SERVER:25
 * for SMTP's ports, :21, :110, :143), which greets it without having to know the port. Without nftables
 * the route is taken back, the connections fail as unrouted, and `sessionsUnavailable` says why.
 * IPv6 is set up the same way after IPv4 (DNS_SERVER6 on the loopback, a local default route, an
 * ip6 table, the same listeners on DNS_SERVER6); where it cannot be (IPv6 disabled in the
 * namespace), IPv6 stays unrouted and `ipv6Unavailable` says why.
 *
 * `viaOwner` (the rootless sandbox, run without root): the helper first enters the user namespace
 * that owns the network namespace, which only that gives the right to configure. bwrap
 * --disable-userns runs the sample in a second user namespace nested in it, so the sample's own
 * (`/proc/PID/ns/user`) is the wrong one, and no process is left in the owner: it is found from the
 * network namespace itself (the NS_GET_USERNS ioctl, which Node cannot make; Debian's python3 can).
 * Its creator, the user sandtrace runs as, holds every capability there.
 */
export async function serveDns(pid: number, sinkhole: DnsSinkhole, opts: { viaOwner?: boolean; sessions?: SessionLog } = {}): Promise<ServedSinkhole> {
  const helper = `(() => {
const { execFileSync } = require('node:child_process');
const dgram = require('node:dgram');
const net = require('node:net');
const run = (cmd, args, input) => execFileSync(cmd, args, { stdio: 'pipe', ...(input ? { input } : {}) });
const catchSessions = ${opts.sessions ? 'true' : 'false'};
// why IPv6 is not caught (undefined while it is)
let noSix;
try { run('ip', ['addr', 'add', '${DNS_SERVER}/32', 'dev', 'lo']); }
catch (e) { process.send({ error: 'ip addr add: ' + String(e.stderr || e.message).trim() }, () => process.exit(1)); return; }
const fail = (what) => (e) => process.send({ error: what + ': ' + e.message }, () => process.exit(1));
const s = dgram.createSocket('udp4');
s.on('error', fail('bind'));
s.bind(53, '${DNS_SERVER}', () => {
  const t = net.createServer();
  t.on('error', fail('listen'));
  t.listen({ port: 53, host: '${DNS_SERVER}', backlog: 64 }, () => process.send({ bound: 'udp' }, s, () => process.send({ bound: 'tcp' }, t, () => {
    if (!catchSessions) { process.exit(0); return; }
    let routed = false;
    try {
      run('ip', ['route', 'add', 'local', 'default', 'dev', 'lo']);
      routed = true;
      // IPv6 in one more exec (both lines, or the reason), its table in the same nft run as IPv4's
      try {
        run('ip', ['-batch', '-'], 'addr add ${DNS_SERVER6}/128 dev lo nodad\\nroute add local ::/0 dev lo\\n');
      } catch (e) {
        noSix = 'setup: ' + String(e.stderr || e.message).trim().split('\\n')[0];
        try { run('ip', ['-6', 'route', 'del', 'local', '::/0', 'dev', 'lo']); } catch { /* not added */ }
      }
      try {
        run('nft', ['-f', '-'], ${JSON.stringify(sessionRules())} + (noSix ? '' : ${JSON.stringify(sessionRules6())}));
      } catch (e) {
        // a kernel without IPv6 NAT refuses the whole run: IPv4's table alone, IPv6 left unrouted
        if (noSix) throw e;
        noSix = 'nft: ' + String(e.stderr || e.message).trim().split('\\n')[0];
        try { run('ip', ['-6', 'route', 'del', 'local', '::/0', 'dev', 'lo']); } catch { /* gone */ }
        run('nft', ['-f', '-'], ${JSON.stringify(sessionRules())});
      }
    } catch (e) {
      if (routed) { try { run('ip', ['route', 'del', 'local', 'default', 'dev', 'lo']); } catch { /* gone */ } }
      if (routed && !noSix) { try { run('ip', ['-6', 'route', 'del', 'local', '::/0', 'dev', 'lo']); } catch { /* gone */ } }
      process.send({ sessions: String(e.stderr || e.message).trim().split('\\n')[0] }, () => process.exit(0));
      return;
    }
    const unavailable = (what) => (e) => process.send({ sessions: what + ': ' + e.message }, () => process.exit(0));
    const c = net.createServer();
    const u = dgram.createSocket('udp4');
    const greeters = ${JSON.stringify(GREETERS.map((g) => g.listen))}.map((port) => ({ port, server: net.createServer() }));
    c.on('error', unavailable('listen'));
    u.on('error', unavailable('bind udp'));
    for (const g of greeters) g.server.on('error', unavailable('listen on port ' + g.port));
    const listenAll = (i, next) => (i === greeters.length ? next() : greeters[i].server.listen({ port: greeters[i].port, host: '${DNS_SERVER}', backlog: 64 }, () => listenAll(i + 1, next)));
    const sendAll = (i, next) => (i === greeters.length ? next() : process.send({ bound: 'greet', listen: greeters[i].port }, greeters[i].server, () => sendAll(i + 1, next)));
    u.bind(${SESSION_PORT}, '${DNS_SERVER}', () => c.listen({ port: ${SESSION_PORT}, host: '${DNS_SERVER}', backlog: 64 }, () => listenAll(0,
      () => process.send({ bound: 'udp-sessions' }, u, () => sendAll(0, () => six(() => process.send({ bound: 'sessions' }, c, () => process.exit(0))))))));
  })));
});
// IPv6: the same listeners on DNS_SERVER6, every IPv6 address made local and sent to them; where
// the namespace has no IPv6 (disabled), it stays unrouted and the parent is told why
const six = (next) => {
  const skip = (what) => (e) => process.send({ ipv6: what + ': ' + String((e && (e.stderr || e.message)) || e).trim().split('\\n')[0] }, next);
  if (noSix) { process.send({ ipv6: noSix }, next); return; }
  const list = [['dns-udp', 53, dgram.createSocket({ type: 'udp6', ipv6Only: true })], ['dns-tcp', 53, net.createServer()],
    ['udp-sessions', ${SESSION_PORT}, dgram.createSocket({ type: 'udp6', ipv6Only: true })], ['sessions', ${SESSION_PORT}, net.createServer()],
    ...${JSON.stringify(GREETERS.map((g) => g.listen))}.map((port) => ['greet', port, net.createServer()])];
  let failed = false;
  for (const [, port, h] of list) h.once('error', (e) => { if (!failed) { failed = true; skip('listen on port ' + port)(e); } });
  const bindAll = (i, done) => {
    if (failed) return;
    if (i === list.length) { done(); return; }
    const [, port, h] = list[i];
    if (h instanceof net.Server) h.listen({ port, host: '${DNS_SERVER6}', backlog: 64, ipv6Only: true }, () => bindAll(i + 1, done));
    else h.bind(port, '${DNS_SERVER6}', () => bindAll(i + 1, done));
  };
  const sendAll6 = (i) => (i === list.length ? next() : process.send({ bound: list[i][0], family: 6, listen: list[i][1] }, list[i][2], () => sendAll6(i + 1)));
  bindAll(0, () => sendAll6(0));
};
})();`;
  const node = [process.execPath, '-e', helper];
  // nft and ip live in sbin, which an unprivileged user's PATH may lack
  const env = { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` };
  const child = opts.viaOwner
    ? spawn(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-I', '-c', ENTER_OWNER, String(pid), ...node], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env })
    : spawn('nsenter', [`--net=/proc/${pid}/ns/net`, '--', ...node], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { if (stderr.length < 4096) stderr += b.toString(); });
  const { socket, server, sessionServer, sessionSocket, greeters, sessionsUnavailable, six, ipv6Unavailable } = await new Promise<{
    socket: Socket; server: Server; sessionServer?: Server; sessionSocket?: Socket; greeters?: Map<number, Server>; sessionsUnavailable?: string;
    six?: Map<string, Socket | Server>; ipv6Unavailable?: string;
  }>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('no answer from the helper in 10 s')); }, 10_000);
    let udp: Socket | undefined;
    let tcp: Server | undefined;
    let udpSessions: Socket | undefined;
    const greeted = new Map<number, Server>();
    // the IPv6 listeners, by role and port ('sessions:1', 'greet:25', 'dns-udp:53' ...), or why there are none
    const six = new Map<string, Socket | Server>();
    let ipv6Unavailable: string | undefined;
    child.on('message', (m: { bound?: string; error?: string; sessions?: string; listen?: number; family?: number; ipv6?: string }, handle: unknown) => {
      if (m.family === 6 && handle && udpSessions && SIX_ROLES.has(`${m.bound}:${m.listen}`)) { six.set(`${m.bound}:${m.listen}`, handle as Socket | Server); return; }
      if (m.ipv6 !== undefined && udpSessions) { ipv6Unavailable = m.ipv6 || 'no reason given'; return; }
      if (m.bound === 'udp' && handle) { udp = handle as Socket; return; }
      if (m.bound === 'tcp' && handle && udp && opts.sessions) { tcp = handle as Server; return; }
      if (m.bound === 'udp-sessions' && handle && udp && tcp) { udpSessions = handle as Socket; return; }
      if (m.bound === 'greet' && handle && udpSessions && GREETERS.some((g) => g.listen === m.listen)) { greeted.set(m.listen as number, handle as Server); return; }
      clearTimeout(timer);
      if (m.bound === 'tcp' && handle && udp) resolve({ socket: udp, server: handle as Server });
      else if (m.bound === 'sessions' && handle && udp && tcp && udpSessions && greeted.size === GREETERS.length) {
        // IPv6 whole or not at all: a listener missing leaves it unrouted, as before it was asked for
        const whole = six.size === SIX_ROLES.size;
        if (!whole) for (const h of six.values()) h.close();
        resolve({
          socket: udp, server: tcp, sessionServer: handle as Server, sessionSocket: udpSessions, greeters: greeted,
          ...(whole ? { six } : { ipv6Unavailable: ipv6Unavailable ?? 'the helper bound only some of the IPv6 listeners' }),
        });
      } else if (m.sessions !== undefined && udp && tcp) resolve({ socket: udp, server: tcp, sessionsUnavailable: m.sessions || 'no reason given' });
      else {
        udp?.close(); tcp?.close(); udpSessions?.close(); (handle as Server | undefined)?.close();
        for (const g of greeted.values()) g.close();
        for (const h of six.values()) h.close();
        reject(new Error(m.error ?? 'no socket'));
      }
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    // close, not exit: a message sent just before the exit is delivered first
    child.once('close', (code) => { clearTimeout(timer); reject(new Error(`helper exited ${code}: ${stderr.split('\n').find((l) => /error/i.test(l))?.trim() ?? stderr.trim().split('\n')[0] ?? ''}`)); });
  }).catch((e: unknown) => {
    throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `cannot start the DNS sinkhole in the sandbox: ${(e as Error).message}`, { cause: e });
  });
  const sixUdp = (key: string) => six?.get(key) as Socket | undefined;
  const sixTcp = (key: string) => six?.get(key) as Server | undefined;
  for (const dns of [socket, sixUdp('dns-udp:53')]) {
    dns?.on('message', (msg, rinfo) => {
      const reply = sinkhole.answer(msg);
      if (reply) dns.send(reply, rinfo.port, rinfo.address);
    });
    dns?.on('error', () => undefined); // a send to a socket the sample closed: nothing to do
  }
  const connections = new Set<TcpSocket>();
  const track = (conn: TcpSocket) => { connections.add(conn); conn.once('close', () => connections.delete(conn)); };
  for (const dns of [server, sixTcp('dns-tcp:53')]) {
    if (!dns) continue;
    dns.maxConnections = DNS_TCP_MAX_CONNECTIONS;
    dns.on('connection', (conn: TcpSocket) => { track(conn); serveTcp(conn, sinkhole); });
    dns.on('error', () => undefined);
  }
  // the namespace's connection table, opened while its first process lives (sessions.ts)
  let conntrack: ConntrackTable | undefined;
  if (sessionServer && opts.sessions) {
    const log = opts.sessions;
    let fd: number | undefined;
    try { fd = openSync(`/proc/${pid}/net/nf_conntrack`, 'r'); } catch { /* not root: ports unknown here, taken from the capture by the report */ }
    conntrack = new ConntrackTable(fd);
    // the listener a connection came to is the sinkhole's address of its family
    const where = (proto: 'tcp' | 'udp', listener = SESSION_PORT) => (address: string, port: number) => {
      const orig = conntrack?.lookup(isIPv6(address) ? DNS_SERVER6 : DNS_SERVER, address, port, proto, listener);
      const to = orig?.address ?? address;
      const domain = sinkhole.nameOf(to);
      return { address: to, port: orig?.port ?? null, ...(domain !== undefined ? { domain } : {}) };
    };
    const listen = (srv: Server | undefined, serve: (conn: TcpSocket) => void) => {
      if (!srv) return;
      srv.maxConnections = SESSION_MAX_OPEN;
      srv.on('drop', () => log.refuse());
      srv.on('connection', (conn: TcpSocket) => { track(conn); serve(conn); });
      srv.on('error', () => undefined);
    };
    for (const srv of [sessionServer, sixTcp(`sessions:${SESSION_PORT}`)]) listen(srv, (conn) => catchSession(conn, log, where('tcp'), { tls: sandboxCa }));
    // the server-first protocols: each listener names its own (greetings.ts); the authority's
    // certificates answer SMTP's STARTTLS and the implicit-TLS ports' ClientHello
    for (const greeter of GREETERS) {
      for (const srv of [greeters?.get(greeter.listen), sixTcp(`greet:${greeter.listen}`)]) {
        listen(srv, (conn) => catchSession(conn, log, where('tcp', greeter.listen), { greet: greeter.protocol, tls: sandboxCa, ...(greeter.tls ? { implicitTls: true } : {}) }));
      }
    }
    const datagrams = new DatagramCatcher(log, where('udp'));
    for (const u of [sessionSocket, sixUdp(`udp-sessions:${SESSION_PORT}`)]) {
      u?.on('message', (msg, rinfo) => datagrams.onDatagram(msg, rinfo));
      u?.on('error', () => undefined);
    }
  }
  return {
    ...(sessionsUnavailable !== undefined ? { sessionsUnavailable } : {}),
    ...(ipv6Unavailable !== undefined ? { ipv6Unavailable } : {}),
    close: () => {
      for (const u of [socket, sessionSocket, sixUdp('dns-udp:53'), sixUdp(`udp-sessions:${SESSION_PORT}`)]) {
        try { u?.close(); } catch { /* closed */ }
      }
      server.close();
      sessionServer?.close();
      for (const g of greeters?.values() ?? []) g.close();
      for (const [key, h] of six ?? []) if (!key.startsWith('dns-udp') && !key.startsWith('udp-sessions')) (h as Server).close();
      for (const c of connections) c.destroy();
      conntrack?.close();
    },
  };
}

/** The IPv6 listeners the helper hands over, by role and port. */
const SIX_ROLES = new Set(['dns-udp:53', 'dns-tcp:53', `udp-sessions:${SESSION_PORT}`, `sessions:${SESSION_PORT}`, ...GREETERS.map((g) => `greet:${g.listen}`)]);

/**
 * The nftables rules of the sample's namespace: every TCP connection off its loopback goes to the
 * session listener (to a port whose server speaks first: that protocol's listener), every DNS
 * datagram to the sinkhole (conntrack answers from the address asked), every other datagram to the
 * session socket.
 */
function sessionRules(): string {
  return `table ip sandtrace {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr { 127.0.0.0/8, ${DNS_SERVER} } return
${GREETERS.map((g) => `    tcp dport { ${g.ports.join(', ')} } dnat to ${DNS_SERVER}:${g.listen}\n`).join('')}    meta l4proto tcp dnat to ${DNS_SERVER}:${SESSION_PORT}
    udp dport 53 dnat to ${DNS_SERVER}:53
    meta l4proto udp dnat to ${DNS_SERVER}:${SESSION_PORT}
  }
}
`;
}

/** sessionRules for IPv6: the same, to DNS_SERVER6's listeners (the namespace's own ::1 left alone). */
function sessionRules6(): string {
  return `table ip6 sandtrace {
  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr { ::1, ${DNS_SERVER6} } return
${GREETERS.map((g) => `    tcp dport { ${g.ports.join(', ')} } dnat to [${DNS_SERVER6}]:${g.listen}\n`).join('')}    meta l4proto tcp dnat to [${DNS_SERVER6}]:${SESSION_PORT}
    udp dport 53 dnat to [${DNS_SERVER6}]:53
    meta l4proto udp dnat to [${DNS_SERVER6}]:${SESSION_PORT}
  }
}
`;
}

/**
 * One DNS-over-TCP connection (RFC 7766): messages framed by a two-byte length, answered in order
 * as each arrives whole. Bounded: it holds at most one unfinished message, stops reading while its
 * answers are unread (a sample that never reads cannot grow our memory), and is closed after
 * DNS_TCP_IDLE_MS idle or at a message that is no query (nothing a resolver sends).
 */
export function serveTcp(conn: TcpSocket, sinkhole: DnsSinkhole): void {
  let pending: Buffer = Buffer.alloc(0);
  conn.setTimeout(DNS_TCP_IDLE_MS, () => conn.destroy());
  conn.on('error', () => undefined);
  conn.on('data', (d: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const end = 2 + pending.readUInt16BE(0);
      const reply = sinkhole.answer(pending.subarray(2, end));
      pending = pending.subarray(end);
      if (!reply) { conn.destroy(); return; }
      const framed = Buffer.alloc(2 + reply.length);
      framed.writeUInt16BE(reply.length, 0);
      reply.copy(framed, 2);
      if (!conn.write(framed) && !conn.isPaused()) {
        conn.pause();
        conn.once('drain', () => conn.resume());
      }
    }
  });
  conn.resume();
}

/**
 * The sinkhole of one sandbox run (both sandboxes hold one): started once the sample's network
 * namespace exists, awaited before the sample runs, asked for names while it runs, its log taken
 * at the end, closed with the sandbox.
 */
export class SandboxSinkhole {
  private readonly sinkhole: DnsSinkhole;
  private readonly sessions = new SessionLog();
  private served: Promise<ServedSinkhole | Error> | undefined;
  private unavailable: string | undefined;
  private sessionsUnavailable: string | undefined;
  private ipv6Unavailable: string | undefined;

  constructor(mode: DnsMode = 'sinkhole') {
    this.sinkhole = new DnsSinkhole(mode);
  }

  /** Starts serving in the network namespace of `pid` (see serveDns); a failure is kept for the log, never thrown. */
  start(pid: number, opts: { viaOwner?: boolean } = {}): void {
    this.served = serveDns(pid, this.sinkhole, { ...opts, sessions: this.sessions }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  }

  /** Resolves once the sockets are served (or failed): the sample starts after this. */
  async ready(): Promise<void> {
    const served = await this.served;
    if (served instanceof Error) this.unavailable = served.message;
    else {
      this.sessionsUnavailable = served?.sessionsUnavailable;
      this.ipv6Unavailable = served?.ipv6Unavailable;
    }
  }

  nameOf(address: string): string | undefined {
    return this.sinkhole.nameOf(address);
  }

  log(): SandboxDns {
    return {
      ...this.sinkhole.log(), ...(this.unavailable ? { unavailable: this.unavailable } : {}),
      ...(this.unavailable ? {} : this.sessionsUnavailable ? { sessionsUnavailable: this.sessionsUnavailable } : this.sessions.log()),
      ...(this.unavailable || this.sessionsUnavailable || !this.ipv6Unavailable ? {} : { ipv6Unavailable: this.ipv6Unavailable }),
    };
  }

  async close(): Promise<void> {
    const served = await this.served;
    if (served && !(served instanceof Error)) served.close();
  }
}
