// Decoding of the integer flag arguments that rules and reports talk about (x86-64 values from
// the kernel's UAPI headers).

type FlagTable = readonly (readonly [number, string])[];

export const O_ACCMODE = 0o3;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;
export const O_TMPFILE = 0o20200000;

const OPEN_FLAGS: FlagTable = [
  [O_CREAT, 'O_CREAT'], [O_EXCL, 'O_EXCL'], [0o400, 'O_NOCTTY'], [O_TRUNC, 'O_TRUNC'],
  [O_APPEND, 'O_APPEND'], [0o4000, 'O_NONBLOCK'], [0o10000, 'O_DSYNC'], [0o20000, 'O_ASYNC'],
  [0o40000, 'O_DIRECT'], [0o100000, 'O_LARGEFILE'], [O_DIRECTORY, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW'],
  [0o1000000, 'O_NOATIME'], [O_CLOEXEC, 'O_CLOEXEC'], [0o4010000, 'O_SYNC'], [0o10000000, 'O_PATH'],
];

/** 'O_WRONLY|O_CREAT|O_TRUNC' style, as strace and Falco print them. */
export function openFlags(flags: number): string {
  const acc = flags & O_ACCMODE;
  const parts = [acc === 0 ? 'O_RDONLY' : acc === 1 ? 'O_WRONLY' : acc === 2 ? 'O_RDWR' : 'O_ACCMODE'];
  let rest = flags & ~O_ACCMODE;
  if ((rest & O_TMPFILE) === O_TMPFILE) {
    parts.push('O_TMPFILE');
    rest &= ~O_TMPFILE;
  }
  return parts.concat(bits(rest, OPEN_FLAGS)).join('|');
}

export function isOpenWrite(flags: number): boolean {
  return (flags & O_ACCMODE) !== 0 || (flags & (O_CREAT | O_TRUNC)) !== 0;
}

export function isOpenRead(flags: number): boolean {
  const acc = flags & O_ACCMODE;
  return acc === 0 || acc === O_RDWR;
}

export const AT_FDCWD = -100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;

export const CLONE_VM = 0x100;
export const CLONE_FILES = 0x400;
export const CLONE_THREAD = 0x10000;
const CLONE_FLAGS: FlagTable = [
  [CLONE_VM, 'CLONE_VM'], [0x200, 'CLONE_FS'], [CLONE_FILES, 'CLONE_FILES'], [0x800, 'CLONE_SIGHAND'],
  [0x1000, 'CLONE_PIDFD'], [0x2000, 'CLONE_PTRACE'], [0x4000, 'CLONE_VFORK'], [0x8000, 'CLONE_PARENT'],
  [CLONE_THREAD, 'CLONE_THREAD'], [0x20000, 'CLONE_NEWNS'], [0x40000, 'CLONE_SYSVSEM'],
  [0x80000, 'CLONE_SETTLS'], [0x100000, 'CLONE_PARENT_SETTID'], [0x200000, 'CLONE_CHILD_CLEARTID'],
  [0x400000, 'CLONE_DETACHED'], [0x800000, 'CLONE_UNTRACED'], [0x1000000, 'CLONE_CHILD_SETTID'],
  [0x2000000, 'CLONE_NEWCGROUP'], [0x4000000, 'CLONE_NEWUTS'], [0x8000000, 'CLONE_NEWIPC'],
  [0x10000000, 'CLONE_NEWUSER'], [0x20000000, 'CLONE_NEWPID'], [0x40000000, 'CLONE_NEWNET'], [0x80000000, 'CLONE_IO'],
];

export function cloneFlags(flags: number): string {
  const sig = flags & 0xff;
  const parts = bits(flags - sig, CLONE_FLAGS);
  if (sig) parts.push(signalName(sig));
  return parts.join('|') || '0';
}

const PROT: FlagTable = [[1, 'PROT_READ'], [2, 'PROT_WRITE'], [4, 'PROT_EXEC']];
export function protFlags(prot: number): string {
  return bits(prot, PROT).join('|') || 'PROT_NONE';
}
export const PROT_EXEC = 4;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
const DOMAINS: Record<number, string> = { 1: 'AF_UNIX', 2: 'AF_INET', 10: 'AF_INET6', 16: 'AF_NETLINK', 17: 'AF_PACKET' };
export function socketDomain(d: number): string {
  return DOMAINS[d] ?? `AF_${d}`;
}

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
const SOCK_TYPES: Record<number, string> = { 1: 'SOCK_STREAM', 2: 'SOCK_DGRAM', 3: 'SOCK_RAW', 5: 'SOCK_SEQPACKET' };
export function socketType(t: number): string {
  const base = SOCK_TYPES[t & 0xf] ?? `SOCK_${t & 0xf}`;
  return [base, ...(t & 0o4000 ? ['SOCK_NONBLOCK'] : []), ...(t & 0o2000000 ? ['SOCK_CLOEXEC'] : [])].join('|');
}

const SIGNALS = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL',
  'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP',
  'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO',
  'SIGPWR', 'SIGSYS'];
export function signalName(sig: number): string {
  return SIGNALS[sig] || `SIG${sig}`;
}
export function signalNumber(name: string): number {
  const i = SIGNALS.indexOf(name.startsWith('SIG') ? name : `SIG${name}`);
  return i > 0 ? i : -1;
}

const PTRACE_REQ: Record<number, string> = {
  0: 'PTRACE_TRACEME', 1: 'PTRACE_PEEKTEXT', 2: 'PTRACE_PEEKDATA', 4: 'PTRACE_POKETEXT', 5: 'PTRACE_POKEDATA',
  7: 'PTRACE_CONT', 8: 'PTRACE_KILL', 9: 'PTRACE_SINGLESTEP', 12: 'PTRACE_GETREGS', 13: 'PTRACE_SETREGS',
  16: 'PTRACE_ATTACH', 17: 'PTRACE_DETACH', 0x4206: 'PTRACE_SEIZE',
};
export function ptraceRequest(r: number): string {
  return PTRACE_REQ[r] ?? `PTRACE_${r}`;
}

/** prctl option 15 renames the calling thread (process masquerading). */
export const PR_SET_NAME = 15;

function bits(v: number, table: FlagTable): string[] {
  const out: string[] = [];
  let rest = v;
  for (const [bit, name] of table) {
    if (((rest & bit) >>> 0) === bit && bit !== 0) {
      out.push(name);
      rest &= ~bit;
    }
  }
  if (rest) out.push(`0x${(rest >>> 0).toString(16)}`);
  return out;
}
