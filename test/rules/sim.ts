// Builds realistic event sequences for rule tests: TraceEvents (as a collector emits them)
// fed through the real SemanticState, so rules see the same process tree and fd table as in
// an analysis.
import type { SockAddr, SyscallEvent, TraceEvent } from '../../src/capture/events.js';
import type { ContainerImage, EnrichedEvent } from '../../src/semantics/types.js';
import { SemanticState } from '../../src/semantics/state.js';
import { syscallNumber } from '../../src/semantics/syscalls.js';
import { createRuleDetector, type RuleSet } from '../../src/engine/rules/index.js';
import { DnsSinkhole } from '../../src/sandbox/dns.js';
import { DatagramCatcher, describeSession, SessionLog, type SinkholeSession } from '../../src/sandbox/sessions.js';
import { FtpDialogue, ImapDialogue, Pop3Dialogue, SmtpDialogue } from '../../src/sandbox/greetings.js';
import { IrcDialogue } from '../../src/sandbox/irc.js';

export const O = { r: 0, w: 0o1101, a: 0o2101, rw: 0o2, wc: 0o101, rwc: 0o102, dir: 0o200000 } as const;

export class Sim {
  readonly events: EnrichedEvent[] = [];
  /** The sandbox's DNS sinkhole, asked by lookup(): the names behind fd.sip.name. */
  readonly dns = new DnsSinkhole();
  /** The connections the sandbox caught (caught()), given to the detector after the events. */
  readonly sessions: SinkholeSession[] = [];
  private readonly st: SemanticState;
  private seq = 0;
  private ts = 0;
  private nextPid = 100;
  private readonly fds = new Map<number, number>();

  /** container: false runs on the host; image: what is known of the container's image;
   *  cwd: null starts the sample in an unknown directory (as when attaching mid-life). */
  constructor(opts: { container?: boolean; image?: ContainerImage; cwd?: string | null } = {}) {
    this.st = new SemanticState({
      ...(opts.container === false ? {} : { containerId: 'c0ffee', containerName: 'sandtrace-test' }),
      ...(opts.image ? { containerImage: opts.image } : {}),
      users: new Map([[0, 'root'], [1000, 'user']]),
      ...(opts.cwd === null ? {} : { initialCwd: opts.cwd ?? '/root' }),
    });
    // The sample: a shell script run as root in /root.
    this.push({ type: 'exec', seq: 0, ts: 0, pid: 1, tid: 1, exe: '/bin/sh', argv: ['sh', '/root/sample.sh'], uid: 0 });
  }

  private push(ev: TraceEvent): void {
    ev.seq = ++this.seq;
    this.ts += 1_000_000; // 1 ms apart
    ev.ts = this.ts;
    this.events.push(this.st.apply(ev));
  }

  /** Lets time pass (ns) without events. */
  wait(ns: number): this {
    this.ts += ns;
    return this;
  }

  /** fork + exec: a new process; returns its pid. */
  run(exe: string, argv: string[], o: { ppid?: number; uid?: number; comm?: string } = {}): number {
    const ppid = o.ppid ?? 1;
    const pid = this.nextPid++;
    this.push({ type: 'fork', seq: 0, ts: 0, pid: ppid, tid: ppid, childPid: pid, childTid: pid, thread: false });
    this.push({ type: 'exec', seq: 0, ts: 0, pid, tid: pid, exe, argv, ...(o.uid !== undefined ? { uid: o.uid } : {}), ...(o.comm ? { comm: o.comm } : {}) });
    return pid;
  }

  /** A program the kernel itself started (a usermode helper): no fork, an exec marked byKernel. */
  kernelExec(exe: string, argv: string[], comm?: string): number {
    const pid = this.nextPid++;
    this.push({ type: 'exec', seq: 0, ts: 0, pid, tid: pid, exe, argv, byKernel: true, ...(comm ? { comm } : {}) });
    return pid;
  }

  exec(pid: number, exe: string, argv: string[], comm?: string): this {
    this.push({ type: 'exec', seq: 0, ts: 0, pid, tid: pid, exe, argv, ...(comm ? { comm } : {}) });
    return this;
  }

  fork(pid: number): number {
    const child = this.nextPid++;
    this.push({ type: 'fork', seq: 0, ts: 0, pid, tid: pid, childPid: child, childTid: child, thread: false });
    return child;
  }

  sys(pid: number, name: string, args: number[], ret: number | null, extra: Partial<SyscallEvent> = {}): this {
    const ev: SyscallEvent = { type: 'syscall', seq: 0, ts: 0, pid, tid: pid, abi: 'x86_64', nr: syscallNumber(name), name, args, ret, ...extra };
    this.push(ev);
    return this;
  }

  private fd(pid: number): number {
    const n = this.fds.get(pid) ?? 3;
    this.fds.set(pid, n + 1);
    return n;
  }

  /** openat; returns the fd (or the negative errno given). */
  open(pid: number, path: string, flags: number = O.r, err?: number): number {
    const ret = err ?? this.fd(pid);
    this.sys(pid, 'openat', [-100, 0, flags, 0o644], ret, { path });
    return ret;
  }

  socket(pid: number, domain = 2, type = 1): number {
    const fd = this.fd(pid);
    this.sys(pid, 'socket', [domain, type, 0], fd);
    return fd;
  }

  connect(pid: number, address: string, port: number, ret = -101, fd?: number): number {
    const s = fd ?? this.socket(pid, address.includes(':') ? 10 : 2);
    const addr: SockAddr = { family: address.includes(':') ? 'inet6' : 'inet', address, port };
    this.sys(pid, 'connect', [s, 0, 16], ret, { addr });
    return s;
  }

  /** A connection the sandbox caught (as its catcher describes it): to `address` and `port`
   *  (null: unknown, as in a rootless run), the sample having sent `first`. */
  caught(address: string, port: number | null, first: string | Buffer, decrypted?: string): this {
    const domain = this.dns.nameOf(address);
    const clear = decrypted === undefined ? undefined : { buf: Buffer.from(decrypted), bytes: Buffer.byteLength(decrypted) };
    this.sessions.push(describeSession({ address, port, ...(domain !== undefined ? { domain } : {}) }, Buffer.from(first), clear ? { decrypted: clear } : {}));
    return this;
  }

  /** An SMTP session the sandbox caught: the catcher greeted the sample as a mail server and took `client`'s dialogue. */
  caughtMail(address: string, port: number, client: string): this {
    const dialogue = new SmtpDialogue();
    const bytes = Buffer.from(client, 'latin1');
    dialogue.feed(bytes);
    const domain = this.dns.nameOf(address);
    this.sessions.push(describeSession({ address, port, ...(domain !== undefined ? { domain } : {}) }, bytes, { greeted: 'smtp', smtp: dialogue.envelope }));
    return this;
  }

  /** A POP3 or IMAP session the sandbox caught: the catcher greeted the sample as that server and took `client`'s commands. */
  caughtMailbox(address: string, port: number, protocol: 'pop3' | 'imap', client: string): this {
    const dialogue = protocol === 'pop3' ? new Pop3Dialogue() : new ImapDialogue();
    const bytes = Buffer.from(client, 'latin1');
    dialogue.feed(bytes);
    const domain = this.dns.nameOf(address);
    this.sessions.push(describeSession({ address, port, ...(domain !== undefined ? { domain } : {}) }, bytes, { greeted: protocol, ...(dialogue.login ? { login: dialogue.login } : {}) }));
    return this;
  }

  /** An FTP session the sandbox caught: the catcher greeted the sample as an FTP server and took `client`'s commands. */
  caughtFtp(address: string, port: number, client: string): this {
    const dialogue = new FtpDialogue(address);
    const bytes = Buffer.from(client, 'latin1');
    dialogue.feed(bytes);
    const domain = this.dns.nameOf(address);
    this.sessions.push(describeSession({ address, port, ...(domain !== undefined ? { domain } : {}) }, bytes, { greeted: 'ftp', ftp: dialogue.session }));
    return this;
  }

  /** An IRC session the sandbox caught on its catch-all: the catcher answered `client`'s lines as an IRC server. */
  caughtIrc(address: string, port: number, client: string): this {
    const dialogue = new IrcDialogue();
    const bytes = Buffer.from(client, 'latin1');
    dialogue.feed(bytes);
    const domain = this.dns.nameOf(address);
    this.sessions.push(describeSession({ address, port, ...(domain !== undefined ? { domain } : {}) }, bytes, { irc: dialogue.session }));
    return this;
  }

  /** A UDP flow the sandbox caught (as its catcher describes it): datagrams to `address` and `port` from one socket. */
  caughtDatagrams(address: string, port: number | null, ...datagrams: string[]): this {
    const log = new SessionLog();
    const catcher = new DatagramCatcher(log, () => {
      const domain = this.dns.nameOf(address);
      return { address, port, ...(domain !== undefined ? { domain } : {}) };
    });
    for (const d of datagrams) catcher.onDatagram(Buffer.from(d), { address, port: 40000 + this.sessions.length });
    this.sessions.push(...log.log().sessions);
    return this;
  }

  /** A TLS ClientHello for `sni` (one cipher suite, the server_name extension only). */
  static clientHello(sni: string): Buffer {
    const name = Buffer.from(sni);
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    const sniExt = Buffer.concat([u16(0), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(sniExt.length), sniExt]);
    const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
    return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
  }

  /** A lookup of `name` answered by the sinkhole (as the sample's resolver gets it): its address. */
  /** A question of `type` (16: TXT) about `name`, asked of the sinkhole (the answer is not looked at). */
  ask(name: string, type: number): this {
    this.dns.answer(Buffer.concat([Buffer.from([0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, type >> 8, type & 0xff, 0, 1])]));
    return this;
  }

  lookup(name: string): string {
    const q = Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
    const r = this.dns.answer(q);
    if (!r || r.readUInt16BE(6) !== 1) throw new Error(`no address for ${name}`);
    return [...r.subarray(r.length - 4)].join('.');
  }

  connectUnix(pid: number, path: string, ret = 0): number {
    const s = this.socket(pid, 1, 1);
    this.sys(pid, 'connect', [s, 0, 110], ret, { addr: { family: 'unix', path, abstract: false } });
    return s;
  }

  dup2(pid: number, oldfd: number, newfd: number): this {
    return this.sys(pid, 'dup2', [oldfd, newfd], newfd);
  }

  unlink(pid: number, path: string, ret = 0): this {
    return this.sys(pid, 'unlinkat', [-100, 0, 0], ret, { path });
  }

  rename(pid: number, from: string, to: string, ret = 0): this {
    return this.sys(pid, 'renameat2', [-100, 0, -100, 0, 0], ret, { path: from, path2: to });
  }

  /** cp FROM TO run as its own process: opens both, writes each block exactly as read. */
  copy(from: string, to: string, o: { ppid?: number } = {}): number {
    const cp = this.run('/usr/bin/cp', ['cp', from, to], o);
    const src = this.open(cp, from, O.r);
    const dst = this.open(cp, to, O.w);
    for (const n of [131072, 4096]) this.sys(cp, 'read', [src, 0, 131072], n).sys(cp, 'write', [dst, 0, n], n);
    this.sys(cp, 'read', [src, 0, 131072], 0);
    return cp;
  }

  chdir(pid: number, path: string, ret = 0): this {
    return this.sys(pid, 'chdir', [0], ret, { path });
  }

  chmod(pid: number, path: string, mode: number, ret = 0): this {
    return this.sys(pid, 'fchmodat', [-100, 0, mode], ret, { path });
  }
}

/** The rules of `pack` that fire on what `run` makes the simulated processes do. */
export function firedRules(pack: RuleSet, run: (s: Sim) => void): Set<string> {
  const s = new Sim();
  run(s);
  const d = createRuleDetector(pack, { dnsName: (a) => s.dns.nameOf(a) });
  for (const e of s.events) d.onEvent(e);
  d.onSessions?.(s.sessions);
  d.onDns?.(s.dns.log().queries);
  return new Set(d.finish().map((f) => f.rule));
}
