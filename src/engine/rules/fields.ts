// Falco field names mapped onto our enriched events. Each field resolves once, at compile time,
// to a getter closure; getters avoid allocating on the hot path (derived strings are cached
// per process or per last value).
import type { ContainerImage, EnrichedEvent, FdInfo, ProcessInfo } from '../../semantics/types.js';
import type { SyscallEvent } from '../../capture/events.js';
import type { SinkholeSession } from '../../sandbox/sessions.js';
import type { DnsDomainActivity } from '../../sandbox/dns.js';
import { errnoName } from '../../semantics/syscalls.js';
import { decodeArgs } from '../../semantics/args.js';
import { openFlags as renderOpenFlags } from '../../semantics/flags.js';
import { openFlags, rawArg } from './args.js';
import type { WrittenFiles } from './written.js';

export type Scalar = string | number | boolean | null;
export type FieldKind = 'str' | 'num' | 'bool' | 'net';

/** Per-detector state that some fields consult (files written during the capture). */
export interface EvalCtx {
  written: WrittenFiles;
  /**
   * The name an address was looked up by (fd.sip.name ...): the sandbox's DNS sinkhole answered
   * it, before the sample could use the address. Absent where no name is known (monitor).
   */
  dnsName?: ((address: string) => string | undefined) | undefined;
  /** The event being evaluated and its evt.type, computed once per event by the detector. */
  cur: EnrichedEvent | null;
  type: string;
}

export type Getter = (e: EnrichedEvent, ctx: EvalCtx) => Scalar;

export interface FieldDef {
  kind: FieldKind;
  get: Getter;
  /** Multi-valued fields (any ancestor, either endpoint): calls `test` on each value until true. */
  any?: (e: EnrichedEvent, ctx: EvalCtx, test: (v: Scalar) => boolean) => boolean;
}

const OPEN = new Set(['open', 'openat', 'openat2', 'creat']);

export function evtType(e: EnrichedEvent): string {
  if (e.session !== undefined) return 'session';
  if (e.dns !== undefined) return 'dns';
  const ev = e.ev;
  switch (ev.type) {
    case 'syscall':
      // A successful exec is reported as an ExecEvent; the raw call would double it.
      if (ev.ret === 0 && (ev.name === 'execve' || ev.name === 'execveat')) return '';
      return ev.name;
    case 'exec': return 'execve';
    case 'fork': return 'procfork';
    case 'exit': return 'procexit';
  }
}

function sys(e: EnrichedEvent): SyscallEvent | undefined {
  return e.ev.type === 'syscall' ? e.ev : undefined;
}
function ret(e: EnrichedEvent): number | null {
  const ev = e.ev;
  if (ev.type === 'syscall') return ev.ret;
  if (ev.type === 'exec') return 0;
  if (ev.type === 'fork') return ev.childPid;
  return ev.code;
}

// ---- process helpers (cached per process object and argv identity) ----

const cmdCache = new WeakMap<ProcessInfo, { argv: string[]; name: string; cmd: string; args: string }>();
function cmdOf(p: ProcessInfo): { cmd: string; args: string } {
  let c = cmdCache.get(p);
  if (!c || c.argv !== p.argv || c.name !== p.name) {
    const args = p.argv.slice(1).join(' ');
    c = { argv: p.argv, name: p.name, cmd: args ? `${p.name} ${args}` : p.name, args };
    cmdCache.set(p, c);
  }
  return c;
}
let lastCwd = '';
let lastSlashed = '/';
function slashed(cwd: string): string {
  if (cwd !== lastCwd) {
    lastCwd = cwd;
    lastSlashed = cwd.endsWith('/') ? cwd : `${cwd}/`;
  }
  return lastSlashed;
}
function ancestor(p: ProcessInfo | undefined, n: number): ProcessInfo | undefined {
  let q = p;
  for (let i = 0; i < n && q; i++) q = q.parent;
  return q;
}

type ProcGet = (p: ProcessInfo, e: EnrichedEvent, ctx: EvalCtx) => Scalar;
const PROC: Record<string, [FieldKind, ProcGet]> = {
  name: ['str', (p) => p.name || null],
  exe: ['str', (p) => p.argv[0] ?? (p.exe || null)],
  exepath: ['str', (p) => p.exe || null],
  cmdline: ['str', (p) => cmdOf(p).cmd],
  args: ['str', (p) => cmdOf(p).args],
  pid: ['num', (p) => p.pid],
  vpid: ['num', (p) => p.pid],
  ppid: ['num', (p) => p.ppid],
  uid: ['num', (p) => p.uid],
  sid: ['num', (p) => p.sid],
  tty: ['num', (p) => p.tty],
  duration: ['num', (p, e) => e.ev.ts - p.start],
  start_ts: ['num', (p) => p.start],
  is_exe_from_memfd: ['bool', (p) => p.exe.startsWith('/memfd:')],
  // sandtrace's own: the kernel started the program (init, usermode helpers), as only VM
  // introspection can tell; false wherever the source cannot
  is_kernel_helper: ['bool', (p) => p.kernelHelper === true],
  // Our analogue of an overlay upper layer: the executable was written during this capture.
  is_exe_upper_layer: ['bool', (p, _e, ctx) => writtenExe(p.exe, ctx)],
  // sandtrace's own: the file the executable was copied, moved or linked from during the capture
  // (a python copied to /tmp/update), and that file's name; missing when it was not
  exe_copied_from: ['str', (p) => p.exeCopiedFrom ?? null],
  exe_copied_from_name: ['str', (p) => (p.exeCopiedFrom === undefined ? null : baseName(p.exeCopiedFrom))],
  is_sid_leader: ['bool', (p) => p.sid === p.pid],
  is_vpgid_leader: ['bool', () => null],
  // Falco keeps the cwd with a trailing slash ("/tmp/"); unknown cwd reads as missing.
  cwd: ['str', (p) => (p.cwd === undefined ? null : slashed(p.cwd))],
};
/** Whether an executable was written during the capture; a relative exe (./x, as the exec call
 *  named it) matches a written absolute path ending in it. */
function writtenExe(exe: string, ctx: EvalCtx): boolean {
  if (exe === '') return false;
  if (exe.startsWith('/')) return ctx.written.has(exe);
  return ctx.written.hasSuffix('/' + exe.replace(/^(\.\/)+/, ''));
}

/** Fields Falco has that the parent/ancestor prefixes map onto (proc.pname = name of parent). */
const PARENT_ALIASES: Record<string, string> = {
  pname: 'name', pexe: 'exe', pexepath: 'exepath', pcmdline: 'cmdline', pargs: 'args',
};
const ANCESTOR_ALIASES: Record<string, string> = {
  aname: 'name', aexe: 'exe', aexepath: 'exepath', apid: 'pid', acmdline: 'cmdline',
};

// ---- fd helpers ----

const FDTYPE: Record<string, string> = { memfd: 'file', socket: 'unknown' };
/** Falco's fd.typechar ('o' for socket, unknown and anything else). A switch: rules ask for it
 *  on every open and connect, and comparing interned strings beats a keyed object lookup. */
function typechar(t: string): string {
  switch (t) {
    case 'file': return 'f';
    case 'directory': return 'd';
    case 'ipv4': return '4';
    case 'ipv6': return '6';
    case 'unix': return 'u';
    case 'pipe': return 'p';
    case 'event': return 'e';
    case 'signalfd': return 's';
    case 'inotify': return 'i';
    case 'timerfd': return 't';
    case 'netlink': return 'n';
    case 'bpf': return 'b';
    case 'memfd': return 'f';
    default: return 'o';
  }
}

function openPath(e: EnrichedEvent): string | null {
  const ev = sys(e);
  return ev && OPEN.has(ev.name) ? e.path ?? ev.path ?? null : null;
}
function fdName(e: EnrichedEvent): string | null {
  if (e.fd) return e.fd.name;
  return openPath(e);
}
// Falco's s* is the server end, c* the client end: for a client socket the remote side.
const serverIp = (f: FdInfo): string | null => (f.role === 'server' ? f.lip : f.rip) ?? null;
const serverPort = (f: FdInfo): number | null => (f.role === 'server' ? f.lport : f.rport) ?? null;
const clientIp = (f: FdInfo): string | null => (f.role === 'server' ? f.rip : f.lip) ?? null;
const clientPort = (f: FdInfo): number | null => (f.role === 'server' ? f.rport : f.lport) ?? null;

function lastCache(fn: (s: string) => string): (s: string | null) => string | null {
  let lastIn: string | null = null;
  let lastOut: string | null = null;
  return (s) => {
    if (s === null) return null;
    if (s !== lastIn) {
      lastIn = s;
      lastOut = fn(s);
    }
    return lastOut;
  };
}
/** Derived values computed at most once per event (rules ask for the same ones many times). */
function perEvent<T>(fn: (e: EnrichedEvent) => T): (e: EnrichedEvent) => T {
  let last: EnrichedEvent | null = null;
  let v: T;
  return (e) => {
    if (e !== last) {
      v = fn(e);
      last = e;
    }
    return v!;
  };
}

function dirName(s: string): string {
  const i = s.lastIndexOf('/');
  return i < 0 ? s : i === 0 ? '/' : s.slice(0, i);
}
function baseName(s: string): string {
  const i = s.lastIndexOf('/');
  return i < 0 ? s : s.slice(i + 1);
}
const dirOf = lastCache(dirName);
const baseOf = lastCache(baseName);

/** Fields that are a function of fd.name's value (tests on them can be remembered by it). */
export const FD_NAME_DERIVED: Record<string, (s: string) => string> = {
  'fd.nameraw': (s) => s,
  'fd.filename': baseName,
  'fd.directory': dirName,
};

const openFlagsOf = perEvent((e: EnrichedEvent): number | null => {
  const ev = e.ev;
  return ev.type === 'syscall' ? openFlags(ev) : null;
});

const OPEN_BITS: Record<string, number> = {
  O_CREAT: 0o100, O_EXCL: 0o200, O_NOCTTY: 0o400, O_TRUNC: 0o1000, O_APPEND: 0o2000, O_NONBLOCK: 0o4000,
  O_DSYNC: 0o10000, O_DIRECT: 0o40000, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_CLOEXEC: 0o2000000,
  O_TMPFILE: 0o20200000,
};

/** `evt.arg.flags contains O_X` on opens as a bit test on the raw flags (no string rendering);
 *  null for any other event, where the caller falls back to the rendered text. */
export function openFlagTest(flag: string): ((e: EnrichedEvent) => boolean | null) | null {
  const acc = flag === 'O_RDONLY' ? 0 : flag === 'O_WRONLY' ? 1 : flag === 'O_RDWR' ? 2 : -1;
  const bit = OPEN_BITS[flag];
  if (acc < 0 && bit === undefined) return null;
  return (e) => {
    const f = openFlagsOf(e);
    if (f === null) return null;
    return acc >= 0 ? (f & 3) === acc : (f & bit!) === bit;
  };
}

const fdNum = (e: EnrichedEvent): Scalar => {
  // Falco reports a failed open's descriptor as -1 (open_file_failed tests fd.num=-1).
  if (e.fd) return e.fd.num < 0 ? -1 : e.fd.num;
  if (openPath(e) !== null) {
    const r = ret(e);
    return r !== null && r >= 0 ? r : -1;
  }
  return null;
};
const fdTypechar = (e: EnrichedEvent): Scalar => {
  if (e.fd) return typechar(e.fd.type);
  const ev = sys(e);
  if (ev && OPEN.has(ev.name)) {
    const f = openFlags(ev);
    return f !== null && f & 0o200000 ? 'd' : 'f';
  }
  return null;
};

/** sandtrace's fd.realname: the file's own name (FdInfo.real), else fd.name. */
function fdRealName(e: EnrichedEvent): string | null {
  const f = e.fd;
  if (f) return f.real ?? f.name;
  return openPath(e);
}

const FD: Record<string, [FieldKind, Getter]> = {
  name: ['str', fdName],
  nameraw: ['str', fdName],
  realname: ['str', fdRealName],
  directory: ['str', perEvent((e) => dirOf(fdName(e)))],
  filename: ['str', perEvent((e) => baseOf(fdName(e)))],
  num: ['num', fdNum],
  typechar: ['str', fdTypechar],
  type: ['str', (e) => {
    if (e.fd) return FDTYPE[e.fd.type] ?? e.fd.type;
    const c = fdTypechar(e);
    return c === 'f' ? 'file' : c === 'd' ? 'directory' : null;
  }],
  l4proto: ['str', (e) => e.fd?.l4proto ?? null],
  sockfamily: ['str', (e) => {
    const t = e.fd?.type;
    return t === 'ipv4' || t === 'ipv6' ? 'ip' : t === 'unix' ? 'unix' : null;
  }],
  // Falco: s* is the server end, c* the client end; we add d* (destination = server) too.
  sip: ['str', (e) => (e.fd ? serverIp(e.fd) : null)],
  dip: ['str', (e) => (e.fd ? serverIp(e.fd) : null)],
  sport: ['num', (e) => (e.fd ? serverPort(e.fd) : null)],
  dport: ['num', (e) => (e.fd ? serverPort(e.fd) : null)],
  cip: ['str', (e) => (e.fd ? clientIp(e.fd) : null)],
  cport: ['num', (e) => (e.fd ? clientPort(e.fd) : null)],
  lip: ['str', (e) => e.fd?.lip ?? null],
  lport: ['num', (e) => e.fd?.lport ?? null],
  rip: ['str', (e) => e.fd?.rip ?? null],
  rport: ['num', (e) => e.fd?.rport ?? null],
  // Falco resolves these by its own lookups; here, the names the sample's own lookups gave
  'sip.name': ['str', (e, ctx) => nameOf(e.fd ? serverIp(e.fd) : null, ctx)],
  'cip.name': ['str', (e, ctx) => nameOf(e.fd ? clientIp(e.fd) : null, ctx)],
  'rip.name': ['str', (e, ctx) => nameOf(e.fd?.rip ?? null, ctx)],
  'lip.name': ['str', (e, ctx) => nameOf(e.fd?.lip ?? null, ctx)],
  connected: ['bool', (e) => (e.fd ? e.fd.rip !== undefined : null)],
  name_changed: ['bool', () => false],
  is_server: ['bool', (e) => (e.fd ? e.fd.role === 'server' : null)],
  // Falco: the file is in an overlay's upper layer; ours, as proc.is_exe_upper_layer: the file
  // (by its name or the name it leads to) was written during this capture
  is_upper_layer: ['bool', (e, ctx) => writtenFile(fdName(e), fdRealName(e), ctx)],
};

/** The file `name` names, or the file it leads to (`real`), was written during this capture; null without an absolute name. */
function writtenFile(name: string | null, real: string | null | undefined, ctx: EvalCtx): boolean | null {
  if (name === null || !name.startsWith('/')) return null;
  return ctx.written.has(name) || (real != null && real !== name && ctx.written.has(real));
}

/**
 * The path argument of a call, as the semantics resolved it; for a successful exec, the path it
 * ran (a refused exec is a syscall event whose path is that same argument, so both read alike).
 */
const pathArg = (e: EnrichedEvent): string | null =>
  e.ev.type === 'syscall' ? e.path ?? e.ev.path ?? null : e.ev.type === 'exec' ? e.ev.exe : null;

let lastIp = '';
let lastIpV: number | null = null;
/** Dotted IPv4 to a 32-bit number (null otherwise); no regex, cached for the last address. */
function ipv4ToInt(s: string): number | null {
  if (s === lastIp) return lastIpV;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let ok = s.length > 0;
  for (let i = 0; i < s.length && ok; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) ok = false;
    } else if (c === 46 && digits > 0 && dots < 3) {
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else ok = false;
  }
  lastIp = s;
  lastIpV = ok && dots === 3 && digits > 0 ? v * 256 + part : null;
  return lastIpV;
}
/** The name `ip` was looked up by, or missing. */
function nameOf(ip: string | null | undefined, ctx: EvalCtx): string | null {
  return ip ? ctx.dnsName?.(ip) ?? null : null;
}

/** Compiles a CIDR (or plain address) into a test on a dotted IPv4 string. */
export function cidrTest(cidr: string): ((ip: string) => boolean) | null {
  const [addr, bits] = cidr.split('/');
  const base = ipv4ToInt(addr ?? '');
  if (base === null) return null;
  const n = bits === undefined ? 32 : Number(bits);
  if (!Number.isInteger(n) || n < 0 || n > 32) return null;
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (ip) => {
    const v = ipv4ToInt(ip);
    return v !== null && ((v & mask) >>> 0) === ((base & mask) >>> 0);
  };
}

/** Fields Falco defines whose data no capture source of ours provides: they read as missing. */
const UNAVAILABLE_PREFIXES = ['container.image', 'container.mount', 'container.healthcheck', 'container.liveness',
  'container.readiness', 'container.cni', 'container.host_', 'container.ip', 'container.label', 'k8s.', 'k8smeta.',
  'proc.exe_ino', 'proc.env', 'proc.aenv', 'proc.stdin', 'proc.stdout', 'proc.stderr', 'proc.vpgid', 'proc.pgid',
  'thread.cap', 'proc.is_exe_writable', 'proc.is_container_', 'proc.fdopencount', 'fd.dev', 'fd.ino', 'fd.uid', 'user.loginuid', 'user.loginname', 'user.homedir',
  'user.shell', 'group.', 'evt.hostname', 'proc.sname', 'proc.pvpid', 'proc.ppid.duration', 'proc.pid.ts',
  'proc.ppid.ts', 'proc.tty_', 'container.privileged', 'container.type', 'container.start_ts', 'container.duration',
  'fs.path.nameraw', 'evt.is_open_exec', 'proc.loginshellid', 'proc.cmdlenargs', 'proc.cmdnargs'];

/** container.image*: missing for host processes and wherever the image, or that part of it, is
 *  unknown (Falco returns no value rather than ''). Repository and tag split the reference when
 *  the caller gave only the name. */
const CONTAINER_IMAGE: Record<string, (i: ContainerImage) => string | undefined> = {
  'container.image': (i) => i.name,
  'container.image.id': (i) => i.id,
  'container.image.repository': (i) => i.repository ?? refOf(i).repository,
  'container.image.tag': (i) => i.tag ?? refOf(i).tag,
  'container.image.digest': (i) => i.digest ?? refOf(i).digest,
};
const refCache = new WeakMap<ContainerImage, ReturnType<typeof splitRef>>();
function refOf(i: ContainerImage): ReturnType<typeof splitRef> {
  let r = refCache.get(i);
  if (!r) refCache.set(i, (r = splitRef(i.name)));
  return r;
}
/** "registry:5000/a/b:tag@sha256:..." -> repository, tag and digest (a ':' before the last '/' is a port). */
export function splitRef(ref: string): { repository: string; tag: string | undefined; digest: string | undefined } {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const colon = name.lastIndexOf(':');
  const tagged = colon > name.lastIndexOf('/');
  return { repository: tagged ? name.slice(0, colon) : name, tag: tagged ? name.slice(colon + 1) : undefined, digest };
}

export type FieldResult = { ok: true; def: FieldDef } | { ok: false; reason: string };

/**
 * The fields of a connection the sandbox caught (rules of source `session`; on any other event
 * they are missing). The http.*, tls.sni and smtp.* names are Suricata's and Zeek's for the same things.
 */
const SESSION: Record<string, [FieldKind, (s: SinkholeSession) => Scalar]> = {
  'session.protocol': ['str', (s) => s.protocol],
  'session.transport': ['str', (s) => s.transport ?? 'tcp'],
  'session.bytes': ['num', (s) => s.bytes],
  'session.preview': ['str', (s) => s.preview],
  // what the sample sent in the clear: inside TLS when the sample accepted the catcher's certificate
  'session.payload': ['str', (s) => s.decrypted?.preview ?? s.preview],
  'session.payload_bytes': ['num', (s) => s.decrypted?.bytes ?? s.bytes],
  'session.decrypted': ['bool', (s) => s.decrypted !== undefined],
  'session.domain': ['str', (s) => s.domain ?? null],
  'http.method': ['str', (s) => s.http?.method ?? null],
  'http.uri': ['str', (s) => s.http?.path ?? null],
  'http.host': ['str', (s) => s.http?.host ?? null],
  'http.user_agent': ['str', (s) => s.http?.userAgent ?? null],
  // a request's body: its size, SHA-256 and first bytes (escaped)
  'http.body_bytes': ['num', (s) => s.http?.body?.bytes ?? null],
  'http.body_sha256': ['str', (s) => s.http?.body?.sha256 ?? null],
  'http.body': ['str', (s) => s.http?.body?.preview ?? null],
  'tls.sni': ['str', (s) => s.sni ?? null],
  'smtp.helo': ['str', (s) => s.smtp?.helo ?? null],
  'smtp.from': ['str', (s) => s.smtp?.from ?? null],
  'smtp.to': ['str', (s) => (s.smtp && s.smtp.to.length ? s.smtp.to.join(',') : null)],
  'smtp.recipients': ['num', (s) => s.smtp?.recipients ?? null],
  'smtp.subject': ['str', (s) => s.smtp?.subject ?? null],
  // the account an SMTP client logged in with (the catcher accepts any password) and whether it upgraded to TLS
  'smtp.auth_mechanism': ['str', (s) => s.smtp?.auth?.mechanism ?? null],
  'smtp.auth_user': ['str', (s) => s.smtp?.auth?.user ?? null],
  'smtp.auth_password': ['str', (s) => s.smtp?.auth?.password ?? null],
  'smtp.starttls': ['bool', (s) => (s.smtp ? s.smtp.starttls === true : null)],
  // what an FTP client did: its login and the files its transfers named (uploads: STOR, APPE)
  'ftp.user': ['str', (s) => s.ftp?.user ?? null],
  'ftp.password': ['str', (s) => s.ftp?.password ?? null],
  'ftp.uploads': ['num', (s) => s.ftp?.uploads ?? null],
  'ftp.downloads': ['num', (s) => s.ftp?.downloads ?? null],
  'ftp.files': ['str', (s) => (s.ftp && s.ftp.files.length ? s.ftp.files.map((f) => f.path).join(',') : null)],
  // what an IRC client registered as, the channels it joined (comma-separated, each with its key
  // after a space) and the messages it sent (target, then the text)
  'irc.nick': ['str', (s) => s.irc?.nick ?? null],
  'irc.user': ['str', (s) => s.irc?.user ?? null],
  'irc.realname': ['str', (s) => s.irc?.realname ?? null],
  'irc.password': ['str', (s) => s.irc?.password ?? null],
  'irc.channels': ['str', (s) => (s.irc && s.irc.channels.length ? s.irc.channels.map((c) => (c.key !== undefined ? `${c.name} ${c.key}` : c.name)).join(',') : null)],
  'irc.messages': ['str', (s) => (s.irc && s.irc.messages.length ? s.irc.messages.map((m) => `${m.target} ${m.text}`).join('\n') : null)],
  // the account the sample logged in with, whatever the protocol: SMTP's AUTH, FTP's USER and PASS, a POP3 or IMAP login
  'session.user': ['str', (s) => s.smtp?.auth?.user ?? s.ftp?.user ?? s.login?.user ?? null],
  'session.password': ['str', (s) => s.smtp?.auth?.password ?? s.ftp?.password ?? s.login?.password ?? null],
};

/** The fields of what the sample asked the DNS sinkhole about one domain (rules of source `dns`). */
const DNS: Record<string, [FieldKind, (a: DnsDomainActivity) => Scalar]> = {
  'dns.domain': ['str', (a) => a.domain],
  'dns.names': ['num', (a) => a.names],
  'dns.queries': ['num', (a) => a.queries],
  'dns.label_max': ['num', (a) => a.labelMax],
  'dns.longest': ['str', (a) => a.longest],
  'dns.types': ['str', (a) => a.types.join(',')],
  'dns.txt_queries': ['num', (a) => a.txt],
};

/** The source whose events alone have a field: `session` (a caught connection) or `dns` (a domain asked of the sinkhole); undefined for the capture's fields. */
export function fieldSource(name: string): 'session' | 'dns' | undefined {
  return Object.hasOwn(SESSION, name) ? 'session' : Object.hasOwn(DNS, name) ? 'dns' : undefined;
}


/** A process field of the event's process (rel 0), its Nth ancestor, or any ancestor. */
function procField(sub: string, rel: number | 'any'): FieldResult | null {
  const spec = PROC[sub];
  if (!spec) return null;
  const [kind, g] = spec;
  if (rel === 'any') {
    return {
      ok: true,
      def: {
        kind,
        get: (e, ctx) => {
          const p = e.proc.parent;
          return p ? g(p, e, ctx) : null;
        },
        any: (e, ctx, test) => {
          for (let p = e.proc.parent; p; p = p.parent) if (test(g(p, e, ctx))) return true;
          return false;
        },
      },
    };
  }
  if (rel === 0) return { ok: true, def: { kind, get: (e, ctx) => g(e.proc, e, ctx) } };
  return {
    ok: true,
    def: {
      kind,
      get: (e, ctx) => {
        const p = ancestor(e.proc, rel);
        return p ? g(p, e, ctx) : null;
      },
    },
  };
}

const NA: FieldDef = { kind: 'str', get: () => null };

export function resolveField(name: string, arg?: string): FieldResult {
  const sf = Object.hasOwn(SESSION, name) ? SESSION[name]! : undefined;
  if (sf) return { ok: true, def: { kind: sf[0], get: (e) => (e.session ? sf[1](e.session) : null) } };
  const df = Object.hasOwn(DNS, name) ? DNS[name]! : undefined;
  if (df) return { ok: true, def: { kind: df[0], get: (e) => (e.dns ? df[1](e.dns) : null) } };
  const [ns, ...rest] = name.split('.');
  const sub = rest.join('.');
  if (ns === 'proc' || ns === 'thread') {
    if (name === 'thread.tid' || name === 'thread.vtid') return { ok: true, def: { kind: 'num', get: (e) => e.ev.tid } };
    if (name === 'proc.tid') return { ok: true, def: { kind: 'num', get: (e) => e.ev.tid } };
    if (PARENT_ALIASES[sub]) return procField(PARENT_ALIASES[sub]!, 1)!;
    if (sub === 'ppid.name') return procField('name', 1)!;
    const anc = ANCESTOR_ALIASES[sub];
    if (anc) {
      if (arg === undefined) return procField(anc, 'any')!;
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 0) return { ok: false, reason: `bad ancestor index '${name}[${arg}]'` };
      return procField(anc, n)!;
    }
    const r = procField(sub, 0);
    if (r) return r;
  }
  if (ns === 'fd') {
    if (sub === 'ip' || sub === 'port') {
      const sv = FD[sub === 'ip' ? 'sip' : 'sport']!;
      const cl = FD[sub === 'ip' ? 'cip' : 'cport']!;
      return {
        ok: true,
        def: {
          kind: sub === 'ip' ? 'str' : 'num',
          get: sv[1],
          any: (e, ctx, test) => test(sv[1](e, ctx)) || test(cl[1](e, ctx)),
        },
      };
    }
    if (sub === 'net' || sub === 'snet' || sub === 'cnet' || sub === 'rnet' || sub === 'lnet') {
      const g = FD[{ net: 'sip', snet: 'sip', cnet: 'cip', rnet: 'rip', lnet: 'lip' }[sub]]![1];
      const def: FieldDef = { kind: 'net', get: g };
      if (sub === 'net') def.any = (e, ctx, test) => test(g(e, ctx)) || test(FD['cip']![1](e, ctx));
      return { ok: true, def };
    }
    const f = FD[sub];
    if (f) return { ok: true, def: { kind: f[0], get: f[1] } };
  }
  if (ns === 'evt' || ns === 'syscall') {
    switch (sub) {
      case 'type':
        return { ok: true, def: { kind: 'str', get: (e, ctx) => (ctx.cur === e ? ctx.type : evtType(e)) } };
      case 'dir':
        return { ok: true, def: { kind: 'str', get: () => '<' } };
      case 'num':
        return { ok: true, def: { kind: 'num', get: (e) => e.ev.seq } };
      case 'rawres':
        return { ok: true, def: { kind: 'num', get: ret } };
      case 'res':
        return { ok: true, def: { kind: 'str', get: (e) => {
          const r = ret(e);
          return r === null ? null : r >= 0 ? 'SUCCESS' : errnoName(r);
        } } };
      case 'failed':
        return { ok: true, def: { kind: 'bool', get: (e) => (ret(e) ?? 0) < 0 } };
      case 'time': case 'rawtime': case 'time.s': case 'datetime':
        return { ok: true, def: { kind: sub === 'rawtime' ? 'num' : 'str', get: (e) => (sub === 'rawtime' ? e.ev.ts : fmtTime(e.ev.ts)) } };
      case 'is_open_read': case 'is_open_write': case 'is_open_create':
        return { ok: true, def: { kind: 'bool', get: (e) => {
          const f = openFlagsOf(e);
          if (f === null) return null;
          if (sub === 'is_open_create') return (f & 0o100) !== 0;
          const acc = f & 3;
          return sub === 'is_open_read' ? acc === 0 || acc === 2 : acc === 1 || acc === 2;
        } } };
      case 'pid':
        return { ok: true, def: { kind: 'num', get: (e) => e.ev.pid } };
      case 'args':
        return { ok: true, def: { kind: 'str', get: (e) => {
          const ev = sys(e);
          return ev ? ev.path ?? null : null;
        } } };
    }
    if (sub.startsWith('arg.') || sub.startsWith('rawarg.') || (sub === 'arg' && arg !== undefined)) {
      const an = sub === 'arg' ? arg! : sub.slice(sub.indexOf('.') + 1);
      if (/^\d+$/.test(an)) return { ok: true, def: { kind: 'str', get: (e) => sys(e)?.args[+an] ?? null } };
      const raw = sub.startsWith('rawarg.');
      return { ok: true, def: { kind: 'str', get: (e) => {
        if (raw) {
          const v = rawArg(e, an);
          return v;
        }
        if (an === 'flags') {
          const f = openFlagsOf(e);
          if (f !== null) return renderedOpenFlags(e, f);
        }
        const v = argsOf(e)[an];
        return v === undefined ? null : v;
      } } };
    }
  }
  if (name === 'fs.path.name' || name === 'fs.path.source') {
    return { ok: true, def: { kind: 'str', get: pathArg } };
  }
  // sandtrace's own: the file the path names (symlinks, /proc's magic links, renames and hard links
  // of the capture resolved; a symlink's target from the link's directory), else fs.path.name
  if (name === 'fs.path.realname') {
    return { ok: true, def: { kind: 'str', get: (e) => (e.ev.type === 'syscall' ? e.real ?? e.path ?? e.ev.path ?? null : null) } };
  }
  if (name === 'fs.path.target') return { ok: true, def: { kind: 'str', get: (e) => (e.ev.type === 'syscall' ? e.path2 ?? e.ev.path2 ?? null : null) } };
  // sandtrace's own, as fd.is_upper_layer for the path a call names (an exec the kernel refused
  // has no descriptor): the file, by its name or the name it leads to, was written during this capture
  if (name === 'fs.path.is_upper_layer') {
    return { ok: true, def: { kind: 'bool', get: (e, ctx) => writtenFile(pathArg(e), e.real, ctx) } };
  }
  if (name === 'user.uid') return { ok: true, def: { kind: 'num', get: (e) => e.proc.uid } };
  if (name === 'user.name') return { ok: true, def: { kind: 'str', get: (e) => e.user || null } };
  if (name === 'container.id') return { ok: true, def: { kind: 'str', get: (e) => e.proc.containerId || 'host' } };
  // Falco: 'host' outside any container; a container without a name has none (missing).
  if (name === 'container.name') return { ok: true, def: { kind: 'str', get: (e) => (e.proc.containerId ? e.proc.containerName || null : 'host') } };
  const img = CONTAINER_IMAGE[name];
  if (img) return { ok: true, def: { kind: 'str', get: (e) => (e.proc.containerId && e.proc.containerImage ? img(e.proc.containerImage) || null : null) } };
  if (name === 'container.info') return { ok: true, def: { kind: 'str', get: (e) => (e.proc.containerId ? `container_id=${e.proc.containerId} container_name=${e.proc.containerName}` : 'host') } };
  if (UNAVAILABLE_PREFIXES.some((p) => name.startsWith(p))) return { ok: true, def: NA };
  return { ok: false, reason: `unsupported field '${name}${arg !== undefined ? `[${arg}]` : ''}'` };
}

let lastFlagsEv: EnrichedEvent | null = null;
let lastFlags = '';
function renderedOpenFlags(e: EnrichedEvent, f: number): string {
  if (e !== lastFlagsEv) {
    lastFlagsEv = e;
    lastFlags = renderOpenFlags(f);
  }
  return lastFlags;
}

// evt.arg.* decodes the whole event once; rules usually read several arguments of the same event.
let lastArgsEv: EnrichedEvent | null = null;
let lastArgs: Record<string, string | number> = {};
function argsOf(e: EnrichedEvent): Record<string, string | number> {
  if (e !== lastArgsEv) {
    lastArgsEv = e;
    lastArgs = decodeArgs(e);
  }
  return lastArgs;
}

function fmtTime(ns: number): string {
  const s = Math.floor(ns / 1e9);
  const frac = String(ns % 1e9).padStart(9, '0');
  const hh = String(Math.floor(s / 3600) % 24).padStart(2, '0');
  const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}.${frac}`;
}
