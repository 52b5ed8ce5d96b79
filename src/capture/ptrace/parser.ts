// Streaming parser for `strace -f -ttt -yy` output: turns each line (in any order strace
// interleaves them) into normalized TraceEvents. Lines it cannot read are counted, never dropped silently;
// arguments strace cut (`"..."...`, a last `...`) or could not read (a pointer printed as 0x...) are marked.
// A call a signal cut into (`= ? ERESTARTSYS` and kin, a code the program never sees) is held
// until its thread's next line shows what the program saw, settled by the rules of ../signals.ts
// with the dispositions the trace showed (see SigTable and Cut below): `interrupted`, ret -EINTR;
// `restarted`, ret null (the same call, or restart_syscall, is made again, after the handler's own
// calls when one ran); killed inside the call, ret null, unmarked. A call whose signal's
// disposition the trace never showed (set before the trace began) keeps the raw code, noted,
// unless an rt_sigreturn right after the signal tells; see Cut.
import { MMSG_ADDR_MAX, type Abi, type ArgName, type ExecEvent, type SockAddr, type SyscallEvent, type TraceEvent } from '../events.js';
import { errnoName, syscallName, syscallNumber } from '../../semantics/syscalls.js';
import { EINTR, SA_RESTART, isRestartCode, noHandler, onDelivery, settle, type Disposition, type Outcome } from '../signals.js';

export interface StraceParserOptions {
  /** Timestamp (seconds, as strace -ttt prints it) that maps to ts = 0; default: the first line's. */
  startTime?: number;
  /** Thread ids known before any fork line (the traced command or the attached tasks), host numbering. */
  knownTids?: Iterable<number>;
  /** Thread id -> thread-group id for the tasks in knownTids that are not group leaders. */
  knownTgids?: ReadonlyMap<number, number>;
  /**
   * Translate a host tid to the sample's pid namespace. Forked children are translated from
   * strace's `--pidns-translation` comments; this covers the tasks that existed at attach time.
   */
  nsPidOf?: (hostTid: number) => number | undefined;
  /** Host directory that is the tracee's root: stripped from fd annotations (which strace resolves from the host). */
  rootPrefix?: string;
  /** Drop every event until this host tid completes a successful execve (the runtime's own set-up is not the sample). */
  skipUntilExecOf?: number;
  /**
   * First bytes of an exec'd file (host tid of the exec'ing task, path as passed): lets a script's
   * exec report the interpreter's argv (`/bin/sh script args`), as the kernel builds it and as the
   * eBPF probe reads it from the new process. Without it, exec events carry execve's argv.
   */
  readHead?: (path: string, hostTid: number) => string | undefined;
  /** Task id for output without a pid column (strace without -f); default 1. */
  defaultTid?: number;
  /** Events held for one unannounced task before they are released anyway (with a note). */
  holdLimit?: number;
}

interface Pending { name: string; args: string; ts: number; line: number }

const RESTART_ERRNO: Record<string, number> = {
  ERESTARTSYS: 512, ERESTARTNOINTR: 513, ERESTARTNOHAND: 514, ENOIOCTLCMD: 515, ERESTART_RESTARTBLOCK: 516,
};
const ERRNO_BY_NAME = new Map<string, number>();
for (let i = 1; i < 600; i++) {
  const n = errnoName(i);
  if (n !== `E${i}` && !ERRNO_BY_NAME.has(n)) ERRNO_BY_NAME.set(n, i);
}
for (const [k, v] of Object.entries(RESTART_ERRNO)) ERRNO_BY_NAME.set(k, v);

const SIGNALS = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL',
  'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP',
  'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO',
  'SIGPWR', 'SIGSYS'];
function signalNumberOf(name: string): number {
  const i = SIGNALS.indexOf(name);
  if (i > 0) return i;
  if (/^\d+$/.test(name)) return Number(name);
  const rt = /^SIGRT(MIN|_)(\d*)$/.exec(name);
  if (rt) return 32 + Number(rt[2] || 0);
  return 0;
}

/** A disposition the trace showed; `once`: SA_RESETHAND (back to default once delivered). */
type Disp = Disposition & { once?: true };
type Shown = Disp | 'unknown';

/**
 * One process's signal dispositions as far as the trace showed them (rt_sigaction, sigaction and
 * signal calls that succeeded, queries included), held by every task that shares them in the
 * kernel (threads: CLONE_SIGHAND), copied at fork, reset at exec. A signal missing from `set` is
 * `rest`: 'plain' after an exec the trace saw (no handler survives an exec; default, or ignored if
 * it was ignored before, which the trace need not have shown), 'unknown' in a task the trace began
 * in mid-run (a handler too). `early`: the changes of a task whose fork strace has not reported
 * yet (-f may print a child's lines first), replayed on what it inherits once it has.
 */
interface SigTable { rest: 'plain' | 'unknown'; set: Map<number, Shown>; early?: (readonly [number, Shown] | 'exec')[] }

/** What an exec leaves (signal(7)): handlers back to default, ignored signals still ignored. */
function afterExec(t: SigTable): SigTable {
  const set = new Map<number, Shown>();
  for (const [sig, d] of t.set) {
    if (d === 'unknown') continue; // default or ignored now: 'plain'
    set.set(sig, d.kind === 'handler' ? { kind: 'default' } : d);
  }
  return { rest: 'plain', set };
}

const SA_RESETHAND = 0x80000000;
const SIGACTION_CALLS = new Set(['rt_sigaction', 'sigaction', 'signal']);

/** A handler as strace prints it (SIG_DFL, SIG_IGN, an address) with its sa_flags text. */
function dispOf(handler: string, flags: string): Shown {
  if (handler === 'SIG_DFL') return { kind: 'default' };
  if (handler === 'SIG_IGN') return { kind: 'ignore' };
  if (!/^0x[0-9a-f]+$/i.test(handler)) return 'unknown';
  let bits = 0;
  for (const f of flags.split('|')) {
    if (f === 'SA_RESTART') bits |= SA_RESTART;
    else if (f === 'SA_RESETHAND' || f === 'SA_ONESHOT') bits |= SA_RESETHAND;
    else if (/^0x[0-9a-f]+$/i.test(f)) bits |= parseInt(f, 16);
  }
  const d: Disp = { kind: 'handler', restart: (bits & SA_RESTART) !== 0 };
  if (bits & SA_RESETHAND) d.once = true;
  return d;
}

/** A printed struct sigaction: null for NULL, 'unknown' when strace could not read it (an address). */
function parseSigaction(text: string | undefined): Shown | null {
  const t = (text ?? '').trim();
  if (t === 'NULL' || t === '') return null;
  const h = /^\{sa_handler=([^,}]+)/.exec(t)?.[1];
  if (h === undefined) return 'unknown';
  return dispOf(h, /[{ ]sa_flags=([^,}]+)/.exec(t)?.[1] ?? '0');
}

/**
 * A call that exited with a restart code, held until its thread's next line shows what the program
 * saw. A signal delivered to the thread (`--- SIGX {...} ---`) settles it by the signal's
 * disposition (onDelivery); one ignored, stopping or continuing leaves it pending; the thread's
 * next call means no handler ran and the kernel made it again (noHandler); the thread's end
 * (`+++ killed by`, `+++ exited`: the process went while the call was pending) that it never
 * returned. A signal whose disposition the trace never showed (`unknown`) may have run a handler,
 * and a handler's own calls cannot be told from the call made again: only an rt_sigreturn as the
 * thread's next call settles it, by the value the handler's frame restores (-EINTR, or the call's
 * number when it is made again); after any other line, or a second signal that may run a handler,
 * the call keeps the raw code, counted in the notes. An rt_sigreturn right after a call no handler
 * was seen to cut short (a handler the trace missed) settles it the same way.
 */
interface Cut { ev: SyscallEvent; unknown: boolean }

// Symbolic constants strace prints for integer arguments (x86-64 values), so `args` stays numeric.
const CONSTANTS: Record<string, number> = {
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_NOCTTY: 0o400, O_TRUNC: 0o1000,
  O_APPEND: 0o2000, O_NONBLOCK: 0o4000, O_DSYNC: 0o10000, O_ASYNC: 0o20000, O_DIRECT: 0o40000,
  O_LARGEFILE: 0o100000, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_NOATIME: 0o1000000,
  O_CLOEXEC: 0o2000000, O_SYNC: 0o4010000, O_PATH: 0o10000000, O_TMPFILE: 0o20200000,
  AT_FDCWD: -100, AT_SYMLINK_NOFOLLOW: 0x100, AT_REMOVEDIR: 0x200, AT_SYMLINK_FOLLOW: 0x400,
  AT_EMPTY_PATH: 0x1000, AT_EACCESS: 0x200, AT_NO_AUTOMOUNT: 0x800,
  F_OK: 0, X_OK: 1, W_OK: 2, R_OK: 4,
  AF_UNSPEC: 0, AF_UNIX: 1, AF_LOCAL: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16, AF_PACKET: 17,
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_RAW: 3, SOCK_SEQPACKET: 5, SOCK_NONBLOCK: 0o4000, SOCK_CLOEXEC: 0o2000000,
  IPPROTO_IP: 0, IPPROTO_ICMP: 1, IPPROTO_TCP: 6, IPPROTO_UDP: 17, IPPROTO_IPV6: 41, IPPROTO_ICMPV6: 58,
  PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2, PROT_EXEC: 4,
  MAP_SHARED: 1, MAP_PRIVATE: 2, MAP_FIXED: 0x10, MAP_ANONYMOUS: 0x20, MAP_DENYWRITE: 0x800, MAP_STACK: 0x20000,
  CLONE_VM: 0x100, CLONE_FS: 0x200, CLONE_FILES: 0x400, CLONE_SIGHAND: 0x800, CLONE_PIDFD: 0x1000,
  CLONE_PTRACE: 0x2000, CLONE_VFORK: 0x4000, CLONE_PARENT: 0x8000, CLONE_THREAD: 0x10000, CLONE_NEWNS: 0x20000,
  CLONE_SYSVSEM: 0x40000, CLONE_SETTLS: 0x80000, CLONE_PARENT_SETTID: 0x100000, CLONE_CHILD_CLEARTID: 0x200000,
  CLONE_UNTRACED: 0x800000, CLONE_CHILD_SETTID: 0x1000000, CLONE_NEWCGROUP: 0x2000000, CLONE_NEWUTS: 0x4000000,
  CLONE_NEWIPC: 0x8000000, CLONE_NEWUSER: 0x10000000, CLONE_NEWPID: 0x20000000, CLONE_NEWNET: 0x40000000,
  NULL: 0, STDIN_FILENO: 0, STDOUT_FILENO: 1, STDERR_FILENO: 2,
  PTRACE_TRACEME: 0, PTRACE_PEEKTEXT: 1, PTRACE_PEEKDATA: 2, PTRACE_POKETEXT: 4, PTRACE_POKEDATA: 5,
  PTRACE_CONT: 7, PTRACE_KILL: 8, PTRACE_ATTACH: 16, PTRACE_DETACH: 17, PTRACE_SEIZE: 0x4206,
};
for (let i = 1; i < SIGNALS.length; i++) CONSTANTS[SIGNALS[i] as string] = i;

// Which arguments hold paths: [first, second] argument indexes (-1: none).
const PATH_ARGS: Record<string, readonly [number, number]> = {
  open: [0, -1], creat: [0, -1], stat: [0, -1], lstat: [0, -1], access: [0, -1], truncate: [0, -1],
  chdir: [0, -1], chroot: [0, -1], mkdir: [0, -1], rmdir: [0, -1], unlink: [0, -1], chmod: [0, -1],
  chown: [0, -1], lchown: [0, -1], readlink: [0, -1], execve: [0, -1], mknod: [0, -1], utime: [0, -1],
  utimes: [0, -1], statfs: [0, -1], swapon: [0, -1], swapoff: [0, -1], acct: [0, -1], uselib: [0, -1],
  umount2: [0, -1], memfd_create: [0, -1], setxattr: [0, -1], lsetxattr: [0, -1], getxattr: [0, -1],
  lgetxattr: [0, -1], listxattr: [0, -1], removexattr: [0, -1],
  rename: [0, 1], link: [0, 1], symlink: [0, 1], pivot_root: [0, 1], mount: [0, 1],
  openat: [1, -1], openat2: [1, -1], mkdirat: [1, -1], mknodat: [1, -1], fchownat: [1, -1],
  futimesat: [1, -1], newfstatat: [1, -1], fstatat64: [1, -1], unlinkat: [1, -1], readlinkat: [1, -1],
  fchmodat: [1, -1], faccessat: [1, -1], faccessat2: [1, -1], utimensat: [1, -1], execveat: [1, -1],
  statx: [1, -1], name_to_handle_at: [1, -1], inotify_add_watch: [1, -1], open_tree: [1, -1],
  renameat: [1, 3], renameat2: [1, 3], linkat: [1, 3], symlinkat: [0, 2],
};
/** The argument pointing to the times a utime-family call sets (NULL: now). */
const TIMES_ARG: Record<string, number> = { utimensat: 2, utimensat_time64: 2, futimesat: 2, utimes: 1, utime: 1 };
const ADDR_CALLS = new Set(['connect', 'bind', 'accept', 'accept4', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg']);
// Where the socket address and its length are: [addr index, len index, read at the call's return].
// The same calls the eBPF probe reads an address of, so both mark the same events.
const ADDR_ARGS: Record<string, readonly [number, number, boolean]> = {
  connect: [1, 2, false], bind: [1, 2, false], sendto: [4, 5, false],
  accept: [1, 2, true], accept4: [1, 2, true], recvfrom: [4, 5, true],
};
/** sizeof(struct sockaddr_storage): what strace (and the eBPF probe) reads of a longer address. */
const ADDR_MAX = 128;
/** A pointer strace printed as a number because it could not read what it points to (NULL prints as NULL). */
const BAD_PTR = /^0x[0-9a-f]+$/i;
const FORK_CALLS = new Set(['clone', 'clone3', 'fork', 'vfork']);

/** Index of the `"` closing a string literal opened at `open` (escaped quotes skipped); s.length when unterminated. */
function stringEnd(s: string, open: number): number {
  let j = open;
  for (;;) {
    j = s.indexOf('"', j + 1);
    if (j < 0) return s.length;
    let k = j - 1;
    while (s.charCodeAt(k) === 92) k--;
    if ((j - k) % 2 === 1) return j; // an even number of backslashes before it: not escaped
  }
}

/**
 * One pass over a call's argument text: the top-level arguments, and where the call's `)` is
 * (-1 when `stopAtParen` is false or it is missing). Strings are skipped with indexOf, since data
 * buffers make up most of strace's output. Brackets are matched by kind. Inside an fd annotation
 * only `<` and `>` count: a path's (`3</tmp/b(=>`) has `<`, `>` and quotes escaped but not `(`,
 * `[`, `{` or `=`; a socket's or another kernel name's (`5<UNIX-STREAM:[1->2,"/p"]>`, `4<TCP:[a->b]>`)
 * has `->` and quoted paths, neither of which closes it. Elsewhere `>` closes nothing
 * (`msg_namelen=128 => 16`, `[16 => 0]`).
 */
function scanArgs(s: string, stopAtParen: boolean): { args: string[]; close: number } {
  const args: string[] = [];
  const open: number[] = []; // the openers in force, innermost last
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 /* \ */) { i++; continue; }
    const top = open.length ? open[open.length - 1] : 0;
    if (top === PATH_NOTE || top === NAME_NOTE) {
      if (c === 60) open.push(noteKind(s, i));
      else if (c === 62 /* > */ && (top === PATH_NOTE || s.charCodeAt(i - 1) !== 45 /* - */)) open.pop();
      else if (c === 34 && top === NAME_NOTE) i = stringEnd(s, i);
      continue;
    }
    if (c === 34 /* " */) i = stringEnd(s, i);
    else if (c === 47 /* / */ && s.charCodeAt(i + 1) === 42 /* * */) {
      const end = s.indexOf('*/', i + 2);
      i = end < 0 ? s.length : end + 1;
    } else if (c === 40 || c === 91 || c === 123) open.push(c);
    else if (c === 60) open.push(noteKind(s, i));
    else if (c === 41 /* ) */) {
      if (open.length === 0 && stopAtParen) {
        const last = s.slice(start, i).trim();
        if (last !== '' || args.length > 0) args.push(last);
        return { args, close: i + 1 };
      }
      closeTo(open, 40);
    } else if (c === 93 /* ] */) closeTo(open, 91);
    else if (c === 125 /* } */) closeTo(open, 123);
    else if (c === 44 /* , */ && open.length === 0) {
      args.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = s.slice(start).trim();
  if (last !== '' || args.length > 0) args.push(last);
  return { args, close: -1 };
}

/** An fd annotation opened by the `<` at i: a path (`</...>`) or another name (socket, pipe, device). */
const PATH_NOTE = 1, NAME_NOTE = 2;
function noteKind(s: string, i: number): number {
  return s.charCodeAt(i + 1) === 47 /* / */ ? PATH_NOTE : NAME_NOTE;
}

/** Pops the openers down to and including the innermost `opener` (none when there is no such opener: a stray closer). */
function closeTo(open: number[], opener: number): void {
  const k = open.lastIndexOf(opener);
  if (k >= 0) open.length = k;
}

/** Split the text between a call's parentheses into top-level arguments. */
export function splitArgs(s: string): string[] {
  return scanArgs(s, false).args;
}

/** Decode a strace C string literal (with or without quotes): \n \t \" \\ octal \NNN and \xNN escapes, bytes as UTF-8. */
export function decodeCString(lit: string): string {
  let s = lit;
  if (s.startsWith('"')) {
    const end = s.lastIndexOf('"');
    s = s.slice(1, end > 0 ? end : undefined);
  }
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 92) {
      // Input is strace's bytes read as latin1 (one char per byte); wider chars come from UTF-8 text.
      if (c < 0x100) bytes.push(c);
      else for (const b of Buffer.from(s[i] as string, 'utf8')) bytes.push(b);
      continue;
    }
    const n = s[++i];
    switch (n) {
      case 'n': bytes.push(10); break;
      case 't': bytes.push(9); break;
      case 'r': bytes.push(13); break;
      case 'v': bytes.push(11); break;
      case 'f': bytes.push(12); break;
      case 'a': bytes.push(7); break;
      case 'b': bytes.push(8); break;
      case 'x': {
        const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 1, i + 3));
        if (m) { bytes.push(parseInt(m[0], 16)); i += m[0].length; } else bytes.push(120);
        break;
      }
      case undefined: bytes.push(92); break;
      default:
        if (n >= '0' && n <= '7') {
          const m = /^[0-7]{1,3}/.exec(s.slice(i, i + 3)) as RegExpExecArray;
          bytes.push(parseInt(m[0], 8) & 0xff);
          i += m[0].length - 1;
        } else bytes.push(n.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Strip an fd annotation: `3</etc/passwd>` -> ['3', '/etc/passwd']. */
function splitAnnotation(arg: string): [string, string | undefined] {
  const lt = arg.indexOf('<');
  if (lt <= 0 || !arg.endsWith('>')) return [arg, undefined];
  return [arg.slice(0, lt), arg.slice(lt + 1, -1)];
}

/** Numeric value of one printed argument; 0 for pointers, strings and structures. */
export function argValue(arg: string): number {
  const [head] = splitAnnotation(arg);
  const t = head.trim();
  if (t === '') return 0;
  const c = t.charCodeAt(0);
  if ((c >= 48 && c <= 57) || c === 45) {
    if (/^-?0x[0-9a-f]+$/i.test(t)) return t.startsWith('-') ? -parseInt(t.slice(3), 16) : parseInt(t.slice(2), 16);
    if (/^0[0-7]+$/.test(t)) return parseInt(t, 8);
    const n = Number(t);
    return Number.isFinite(n) ? n : 0;
  }
  if (c === 34 || c === 91 || c === 123) return 0;
  if (/^[A-Z_][A-Z0-9_|]*(\|0x[0-9a-f]+|\|0[0-7]*|\|\d+)*$/i.test(t)) {
    let v = 0;
    for (const part of t.split('|')) {
      const k = CONSTANTS[part];
      if (k !== undefined) v = part === 'AT_FDCWD' ? k : v | k;
      else if (/^0x[0-9a-f]+$/i.test(part)) v |= parseInt(part.slice(2), 16);
      else if (/^0[0-7]*$/.test(part)) v |= parseInt(part, 8);
      else if (/^\d+$/.test(part)) v |= Number(part);
    }
    return v;
  }
  return 0;
}

/** The first decoded sockaddr `{sa_family=...}` in an argument text. */
export function parseSockaddr(text: string): SockAddr | undefined {
  const i = text.indexOf('{sa_family=');
  if (i < 0) return undefined;
  const s = text.slice(i);
  const fam = /^\{sa_family=([A-Z0-9_]+)/.exec(s)?.[1] ?? '';
  if (fam === 'AF_INET') {
    const port = /sin_port=htons\((\d+)\)/.exec(s)?.[1];
    const addr = /sin_addr=inet_addr\("([^"]*)"\)/.exec(s)?.[1];
    return { family: 'inet', address: addr ?? '', port: Number(port ?? 0) };
  }
  if (fam === 'AF_INET6') {
    const port = /sin6_port=htons\((\d+)\)/.exec(s)?.[1];
    const addr = /inet_pton\(AF_INET6, "([^"]*)"/.exec(s)?.[1];
    return { family: 'inet6', address: addr ?? '', port: Number(port ?? 0) };
  }
  if (fam === 'AF_UNIX') {
    const m = /sun_path=(@?)("(?:[^"\\]|\\.)*")/.exec(s);
    if (!m) return { family: 'unix', path: '', abstract: false };
    return { family: 'unix', path: decodeCString(m[2] as string), abstract: m[1] === '@' };
  }
  if (fam === 'AF_NETLINK') return { family: 'netlink', raw: 16 };
  if (fam === 'AF_PACKET') return { family: 'packet', raw: 17 };
  const raw = /^\d+$/.test(fam) ? Number(fam) : argValue(fam);
  return { family: 'other', raw };
}

/** A `{...}` at the start of t, up to its closing brace (strings in it skipped); all of t when unclosed. */
function braced(t: string): string {
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === '"') i = stringEnd(t, i);
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return t.slice(0, i + 1);
  }
  return t;
}

/** A printed msghdr's msg_name (`NULL`, `0x...` or a decoded `{sa_family=...}`) and what follows it. */
function msgName(arg: string | undefined): { value: string; rest: string } | undefined {
  const m = (arg ?? '').trimStart();
  if (!m.startsWith('{msg_name=')) return undefined;
  const t = m.slice(10);
  const value = t.startsWith('{') ? braced(t) : t.slice(0, Math.max(0, t.indexOf(',')));
  return { value, rest: t.slice(value.length) };
}

/**
 * The decoded socket address a call's arguments hold: the address argument's, or msg_name's of
 * sendmsg/recvmsg. Never one found elsewhere: a data buffer printed before it (recvfrom's, a
 * message's iov) can read like one.
 */
function addrText(name: string, args: readonly string[]): string | undefined {
  const where = ADDR_ARGS[name];
  const t = name === 'sendmsg' || name === 'recvmsg' ? msgName(args[1])?.value : where ? args[where[0]]?.trimStart() : undefined;
  return t?.startsWith('{sa_family=') ? braced(t) : undefined;
}

/**
 * The addresses of a sendmmsg/recvmmsg's messages (SyscallEvent.addrs) from strace's printed
 * vector, `[{msg_hdr={msg_name=..., msg_namelen=...}, msg_len=N}, ...]`: sendmmsg's destinations
 * of the messages it handled (the first `ret`; the first alone when it failed or never returned;
 * settle() drops them when the kernel makes the call again), recvmmsg's senders of the `ret` messages received (`msg_namelen=ROOM =>
 * WRITTEN`, as recvmsg's). strace prints the vector at the return; each message's header is
 * parsed on its own, so a payload that reads like an address is never taken for one.
 */
function mmsgAddrs(received: boolean, vector: string | undefined, vlen: number, ret: number | null): { addrs: (SockAddr | null)[]; cut: boolean; bad: boolean } {
  const addrs: (SockAddr | null)[] = [];
  const handled = received ? (ret !== null && ret > 0 ? ret : 0) : ret !== null && ret >= 0 ? Math.min(ret, vlen) : Math.min(1, vlen);
  const want = Math.min(handled, MMSG_ADDR_MAX);
  let cut = handled > MMSG_ADDR_MAX;
  if (want === 0) return { addrs, cut: false, bad: false };
  const t = (vector ?? '').trim();
  if (!t.startsWith('[')) return { addrs, cut: false, bad: true }; // the vector itself unreadable (a pointer)
  const items = splitArgs(t.slice(1, t.endsWith(']') ? -1 : undefined));
  for (let i = 0; i < want; i++) {
    const item = items[i]?.trim() ?? '';
    // `...` past strace's -s elements, or an element it could not read: the list ends there
    if (!item.startsWith('{msg_hdr=')) return { addrs, cut: cut || item === '...', bad: item !== '...' };
    const mn = msgName(item.slice(9));
    if (!mn) return { addrs, cut, bad: true };
    const l = /^, msg_namelen=(\d+)(?: => (\d+))?/.exec(mn.rest);
    const room = Number(l?.[1] ?? 0);
    const len = received ? Number(l?.[2] ?? l?.[1] ?? 0) : room;
    if (mn.value === 'NULL' || len === 0) { addrs.push(null); continue; }
    // room for none (msg_namelen 0 at the call): the kernel copied none of the sender, as recvmsg's
    if (received && room === 0) { addrs.push(null); cut = true; continue; }
    if (!mn.value.startsWith('{sa_family=')) return { addrs, cut, bad: true }; // a pointer strace could not read
    const a = parseSockaddr(braced(mn.value));
    if (!a) return { addrs, cut, bad: true };
    addrs.push(a);
    if (len > ADDR_MAX || (received && len > room)) cut = true;
  }
  return { addrs, cut, bad: false };
}

/** `"abc"...`: a string strace cut at its limit (-s for data and argv elements, PATH_MAX for paths). */
function isCutString(arg: string): boolean {
  return arg.startsWith('"') && arg.endsWith('"...');
}

/**
 * A strace array of strings. Marks what strace left out: an element cut at -s (`"abc"...`), elements
 * past -s of them (a last `...`), an element it could not read (printed as its address, `0x1`: the
 * array stops there, as the eBPF probe's does), or the array itself unreadable from some element on
 * (a last `...` followed by a comment with the address strace could not read).
 */
function parseStringArray(text: string): { items: string[]; cut: boolean; bad: boolean } | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  const items: string[] = [];
  let cut = false;
  let bad = false;
  for (const part of splitArgs(t.slice(1, t.endsWith(']') ? -1 : undefined))) {
    if (part.startsWith('"')) {
      items.push(decodeCString(part));
      if (part.endsWith('"...')) cut = true;
    } else if (part === '...') cut = true;
    else if (part.startsWith('...') || BAD_PTR.test(part)) { bad = true; break; }
  }
  return { items, cut, bad };
}

/** Bytes the kernel wrote to an address length strace printed as `[16]` or `[16 => 0]`; undefined when unknown. */
function lengthOut(arg: string | undefined): number | undefined {
  const m = /^\[(?:\d+ => )?(\d+)\]$/.exec(arg?.trim() ?? '');
  return m ? Number(m[1]) : undefined;
}

interface Ret { ret: number | null; annotation?: string; nsPid?: number; hostPid?: number }

function parseReturn(rest: string): Ret | undefined {
  const m = /^\s*=\s*/.exec(rest);
  if (!m) return undefined;
  // The value, with an fd annotation that may hold spaces and nested <...> (`3</dev/null<char 1:3>>`).
  let end = m[0].length;
  let depth = 0;
  for (; end < rest.length; end++) {
    const c = rest[end];
    if (c === '\\') { end++; continue; }
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if (c === ' ' && depth <= 0) break;
  }
  const tok = rest.slice(m[0].length, end);
  const tail = rest.slice(end).trimStart();
  if (tok === '?') {
    const e = /^([A-Z_]+)\b/.exec(tail)?.[1];
    const n = e ? ERRNO_BY_NAME.get(e) : undefined;
    return { ret: n === undefined ? null : -n };
  }
  const [num, annotation] = splitAnnotation(tok);
  let ret: number;
  if (/^-?\d+$/.test(num)) ret = Number(num);
  else if (/^0x[0-9a-f]+$/i.test(num)) ret = parseInt(num.slice(2), 16);
  else return undefined;
  if (ret === -1) {
    const e = /^([A-Z_][A-Z0-9_]*)\b/.exec(tail)?.[1];
    const n = e ? ERRNO_BY_NAME.get(e) : undefined;
    if (n !== undefined) ret = -n;
  }
  const r: Ret = { ret };
  if (annotation !== undefined) r.annotation = annotation;
  const ns = /\/\* (\d+) in strace's PID NS \*\//.exec(tail);
  if (ns) { r.nsPid = ret; r.hostPid = Number(ns[1]); }
  return r;
}

/** The return value of a whole call line (`name(args) = ret`); undefined when it has none. */
function lineRet(body: string): number | null | undefined {
  const rest = body.slice(body.indexOf('(') + 1);
  const { close } = scanArgs(rest, true);
  return close < 0 ? undefined : parseReturn(rest.slice(close))?.ret;
}

/**
 * The argv the kernel gives a script (binfmt_script): `#!interp [one arg]` runs
 * `interp [arg] path argv[1..]`. `head` is the file's first bytes; not a script: argv unchanged.
 * Nested interpreters are not followed. Exported for other sources that see execve's argv only.
 */
export function scriptArgv(head: string, path: string, argv: readonly string[]): string[] {
  if (!head.startsWith('#!')) return [...argv];
  const nl = head.indexOf('\n');
  const line = (nl < 0 ? head : head.slice(0, nl)).slice(2).replace(/^[ \t]+/, '').replace(/[ \t\r]+$/, '');
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return [...argv];
  const out = [m[1] as string];
  if (m[2] !== undefined && m[2] !== '') out.push(m[2]);
  out.push(path, ...argv.slice(1));
  return out;
}

// `[pid N] ` or `N ` (-f), then `SECONDS.USEC ` (-ttt) or `HH:MM:SS[.USEC] ` (-t, -tt), then the call.
const LINE = /^(?:\[pid\s+(\d+)\]\s+)?(?:(\d+)\s+)?(?:(\d+\.\d+|\d\d:\d\d:\d\d(?:\.\d+)?)\s+)?(.*)$/;

/** A printed timestamp as [whole seconds, nanoseconds], exact (a double of ns since 1970 is not). */
function timeOf(t: string): [number, number] {
  const dot = t.indexOf('.');
  const whole = dot < 0 ? t : t.slice(0, dot);
  const frac = dot < 0 ? 0 : Number(t.slice(dot + 1).padEnd(9, '0').slice(0, 9));
  if (!whole.includes(':')) return [Number(whole), frac];
  const [h, m, sec] = whole.split(':');
  return [Number(h) * 3600 + Number(m) * 60 + Number(sec), frac];
}

export class StraceParser {
  parseErrors = 0;
  /** Up to 20 unparsable lines, with their line numbers, for the capture notes. */
  readonly errorSamples: string[] = [];
  readonly notes: string[] = [];
  /** Counters of non-call lines, for notes and tests. */
  readonly counts = { lines: 0, signals: 0, attached: 0, detached: 0, unfinished: 0, resumedOrphans: 0, held: 0 };
  /**
   * Lines that parse but do not fit the lines before them (a `<... resumed>` without its start, an
   * `<unfinished ...>` the task never resumes): their calls are kept as far as the log tells them,
   * and they are counted here, the first 20 with their line numbers, as parse errors are.
   */
  outOfOrder = 0;
  readonly outOfOrderSamples: { line: number; message: string }[] = [];

  private seq = 0;
  private buf = '';
  private lineNo = 0;
  private t0: [number, number] | undefined;
  private lastTs = 0;
  private readonly pending = new Map<number, Pending>();
  /** host tid -> host tgid */
  private readonly tgid = new Map<number, number>();
  /** host tid -> tid in the sample's namespace */
  private readonly ns = new Map<number, number>();
  private readonly comm = new Map<number, string>();
  private readonly abi = new Map<number, Abi>();
  /** Tasks seen before their fork was reported: their events wait for it. */
  private readonly held = new Map<number, TraceEvent[]>();
  private readonly announced = new Set<number>();
  private skipping: number | undefined;
  /** Tasks of the runtime seen while skipping, other than the one that execs the sample: never reported. */
  private readonly preExec = new Set<number>();
  /** host tid -> its process's signal dispositions */
  private readonly sig = new Map<number, SigTable>();
  /** host tid -> its call a signal cut into, not settled yet */
  private readonly cuts = new Map<number, Cut>();
  /** Calls released with the raw restart code: disposition unknown, or the trace ended first. */
  private readonly rawCuts = { unknown: 0, ended: 0 };
  private readonly opts: StraceParserOptions;

  constructor(opts: StraceParserOptions = {}) {
    this.opts = opts;
    if (opts.startTime !== undefined) this.t0 = [Math.floor(opts.startTime), Math.round((opts.startTime % 1) * 1e9)];
    for (const t of opts.knownTids ?? []) {
      this.announced.add(t);
      this.tgid.set(t, opts.knownTgids?.get(t) ?? t);
    }
    this.skipping = opts.skipUntilExecOf;
  }

  /** Feed a chunk of strace output (bytes decoded as latin1, one char per byte); returns the events completed by it. */
  push(chunk: string): TraceEvent[] {
    const out: TraceEvent[] = [];
    this.buf += chunk;
    let nl: number;
    let start = 0;
    while ((nl = this.buf.indexOf('\n', start)) >= 0) {
      this.line(this.buf.slice(start, nl), out);
      start = nl + 1;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** End of input: finish a partial last line, report calls that never returned (ret null) and release held events. */
  end(): TraceEvent[] {
    const out: TraceEvent[] = [];
    if (this.buf.trim() !== '') this.line(this.buf, out);
    this.buf = '';
    for (const [tid, c] of this.cuts) { this.rawCuts.ended++; this.emitFor(tid, c.ev, out); }
    this.cuts.clear();
    if (this.rawCuts.ended > 0) this.notes.push(`${this.rawCuts.ended} call(s) a signal cut into keep the kernel's restart code (ERESTARTSYS and kin): the trace ended before their thread went on`);
    if (this.rawCuts.unknown > 0) this.notes.push(`${this.rawCuts.unknown} call(s) a signal cut into keep the kernel's restart code (ERESTARTSYS and kin): what the program saw could not be told (a signal whose disposition the trace never showed may have run a handler)`);
    for (const [tid, p] of this.pending) {
      this.complete(tid, p.name, p.args, null, p.ts, out);
    }
    if (this.pending.size > 0) this.notes.push(`${this.pending.size} call(s) never returned before the trace ended (reported with ret null)`);
    this.pending.clear();
    for (const [tid, evs] of this.held) {
      this.notes.push(`task ${tid}: its fork was never reported; ${evs.length} event(s) released without a parent`);
      this.announced.add(tid);
      for (const e of evs) this.emit(e, out);
    }
    this.held.clear();
    if (this.parseErrors > 0) {
      this.notes.push(`${this.parseErrors} strace line(s) could not be parsed; first: ${this.errorSamples.slice(0, 3).join(' | ')}`);
    }
    if (this.outOfOrder > 0) {
      this.notes.push(`${this.outOfOrder} strace line(s) out of order, their calls kept as far as the log tells them; first: ${this.outOfOrderSamples.slice(0, 3).map((s) => `line ${s.line}: ${s.message}`).join(' | ')}`);
    }
    return out;
  }

  private error(line: string): void {
    this.parseErrors++;
    if (this.errorSamples.length < 20) this.errorSamples.push(`line ${this.lineNo}: ${line.slice(0, 200)}`);
  }

  private outOfOrderLine(line: number, message: string): void {
    this.outOfOrder++;
    if (this.outOfOrderSamples.length < 20) this.outOfOrderSamples.push({ line, message });
  }

  /**
   * The task makes another call while `p` is still unfinished: strace never resumed it (a line is
   * missing, or the log was put together out of order). It is a call that never returned, as one
   * the task's end cuts short: delivered now, with ret null, before the call that follows it.
   */
  private supersede(tid: number, p: Pending, next: string, out: TraceEvent[]): void {
    this.pending.delete(tid);
    this.complete(tid, p.name, p.args, null, p.ts, out);
    this.outOfOrderLine(p.line, `${p.name}(... <unfinished ...> is never resumed: task ${tid} goes on with ${next} (line ${this.lineNo}); kept as a call that never returned (ret null)`);
  }

  private line(raw: string, out: TraceEvent[]): void {
    this.lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    this.counts.lines++;
    if (line.startsWith('strace: ')) { this.message(line); return; }
    const m = LINE.exec(line) as RegExpExecArray;
    const tidText = m[1] ?? m[2];
    const body = m[4] as string;
    if (body.startsWith('[ Process PID=')) {
      const pm = /^\[ Process PID=(\d+) runs in (32|64) bit mode\. \]/.exec(body);
      if (pm) { this.abi.set(Number(pm[1]), pm[2] === '32' ? 'i386' : 'x86_64'); return; }
      const x32 = /^\[ Process PID=(\d+) runs in x32 mode\. \]/.exec(body);
      if (x32) { this.notes.push(`task ${x32[1]} ran in x32 mode (numbered as x86_64)`); return; }
    }
    // Without -f there is a single task and no pid column.
    const tid = tidText === undefined ? (this.opts.defaultTid ?? 1) : Number(tidText);
    const ts = m[3] !== undefined ? timeOf(m[3]) : undefined;
    const tsNs = this.tsOf(ts);
    this.ensureTask(tid);

    if (body.startsWith('+++ ')) { this.exitLine(tid, body, tsNs, out); return; }
    if (body.startsWith('--- ')) { this.counts.signals++; this.signalLine(tid, body, out); return; }
    if (this.cuts.has(tid)) this.nextCall(tid, body, out);
    if (body.startsWith('<... ')) {
      // `???` is strace's name for a call it could not identify (e.g. caught mid-exec).
      const rm = /^<\.\.\. ([A-Za-z0-9_]+|\?\?\?) resumed>(.*)$/.exec(body);
      if (!rm) { this.error(line); return; }
      const name = rm[1] as string;
      const p = this.pending.get(tid);
      let args = rm[2] as string;
      let callTs = tsNs;
      if (p && p.name === name) { args = p.args + args; callTs = p.ts; this.pending.delete(tid); }
      else {
        // Resumed without its start (a line missing, or the log out of order): the call is kept with
        // what the line tells of it, its name, return value and the arguments after the cut
        this.counts.resumedOrphans++;
        if (p) this.supersede(tid, p, `<... ${name} resumed>`, out);
        this.outOfOrderLine(this.lineNo, `<... ${name} resumed> without its start (no ${name}(... <unfinished ...> of task ${tid} before it); kept, its arguments before the cut unknown`);
      }
      this.finish(tid, name, args, callTs, line, out);
      return;
    }
    const cm = /^([A-Za-z_][A-Za-z0-9_]*|\?\?\?)\((.*)$/.exec(body);
    if (!cm) { this.error(line); return; }
    const name = cm[1] as string;
    const rest = cm[2] as string;
    const p = this.pending.get(tid);
    if (p) this.supersede(tid, p, `${name}(`, out);
    if (rest.endsWith(' <unfinished ...>') || rest.endsWith('<unfinished ...>')) {
      this.counts.unfinished++;
      this.pending.set(tid, { name, args: rest.replace(/ ?<unfinished \.\.\.>$/, ''), ts: tsNs, line: this.lineNo });
      return;
    }
    this.finish(tid, name, rest, tsNs, line, out);
  }

  /** A message strace printed on its own stderr (attach/detach, errors): counted or kept as a note. */
  message(line: string): void {
    const a = /^strace: Process (\d+) (attached|detached)/.exec(line);
    if (a) {
      if (a[2] === 'attached') this.counts.attached++;
      else this.counts.detached++;
      return;
    }
    if (this.notes.length < 50) this.notes.push(line.slice(0, 300));
  }

  private tsOf(ts: [number, number] | undefined): number {
    if (ts === undefined) return this.lastTs;
    if (this.t0 === undefined) this.t0 = ts;
    const v = Math.max(0, (ts[0] - this.t0[0]) * 1e9 + (ts[1] - this.t0[1]));
    this.lastTs = v;
    return v;
  }

  private ensureTask(tid: number): void {
    if (this.announced.has(tid) || this.held.has(tid)) return;
    if (this.announced.size === 0 && this.opts.knownTids === undefined) {
      // The first task of a traced command is the root of the tree.
      this.announced.add(tid);
      if (!this.tgid.has(tid)) this.tgid.set(tid, tid);
      return;
    }
    this.held.set(tid, []);
  }

  /** `rest` is everything after `name(`: the arguments, `)`, ` = ret` and any comment. */
  private finish(tid: number, name: string, rest: string, ts: number, line: string, out: TraceEvent[]): void {
    const { args, close } = scanArgs(rest, true);
    if (close < 0) { this.error(line); return; }
    const r = parseReturn(rest.slice(close));
    if (!r) { this.error(line); return; }
    this.complete(tid, name, rest.slice(0, close - 1), r, ts, out, args);
  }

  private complete(tid: number, rawName: string, argsText: string, r: Ret | null, ts: number, out: TraceEvent[], scanned?: string[]): void {
    const abi = this.abi.get(tid) ?? 'x86_64';
    let name = rawName;
    let nr: number;
    const unk = /^syscall_(0x[0-9a-f]+|\d+)$/i.exec(rawName);
    if (unk) {
      nr = Number(unk[1]);
      name = syscallName(nr, abi);
    } else if (rawName === '???') {
      nr = -1;
      name = 'syscall_unknown';
    } else nr = syscallNumber(name, abi);
    const args = scanned ?? splitArgs(argsText);
    const ret = r ? r.ret : null;
    const hostTgid = this.tgid.get(tid) ?? tid;
    const ev: SyscallEvent = {
      type: 'syscall', seq: 0, ts, pid: hostTgid, tid, abi, nr, name,
      args: args.slice(0, 6).map(argValue), ret,
    };
    // A times argument strace decoded (`[{tv_sec=...}, ...]`) was a pointer that was not NULL: what
    // tells "set these times" from "now" (the probe has the pointer itself). 1 stands for it.
    const ti = TIMES_ARG[name];
    if (ti !== undefined && /^[[{]/.test(args[ti] ?? '')) ev.args[ti] = 1;
    // What strace cut or could not read is marked, as the eBPF probe marks it: never a silent prefix.
    const cut: ArgName[] = [];
    const bad: ArgName[] = [];
    const pa = PATH_ARGS[name];
    if (pa) {
      const p1 = args[pa[0]];
      if (p1 !== undefined && p1.startsWith('"')) {
        ev.path = decodeCString(p1);
        if (isCutString(p1)) cut.push('path');
      } else if (p1 !== undefined && BAD_PTR.test(p1)) bad.push('path');
      const p2 = pa[1] >= 0 ? args[pa[1]] : undefined;
      if (p2 !== undefined && p2.startsWith('"')) {
        ev.path2 = decodeCString(p2);
        if (isCutString(p2)) cut.push('path2');
      } else if (p2 !== undefined && BAD_PTR.test(p2)) bad.push('path2');
    }
    if (ADDR_CALLS.has(name)) {
      const t = addrText(name, args);
      const a = t === undefined ? undefined : parseSockaddr(t);
      if (a) ev.addr = a;
      this.addrMarks(name, args, ret, cut, bad);
    } else if (name === 'sendmmsg' || name === 'recvmmsg' || name === 'recvmmsg_time64') {
      const m = mmsgAddrs(name !== 'sendmmsg', args[1], argValue(args[2] ?? '0'), ret);
      if (m.addrs.length) ev.addrs = m.addrs;
      if (m.cut) cut.push('addr');
      if (m.bad) bad.push('addr');
    }
    let exec: { exe: string; argv: string[] } | undefined;
    let execMarks: Pick<ExecEvent, 'truncated' | 'unreadable'> = {};
    if (name === 'execve' || name === 'execveat') {
      const argvText = args[name === 'execve' ? 1 : 2] ?? '';
      const argv = parseStringArray(argvText);
      if (argv) {
        ev.argv = argv.items;
        if (argv.cut) cut.push('argv');
        if (argv.bad) bad.push('argv');
      } else if (BAD_PTR.test(argvText.trim())) bad.push('argv');
      if (ret === 0) {
        let exe = ev.path ?? '';
        if (name === 'execveat' && exe === '') exe = this.stripRoot(splitAnnotation(args[0] ?? '')[1] ?? '');
        exec = { exe, argv: this.interpreterArgv(exe, argv?.items ?? [], tid) };
        // The exec event's exe is the call's path, its argv the call's (after any interpreter).
        const asExec = (l: ArgName[]): ArgName[] => l.map((n) => (n === 'path' ? 'exe' : n)).filter((n) => n === 'exe' || n === 'argv');
        const t = asExec(cut), u = asExec(bad);
        execMarks = { ...(t.length ? { truncated: t } : {}), ...(u.length ? { unreadable: u } : {}) };
      }
    }
    if (cut.length) ev.truncated = cut;
    if (bad.length) ev.unreadable = bad;
    if (SIGACTION_CALLS.has(name) && ret !== null && ret >= 0) this.sigaction(tid, name, args);
    // A fork: the child's namespace pid is the return value; with --pidns-translation the host pid is in a comment.
    let fork: { childHost: number; thread: boolean } | undefined;
    if (FORK_CALLS.has(name) && ret !== null && ret > 0) {
      const childHost = r?.hostPid ?? ret;
      if (r?.hostPid !== undefined) this.ns.set(childHost, ret);
      const thread = name === 'clone' || name === 'clone3' ? /\bCLONE_THREAD\b/.test(argsText) : false;
      fork = { childHost, thread };
      this.tgid.set(childHost, thread ? hostTgid : childHost);
      this.sigFork(tid, childHost, /\bCLONE_SIGHAND\b/.test(argsText) ? 'share' : /\bCLONE_CLEAR_SIGHAND\b/.test(argsText) ? 'clear' : 'copy');
      const c = this.comm.get(hostTgid);
      // The child may already have exec'd (its lines came first): keep the name it has.
      if (c !== undefined && !this.comm.has(childHost)) this.comm.set(childHost, c);
    }

    if (exec) {
      // A non-leader thread that execs takes over the group leader's id.
      if (tid !== hostTgid) { this.tgid.set(tid, hostTgid); }
      this.sigExec(tid, hostTgid);
      if (this.skipping !== undefined && (tid === this.skipping || hostTgid === this.skipping)) {
        this.skipping = undefined;
        this.preExec.delete(tid);
        this.preExec.delete(hostTgid);
      }
      const base = exec.exe.slice(exec.exe.lastIndexOf('/') + 1);
      this.comm.set(hostTgid, base.slice(0, 15));
      ev.tid = hostTgid;
      this.emitFor(tid, { type: 'exec', seq: 0, ts, pid: hostTgid, tid: hostTgid, exe: exec.exe, argv: exec.argv, ...execMarks }, out);
    }
    if (this.skipping !== undefined) {
      // Set-up of the runtime before the sample starts: not the sample's behaviour.
      this.preExec.add(tid);
      if (fork) { this.announced.add(fork.childHost); this.release(fork.childHost, out, true); this.preExec.add(fork.childHost); }
      return;
    }
    if (this.preExec.has(tid)) return;
    if (fork) {
      this.emitFor(tid, { type: 'fork', seq: 0, ts, pid: hostTgid, tid, childPid: fork.thread ? hostTgid : fork.childHost, childTid: fork.childHost, thread: fork.thread }, out);
    }
    if (isRestartCode(ev.ret)) this.holdCut(tid, ev, out);
    else this.emitFor(tid, ev, out);
    if (fork) { this.announced.add(fork.childHost); this.release(fork.childHost, out, false); }
  }

  /** A task's dispositions: its own when its fork is not known yet, its process's otherwise. */
  private sigTable(tid: number): SigTable {
    let t = this.sig.get(tid);
    if (t) return t;
    const g = this.tgid.get(tid);
    if (this.held.has(tid)) t = { rest: 'unknown', set: new Map(), early: [] };
    else if (g !== undefined && g !== tid) t = this.sigTable(g);
    else t = { rest: 'unknown', set: new Map() };
    this.sig.set(tid, t);
    return t;
  }

  private setDisposition(tid: number, sig: number, d: Shown): void {
    const t = this.sigTable(tid);
    t.set.set(sig, d);
    t.early?.push([sig, d]);
  }

  /** A successful rt_sigaction, sigaction (i386) or signal (i386) call: the signal's new disposition, or, for a query, its current one. */
  private sigaction(tid: number, name: string, args: string[]): void {
    const sig = signalNumberOf((args[0] ?? '').trim());
    if (sig <= 0) return;
    if (name === 'signal') {
      // sys_signal: SA_ONESHOT | SA_NOMASK, so a handler runs once and without SA_RESTART
      const d = dispOf((args[1] ?? '').trim(), 'SA_RESETHAND');
      this.setDisposition(tid, sig, d);
      return;
    }
    const act = parseSigaction(args[1]);
    if (act !== null) { this.setDisposition(tid, sig, act); return; }
    const old = parseSigaction(args[2]);
    if (old !== null && old !== 'unknown') this.setDisposition(tid, sig, old);
  }

  private sigExec(tid: number, hostTgid: number): void {
    const t = this.sigTable(tid);
    const n = afterExec(t);
    if (t.early) n.early = [...t.early, 'exec'];
    this.sig.set(tid, n);
    this.sig.set(hostTgid, n);
  }

  /** A new task's dispositions: its parent's (CLONE_SIGHAND), a copy, or a copy without handlers (CLONE_CLEAR_SIGHAND); then its own changes made before its fork was reported. */
  private sigFork(parent: number, child: number, how: 'share' | 'copy' | 'clear'): void {
    const p = this.sigTable(parent);
    let t: SigTable = how === 'share' ? p : how === 'clear' ? afterExec(p) : { rest: p.rest, set: new Map(p.set) };
    for (const op of this.sig.get(child)?.early ?? []) {
      if (op === 'exec') t = afterExec(t);
      else t.set.set(op[0], op[1]);
    }
    this.sig.set(child, t);
  }

  private holdCut(tid: number, ev: SyscallEvent, out: TraceEvent[]): void {
    const prev = this.cuts.get(tid);
    if (prev) this.releaseCut(tid, undefined, out);
    this.cuts.set(tid, { ev, unknown: false });
  }

  /** Release a held call, settled by `outcome` or (undefined) with its raw restart code. */
  private releaseCut(tid: number, outcome: Outcome | undefined, out: TraceEvent[]): void {
    const c = this.cuts.get(tid);
    if (!c) return;
    this.cuts.delete(tid);
    if (outcome) settle(c.ev, outcome);
    else this.rawCuts.unknown++;
    this.emitFor(tid, c.ev, out);
  }

  /** `--- SIGX {...} ---`: a signal delivered to the thread (`--- stopped by SIGX ---` is a stop, no delivery). */
  private signalLine(tid: number, body: string, out: TraceEvent[]): void {
    const m = /^--- (SIG[A-Z0-9_]+|\d+) [{(]/.exec(body);
    if (!m) return;
    const sig = signalNumberOf(m[1] as string);
    const t = this.sigTable(tid);
    const d = sig > 0 ? t.set.get(sig) ?? (t.rest === 'plain' ? 'plain' : 'unknown') : 'unknown';
    const c = this.cuts.get(tid);
    if (c) {
      if (d === 'unknown') {
        // a second signal that may have run a handler: which frame an rt_sigreturn restores is unknown
        if (c.unknown) this.releaseCut(tid, undefined, out);
        else c.unknown = true;
      } else {
        // 'plain' (default or ignored, no handler): left pending; a default kill shows as the thread's `+++ killed by`
        const o = onDelivery(c.ev.ret as number, sig, d === 'plain' ? { kind: 'ignore' } : d);
        if (o === 'killed' || (o && !c.unknown)) this.releaseCut(tid, o, out);
        else if (o) this.releaseCut(tid, undefined, out); // a handler after one that may have run first
      }
    }
    if (typeof d === 'object' && d.kind === 'handler' && d.once) this.setDisposition(tid, sig, { kind: 'default' });
  }

  /** The thread's next call line while a call of it is held: no handler ran, unless it is an rt_sigreturn. */
  private nextCall(tid: number, body: string, out: TraceEvent[]): void {
    if (!/^(<\.\.\. )?([A-Za-z_][A-Za-z0-9_]*|\?\?\?)[ (]/.test(body)) return;
    const c = this.cuts.get(tid) as Cut;
    if (/^(rt_)?sigreturn\(/.test(body)) {
      // what the handler's frame restores: -EINTR, or the number of the call made again
      const r = lineRet(body);
      const again = r !== null && r !== undefined && (r === c.ev.nr || r === syscallNumber('restart_syscall', c.ev.abi));
      this.releaseCut(tid, r === -EINTR ? 'interrupted' : again ? 'restarted' : undefined, out);
      return;
    }
    this.releaseCut(tid, c.unknown ? undefined : noHandler(), out);
  }

  /**
   * Marks on a socket address: unreadable when strace printed its pointer (connect/bind/sendto and
   * sendmsg's header at the call; accept and recvfrom only when the kernel wrote an address, since
   * strace prints the pointer of a failed call too), cut when its length exceeds sockaddr_storage.
   */
  private addrMarks(name: string, args: string[], ret: number | null, cut: ArgName[], bad: ArgName[]): void {
    if (name === 'sendmsg') {
      const m = args[1]?.trim() ?? '';
      if (BAD_PTR.test(m) || /[{ ]msg_name=0x[0-9a-f]+,/i.test(m)) bad.push('addr');
      else if (Number(/[{ ]msg_namelen=(\d+)/.exec(m)?.[1] ?? 0) > ADDR_MAX && !/msg_name=NULL/.test(m)) cut.push('addr');
      return;
    }
    if (name === 'recvmsg') {
      // `msg_namelen=ROOM => WRITTEN`: the kernel wrote the sender's full size back and copied at
      // most ROOM bytes of it (msg_name printed as a pointer when that was none)
      const mn = msgName(args[1]);
      if (ret === null || ret < 0) return;
      // a msghdr strace could not read after a call that succeeded: whether a sender was written is unknown (as in the probe)
      if (BAD_PTR.test(args[1]?.trim() ?? '')) { bad.push('addr'); return; }
      if (!mn || mn.value === 'NULL') return;
      const l = /^, msg_namelen=(\d+)(?: => (\d+))?/.exec(mn.rest);
      if (!l) return;
      const room = Number(l[1]);
      const written = Number(l[2] ?? l[1]);
      if (written > room || written > ADDR_MAX) cut.push('addr');
      else if (BAD_PTR.test(mn.value) && written > 0) bad.push('addr');
      return;
    }
    const where = ADDR_ARGS[name];
    if (!where) return;
    const addr = args[where[0]]?.trim();
    if (addr === undefined || addr === 'NULL') return;
    const lenText = args[where[1]]?.trim();
    if (!where[2]) {
      if (BAD_PTR.test(addr)) bad.push('addr');
      else if (argValue(lenText ?? '') > ADDR_MAX) cut.push('addr');
      return;
    }
    if (ret === null || ret < 0) return;
    if (lenText !== undefined && BAD_PTR.test(lenText)) { bad.push('addr'); return; }
    const len = lengthOut(lenText);
    if (BAD_PTR.test(addr) && len !== 0) bad.push('addr');
    else if (len !== undefined && len > ADDR_MAX) cut.push('addr');
  }

  private interpreterArgv(path: string, argv: string[], tid: number): string[] {
    const head = this.opts.readHead?.(path, tid);
    return head === undefined ? argv : scriptArgv(head, path, argv);
  }

  private exitLine(tid: number, body: string, ts: number, out: TraceEvent[]): void {
    const hostTgid = this.tgid.get(tid) ?? tid;
    const thread = tid !== hostTgid;
    let ev: TraceEvent | undefined;
    let execBy: number | undefined;
    const ex = /^\+\+\+ exited with (-?\d+) \+\+\+/.exec(body);
    const kd = /^\+\+\+ killed by ([A-Z0-9_]+)( \(core dumped\))? \+\+\+/.exec(body);
    if (ex) ev = { type: 'exit', seq: 0, ts, pid: hostTgid, tid, code: Number(ex[1]), thread };
    else if (kd) {
      const sig = signalNumberOf(kd[1] as string);
      ev = { type: 'exit', seq: 0, ts, pid: hostTgid, tid, code: 128 + sig, signal: sig, thread };
      if (kd[2]) this.notes.push(`task ${this.nsOf(tid)} dumped core (${kd[1]})`);
    } else if ((execBy = Number(/^\+\+\+ superseded by execve in pid (\d+) \+\+\+/.exec(body)?.[1] ?? NaN)) >= 0) {
      ev = { type: 'exit', seq: 0, ts, pid: hostTgid, tid, code: 0, thread: true };
    } else { this.error(body); return; }
    // a call a signal cut into that never returned: the task ended first
    this.releaseCut(tid, 'killed', out);
    const p = this.pending.get(tid);
    if (p) {
      // A call cut short by the task's end (exit_group, a kill) still happened: deliver it first.
      this.pending.delete(tid);
      this.complete(tid, p.name, p.args, null, p.ts, out);
    }
    // A thread other than the leader exec'd: it takes the leader's tid, and strace resumes its
    // execve under that tid (`<... execve resumed>` on the next line of the leader's)
    const exec = execBy !== undefined && execBy !== tid ? this.pending.get(execBy) : undefined;
    if (exec && (exec.name === 'execve' || exec.name === 'execveat')) {
      this.pending.delete(execBy as number);
      this.pending.set(tid, exec);
    }
    if (this.skipping !== undefined || this.preExec.has(tid)) return;
    this.emitFor(tid, ev, out);
  }

  /** Emit now, or hold while the task's fork has not been seen yet. */
  private emitFor(tid: number, ev: TraceEvent, out: TraceEvent[]): void {
    const h = this.held.get(tid);
    if (h) {
      this.counts.held++;
      h.push(ev);
      if (h.length > (this.opts.holdLimit ?? 100_000)) {
        this.notes.push(`task ${tid}: no fork seen after ${h.length} events; released without a parent`);
        this.announced.add(tid);
        this.release(tid, out, false);
      }
      return;
    }
    this.emit(ev, out);
  }

  private release(tid: number, out: TraceEvent[], drop: boolean): void {
    const h = this.held.get(tid);
    if (!h) return;
    this.held.delete(tid);
    if (!drop) for (const e of h) this.emit(e, out);
  }

  private nsOf(hostTid: number): number {
    const cached = this.ns.get(hostTid);
    if (cached !== undefined) return cached;
    const v = this.opts.nsPidOf?.(hostTid);
    if (v !== undefined) { this.ns.set(hostTid, v); return v; }
    return hostTid;
  }

  private stripRoot(p: string): string {
    const root = this.opts.rootPrefix;
    if (!root || root === '/') return p;
    if (p === root) return '/';
    return p.startsWith(root + '/') ? p.slice(root.length) : p;
  }

  private emit(ev: TraceEvent, out: TraceEvent[]): void {
    ev.seq = ++this.seq;
    const hostPid = ev.pid;
    ev.pid = this.nsOf(ev.pid);
    ev.tid = this.nsOf(ev.tid);
    const c = this.comm.get(hostPid);
    if (c !== undefined) ev.comm = c;
    if (ev.type === 'fork') { ev.childPid = this.nsOf(ev.childPid); ev.childTid = this.nsOf(ev.childTid); }
    out.push(ev);
  }
}
