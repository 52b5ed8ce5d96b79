// Semantic reconstruction: turns the raw event stream into events that know their process
// (exe, argv, ancestry, uid) and what their file descriptor refers to (path or socket).
// One pass, O(1) per event; state is per process and shared by its threads.
import { posix } from 'node:path';
import type { SockAddr, SyscallEvent, TraceEvent } from '../capture/events.js';
import type { ContainerImage, EnrichedEvent, FdInfo, FdType, ProcessInfo } from './types.js';
import {
  AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AT_EMPTY_PATH, AT_FDCWD, O_CLOEXEC, O_DIRECTORY,
  O_TRUNC, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM,
} from './flags.js';

export interface SemanticOptions {
  containerId?: string;
  containerName?: string;
  /** The container's image, when the caller knows it (every process of the analysis shares it). */
  containerImage?: ContainerImage;
  /** uid -> user name inside the analysed system (from its /etc/passwd). */
  users?: ReadonlyMap<number, string>;
  /** Working directory (absolute) of processes first seen without a known one. */
  initialCwd?: string;
}

interface ProcState {
  info: ProcessInfo;
  fds: Map<number, FdInfo>;
  /** Descriptors opened with O_CLOEXEC: closed by the next exec. */
  cloexec: Set<number>;
  /** The file the process last read from, and how many bytes (copy provenance). */
  lastRead?: { path: string; bytes: number };
}

const READS = new Set(['read', 'pread64', 'readv', 'preadv', 'preadv2']);
const WRITES = new Set(['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2']);

/** The open flags of an opener (creat is O_WRONLY|O_CREAT|O_TRUNC; openat2 keeps them in memory). */
function openerFlags(name: string, a: readonly number[]): number {
  return name === 'creat' ? 0o1101 : name === 'open' ? (a[1] ?? 0) : name === 'openat' ? (a[2] ?? 0) : 0;
}

/** Syscalls whose first argument is a file descriptor the call operates on. */
const FD_ARG0 = new Set([
  'read', 'write', 'pread64', 'pwrite64', 'readv', 'writev', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'close', 'fstat', 'lseek', 'ioctl', 'fcntl', 'flock', 'fsync', 'fdatasync', 'ftruncate', 'getdents',
  'getdents64', 'fchdir', 'fchmod', 'fchown', 'fstatfs', 'connect', 'accept', 'accept4', 'bind', 'listen',
  'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'recvmmsg_time64', 'shutdown', 'getsockname', 'getpeername',
  'setsockopt', 'getsockopt', 'sendfile', 'splice', 'tee', 'fgetxattr', 'fsetxattr', 'flistxattr',
  'fremovexattr', 'copy_file_range', 'fallocate', 'fadvise64', 'syncfs', 'dup', 'dup2', 'dup3', 'execveat',
  'readahead', 'sync_file_range', 'vmsplice', 'futimesat', 'fstatat64',
]);

/** Index of the dirfd argument that relative path arguments are resolved against. */
const DIRFD: Record<string, [number, number]> = {
  openat: [0, -1], openat2: [0, -1], unlinkat: [0, -1], mkdirat: [0, -1], renameat: [0, 2], renameat2: [0, 2],
  linkat: [0, 2], symlinkat: [-1, 1], fchmodat: [0, -1], fchmodat2: [0, -1], fchownat: [0, -1], newfstatat: [0, -1],
  statx: [0, -1], faccessat: [0, -1], faccessat2: [0, -1], readlinkat: [0, -1], execveat: [0, -1],
  utimensat: [0, -1], mknodat: [0, -1], name_to_handle_at: [0, -1], open_tree: [0, -1], futimesat: [0, -1],
};

const OPENERS = new Set(['open', 'openat', 'openat2', 'creat']);
/** What copy provenance may hold, in characters of names (see SemanticState.copiedFrom). */
const COPIED_FROM_CHARS = 8 << 20;

/** Other calls that return a new descriptor, and what it is. */
const FD_PRODUCERS: Record<string, FdType> = {
  eventfd: 'event', eventfd2: 'event', signalfd: 'signalfd', signalfd4: 'signalfd', timerfd_create: 'timerfd',
  inotify_init: 'inotify', inotify_init1: 'inotify', bpf: 'bpf', epoll_create: 'unknown', epoll_create1: 'unknown',
  pidfd_open: 'unknown', userfaultfd: 'unknown', perf_event_open: 'unknown', fanotify_init: 'unknown', io_uring_setup: 'unknown',
};

export class SemanticState {
  private readonly procs = new Map<number, ProcState>();
  /** Every process ever seen, including ended ones whose pid was reused. */
  private readonly all: ProcessInfo[] = [];
  private readonly containerId: string;
  private readonly containerName: string;
  private readonly containerImage: ContainerImage | undefined;
  private readonly users: ReadonlyMap<number, string>;
  private readonly initialCwd: string | undefined;
  /**
   * Copy provenance: file -> the file its content came from during the capture (the start of
   * the chain). A copy is a write of exactly the bytes just read (cp, cat, dd), sendfile or
   * copy_file_range; a rename, hard link or symlink carries the name over. Overwriting
   * (O_TRUNC, creat) or removing the file forgets it.
   */
  private readonly copiedFrom = new Map<string, string>();
  /**
   * Characters of the names copiedFrom holds: a sample that links or copies files in a loop
   * through long names would grow it without end. Past COPIED_FROM_CHARS, new copies are not
   * remembered (the ones known stay, and overwriting or removing still forgets).
   */
  private copiedChars = 0;

  constructor(opts: SemanticOptions = {}) {
    this.containerId = opts.containerId ?? '';
    this.containerName = opts.containerName ?? '';
    this.containerImage = opts.containerImage;
    this.users = opts.users ?? new Map([[0, 'root']]);
    this.initialCwd = opts.initialCwd;
  }

  /** Every process seen so far, in order of first appearance. */
  processes(): readonly ProcessInfo[] {
    return this.all;
  }

  process(pid: number): ProcessInfo | undefined {
    return this.procs.get(pid)?.info;
  }

  userName(uid: number): string {
    return this.users.get(uid) ?? String(uid);
  }

  apply(ev: TraceEvent): EnrichedEvent {
    const st = this.stateOf(ev.pid, ev.ts, ev.comm, ev.running);
    switch (ev.type) {
      case 'fork':
        if (!ev.thread) this.fork(st, ev.childPid, ev.ts);
        return this.enriched(ev, st, undefined, undefined, undefined);
      case 'exec': {
        const p = st.info;
        // The kernel reports the path as execve got it (./stage2): make it absolute.
        p.exe = ev.exe.startsWith('/') ? ev.exe : this.resolve(st, ev.exe, AT_FDCWD);
        p.argv = ev.argv;
        p.name = ev.comm ?? basename15(ev.exe);
        if (ev.uid !== undefined) p.uid = ev.uid;
        if (ev.byKernel) p.kernelHelper = true;
        else delete p.kernelHelper;
        const from = this.copiedFrom.get(p.exe);
        if (from !== undefined) p.exeCopiedFrom = from;
        else delete p.exeCopiedFrom;
        for (const fd of st.cloexec) st.fds.delete(fd);
        st.cloexec.clear();
        return this.enriched(ev, st, undefined, p.exe, undefined);
      }
      case 'exit':
        if (!ev.thread) {
          st.info.end = ev.ts;
          st.info.signal = ev.signal ?? null;
          st.info.exit = ev.signal ? 128 + ev.signal : ev.code;
        }
        return this.enriched(ev, st, undefined, undefined, undefined);
      case 'syscall':
        return this.syscall(ev, st);
    }
  }

  private enriched(ev: TraceEvent, st: ProcState, fd: FdInfo | undefined, path: string | undefined, path2: string | undefined): EnrichedEvent {
    return { ev, proc: st.info, fd, user: this.userName(st.info.uid), path, path2 };
  }

  private stateOf(pid: number, ts: number, comm: string | undefined, running?: { exe: string; argv: string[] }): ProcState {
    let st = this.procs.get(pid);
    if (!st) {
      const info = this.newProcess(pid, 0, undefined, ts);
      if (comm) info.name = comm;
      if (this.initialCwd?.startsWith('/')) info.cwd = this.initialCwd;
      st = { info, fds: new Map(), cloexec: new Set() };
      this.procs.set(pid, st);
    } else if (comm && st.info.exe === '' && st.info.name !== comm) {
      st.info.name = comm;
    }
    // found mid-life: the capture named the program the process was already running
    if (running && st.info.exe === '') {
      st.info.exe = running.exe;
      st.info.argv = running.argv;
      st.info.name ||= basename15(running.exe);
    }
    return st;
  }

  private newProcess(pid: number, ppid: number, parent: ProcessInfo | undefined, ts: number): ProcessInfo {
    const info: ProcessInfo = {
      pid, ppid, exe: parent?.exe ?? '', name: parent?.name ?? '', argv: parent?.argv ?? [],
      uid: parent?.uid ?? 0, sid: parent?.sid ?? 0, tty: parent?.tty ?? 0, start: ts, end: null, exit: null,
      signal: null, parent, containerId: this.containerId, containerName: this.containerName,
    };
    if (this.containerImage) info.containerImage = this.containerImage;
    if (parent?.exeCopiedFrom !== undefined) info.exeCopiedFrom = parent.exeCopiedFrom;
    this.all.push(info);
    return info;
  }

  private fork(parent: ProcState, childPid: number, ts: number): void {
    const info = this.newProcess(childPid, parent.info.pid, parent.info, ts);
    // The child inherits a copy of the descriptor table and the working directory.
    if (parent.info.cwd !== undefined) info.cwd = parent.info.cwd;
    this.procs.set(childPid, { info, fds: new Map(parent.fds), cloexec: new Set(parent.cloexec) });
  }

  private syscall(ev: SyscallEvent, st: ProcState): EnrichedEvent {
    const name = ev.name;
    const a = ev.args;
    const ret = ev.ret;
    const ok = ret !== null && ret >= 0;
    const dirfds = DIRFD[name];
    let path: string | undefined;
    let path2: string | undefined;
    if (ev.path !== undefined) {
      if (dirfds && dirfds[0] >= 0) {
        const flagsIdx = name === 'execveat' ? 4 : name === 'statx' || name === 'newfstatat' ? 2 : -1;
        const emptyPath = ev.path === '' && flagsIdx >= 0 && ((a[flagsIdx] ?? 0) & AT_EMPTY_PATH) !== 0;
        path = emptyPath ? st.fds.get(a[dirfds[0]] ?? -1)?.path : this.resolve(st, ev.path, a[dirfds[0]]);
      } else if (name === 'symlink' || name === 'symlinkat') {
        path = ev.path; // the link's target, kept as written
      } else {
        path = this.resolve(st, ev.path, AT_FDCWD);
      }
    }
    if (ev.path2 !== undefined) path2 = this.resolve(st, ev.path2, dirfds && dirfds[1] >= 0 ? a[dirfds[1]] : AT_FDCWD);

    let fd: FdInfo | undefined;
    if (OPENERS.has(name)) {
      const flags = openerFlags(name, a);
      const p = path ?? '';
      fd = { num: ret ?? -1, type: (flags & O_DIRECTORY) !== 0 ? 'directory' : 'file', name: p, path: p };
      if (ok) {
        st.fds.set(ret, fd);
        if (flags & O_CLOEXEC) st.cloexec.add(ret);
        else st.cloexec.delete(ret);
      }
    } else if (FD_ARG0.has(name)) {
      const num = name === 'execveat' && !(((a[4] ?? 0) & AT_EMPTY_PATH) !== 0) ? -1 : (a[0] ?? -1);
      fd = num >= 0 ? (st.fds.get(num) ?? unknownFd(num)) : undefined;
      fd = this.fdEffects(ev, st, fd, ok);
    } else if (name === 'mmap') {
      const num = a[4] ?? -1;
      if (num >= 0 && num < 0x7fffffff) fd = st.fds.get(num);
    } else if (ok) {
      fd = this.newFd(ev, st, path);
    }

    if (ok) this.provenance(ev, st, fd, path, path2);
    if (ok) {
      if (name === 'chdir' || name === 'fchdir') this.chdir(st, name === 'chdir' ? path : fd?.path);
      else if (name === 'setsid') st.info.sid = ret;
      else if ((name === 'setuid' || name === 'setresuid' || name === 'setreuid') && ret === 0) {
        const uid = name === 'setreuid' ? a[1] : a[0];
        if (uid !== undefined && uid >= 0 && uid < 0xffffffff) st.info.uid = uid;
      }
    }
    return this.enriched(ev, st, fd, path, path2);
  }

  /** Descriptor-producing calls that are not opens: sockets, memfds, event fds, ... */
  private newFd(ev: SyscallEvent, st: ProcState, path: string | undefined): FdInfo | undefined {
    const a = ev.args;
    const ret = ev.ret as number;
    let fd: FdInfo | undefined;
    switch (ev.name) {
      case 'socket': {
        const domain = a[0] ?? 0;
        const stype = (a[1] ?? 0) & 0xf;
        const type: FdType = domain === AF_INET ? 'ipv4' : domain === AF_INET6 ? 'ipv6' : domain === AF_UNIX ? 'unix'
          : domain === AF_NETLINK ? 'netlink' : 'socket';
        fd = { num: ret, type, name: '' };
        if (type === 'ipv4' || type === 'ipv6') {
          fd.l4proto = stype === SOCK_STREAM ? 'tcp' : stype === SOCK_DGRAM ? ((a[2] ?? 0) === 1 || (a[2] ?? 0) === 58 ? 'icmp' : 'udp') : stype === SOCK_RAW ? 'raw' : 'tcp';
        }
        if ((a[1] ?? 0) & 0o2000000) st.cloexec.add(ret);
        break;
      }
      case 'memfd_create':
        fd = { num: ret, type: 'memfd', name: `memfd:${path ?? ev.path ?? ''}` };
        break;
      default: {
        const type = FD_PRODUCERS[ev.name];
        if (type === undefined) return undefined;
        fd = { num: ret, type, name: type === 'unknown' ? ev.name : '' };
      }
    }
    st.fds.set(ret, fd);
    return fd;
  }

  /** What calls on an existing descriptor change: socket endpoints, duplicates, closes. */
  private fdEffects(ev: SyscallEvent, st: ProcState, fd: FdInfo | undefined, ok: boolean): FdInfo | undefined {
    const a = ev.args;
    switch (ev.name) {
      case 'close':
        if (ok) {
          st.fds.delete(a[0] ?? -1);
          st.cloexec.delete(a[0] ?? -1);
        }
        return fd;
      case 'dup': case 'dup2': case 'dup3':
        if (ok && fd) {
          const copy = { ...fd, num: ev.ret as number };
          st.fds.set(copy.num, copy);
          if (ev.name === 'dup3' && ((a[2] ?? 0) & O_CLOEXEC)) st.cloexec.add(copy.num);
          else st.cloexec.delete(copy.num);
          return copy;
        }
        return fd;
      case 'fcntl':
        // F_DUPFD (0) and F_DUPFD_CLOEXEC (1030) duplicate
        if (ok && fd && (a[1] === 0 || a[1] === 1030)) {
          const copy = { ...fd, num: ev.ret as number };
          st.fds.set(copy.num, copy);
          return copy;
        }
        return fd;
      case 'connect':
        if (fd && ev.addr) {
          const updated = withRemote(fd, ev.addr);
          // A failed connect still says where it tried to go; only a success changes the table.
          if (ok || ev.ret === -115 /* EINPROGRESS */) st.fds.set(updated.num, updated);
          return updated;
        }
        return fd;
      case 'sendto':
      case 'sendmsg':
        // A send that names an address goes there, for this call only (the next may go elsewhere),
        // on a socket with no peer and on any datagram socket, bound or connected (the kernel
        // sends a datagram where msg_name says); a connected stream socket keeps its peer.
        return fd && ev.addr && sendsToAddress(fd) ? withRemote(fd, ev.addr) : fd;
      case 'bind':
        if (fd && ev.addr) {
          const updated = withLocal(fd, ev.addr);
          if (ok) st.fds.set(updated.num, updated);
          return updated;
        }
        return fd;
      case 'listen':
        if (fd && ok) {
          const updated: FdInfo = { ...fd, role: 'server' };
          updated.name = socketName(updated);
          st.fds.set(updated.num, updated);
          return updated;
        }
        return fd;
      case 'accept': case 'accept4':
        if (ok) {
          const base = fd ?? unknownFd(a[0] ?? -1);
          let accepted: FdInfo = { ...base, num: ev.ret as number, role: 'server' };
          if (ev.addr) accepted = withRemote(accepted, ev.addr, 'server');
          st.fds.set(accepted.num, accepted);
          if (ev.name === 'accept4' && ((a[3] ?? 0) & 0o2000000)) st.cloexec.add(accepted.num);
          return accepted;
        }
        return fd;
      default:
        return fd;
    }
  }

  /** Copy provenance of a successful call (see `copiedFrom`). */
  private provenance(ev: SyscallEvent, st: ProcState, fd: FdInfo | undefined, path: string | undefined, path2: string | undefined): void {
    const name = ev.name;
    const a = ev.args;
    const filePath = (f: FdInfo | undefined) => (f?.type === 'file' && f.path?.startsWith('/') ? f.path : undefined);
    const origin = (p: string) => this.copiedFrom.get(p) ?? p;
    const copy = (from: string | undefined, to: string | undefined) => {
      if (from === undefined || to === undefined || from === to || !to.startsWith('/') || !from.startsWith('/')) return;
      const o = origin(from);
      const had = this.copiedFrom.get(to);
      const cost = had === undefined ? to.length + o.length : o.length - had.length;
      if (this.copiedChars + cost > COPIED_FROM_CHARS) return;
      this.copiedFrom.set(to, o);
      this.copiedChars += cost;
    };
    const forget = (p: string) => {
      const had = this.copiedFrom.get(p);
      if (had === undefined) return;
      this.copiedFrom.delete(p);
      this.copiedChars -= p.length + had.length;
    };
    if (READS.has(name)) {
      const from = filePath(fd);
      if (from !== undefined && (ev.ret as number) > 0) st.lastRead = { path: from, bytes: ev.ret as number };
    } else if (WRITES.has(name)) {
      // cp, cat and dd write exactly what they just read; the first such write names the source
      const to = filePath(fd);
      const last = st.lastRead;
      if (to !== undefined && last !== undefined && last.bytes === ev.ret && !this.copiedFrom.has(to)) copy(last.path, to);
    } else if (name === 'sendfile') {
      copy(filePath(st.fds.get(a[1] ?? -1)), filePath(fd));
    } else if (name === 'copy_file_range') {
      copy(filePath(fd), filePath(st.fds.get(a[2] ?? -1)));
    } else if (OPENERS.has(name)) {
      if (path !== undefined && (openerFlags(name, a) & O_TRUNC) !== 0) forget(path);
    } else if (name === 'rename' || name === 'renameat' || name === 'renameat2') {
      if (path !== undefined && path2 !== undefined) {
        copy(path, path2);
        forget(path);
      }
    } else if (name === 'link' || name === 'linkat') {
      copy(path, path2);
    } else if (name === 'symlink' || name === 'symlinkat') {
      // the target as written, relative to the link's own directory
      if (path !== undefined && path2?.startsWith('/')) copy(posix.resolve(posix.dirname(path2), path), path2);
    } else if (name === 'unlink' || name === 'unlinkat') {
      if (path !== undefined) forget(path);
    }
  }

  /** A successful chdir/fchdir: the new directory if it resolved to an absolute path; otherwise
   *  (relative to an unknown cwd, or an fd of unknown path) the cwd is no longer known. */
  private chdir(st: ProcState, dir: string | undefined): void {
    if (dir !== undefined && dir.startsWith('/')) st.info.cwd = dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
    else delete st.info.cwd;
  }

  private resolve(st: ProcState, p: string, dirfd: number | undefined): string {
    if (p.startsWith('/')) return posix.normalize(p);
    const base = dirfd === undefined || dirfd === AT_FDCWD || dirfd === 0xffffff9c ? st.info.cwd : st.fds.get(dirfd)?.path;
    if (base === undefined) return p;
    return p === '' ? base : posix.join(base, p);
  }
}

function unknownFd(num: number): FdInfo {
  return { num, type: 'unknown', name: '' };
}

function basename15(exe: string): string {
  return posix.basename(exe).slice(0, 15);
}

function addrOf(addr: SockAddr): { ip: string; port: number; type: FdType } {
  if (addr.family === 'inet' || addr.family === 'inet6') return { ip: addr.address, port: addr.port, type: addr.family === 'inet' ? 'ipv4' : 'ipv6' };
  if (addr.family === 'unix') return { ip: addr.abstract ? `@${addr.path}` : addr.path, port: 0, type: 'unix' };
  return { ip: '', port: 0, type: addr.family === 'netlink' ? 'netlink' : 'socket' };
}

/** Whether a send's own address is where the data goes: a socket with no peer yet, or a datagram socket. */
function sendsToAddress(fd: FdInfo): boolean {
  return fd.role === undefined || (fd.l4proto !== undefined && fd.l4proto !== 'tcp');
}

/**
 * A sendmmsg that names addresses (on a socket with no peer, or any datagram socket: see
 * sendsToAddress), as one send per distinct destination: each view is the call with that
 * message's address (`addr`) and the socket as a sendto to it shows it, so that rules see every
 * destination of a batch (fd.sip, evt.arg.addr) as they see a sendto's. Any other event is its
 * own only view.
 */
export function messageViews(e: EnrichedEvent): EnrichedEvent[] {
  const ev = e.ev;
  if (ev.type !== 'syscall' || ev.name !== 'sendmmsg' || !ev.addrs || !e.fd || !sendsToAddress(e.fd)) return [e];
  const seen = new Set<string>();
  const views: EnrichedEvent[] = [];
  for (const a of ev.addrs) {
    if (!a) continue;
    const fd = withRemote(e.fd, a);
    if (seen.has(fd.name)) continue;
    seen.add(fd.name);
    views.push({ ...e, ev: { ...ev, addr: a }, fd });
  }
  return views.length ? views : [e];
}

function withRemote(fd: FdInfo, addr: SockAddr, role: 'client' | 'server' = 'client'): FdInfo {
  const { ip, port, type } = addrOf(addr);
  const out: FdInfo = { ...fd, role, rip: ip, rport: port };
  if (out.type === 'unknown' || out.type === 'socket') out.type = type;
  if (type === 'unix') out.path = ip;
  out.name = socketName(out);
  return out;
}

function withLocal(fd: FdInfo, addr: SockAddr): FdInfo {
  const { ip, port, type } = addrOf(addr);
  const out: FdInfo = { ...fd, role: 'server', lip: ip, lport: port };
  if (out.type === 'unknown' || out.type === 'socket') out.type = type;
  if (type === 'unix') out.path = ip;
  out.name = socketName(out);
  return out;
}

/** Falco's fd.name for sockets: "cip:cport->sip:sport"; for unix sockets the path. */
function socketName(fd: FdInfo): string {
  if (fd.type === 'unix') return fd.path ?? fd.rip ?? fd.lip ?? '';
  const fmt = (ip: string | undefined, port: number | undefined) =>
    `${fd.type === 'ipv6' && ip ? `[${ip}]` : (ip ?? '0.0.0.0')}:${port ?? 0}`;
  if (fd.rip !== undefined) {
    return fd.role === 'server' ? `${fmt(fd.rip, fd.rport)}->${fmt(fd.lip, fd.lport)}` : `${fmt(fd.lip, fd.lport)}->${fmt(fd.rip, fd.rport)}`;
  }
  return fd.lip !== undefined ? fmt(fd.lip, fd.lport) : '';
}
