// What semantic reconstruction adds to a raw event: the process it belongs to (with its
// ancestry) and, for calls on a file descriptor, what that descriptor refers to.
import type { TraceEvent } from '../capture/events.js';
import type { SinkholeSession } from '../sandbox/sessions.js';
import type { DnsDomainActivity } from '../sandbox/dns.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Executable path from the last exec ('' when the process was never seen exec'ing). */
  exe: string;
  /** Kernel task name (comm) or basename of exe. */
  name: string;
  argv: string[];
  uid: number;
  /** Session id and controlling tty when known (0 otherwise). */
  sid: number;
  tty: number;
  /** ns since capture start. */
  start: number;
  end: number | null;
  /** Exit status; with a signal, 128 + signal. null while running or unknown. */
  exit: number | null;
  signal: number | null;
  parent: ProcessInfo | undefined;
  /** Container or VM identity of the analysis ('' when outside any). */
  containerId: string;
  containerName: string;
  /** The file the running program's executable was copied, moved or linked from during the
   *  capture (the first such file of a chain), when it was: a python copied to /tmp/update runs
   *  as "update" with this '/usr/bin/python3.11'. */
  exeCopiedFrom?: string;
  /** The kernel itself started the running program (ExecEvent.byKernel); cleared by an ordinary exec. */
  kernelHelper?: true;
  /** Working directory, absolute, when known: the start directory, inherited at fork, changed
   *  by a successful chdir/fchdir. Absent when never known (a process found mid-life). */
  cwd?: string;
  /** The container's image, when the analysis knows it (Falco's container.image* fields). */
  containerImage?: ContainerImage;
}

/** What is known of a container image; absent fields are unknown, never guessed. */
export interface ContainerImage {
  /** The image reference as the runtime names it (e.g. 'debian:bookworm'). */
  name: string;
  id?: string;
  repository?: string;
  tag?: string;
  digest?: string;
}

export type FdType =
  | 'file' | 'directory' | 'ipv4' | 'ipv6' | 'unix' | 'netlink' | 'pipe' | 'event'
  | 'signalfd' | 'timerfd' | 'inotify' | 'memfd' | 'bpf' | 'socket' | 'unknown';

export interface FdInfo {
  num: number;
  type: FdType;
  /** Falco's fd.name: a path, or "sip:sport->dip:dport" for a connected socket. */
  name: string;
  path?: string;
  /**
   * The file's own name when it is not `path` (fd.realname): `path` resolved through the magic
   * links of /proc (root, cwd, fd/N of a known descriptor), /dev/fd and the symlinks made during
   * the capture, and through the capture's renames and hard links back to the name the file had
   * before them. Absent when it is `path` itself, or cannot be known.
   */
  real?: string | undefined;
  l4proto?: 'tcp' | 'udp' | 'raw' | 'icmp';
  /** Socket endpoints. 'client' sockets connected out (remote = server); 'server' sockets were
   *  bound/listened or accepted (local = server). Falco's fd.sip/sport is the server side,
   *  fd.cip/cport the client side; fd.lip/rip local/remote. */
  role?: 'client' | 'server';
  lip?: string;
  lport?: number;
  rip?: string;
  rport?: number;
}

/** A raw event with what semantic reconstruction knows about it. */
export interface EnrichedEvent {
  ev: TraceEvent;
  proc: ProcessInfo;
  /** The descriptor the call operated on or produced, when there is one. */
  fd: FdInfo | undefined;
  /** User name for proc.uid inside the analysed system, when known. */
  user: string;
  /** The event's path arguments made absolute (against the cwd or the dirfd), when it has them. */
  path: string | undefined;
  path2: string | undefined;
  /**
   * The file `path` names, when that is not `path` itself (fs.path.realname; see FdInfo.real): for
   * symlink and symlinkat, the link's target resolved from the link's directory. Absent otherwise.
   */
  real?: string | undefined;
  /**
   * Only on the event a rule of source `session` sees (engine/rules/detector.ts): a connection the
   * sandbox caught, the rest of the event being the connect that made it.
   */
  session?: SinkholeSession;
  /**
   * Only on the event a rule of source `dns` sees (engine/rules/detector.ts): what the sample asked
   * the DNS sinkhole about one domain, once per domain after the capture's last event.
   */
  dns?: DnsDomainActivity;
}
