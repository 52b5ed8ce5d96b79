// Builds report.json from the enriched event stream: an accumulator that sees each event once
// (memory bounded by distinct files, endpoints and syscall names, not by event count).
import { isIP } from 'node:net';
import type { Backend, CaptureStats } from '../capture/collector.js';
import type { SockAddr, SyscallEvent } from '../capture/events.js';
import type { Evidence, Finding, Verdict } from '../engine/types.js';
import { fmt, PlaceCounter, places } from '../sandbox/changes.js';
import { namesByAddress } from '../sandbox/dns.js';
import { indicatorsOf } from './indicators.js';
import { SESSION_MAX, SESSION_MAX_OPEN, type SinkholeSession } from '../sandbox/sessions.js';
import type { FileChange, Place, SandboxDns } from '../sandbox/types.js';
import { isOpenRead, isOpenWrite, O_CREAT, O_EXCL } from '../semantics/flags.js';
import { errnoName } from '../semantics/syscalls.js';
import type { EnrichedEvent, ProcessInfo } from '../semantics/types.js';
import { mappedIpv4 } from '../semantics/state.js';
import {
  REPORT_SCHEMA, REPORT_VERSION, type FileOp, type Report, type ReportDiagnostic, type ReportDropped,
  type ReportFile, type ReportNetwork, type ReportProcess,
} from './schema.js';

export const TOOL_VERSION = '0.1.0';

const EPERM = -1;
const NETWORK_OPS = new Set(['connect', 'bind', 'listen', 'accept', 'accept4', 'sendto', 'sendmsg', 'recvfrom', 'recvmsg', 'sendmmsg', 'recvmmsg', 'recvmmsg_time64']);

/** A kept entry's place in its list's eviction order (KeepOrder). */
interface Ranked { rank: number; group: string; slot: number }
interface FileAcc extends Ranked { path: string; ops: Set<FileOp>; pids: Set<number>; renamedTo: Set<string> }
interface NetAcc extends Ranked { key: string; entry: ReportNetwork }

/**
 * What one report lists at most. A sample controls how many distinct names it touches (a loop of
 * renames through 4,000-byte paths made a report of gigabytes and ran node out of memory): past
 * these, operations are counted (analysis.omitted, a REPORT_LIMITED warning with where they
 * were) and not listed. The syscall counts, findings and verdict still see every event. Files and
 * endpoints are kept by rank (FILE_RANK, netRank), not first-come: junk touched first gives way
 * to what an analyst needs, so a sample cannot blind the lists by touching 20,000 names before
 * its payload.
 */
export const REPORT_LIMITS = {
  /** distinct file paths, and the characters of all listed names (paths and rename targets) */
  files: 20_000, fileChars: 16 << 20,
  /** rename targets and pids listed per file */
  renamedTo: 8, pidsPerFile: 64,
  /** distinct network entries (operation, endpoint, result, pid) */
  network: 20_000,
  /** processes, the first ones started */
  processes: 10_000,
} as const;

/**
 * What a listed file is worth, from what was done to it: when the list is full a new path displaces
 * a kept one of lower rank. Failed calls are not listed at all. A path the rules watch (credentials,
 * persistence) ranks with an executed one whatever was done to it; one a finding names, above all.
 */
const FILE_RANK: Readonly<Record<FileOp, number>> = {
  stat: 0, read: 1, mkdir: 2,
  write: 3, create: 3, delete: 3, rename: 3, chmod: 3, chown: 3, truncate: 3, link: 3,
  exec: 4, 'mmap-exec': 4,
};
const SENSITIVE_RANK = 4;
const EVIDENCE_RANK = 5;

// Where the credential and persistence rules (rules/20-persistence, 50-credentials) look, roughly:
// a cheap test on a new path only, to rank it; the findings stay the exact signal.
const SENSITIVE_FILES = new Set(['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/etc/security/opasswd', '/etc/passwd',
  '/etc/group', '/etc/subuid', '/etc/subgid', '/etc/sudoers', '/etc/ld.so.preload', '/etc/rc.local', '/etc/crontab', '/etc/anacrontab',
  '/etc/profile', '/etc/bash.bashrc', '/etc/environment', '/etc/modules']);
const SENSITIVE_UNDER = ['/etc/cron', '/var/spool/cron/', '/etc/systemd/system/', '/lib/systemd/system/', '/usr/lib/systemd/system/',
  '/run/systemd/system/', '/etc/sudoers.d/', '/etc/profile.d/', '/etc/init.d/', '/etc/init/', '/etc/ssh/', '/etc/pam.d/', '/etc/xdg/autostart/',
  '/etc/udev/rules.d/', '/lib/udev/rules.d/', '/etc/modprobe.d/', '/etc/modules-load.d/', '/etc/update-motd.d/'];
const SENSITIVE_IN = ['/.ssh/', '/.aws/', '/.gnupg/', '/.kube/', '/.docker/config.json', '/.netrc', '/.git-credentials', '/.config/autostart/',
  '/.config/systemd/user/', '/.config/gcloud/', '/.azure/', '/.bashrc', '/.bash_profile', '/.profile', '/.bash_history', '/.zshrc'];

function sensitive(path: string): boolean {
  if (SENSITIVE_FILES.has(path)) return true;
  for (const p of SENSITIVE_UNDER) if (path.startsWith(p)) return true;
  if (path.startsWith('/etc/rc') && /^\/etc\/rc[0-6S]\.d\//.test(path)) return true;
  // every SENSITIVE_IN name starts with '/.': one scan for those, not one a name (paths run to 4 KiB)
  for (let i = path.indexOf('/.'); i >= 0; i = path.indexOf('/.', i + 2)) {
    for (const p of SENSITIVE_IN) if (path.startsWith(p, i)) return true;
  }
  return false;
}

/**
 * A listed endpoint's worth: connects, sends, binds and listens that succeeded above inbound
 * traffic and calls still in flight, above failures; one a finding names, above all.
 */
function netRank(op: ReportNetwork['op'], result: string): number {
  if (result === 'ok') return op === 'connect' || op === 'bind' || op === 'listen' || op === 'sendto' || op === 'sendmsg' || op === 'sendmmsg' ? 2 : 1;
  return result === 'unfinished' || result === 'EINPROGRESS' ? 1 : 0;
}
const NET_EVIDENCE_RANK = 3;

/** Characters a listed file holds: its name and its rename targets. */
function charsOf(f: FileAcc): number {
  let n = f.path.length;
  for (const t of f.renamedTo) n += t.length;
  return n;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

interface Group<T> { name: string; items: T[]; /** index in its level's bySize[items.length] */ pos: number }
interface Level<T> { groups: Map<string, Group<T>>; bySize: Group<T>[][]; max: number; size: number }

/**
 * The kept entries of one list by rank and by group (a file's directory, an endpoint's peer
 * address), to choose which gives way to a newcomer when the list is full: one of the lowest rank,
 * from the group holding most entries of that rank, so that junk piled in one place goes before
 * entries elsewhere. Every step is O(1) (no scan, no sort).
 */
export class KeepOrder<T extends Ranked> {
  private readonly levels: Level<T>[] = [];

  constructor(ranks: number) {
    for (let i = 0; i < ranks; i++) this.levels.push({ groups: new Map(), bySize: [], max: 0, size: 0 });
  }

  add(x: T): void {
    const l = this.levels[x.rank]!;
    let g = l.groups.get(x.group);
    if (!g) l.groups.set(x.group, (g = { name: x.group, items: [], pos: -1 }));
    x.slot = g.items.length;
    g.items.push(x);
    l.size++;
    this.resized(l, g, g.items.length - 1);
  }

  remove(x: T): void {
    const l = this.levels[x.rank]!;
    const g = l.groups.get(x.group)!;
    const last = g.items.pop()!;
    if (last !== x) {
      g.items[x.slot] = last;
      last.slot = x.slot;
    }
    if (g.items.length === 0) l.groups.delete(x.group);
    l.size--;
    this.resized(l, g, g.items.length + 1);
  }

  raise(x: T, rank: number): void {
    if (rank <= x.rank) return;
    this.remove(x);
    x.rank = rank;
    this.add(x);
  }

  /**
   * The kept entry a newcomer of `rank` in `group` displaces, if any: of a lower rank, always; of
   * its own rank only when another group holds at least two more of that rank than the newcomer's
   * (so groups are levelled, and the moves end: no churn). Among groups as large, the one that
   * grew to that size last; in the group, the latest kept (about: removals move the last into the gap).
   */
  victim(rank: number, group: string): T | undefined {
    for (let r = 0; r <= rank && r < this.levels.length; r++) {
      const l = this.levels[r]!;
      if (l.size === 0) continue;
      if (r === rank && l.max < (l.groups.get(group)?.items.length ?? 0) + 2) return undefined;
      const b = l.bySize[l.max]!;
      const g = b[b.length - 1]!;
      return g.items[g.items.length - 1];
    }
    return undefined;
  }

  /** Moves `g` from the bucket of groups holding `from` entries to that of its size now. */
  private resized(l: Level<T>, g: Group<T>, from: number): void {
    const to = g.items.length;
    if (from > 0) {
      const b = l.bySize[from]!;
      const last = b.pop()!;
      if (last !== g) {
        b[g.pos] = last;
        last.pos = g.pos;
      }
      if (b.length === 0 && l.max === from) l.max = to;
    }
    if (to > 0) {
      const b = (l.bySize[to] ??= []);
      g.pos = b.length;
      b.push(g);
      if (to > l.max) l.max = to;
    }
  }
}

/**
 * Which names a list left out, in fixed memory (1 MiB, allocated at the first): a Bloom filter,
 * so a name never left out may rarely test as left out, never the reverse. A finding's evidence is
 * re-added only when its name was listed once and left out, not when it never was (a failed call).
 */
class LeftOut {
  private bits: Uint32Array | undefined;
  private static readonly WORDS = 1 << 18;

  private last: string | undefined;

  add(s: string): void {
    if (s === this.last) return; // the same name again (every write to a file left out)
    this.last = s;
    const b = (this.bits ??= new Uint32Array(LeftOut.WORDS));
    const [h1, h2] = hashes(s);
    for (let i = 0; i < 4; i++) {
      const h = (h1 + i * h2) & (LeftOut.WORDS * 32 - 1);
      b[h >>> 5]! |= 1 << (h & 31);
    }
  }

  has(s: string): boolean {
    const b = this.bits;
    if (!b) return false;
    const [h1, h2] = hashes(s);
    for (let i = 0; i < 4; i++) {
      const h = (h1 + i * h2) & (LeftOut.WORDS * 32 - 1);
      if ((b[h >>> 5]! & (1 << (h & 31))) === 0) return false;
    }
    return true;
  }
}

function hashes(s: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, (b | 1) >>> 0];
}

/** `500 to 127.0.0.1`: where left-out network operations went (PlaceCounter keys are /ADDRESS). */
function peers(at: readonly Place[]): string {
  return at.map((p) => {
    const a = p.dir.slice(1);
    const where = p.dir === '' || p.dir === '/' ? 'elsewhere' : `to ${isIP(a) || a.startsWith('@') ? a : p.dir}`;
    return `${fmt(p.count)} ${where}`;
  }).join(', ');
}

const PATH_FIELDS = new Set(['fd.name', 'fd.realname', 'fs.path.name', 'fs.path.source', 'fs.path.target', 'proc.exe', 'proc.exepath']);
const EVIDENCE_OPS: Record<string, FileOp> = {
  execve: 'exec', execveat: 'exec', exec: 'exec', creat: 'write', unlink: 'delete', unlinkat: 'delete', rmdir: 'delete',
  rename: 'rename', renameat: 'rename', renameat2: 'rename', chmod: 'chmod', fchmod: 'chmod', fchmodat: 'chmod', fchmodat2: 'chmod',
  chown: 'chown', lchown: 'chown', fchownat: 'chown', mkdir: 'mkdir', mkdirat: 'mkdir', truncate: 'truncate', ftruncate: 'truncate',
  write: 'write', pwrite64: 'write', writev: 'write', pwritev: 'write', pwritev2: 'write',
};

/** The operation a finding's evidence shows on the path in `field`, as add() would have listed it. */
function evidenceOp(field: string, ev: Evidence): FileOp | undefined {
  if (field === 'proc.exe' || field === 'proc.exepath') return 'exec';
  if (field === 'fs.path.target') {
    if (ev.event.startsWith('rename')) return 'create';
    return ev.event.startsWith('link') || ev.event.startsWith('symlink') ? 'link' : undefined;
  }
  if (ev.event === 'open' || ev.event === 'openat' || ev.event === 'openat2') return ev.fields['evt.is_open_write'] === true ? 'write' : 'read';
  return EVIDENCE_OPS[ev.event];
}

export interface SampleInfo {
  name: string; size: number; sha256: string; sha1: string; md5: string; type: string; args: string[];
  /** The program the sample was handed to, when the kernel cannot run it itself (see sampleLaunch). */
  interpreter?: string[];
}

export interface ReportContext {
  id: string;
  started: Date;
  ended: Date;
  timeout: number;
  timedOut: boolean;
  isolation: Report['analysis']['isolation'];
  sample: SampleInfo;
  capture: CaptureStats;
  captureReason: string;
  backend: Backend;
  processes: readonly ProcessInfo[];
  changes: readonly FileChange[];
  /** What the sandbox's DNS sinkhole was asked (absent: the sandbox has none). */
  dns?: SandboxDns;
  /** Maps a host copy path to the path recorded in the report (relative to the analysis dir). */
  copyPath?: (hostPath: string) => string;
  findings: Finding[];
  verdict: Verdict;
  errors: ReportDiagnostic[];
  warnings: ReportDiagnostic[];
}

export class ReportBuilder {
  private total = 0;
  private readonly counts = new Map<string, number>();
  private readonly perPid = new Map<number, number>();
  private readonly files = new Map<string, FileAcc>();
  private readonly fileOrder = new KeepOrder<FileAcc>(EVIDENCE_RANK + 1);
  private readonly network = new Map<string, NetAcc>();
  private readonly netOrder = new KeepOrder<NetAcc>(NET_EVIDENCE_RANK + 1);
  private readonly denied = new Map<string, { name: string; pid: number; count: number }>();
  /** Events whose path/argv/address the capture read only in part, or not at all. */
  private argsTruncated = 0;
  /** Events whose arguments were read at the call's return (unreadable when it was made). */
  private argsReadAtExit = 0;
  private argsUnreadable = 0;
  /** Characters of the names in `files`, and operations past REPORT_LIMITS, counted and not listed. */
  private fileChars = 0;
  private filesOmitted = 0;
  private networkOmitted = 0;
  /** Where the left-out operations were: by directory, by peer address. */
  private readonly filesOmittedAt = new PlaceCounter();
  private readonly networkOmittedAt = new PlaceCounter();
  /** Names (files) and (operation, address, pid) (network) left out, to re-add a finding's evidence. */
  private readonly filesLeftOut = new LeftOut();
  private readonly networkLeftOut = new LeftOut();
  /** Syscalls the sandbox's seccomp profile denies: an EPERM from them is a blocked attempt. */
  private readonly deniedSet: ReadonlySet<string>;

  constructor(deniedSyscalls: Iterable<string> = []) {
    this.deniedSet = new Set(deniedSyscalls);
  }

  add(e: EnrichedEvent): void {
    const ev = e.ev;
    if (ev.type === 'syscall' || ev.type === 'exec') {
      if (ev.truncated?.length) this.argsTruncated++;
      if (ev.unreadable?.length) this.argsUnreadable++;
      if (ev.type === 'syscall' && ev.readAtExit) this.argsReadAtExit++;
    }
    if (ev.type === 'exec') {
      this.file(ev.exe, 'exec', ev.pid);
      return;
    }
    if (ev.type !== 'syscall') return;
    this.total++;
    this.counts.set(ev.name, (this.counts.get(ev.name) ?? 0) + 1);
    this.perPid.set(ev.pid, (this.perPid.get(ev.pid) ?? 0) + 1);
    const ret = ev.ret;
    if (ret === EPERM && this.deniedSet.has(ev.name)) {
      const k = `${ev.name}\0${ev.pid}`;
      const d = this.denied.get(k);
      if (d) d.count++;
      else this.denied.set(k, { name: ev.name, pid: ev.pid, count: 1 });
    }
    // a call the kernel makes again after a signal is one operation: the repeat carries its result
    if (NETWORK_OPS.has(ev.name) && ev.signal !== 'restarted') this.net(e);
    const ok = ret !== null && ret >= 0;
    const path = e.path;
    switch (ev.name) {
      case 'open': case 'openat': case 'openat2': case 'creat': {
        if (!ok || !path) return;
        const flags = ev.name === 'creat' ? 0o1101 : ev.name === 'open' ? (ev.args[1] ?? 0) : ev.name === 'openat' ? (ev.args[2] ?? 0) : 0;
        if (isOpenRead(flags)) this.file(path, 'read', ev.pid);
        if (isOpenWrite(flags)) this.file(path, 'write', ev.pid);
        // O_CREAT alone does not say the file was new; O_EXCL does (the overlay diff says the rest).
        if ((flags & O_CREAT) && (flags & O_EXCL)) this.file(path, 'create', ev.pid);
        return;
      }
      case 'unlink': case 'unlinkat': case 'rmdir':
        if (ok && path) this.file(path, 'delete', ev.pid);
        return;
      case 'rename': case 'renameat': case 'renameat2':
        if (ok && path) {
          this.file(path, 'rename', ev.pid);
          if (e.path2) {
            const f = this.files.get(path);
            if (f && !f.renamedTo.has(e.path2)) {
              if (f.renamedTo.size < REPORT_LIMITS.renamedTo && this.fileChars + e.path2.length <= REPORT_LIMITS.fileChars) {
                f.renamedTo.add(e.path2);
                this.fileChars += e.path2.length;
              } else {
                this.filesOmitted++;
                this.filesOmittedAt.add(e.path2);
              }
            }
            this.file(e.path2, 'create', ev.pid);
          }
        }
        return;
      case 'chmod': case 'fchmodat': case 'fchmodat2':
        if (ok && path) this.file(path, 'chmod', ev.pid);
        return;
      case 'fchmod':
        if (ok && e.fd?.path) this.file(e.fd.path, 'chmod', ev.pid);
        return;
      case 'chown': case 'lchown': case 'fchownat':
        if (ok && path) this.file(path, 'chown', ev.pid);
        return;
      case 'mkdir': case 'mkdirat':
        if (ok && path) this.file(path, 'mkdir', ev.pid);
        return;
      case 'link': case 'linkat': case 'symlink': case 'symlinkat':
        if (ok && e.path2) this.file(e.path2, 'link', ev.pid);
        return;
      case 'truncate':
        if (ok && path) this.file(path, 'truncate', ev.pid);
        return;
      case 'ftruncate':
        if (ok && e.fd?.path) this.file(e.fd.path, 'truncate', ev.pid);
        return;
      case 'write': case 'pwrite64': case 'writev': case 'pwritev': case 'pwritev2':
        if (ok && e.fd?.type === 'file' && e.fd.path) this.file(e.fd.path, 'write', ev.pid);
        return;
      case 'execve': case 'execveat':
        if (ok && path) this.file(path, 'exec', ev.pid);
        return;
      default:
        return;
    }
  }

  /** What is listed now (the bounds REPORT_LIMITS holds it to). */
  listed(): { files: number; fileChars: number; network: number } {
    return { files: this.files.size, fileChars: this.fileChars, network: this.network.size };
  }

  private file(path: string, op: FileOp, pid: number): void {
    let f = this.files.get(path);
    const rank = FILE_RANK[op];
    if (!f) {
      f = this.admitFile(path, sensitive(path) ? Math.max(rank, SENSITIVE_RANK) : rank);
      if (!f) {
        this.leaveOutFile(path, 1);
        return;
      }
    } else if (rank > f.rank) this.fileOrder.raise(f, rank);
    f.ops.add(op);
    if (f.pids.size < REPORT_LIMITS.pidsPerFile) f.pids.add(pid);
  }

  /** A new entry for `path`, making room by evicting a kept one of lower rank (KeepOrder), or none. */
  private admitFile(path: string, rank: number): FileAcc | undefined {
    if (path.length > REPORT_LIMITS.fileChars) return undefined;
    const group = dirOf(path);
    while (this.files.size >= REPORT_LIMITS.files || this.fileChars + path.length > REPORT_LIMITS.fileChars) {
      const v = this.fileOrder.victim(rank, group);
      if (!v) return undefined;
      // one of the newcomer's own rank gives way only when that alone makes room
      if (v.rank === rank && this.fileChars - charsOf(v) + path.length > REPORT_LIMITS.fileChars) return undefined;
      this.files.delete(v.path);
      this.fileChars -= charsOf(v);
      this.fileOrder.remove(v);
      this.leaveOutFile(v.path, v.ops.size);
    }
    const f: FileAcc = { path, ops: new Set(), pids: new Set(), renamedTo: new Set(), rank, group, slot: 0 };
    this.files.set(path, f);
    this.fileChars += path.length;
    this.fileOrder.add(f);
    return f;
  }

  private leaveOutFile(path: string, ops: number): void {
    this.filesOmitted += ops;
    this.filesOmittedAt.add(path, ops);
    this.filesLeftOut.add(path);
  }

  private net(e: EnrichedEvent): void {
    const ev = e.ev;
    if (ev.type !== 'syscall') return;
    const op = (ev.name === 'accept4' ? 'accept' : ev.name === 'recvmmsg_time64' ? 'recvmmsg' : ev.name) as ReportNetwork['op'];
    // a batch: each message's address (none: a connected socket's, or no sender asked for)
    if (ev.addrs) {
      for (const a of ev.addrs) if (a) this.netEntry(op, a, e);
      return;
    }
    const fd = e.fd;
    let addr: SockAddr | undefined = ev.addr;
    if (op === 'listen' && fd?.lip !== undefined) {
      addr = fd.type === 'unix' ? { family: 'unix', path: fd.lip, abstract: false } : { family: fd.type === 'ipv6' ? 'inet6' : 'inet', address: fd.lip, port: fd.lport ?? 0 };
    }
    // sendto/sendmsg/recvfrom/recvmsg without an address are ordinary traffic on a connected socket.
    if (!addr) return;
    this.netEntry(op, addr, e);
  }

  private netEntry(op: ReportNetwork['op'], addr: SockAddr, e: EnrichedEvent): void {
    const ev = e.ev as SyscallEvent;
    const fd = e.fd;
    const family = addr.family;
    const address = family === 'inet' || family === 'inet6' ? addr.address : family === 'unix' ? (addr.abstract ? `@${addr.path}` : addr.path) : '';
    const port = family === 'inet' || family === 'inet6' ? addr.port : null;
    const proto: ReportNetwork['proto'] = family === 'unix' ? 'unix' : fd?.l4proto === 'tcp' || fd?.l4proto === 'udp' || fd?.l4proto === 'raw' ? fd.l4proto
      : op === 'sendto' || op === 'recvfrom' || op === 'recvmsg' || op === 'sendmmsg' || op === 'recvmmsg' ? 'udp' : family === 'inet' || family === 'inet6' ? 'tcp' : 'other';
    const ret = ev.ret;
    const result = ret === null ? 'unfinished' : ret >= 0 ? 'ok' : errnoName(ret);
    const key = `${op}\0${proto}\0${address}\0${port}\0${result}\0${ev.pid}`;
    const n = this.network.get(key);
    if (n) n.entry.count++;
    else if (!this.admitNet(key, netRank(op, result), { op, proto, family, address, port, result, pid: ev.pid, count: 1 })) this.leaveOutNet(op, address, ev.pid, 1);
  }

  /** Lists `entry`, making room by evicting a kept one of lower rank, spread by peer address. */
  private admitNet(key: string, rank: number, entry: ReportNetwork): boolean {
    while (this.network.size >= REPORT_LIMITS.network) {
      const v = this.netOrder.victim(rank, entry.address);
      if (!v) return false;
      this.network.delete(v.key);
      this.netOrder.remove(v);
      this.leaveOutNet(v.entry.op, v.entry.address, v.entry.pid, v.entry.count);
    }
    const n: NetAcc = { key, entry, rank, group: entry.address, slot: 0 };
    this.network.set(key, n);
    this.netOrder.add(n);
    return true;
  }

  private leaveOutNet(op: string, address: string, pid: number, count: number): void {
    this.networkOmitted += count;
    this.networkOmittedAt.addDir(address.startsWith('/') ? address : `/${address}`, count);
    this.networkLeftOut.add(`${op}\0${address}\0${pid}`);
  }

  /**
   * The files and endpoints a finding's evidence names stay listed: raised above everything else
   * when kept, listed again with what the evidence says when they were left out.
   */
  private pinEvidence(findings: readonly Finding[]): void {
    for (const f of findings) {
      for (const ev of f.evidence) {
        if (NETWORK_OPS.has(ev.event)) this.pinEndpoint(ev);
        for (const [field, v] of Object.entries(ev.fields)) {
          // '…': a value the evidence cut (detector MAX_VALUE), not a name
          if (typeof v !== 'string' || !PATH_FIELDS.has(field) || !v.startsWith('/') || v.endsWith('…')) continue;
          const kept = this.files.get(v);
          if (kept) {
            this.fileOrder.raise(kept, EVIDENCE_RANK);
            continue;
          }
          const op = evidenceOp(field, ev);
          if (!op || !this.filesLeftOut.has(v)) continue;
          const acc = this.admitFile(v, EVIDENCE_RANK);
          if (acc) {
            acc.ops.add(op);
            acc.pids.add(ev.pid);
          }
        }
      }
    }
  }

  private pinEndpoint(ev: Evidence): void {
    const x = ev.fields;
    const address = x['fd.sip'] ?? x['fd.dip'] ?? x['fd.rip'];
    if (typeof address !== 'string' || !isIP(address)) return;
    const op = (ev.event === 'accept4' ? 'accept' : ev.event === 'recvmmsg_time64' ? 'recvmmsg' : ev.event) as ReportNetwork['op'];
    let kept = false;
    for (const n of this.network.values()) {
      if (n.entry.op === op && n.entry.address === address && n.entry.pid === ev.pid) {
        this.netOrder.raise(n, NET_EVIDENCE_RANK);
        kept = true;
      }
    }
    if (kept || !this.networkLeftOut.has(`${op}\0${address}\0${ev.pid}`)) return;
    const p = x['fd.sport'] ?? x['fd.dport'] ?? x['fd.rport'];
    const port = typeof p === 'number' ? p : null;
    const res = x['evt.res'];
    const raw = x['evt.rawres'];
    // what the evidence did not record is 'unknown' (the entry itself was left out)
    const result = typeof raw === 'number' ? (raw >= 0 ? 'ok' : errnoName(raw)) : typeof res === 'string' ? (res === 'SUCCESS' ? 'ok' : res) : 'unknown';
    const l4 = x['fd.l4proto'];
    const proto: ReportNetwork['proto'] = l4 === 'tcp' || l4 === 'udp' || l4 === 'raw' ? l4 : op === 'connect' || op === 'listen' || op === 'accept' ? 'tcp' : 'udp';
    const family = isIP(address) === 6 ? 'inet6' : 'inet';
    const key = `${op}\0${proto}\0${address}\0${port}\0${result}\0${ev.pid}`;
    if (!this.network.has(key)) this.admitNet(key, NET_EVIDENCE_RANK, { op, proto, family, address, port, result, pid: ev.pid, count: 1 });
  }

  build(ctx: ReportContext): Report {
    const t0 = 0;
    const secs = (ns: number) => Math.round((ns - t0) / 1e6) / 1e3;
    this.pinEvidence(ctx.findings);
    for (const c of ctx.changes) {
      if (c.change === 'created') this.file(c.path, 'create', 0);
      if (c.change === 'deleted' && !this.files.get(c.path)?.ops.has('delete')) this.file(c.path, 'delete', 0);
    }
    const processesOmitted = Math.max(0, ctx.processes.length - REPORT_LIMITS.processes);
    const processes: ReportProcess[] = ctx.processes.slice(0, REPORT_LIMITS.processes).map((p) => ({
      pid: p.pid, ppid: p.ppid, exe: p.exe, argv: p.argv, uid: p.uid, start: secs(p.start),
      end: p.end === null ? null : secs(p.end), exit: p.exit, signal: p.signal, syscalls: this.perPid.get(p.pid) ?? 0,
      ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
      ...(p.exeCopiedFrom !== undefined ? { copiedFrom: p.exeCopiedFrom } : {}),
    }));
    const files: ReportFile[] = [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, f]) => {
      const out: ReportFile = { path, ops: [...f.ops].sort(), pids: [...f.pids].filter((p) => p !== 0).sort((a, b) => a - b) };
      if (f.renamedTo.size) out.renamedTo = [...f.renamedTo];
      return out;
    });
    const dropped: ReportDropped[] = ctx.changes.filter((c) => c.change !== 'deleted' && (c.sha256 !== null || c.unhashed)).map((c) => {
      const d: ReportDropped = { path: c.path, sha256: c.sha256, size: c.size, change: c.change as 'created' | 'modified', truncated: c.truncated };
      if (c.copy) d.copy = ctx.copyPath ? ctx.copyPath(c.copy) : c.copy;
      return d;
    });
    const deleted = ctx.changes.filter((c) => c.change === 'deleted').map((c) => c.path).sort();
    const counts = Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
    const warnings = [...ctx.warnings];
    const unhashed = ctx.changes.filter((c) => c.unhashed);
    if (unhashed.length) {
      warnings.push({ code: 'FILES_UNHASHED', message: `${unhashed.length} dropped file(s) too large to hash (sparse, or past the analysis's hashing budget), listed with their size and first bytes: ${unhashed.slice(0, 3).map((c) => c.path).join(', ')}${unhashed.length > 3 ? ', ...' : ''}` });
    }
    const omitted = { files: this.filesOmitted, network: this.networkOmitted, processes: processesOmitted };
    if (omitted.files || omitted.network || omitted.processes) {
      warnings.push({
        code: 'REPORT_LIMITED',
        message: `the sample touched more than one report lists (counted in syscalls, seen by the rules, not listed): ${[
          omitted.files ? `${fmt(omitted.files)} file operations past ${fmt(REPORT_LIMITS.files)} paths or ${REPORT_LIMITS.fileChars >> 20} MiB of names (${places(this.filesOmittedAt.top(3))}; files named by findings, executed, sensitive and changed ones were kept before read ones, the most crowded directories gave way first)` : '',
          omitted.network ? `${fmt(omitted.network)} network operations past ${fmt(REPORT_LIMITS.network)} entries (${peers(this.networkOmittedAt.top(3))}; endpoints named by findings and successful connects, sends and binds were kept before failed ones, the most crowded peers gave way first)` : '',
          omitted.processes ? `${fmt(omitted.processes)} processes past the first ${REPORT_LIMITS.processes}` : '',
        ].filter(Boolean).join('; ')}`,
      });
    }
    const dns = ctx.dns;
    if (dns?.unavailable) warnings.push({ code: 'DNS_UNAVAILABLE', message: `the DNS sinkhole did not run (${dns.unavailable}): the sample's lookups failed and are not listed` });
    if (dns?.omitted) warnings.push({ code: 'REPORT_LIMITED', message: `the sample looked up more names than are listed: ${fmt(dns.omitted)} queries past ${fmt(dns.queries.length)} names and types (answered with one shared address)` });
    if (dns?.malformed) warnings.push({ code: 'DNS_MALFORMED', message: `${fmt(dns.malformed)} packets to the DNS sinkhole were no standard query of one question (answered FORMERR or dropped)` });
    if (dns?.sessionsUnavailable) warnings.push({ code: 'SESSIONS_UNAVAILABLE', message: `the sample's connections were not caught (${dns.sessionsUnavailable}): they failed as unrouted, and what the sample sends is not listed` });
    else if (dns?.ipv6Unavailable) warnings.push({ code: 'SESSIONS_UNAVAILABLE', message: `the sample's IPv6 connections were not caught (${dns.ipv6Unavailable}): they failed as unrouted; IPv4 ones were caught` });
    if (dns?.sessionsOmitted) warnings.push({ code: 'REPORT_LIMITED', message: `${fmt(dns.sessionsOmitted)} caught connections are not listed (past ${fmt(SESSION_MAX)} in all or ${fmt(SESSION_MAX_OPEN)} open at once)` });
    // the name behind each sinkhole address the sample then used
    const domainOf = namesByAddress(dns?.queries ?? []);
    if (this.argsReadAtExit) {
      warnings.push({
        code: 'ARGS_READ_AT_EXIT',
        message: `${this.argsReadAtExit} events carry an argument the capture could read only at the call's return (memory not paged in at the call): another thread of the sample could have changed it in between, so the path or address shown may not be the one the kernel used`,
      });
    }
    if (this.argsTruncated || this.argsUnreadable) {
      warnings.push({
        code: 'ARGS_INCOMPLETE',
        message: [
          this.argsTruncated ? `${this.argsTruncated} events carry an argument cut at the capture's buffer (the path or argv shown is a prefix)` : '',
          this.argsUnreadable ? `${this.argsUnreadable} events carry an argument the capture could not read (a bad pointer, or memory not paged in)` : '',
        ].filter(Boolean).join('; '),
      });
    }
    const report: Omit<Report, 'indicators'> = {
      schema: REPORT_SCHEMA,
      version: REPORT_VERSION,
      tool: { name: 'sandtrace', version: TOOL_VERSION },
      analysis: {
        id: ctx.id, started: ctx.started.toISOString(), ended: ctx.ended.toISOString(),
        duration: Math.round((ctx.ended.getTime() - ctx.started.getTime()) / 10) / 100,
        timeout: ctx.timeout, timedOut: ctx.timedOut,
        status: ctx.errors.length ? 'partial' : 'completed',
        isolation: ctx.isolation, errors: ctx.errors, warnings,
        ...(omitted.files || omitted.network || omitted.processes ? { omitted } : {}),
      },
      sample: ctx.sample,
      processes,
      files,
      dropped,
      deleted,
      network: [...this.network.values()].map((n) => {
        // an IPv4-mapped address (a dual-stack socket's) is named by the IPv4 one it stands for
        const v4 = n.entry.family === 'inet' ? n.entry.address : mappedIpv4(n.entry.address);
        const domain = v4 !== undefined ? domainOf.get(v4) : undefined;
        return domain === undefined ? n.entry : { ...n.entry, domain };
      }),
      ...(dns ? { dns: dns.queries.map(({ name, type, answer, rcode, count }) => ({ name, type, answer, rcode, count })) } : {}),
      ...(dns?.sessions ? { sessions: this.sessionPorts(dns.sessions) } : {}),
      syscalls: { total: this.total, counts, denied: [...this.denied.values()] },
      capture: {
        backend: ctx.backend, reason: ctx.captureReason, events: ctx.capture.events, lost: ctx.capture.lost,
        parseErrors: ctx.capture.parseErrors, duration: Math.round(ctx.capture.duration * 1000) / 1000, notes: ctx.capture.notes,
        argsTruncated: this.argsTruncated, argsUnreadable: this.argsUnreadable, argsReadAtExit: this.argsReadAtExit,
        ...(ctx.capture.paused ? { paused: Math.round(ctx.capture.paused * 1000) / 1000 } : {}),
      },
      findings: ctx.findings,
      verdict: ctx.verdict,
    };
    // the indicators gathered from the rest, listed after the sessions
    const { syscalls, capture, findings, verdict, ...head } = report;
    return { ...head, indicators: indicatorsOf(report), syscalls, capture, findings, verdict };
  }

  /**
   * A caught session whose port the namespace's connection table did not give (rootless: it is not
   * readable there) takes the port of the sample's connects to that address, when they used one.
   * The connects are grouped by address once, not searched per session.
   */
  private sessionPorts(sessions: readonly SinkholeSession[]): SinkholeSession[] {
    if (sessions.every((s) => s.port !== null)) return [...sessions];
    // TCP: the sample's connects; UDP: its connects and the destinations it sent datagrams to
    const portsAt = new Map<string, Set<number | null>>();
    for (const { entry: n } of this.network.values()) {
      if ((n.family !== 'inet' && n.family !== 'inet6') || !(n.proto === 'udp' ? ['connect', 'sendto', 'sendmsg', 'sendmmsg'] : ['connect']).includes(n.op)) continue;
      const key = `${n.proto === 'udp' ? 'udp' : 'tcp'} ${n.address}`;
      const ports = portsAt.get(key) ?? new Set();
      portsAt.set(key, ports.add(n.port));
    }
    return sessions.map((s) => {
      const ports = s.port === null ? portsAt.get(`${s.transport ?? 'tcp'} ${s.address}`) : undefined;
      const [port] = ports ?? [];
      return ports?.size === 1 && port !== undefined && port !== null ? { ...s, port } : s;
    });
  }
}
