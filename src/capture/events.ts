// The one normalized event stream every capture source produces (eBPF probe, strace, VM
// introspection, replayed recordings, imported traces). Interpretation happens later, in
// semantics/; a collector only reports what it observed.

export type Abi = 'x86_64' | 'i386';

export type SockAddr =
  | { family: 'inet' | 'inet6'; address: string; port: number }
  | { family: 'unix'; path: string; abstract: boolean }
  | { family: 'netlink' | 'packet' | 'other'; raw: number };

/** An argument read from the traced program's memory (or, for exec's exe, the kernel's). */
export type ArgName = 'path' | 'path2' | 'argv' | 'addr' | 'exe';

/** Messages of one sendmmsg/recvmmsg whose addresses a source reads (SyscallEvent.addrs). */
export const MMSG_ADDR_MAX = 16;

interface EventBase {
  /** 1-based, strictly increasing within one capture; evidence refers to events by it. */
  seq: number;
  /** Nanoseconds since the capture started. */
  ts: number;
  /** Process id (thread-group id) as seen inside the sample's own pid namespace or guest. */
  pid: number;
  /** Thread id in the same namespace; equals pid for the main thread. */
  tid: number;
  /** Kernel task name (comm, at most 15 bytes) when the source knows it. */
  comm?: string;
  /**
   * The program the process was already running when the source first saw it without seeing its
   * fork or exec (a process running before a live capture attached, named from /proc). Set on
   * that process's first event only; consumers adopt it when they know no program for the pid.
   * `tty`: its controlling terminal as the kernel encodes it (/proc/PID/stat tty_nr), when it has one.
   */
  running?: { exe: string; argv: string[]; tty?: number };
}

/** One completed (or unfinished, ret === null) system call. */
export interface SyscallEvent extends EventBase {
  type: 'syscall';
  abi: Abi;
  /** Syscall number in `abi` numbering; -1 when the source only knows the name. */
  nr: number;
  /** Syscall name from the table for `abi` (e.g. 'openat'); 'syscall_<nr>' when unknown. */
  name: string;
  /** Raw register arguments (up to 6). Pointers may lose precision above 2^53; never used as data. */
  args: number[];
  /** Return value (negative errno on failure); null when the call never returned (exit, a killed task). */
  ret: number | null;
  /** First path argument, read at the call (open*, exec*, unlink*, rename* source, chmod*, mkdir*, ...). */
  path?: string;
  /** Second path argument (target of rename, link or symlink). */
  path2?: string;
  /** argv of execve/execveat, read at the call. */
  argv?: string[];
  /**
   * Socket address of connect/bind/sendto/sendmsg, read at the call; of accept/accept4/recvfrom/
   * recvmsg/getsockname/getpeername, the one the kernel wrote back, read at the return (recvfrom's
   * and recvmsg's: the sender of what was received; none when the caller asked for none).
   */
  addr?: SockAddr;
  /**
   * sendmmsg/recvmmsg: one entry per message the call handled, in order; null where a message
   * names no address. sendmmsg: each message's msg_name, read at the call, of the messages it
   * sent (the first `ret`; only the first when it failed, the kernel stopping at the first error
   * and reporting it only when nothing was sent, or when it never returned; none when a signal
   * makes the kernel make it again, since the call made again sends them). recvmmsg: the sender the kernel wrote into each
   * received message's msg_name (the first `ret`), read at the return; null when the message
   * asked for none. Absent when the call handled no message. At most MMSG_ADDR_MAX entries: a
   * call that handled more marks 'addr' truncated, as does an address cut at the caller's room or
   * at 128 bytes. A message header or address that cannot be read ends the list there (absent if
   * it was the first) and marks 'addr' unreadable.
   */
  addrs?: (SockAddr | null)[];
  /**
   * 'socketcall': an i386 socket call made through the socketcall multiplexer (nr 102), as older
   * and static libcs do; nr, name and args are those of the direct call it stands for (accept as
   * accept4 with flags 0, send/recv as sendto/recvfrom without an address).
   */
  via?: 'socketcall';
  /** Arguments the source read only in part (cut at its buffer: the value shown is a prefix; argv may miss elements). */
  truncated?: ArgName[];
  /**
   * The arguments could not be read when the call was made (memory not paged in yet) and were read
   * at its return instead: another thread of the sample could have changed them in between, so
   * what the kernel used may differ from what is shown.
   */
  readAtExit?: true;
  /**
   * open, creat, openat, openat2 whose path could not be read at the call (memory not paged in
   * yet): `path` is instead the kernel's name of the file the call opened, read from the descriptor
   * it returned (absolute, from the process's root, symlinks resolved, as /proc/PID/fd shows it),
   * so no other thread could have changed it. Not `readAtExit`. Set by the eBPF probe and by VM
   * introspection.
   */
  pathFromKernel?: true;
  /**
   * connect whose address could not be read at the call and that connected (0, or EINPROGRESS):
   * `addr` is instead the peer the kernel connected the socket to, read from the socket at the
   * return (inet and inet6 only), as getpeername() would give it. Not `readAtExit`. Set by the eBPF probe
   * and by VM introspection.
   */
  addrFromKernel?: true;
  /** Arguments the source could not read at all (e.g. a bad pointer: the field is then absent, not empty). */
  unreadable?: ArgName[];
  /**
   * A signal delivered while the call was blocked: 'interrupted', a handler ran and the call failed
   * with EINTR (ret -4, what the program saw); 'restarted', the kernel makes the call again after
   * the signal (SA_RESTART, or no handler: a stop and continue), so ret is null and the thread's
   * next making of that call carries the result (after the handler's own calls and its
   * rt_sigreturn, if one ran; as restart_syscall for a sleep, ERESTART_RESTARTBLOCK). A call whose
   * process the signal killed has ret null and no mark. Every source sets it: VM introspection
   * reads the result from the handler's signal frame; the eBPF probe reports the signal delivered
   * after the call (its disposition and SA_RESTART) and strace's log has the signal and the
   * process's sigaction calls, from which both settle the kernel's internal code (-512
   * ERESTARTSYS and its kin) with src/capture/signals.ts. Where the outcome cannot be known (the
   * stream ended first; strace attached mid-run with no sigaction seen) the internal code stays.
   */
  signal?: 'interrupted' | 'restarted';
}

/** A new task: fork, vfork or clone. `thread` is true for CLONE_THREAD. */
export interface ForkEvent extends EventBase {
  type: 'fork';
  childPid: number;
  childTid: number;
  thread: boolean;
}

/** A successful exec: the process now runs `exe`. */
export interface ExecEvent extends EventBase {
  type: 'exec';
  exe: string;
  argv: string[];
  uid?: number;
  /**
   * Whether the new image is a 64-bit ('x86_64') or a 32-bit ('i386') program, as the kernel set
   * the task up for it. Set by the sources that read it (eBPF probe, VM introspection); absent
   * when the source cannot tell.
   */
  abi?: Abi;
  /** As on SyscallEvent: 'exe' or 'argv' was cut, or could not be read. */
  truncated?: ArgName[];
  unreadable?: ArgName[];
  /**
   * The file the kernel loaded the new image from, as stat() would report it (st_dev, st_ino): the
   * file itself, not its path, which can be swapped before anyone looks the path up again. `ino`
   * is decimal (inode numbers are 64-bit; overlayfs xino sets the top bits). `interpreter`: the
   * exec'd path is a #! script (or a binfmt_misc file) and this is its interpreter, the program
   * the process runs (/proc/PID/exe). Set by the eBPF probe; absent when the source cannot tell.
   * On an overlayfs the device is the overlay's own (the one /proc/PID/mountinfo gives the
   * mount), while stat() of a file from a lower layer can report that layer's pseudo device.
   */
  file?: { dev: number; ino: string; interpreter?: true };
  /**
   * Set by the live monitor when it could not confirm that `exe` names `file`: the path led to
   * another file by the time the monitor looked it up (swapped after the exec, or gone), and
   * neither /proc/PID/exe nor anything else named the file. `exe` is then the path as exec'd, and
   * the program is judged by no program's model (the global one): which model judges it is not
   * the workload's choice.
   */
  exeUnverified?: true;
  /**
   * The kernel itself started the program (init, a usermode helper such as modprobe for
   * request_module): no process of the captured system forked it or called execve. Set only by
   * sources that can tell it apart from anything a process could do (VM introspection).
   */
  byKernel?: true;
}

/** A task ended. `thread` is false when the whole process (thread group) ended. */
export interface ExitEvent extends EventBase {
  type: 'exit';
  code: number;
  /** Terminating signal number when killed by a signal. */
  signal?: number;
  thread: boolean;
}

export type TraceEvent = SyscallEvent | ForkEvent | ExecEvent | ExitEvent;
export type TraceEventType = TraceEvent['type'];
