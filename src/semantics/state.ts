// Semantic reconstruction: turns the raw event stream into events that know their process
// (exe, argv, ancestry, uid) and what their file descriptor refers to (path or socket), and which
// file a path names (fd.realname: through /proc's magic links and the symlinks, renames and hard
// links the sample made; see rules/README.md, "Names and the files they name").
// One pass, O(1) per event (a path's components, bounded, once links are in play); state is per
// process and shared by its threads.
import { posix } from 'node:path';
import type { SockAddr, SyscallEvent, TraceEvent } from '../capture/events.js';
import type { ContainerImage, EnrichedEvent, FdInfo, FdType, ProcessInfo } from './types.js';
import {
  AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AT_EMPTY_PATH, AT_FDCWD, O_CLOEXEC, O_CREAT, O_DIRECTORY,
  O_EXCL, O_TRUNC, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM,
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
  /** The working directory's own name (see FdInfo.real) when it is not info.cwd: a chdir through
   *  a symlink, /proc/self/cwd or /dev/fd/N. */
  cwdReal?: string | undefined;
  /** The working directory when it is longer than MAX_NAME (info.cwd is then unset): kept for '..'
   *  to climb back out of. */
  deepCwd?: DeepDir | undefined;
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
/** Calls that, given a NULL path, set the times of the file their dirfd names. */
const TIMES_ON_FD = new Set(['utimensat', 'utimensat_time64', 'futimesat']);
/** What copy provenance may hold, in characters of names (see SemanticState.copiedFrom). */
const COPIED_FROM_CHARS = 8 << 20;
/** What the symlinks and aliases made during the capture may hold, in characters of names. */
const LINK_CHARS = 8 << 20;
/** The kernel's limit of symlinks followed in one lookup (MAXSYMLINKS): past it, ELOOP. */
const MAX_FOLLOWS = 40;
/** Components one lookup may walk (symlink targets included) before the name is left unresolved. */
const MAX_STEPS = 4096;
/** The longest name (4 x PATH_MAX) made by joining a relative name to its directory: a sample can
 *  chdir deeper than any limit, and joining and normalizing megabytes on every call would make the
 *  analysis's work grow with the square of the depth. Past it a name stays as given (as relative to
 *  an unknown cwd), unless '..' climbs back under it. */
const MAX_NAME = 16384;
/** A directory longer than MAX_NAME, as its last component under its parent (a DeepDir, or a plain
 *  name of at most MAX_NAME): immutable, shared by forks, each chdir or '..' one step. */
interface DeepDir { up: DeepDir | string; name: string; length: number }
/** Directory renames re-key the links and aliases under the directory only while there are at most this many. */
const REKEY_MAX = 4096;
const O_NOFOLLOW = 0o400000;
const O_NOCTTY = 0o400;
/** ioctl requests that give or take a controlling terminal. */
const TIOCSCTTY = 0x540e;
const TIOCNOTTY = 0x5422;

/** A controlling-terminal number as /proc/PID/stat's tty_nr writes it. */
function ttyNr(major: number, minor: number): number {
  return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
}

/** The controlling-terminal number of the terminal device a path names (/dev/pts/N, /dev/ttyN, /dev/ttySN), else 0. */
export function ttyNumber(path: string | undefined): number {
  if (path === undefined || !path.startsWith('/dev/')) return 0;
  const pts = /^\/dev\/pts\/(\d{1,7})$/.exec(path);
  if (pts) return ttyNr(136 + (Math.floor(Number(pts[1]) / 256) % 8), Number(pts[1]) % 256);
  const vt = /^\/dev\/tty(\d{1,2})$/.exec(path);
  if (vt && Number(vt[1]) < 64) return ttyNr(4, Number(vt[1]));
  const serial = /^\/dev\/ttyS(\d{1,3})$/.exec(path);
  if (serial && Number(serial[1]) < 192) return ttyNr(4, 64 + Number(serial[1]));
  return 0;
}

/**
 * A terminal taken with ioctl TIOCSCTTY through a descriptor whose name the capture did not see (a
 * pseudo-terminal's other end from ioctl TIOCGPTPEER, as glibc's openpty gets it): a terminal it
 * is (the call succeeded), its number is unknown, so it reads as the first pseudo-terminal's.
 */
const UNNAMED_TTY = ttyNr(136, 0);
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_SYMLINK_FOLLOW = 0x400;
const RENAME_EXCHANGE = 2;
/** Calls that make, move or remove names (see SemanticState.links). */
const LINK_CALLS = new Set(['symlink', 'symlinkat', 'link', 'linkat', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'rmdir']);
/** Calls whose path names a symlink itself, not what it points to (the last component is not followed). */
const NOFOLLOW = new Set(['lstat', 'lchown', 'lgetxattr', 'lsetxattr', 'llistxattr', 'lremovexattr', 'readlink', 'readlinkat',
  'unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'symlink', 'symlinkat']);
/** Index of the flags argument of *at calls that take AT_SYMLINK_NOFOLLOW (and AT_EMPTY_PATH). */
const AT_FLAGS: Record<string, number> = { newfstatat: 3, statx: 2, fchownat: 4, utimensat: 3, fchmodat2: 3, faccessat2: 3, execveat: 4, linkat: 4 };
/** The symlinks a container runtime makes in /dev (runc's defaults). */
const DEV_LINKS: Record<string, string> = {
  '/dev/fd': '/proc/self/fd', '/dev/stdin': '/proc/self/fd/0', '/dev/stdout': '/proc/self/fd/1', '/dev/stderr': '/proc/self/fd/2',
};
const PROC_MAGIC = /^\/proc\/(\d+)(?:\/task\/\d+)?\/(?:(root|cwd)|fd\/(\d+))$/;

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
  /**
   * Symlinks made during the capture: where the link is (its directory resolved, see `physical`)
   * -> its target as written. Paths are resolved through them as the kernel would (`walk`).
   */
  private readonly symlinks = new Map<string, string>();
  /**
   * Renames and hard links made during the capture: the file's (or directory's) name now -> the
   * name it had before the first of them (the start of the chain). A name's own alias, or its
   * nearest directory's, gives the file's own name (fd.realname). Removing the name forgets it.
   */
  private readonly aliases = new Map<string, string>();
  /**
   * Names made during the capture (mkdir, an O_CREAT|O_EXCL open): moving or linking one makes no
   * alias, since it had no name before (mv's copy of a folder moved into place is that folder).
   */
  private readonly created = new Set<string>();
  /** Characters of the names symlinks, aliases and created hold: past LINK_CHARS new ones are not remembered. */
  private linkChars = 0;

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

  private enriched(ev: TraceEvent, st: ProcState, fd: FdInfo | undefined, path: string | undefined, path2: string | undefined, real?: string): EnrichedEvent {
    return { ev, proc: st.info, fd, user: this.userName(st.info.uid), path, path2, real };
  }

  private stateOf(pid: number, ts: number, comm: string | undefined, running?: { exe: string; argv: string[]; tty?: number }): ProcState {
    let st = this.procs.get(pid);
    if (!st) {
      const info = this.newProcess(pid, 0, undefined, ts);
      if (comm) info.name = comm;
      if (this.initialCwd?.startsWith('/')) info.cwd = this.initialCwd;
      st = { info, fds: new Map(), cloexec: new Set(), cwdReal: undefined };
      this.procs.set(pid, st);
    } else if (comm && st.info.exe === '' && st.info.name !== comm) {
      st.info.name = comm;
    }
    // found mid-life: the capture named the program the process was already running
    if (running && st.info.exe === '') {
      st.info.exe = running.exe;
      st.info.argv = running.argv;
      st.info.name ||= basename15(running.exe);
      // and its terminal, which no event of the capture will say (it was taken before)
      if (running.tty) st.info.tty = running.tty;
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
    this.procs.set(childPid, { info, fds: new Map(parent.fds), cloexec: new Set(parent.cloexec), cwdReal: parent.cwdReal, deepCwd: parent.deepCwd });
  }

  private syscall(ev: SyscallEvent, st: ProcState): EnrichedEvent {
    const name = ev.name;
    const a = ev.args;
    const ret = ev.ret;
    const ok = ret !== null && ret >= 0;
    const dirfds = DIRFD[name];
    let path: string | undefined;
    let path2: string | undefined;
    // the file path names, when that is not path (see FdInfo.real), and its physical name
    let real: string | undefined;
    let phys: string | undefined;
    const flagsIdx = AT_FLAGS[name] ?? -1;
    const atFlags = flagsIdx >= 0 ? (a[flagsIdx] ?? 0) : 0;
    if (ev.path !== undefined) {
      const dirfd = dirfds && dirfds[0] >= 0 ? a[dirfds[0]] : AT_FDCWD;
      if (name === 'symlink' || name === 'symlinkat') {
        path = ev.path; // the link's target, kept as written
      } else if (ev.path === '' && (atFlags & AT_EMPTY_PATH) !== 0 && dirfds && dirfds[0] >= 0) {
        const f = st.fds.get(a[dirfds[0]] ?? -1);
        path = f?.path;
        real = f?.real;
      } else {
        path = this.resolve(st, ev.path, dirfd);
        const follow = OPENERS.has(name) ? (openerFlags(name, a) & O_NOFOLLOW) === 0
          : !NOFOLLOW.has(name) && (atFlags & AT_SYMLINK_NOFOLLOW) === 0;
        phys = this.physical(st, ev.tid, ev.path, path, dirfd, follow);
        real = this.realName(phys, path);
      }
    }
    else if (TIMES_ON_FD.has(name) && a[1] === 0 && (a[0] ?? -1) >= 0) {
      // utimensat(fd, NULL, times) is futimens(fd) (touch does this): the file the descriptor names
      const f = st.fds.get(a[0] ?? -1);
      path = f?.path;
      real = f?.real;
    }
    if (ev.path2 !== undefined) path2 = this.resolve(st, ev.path2, dirfds && dirfds[1] >= 0 ? a[dirfds[1]] : AT_FDCWD);
    if (LINK_CALLS.has(name)) {
      const r = this.links(ev, st, path, path2, phys, ok, atFlags);
      if (r !== undefined) real = r;
    } else if (ok && path !== undefined && (name === 'mkdir' || name === 'mkdirat'
      || (OPENERS.has(name) && (openerFlags(name, a) & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)))) {
      this.made(phys ?? path);
    }

    let fd: FdInfo | undefined;
    if (OPENERS.has(name)) {
      const flags = openerFlags(name, a);
      const p = path ?? '';
      fd = { num: ret ?? -1, type: (flags & O_DIRECTORY) !== 0 ? 'directory' : 'file', name: p, path: p, real };
      if (ok) {
        st.fds.set(ret, fd);
        if (flags & O_CLOEXEC) st.cloexec.add(ret);
        else st.cloexec.delete(ret);
        // a session leader without a terminal that opens one (without O_NOCTTY) is given it
        if (st.info.tty === 0 && st.info.sid === st.info.pid && !(flags & O_NOCTTY)) st.info.tty = ttyNumber(fd.real ?? p);
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
      // a chdir past MAX_NAME: the whole name, kept for '..' to climb back out of
      const cwd = st.info.cwd ?? st.deepCwd;
      const to = name === 'chdir' && path !== undefined && !path.startsWith('/') && ev.path !== undefined && cwd !== undefined ? deepJoin(cwd, ev.path) : path;
      if (name === 'chdir' || name === 'fchdir') this.chdir(st, name === 'chdir' ? to : fd?.path, name === 'chdir' ? phys : fd?.real);
      else if (name === 'setsid') {
        // a new session has no controlling terminal until its leader takes one
        st.info.sid = ret;
        st.info.tty = 0;
      } else if (name === 'ioctl' && a[1] === TIOCSCTTY) st.info.tty = ttyNumber(fd?.real ?? fd?.path) || UNNAMED_TTY;
      else if (name === 'ioctl' && a[1] === TIOCNOTTY) st.info.tty = 0;
      else if ((name === 'setuid' || name === 'setresuid' || name === 'setreuid') && ret === 0) {
        const uid = name === 'setreuid' ? a[1] : a[0];
        if (uid !== undefined && uid >= 0 && uid < 0xffffffff) st.info.uid = uid;
      }
    }
    return this.enriched(ev, st, fd, path, path2, real);
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
  private chdir(st: ProcState, dir: string | DeepDir | undefined, real: string | undefined): void {
    st.deepCwd = undefined;
    if (dir !== undefined && typeof dir !== 'string') {
      delete st.info.cwd;
      st.cwdReal = undefined;
      st.deepCwd = dir;
    } else if (dir !== undefined && dir.startsWith('/')) {
      st.info.cwd = dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
      st.cwdReal = real;
    } else {
      delete st.info.cwd;
      st.cwdReal = undefined;
    }
  }

  /** A path as given made absolute against the cwd or the dirfd and normalized as Falco does
   *  (no '//', '.', '..' or trailing '/'), without looking at what it names. */
  private resolve(st: ProcState, p: string, dirfd: number | undefined): string {
    let out: string;
    if (p.startsWith('/')) out = posix.normalize(p);
    else {
      const base = dirfd === undefined || dirfd === AT_FDCWD || dirfd === 0xffffff9c ? st.info.cwd ?? st.deepCwd : st.fds.get(dirfd)?.path;
      if (base === undefined) return p;
      if (typeof base !== 'string' || (base.length + p.length > MAX_NAME && base.startsWith('/'))) {
        const to = deepJoin(base, p);
        return typeof to === 'string' ? to : p;
      }
      out = p === '' ? base : posix.join(base, p);
    }
    return out.length > 1 && out.endsWith('/') ? trimSlashes(out) : out;
  }

  // ---- what a name names: symlinks, /proc's magic links, renames and hard links ----

  /**
   * The physical name of the file `raw` (as the call gave it, relative to `dirfd`) leads to,
   * when that is not `name` (raw made absolute and normalized): what the kernel's lookup finds
   * through the symlinks made during the capture, /proc/PID/{root,cwd,fd/N}, /proc/self,
   * /proc/thread-self and /dev/fd, with '..' taken after following them. undefined when it is
   * `name`, or cannot be known (relative to an unknown directory, a loop, a lookup too long).
   * Without such links in play (the usual case) it costs a few comparisons and allocates nothing.
   */
  private physical(st: ProcState, tid: number, raw: string, name: string, dirfd: number | undefined, follow: boolean): string | undefined {
    if (!name.startsWith('/')) return undefined;
    let base: string | undefined;
    let plainBase = true;
    if (!raw.startsWith('/')) {
      if (dirfd === undefined || dirfd === AT_FDCWD || dirfd === 0xffffff9c) {
        base = st.cwdReal ?? st.info.cwd;
        plainBase = st.cwdReal === undefined;
      } else {
        const f = st.fds.get(dirfd);
        base = f?.real ?? f?.path;
        plainBase = f?.real === undefined;
      }
      if (base === undefined || !base.startsWith('/')) return undefined;
    }
    // no symlink of the sample's, no '..' to take after one, no magic link: the name is the file's
    if (plainBase && this.symlinks.size === 0 && !raw.includes('..') && !magicName(name)) return undefined;
    const p = this.walk(st, tid, base ?? '', raw, follow);
    return p === name ? undefined : p;
  }

  /** The file's own name (fd.realname) from its physical name, when that is not `name`. */
  private realName(phys: string | undefined, name: string | undefined): string | undefined {
    if (this.aliases.size === 0) return phys;
    const p = phys ?? name;
    if (p === undefined || !p.startsWith('/')) return undefined;
    const o = this.origin(p);
    return o === name ? undefined : o === p ? phys : o;
  }

  /** A path looked up component by component from `base` (absolute, or '' for '/'), as the kernel does. */
  private walk(st: ProcState, tid: number, base: string, raw: string, follow: boolean): string | undefined {
    const todo: string[] = [];
    pushComponents(todo, raw);
    // a trailing '/' (or '/.') makes the last component a directory: a symlink there is followed
    const trailing = raw.endsWith('/') || raw.endsWith('/.');
    let out = raw.startsWith('/') || base === '/' ? '' : trimSlashes(base);
    let follows = 0;
    let steps = 0;
    while (todo.length > 0) {
      if (++steps > MAX_STEPS) return undefined;
      const c = todo.pop()!;
      if (c === '.') continue;
      if (c === '..') {
        out = out.slice(0, Math.max(0, out.lastIndexOf('/')));
        continue;
      }
      const cand = `${out}/${c}`;
      if (todo.length > 0 || follow || trailing) {
        if (out === '/proc' || out.startsWith('/proc/')) {
          const m = this.procLink(st, tid, cand);
          // a magic link to what the state does not know (a pipe, an unknown process): unknown
          if (m === null) return undefined;
          if (m !== undefined) {
            if (++follows > MAX_FOLLOWS) return undefined;
            out = m === '/' ? '' : m;
            continue;
          }
        }
        const t = this.symlinks.get(cand) ?? (out === '/dev' ? DEV_LINKS[cand] : undefined);
        if (t !== undefined) {
          if (++follows > MAX_FOLLOWS) return undefined;
          if (t.startsWith('/')) out = '';
          pushComponents(todo, t);
          continue;
        }
      }
      out = cand;
    }
    return out === '' ? '/' : out;
  }

  /** Where a magic link of /proc leads (/proc/self, /proc/thread-self, /proc/PID/root, cwd and fd/N
   *  of a known process and descriptor), as a physical name; undefined when `p` is no magic link,
   *  null when it is one to what the state does not know. */
  private procLink(st: ProcState, tid: number, p: string): string | null | undefined {
    if (p === '/proc/self') return `/proc/${st.info.pid}`;
    if (p === '/proc/thread-self') return `/proc/${st.info.pid}/task/${tid}`;
    const m = PROC_MAGIC.exec(p);
    if (!m) return undefined;
    const other = this.procs.get(Number(m[1]));
    if (!other) return null;
    // every process of an analysis has the same root (chroot is refused)
    if (m[2] === 'root') return '/';
    if (m[2] === 'cwd') return other.cwdReal ?? other.info.cwd ?? null;
    const f = other.fds.get(Number(m[3]));
    if (!f || (f.type !== 'file' && f.type !== 'directory')) return null;
    const target = f.real ?? f.path;
    return target?.startsWith('/') ? target : null;
  }

  /** The name a file had before the capture's renames and hard links: its own alias, or its
   *  nearest directory's with the rest of the name (aliases are chain starts already, and a
   *  directory's rename re-keys the aliases below it, so one lookup is the answer). */
  private origin(p: string): string {
    for (let i = p.length; i > 0; i = p.lastIndexOf('/', i - 1)) {
      const o = this.aliases.get(i === p.length ? p : p.slice(0, i));
      if (o !== undefined) return i === p.length ? o : o + p.slice(i);
    }
    return p;
  }

  /**
   * What symlink, link, rename, unlink and rmdir do to the names the state knows; returns, for a
   * symlink, where its target leads from the link's directory (the event's fs.path.realname), and
   * for the others the file their first path names (undefined: the caller's own).
   */
  private links(ev: SyscallEvent, st: ProcState, path: string | undefined, path2: string | undefined, phys: string | undefined, ok: boolean,
    atFlags: number): string | undefined {
    const name = ev.name;
    const a = ev.args;
    const dirfds = DIRFD[name];
    const dirfd2 = dirfds && dirfds[1] >= 0 ? a[dirfds[1]] : AT_FDCWD;
    // the second path (link or new name), its last component not followed
    const to = ev.path2 !== undefined && path2 !== undefined ? (this.physical(st, ev.tid, ev.path2, path2, dirfd2, false) ?? path2) : undefined;
    if (name === 'symlink' || name === 'symlinkat') {
      if (path === undefined || to === undefined || !to.startsWith('/')) return undefined;
      const dir = to.slice(0, to.lastIndexOf('/'));
      const target = this.walk(st, ev.tid, dir, path, true);
      const real = target === undefined ? undefined : this.realName(target, path);
      if (ok) {
        this.forgetName(to);
        this.remember(this.symlinks, to, path);
      }
      return real;
    }
    if (!ok || ev.path === undefined || path === undefined || !path.startsWith('/')) return undefined;
    const dirfd = dirfds && dirfds[0] >= 0 ? a[dirfds[0]] : AT_FDCWD;
    const follow = name === 'linkat' && (atFlags & AT_SYMLINK_FOLLOW) !== 0;
    // the first path's physical name (the caller's own, looked up without following, unless AT_SYMLINK_FOLLOW)
    const from = (follow ? this.physical(st, ev.tid, ev.path, path, dirfd, true) : phys) ?? path;
    if (name === 'unlink' || name === 'unlinkat' || name === 'rmdir') {
      this.forgetName(from);
      return undefined;
    }
    if (to === undefined || !to.startsWith('/') || from === to) return undefined;
    const link = follow ? undefined : this.symlinks.get(from);
    const orig = this.origin(from);
    const fresh = this.created.has(from);
    if (name === 'link' || name === 'linkat') {
      this.forgetName(to);
      // a hard link to a symlink is another symlink with its target
      if (link !== undefined) this.remember(this.symlinks, to, link);
      else if (fresh) this.made(to);
      else this.remember(this.aliases, to, orig);
      return follow ? this.realName(from, path) : undefined;
    }
    // rename: the name moves, with what is below it; RENAME_EXCHANGE swaps the two
    const exchange = name === 'renameat2' && ((a[4] ?? 0) & RENAME_EXCHANGE) !== 0;
    const link2 = exchange ? this.symlinks.get(to) : undefined;
    const orig2 = exchange ? this.origin(to) : undefined;
    const fresh2 = exchange && this.created.has(to);
    this.forgetName(to);
    this.forgetName(from);
    if (this.symlinks.size + this.aliases.size + this.created.size <= REKEY_MAX) {
      this.rekey(this.symlinks, from, to, exchange);
      this.rekey(this.aliases, from, to, exchange);
      const fromDir = `${from}/`;
      const toDir = `${to}/`;
      const moved: [string, string][] = [];
      for (const k of this.created) {
        if (k.startsWith(fromDir)) moved.push([k, to + k.slice(from.length)]);
        else if (exchange && k.startsWith(toDir)) moved.push([k, from + k.slice(to.length)]);
      }
      for (const [k] of moved) this.forgetName(k);
      for (const [, k] of moved) this.made(k);
    }
    this.moved(to, link, fresh, orig);
    if (exchange) this.moved(from, link2, fresh2, orig2 ?? from);
    return undefined;
  }

  /** What a name moved to holds: the symlink, a name made during the capture, or a file with an earlier name. */
  private moved(to: string, link: string | undefined, fresh: boolean, orig: string): void {
    if (link !== undefined) this.remember(this.symlinks, to, link);
    else if (fresh) this.made(to);
    else if (orig !== to) this.remember(this.aliases, to, orig);
  }

  private made(p: string): void {
    if (!p.startsWith('/') || this.created.has(p) || this.linkChars + p.length > LINK_CHARS) return;
    this.created.add(p);
    this.linkChars += p.length;
  }

  /** Moves the entries below directory `from` to below `to` (both ways for an exchange). */
  private rekey(map: Map<string, string>, from: string, to: string, exchange: boolean): void {
    const moved: [string, string][] = [];
    const fromDir = `${from}/`;
    const toDir = `${to}/`;
    for (const [k, v] of map) {
      if (k.startsWith(fromDir)) moved.push([to + k.slice(from.length), v]);
      else if (exchange && k.startsWith(toDir)) moved.push([from + k.slice(to.length), v]);
      else continue;
      map.delete(k);
      this.linkChars -= k.length + v.length;
    }
    for (const [k, v] of moved) this.remember(map, k, v);
  }

  private remember(map: Map<string, string>, key: string, value: string): void {
    if (this.linkChars + key.length + value.length > LINK_CHARS) return;
    map.set(key, value);
    this.linkChars += key.length + value.length;
  }

  /** The name no longer is what it was (removed, or replaced). */
  private forgetName(p: string): void {
    const l = this.symlinks.get(p);
    if (l !== undefined) {
      this.symlinks.delete(p);
      this.linkChars -= p.length + l.length;
    }
    const o = this.aliases.get(p);
    if (o !== undefined) {
      this.aliases.delete(p);
      this.linkChars -= p.length + o.length;
    }
    if (this.created.delete(p)) this.linkChars -= p.length;
  }
}

/** Whether a normalized absolute name may go through a magic link of /proc or /dev (then it is
 *  looked up component by component): /proc/{self,thread-self,PID}/{root,cwd,fd,task}..., /dev/fd, /dev/std*. */
function magicName(n: string): boolean {
  if (n.startsWith('/dev/')) return n.startsWith('fd', 5) || n.startsWith('std', 5);
  if (!n.startsWith('/proc/')) return false;
  const i = n.indexOf('/', 6);
  if (i < 0) return n === '/proc/self' || n === '/proc/thread-self';
  return n.startsWith('root', i + 1) || n.startsWith('cwd', i + 1) || n.startsWith('fd', i + 1) || n.startsWith('task', i + 1);
}

/** Pushes the components of a path (empty ones left out) so that pop() gives them in order. */
function pushComponents(todo: string[], p: string): void {
  const parts = p.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const c = parts[i]!;
    if (c !== '') todo.push(c);
  }
}

/** Relative `rel` looked up from `base` (a normalized absolute name, or a DeepDir), component by
 *  component: the name when it is at most MAX_NAME long, else a DeepDir. Work proportional to rel. */
function deepJoin(base: string | DeepDir, rel: string): string | DeepDir {
  const r = trimSlashes(posix.normalize(rel === '' ? '.' : rel));
  let cur = base;
  for (const c of r === '.' ? [] : r.split('/')) {
    if (c === '..') cur = typeof cur !== 'string' ? cur.up : cur.slice(0, Math.max(0, cur.lastIndexOf('/'))) || '/';
    else if (typeof cur === 'string' && cur.length + 1 + c.length <= MAX_NAME) cur = cur === '/' ? `/${c}` : `${cur}/${c}`;
    else cur = { up: cur, name: c, length: cur.length + 1 + c.length };
  }
  return cur;
}

function trimSlashes(p: string): string {
  let end = p.length;
  while (end > 1 && p.charCodeAt(end - 1) === 47) end--;
  return p.slice(0, end);
}

function unknownFd(num: number): FdInfo {
  return { num, type: 'unknown', name: '' };
}

function basename15(exe: string): string {
  return posix.basename(exe).slice(0, 15);
}

/** The IPv4 address an IPv4-mapped IPv6 one (::ffff:a.b.c.d) stands for, else undefined. */
export function mappedIpv4(address: string): string | undefined {
  const m = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(address);
  return m?.[1];
}

function addrOf(addr: SockAddr): { ip: string; port: number; type: FdType } {
  if (addr.family === 'inet6') {
    // a dual-stack socket's IPv4 peer (Java's sockets, a server bound to ::): IPv4, as Falco shows it
    const v4 = mappedIpv4(addr.address);
    if (v4 !== undefined) return { ip: v4, port: addr.port, type: 'ipv4' };
  }
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
  else if (out.type === 'ipv6' && type === 'ipv4') asIpv4(out);
  if (type === 'unix') out.path = ip;
  out.name = socketName(out);
  return out;
}

function withLocal(fd: FdInfo, addr: SockAddr): FdInfo {
  const { ip, port, type } = addrOf(addr);
  const out: FdInfo = { ...fd, role: 'server', lip: ip, lport: port };
  if (out.type === 'unknown' || out.type === 'socket') out.type = type;
  else if (out.type === 'ipv6' && type === 'ipv4') asIpv4(out);
  if (type === 'unix') out.path = ip;
  out.name = socketName(out);
  return out;
}

/**
 * An IPv6 socket that carries IPv4 (its peer or its own address IPv4-mapped) becomes an IPv4 one,
 * as Falco makes it: its other address too, when it is mapped or unspecified (::, as a dual-stack
 * server binds).
 */
function asIpv4(fd: FdInfo): void {
  fd.type = 'ipv4';
  for (const k of ['lip', 'rip'] as const) {
    const a = fd[k];
    if (a === undefined) continue;
    if (a === '::') fd[k] = '0.0.0.0';
    else fd[k] = mappedIpv4(a) ?? a;
  }
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
