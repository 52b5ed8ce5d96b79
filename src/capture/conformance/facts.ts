// The facts every capture source must agree on, independent of pid numbering and timing: the
// process tree (exe, argv, parent), files written/deleted/renamed, connections, programs executed.
import type { SockAddr, TraceEvent } from '../events.js';

export interface Facts {
  /** One line per successful exec: `parent-exe > previous-exe => exe ["argv", ...]` (null where unknown). */
  processes: string[];
  /** Programs executed (successful exec), sorted, unique. */
  executed: string[];
  /** Paths opened for writing or created (open/openat/openat2 with a write mode, O_CREAT or O_TRUNC; creat) that succeeded. */
  written: string[];
  /** Paths unlinked or removed (unlink, unlinkat, rmdir) that succeeded. */
  deleted: string[];
  /** `from -> to` of successful renames. */
  renamed: string[];
  /** Addresses of every connect attempted, whatever its result. */
  connections: string[];
  /** Addresses bound. */
  bound: string[];
  /**
   * Destinations named by the data sent: sendto's and sendmsg's address, and each sendmmsg
   * message's, whatever the result (like connections: what the program tried to reach).
   */
  sent: string[];
  /**
   * Senders named by what was received: the address recvfrom, recvmsg and each message of
   * recvmmsg (direct or through i386 socketcall) say a successful call's data came from. A call that asked for no sender (a NULL
   * address or msg_name, or room for none) names none.
   */
  received: string[];
  /**
   * Calls a signal cut into, as `name:interrupted` (a handler ran; the call failed with EINTR) or
   * `name:restarted` (the kernel made it again): what the program saw, not the kernel's internal
   * restart code the call exited with.
   */
  signalled: string[];
}

const O_ACCMODE = 3;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const AT_REMOVEDIR = 0x200;

export function addrKey(a: SockAddr): string {
  if (a.family === 'unix') return `unix:${a.abstract ? '@' : ''}${a.path}`;
  if ('address' in a) return `${a.family}:${a.address}:${a.port}`;
  return `${a.family}:${a.raw}`;
}

const sortedUnique = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

/**
 * Facts of one capture. By default events before the first exec are ignored: a container's
 * runtime runs in the sample's first process until it execs the sample, and sources differ in
 * whether they see it.
 */
export function factsOf(events: readonly TraceEvent[], opts: { startAtFirstExec?: boolean } = {}): Facts {
  const start = opts.startAtFirstExec ?? true;
  const exe = new Map<number, string>();
  const parent = new Map<number, number>();
  const processes: string[] = [];
  const executed: string[] = [];
  const written: string[] = [];
  const deleted: string[] = [];
  const renamed: string[] = [];
  const connections: string[] = [];
  const bound: string[] = [];
  const sent: string[] = [];
  const received: string[] = [];
  const signalled: string[] = [];
  let on = !start;
  for (const e of events) {
    if (!on) {
      if (e.type !== 'exec') continue;
      on = true;
    }
    switch (e.type) {
      case 'fork':
        if (!e.thread) {
          parent.set(e.childPid, e.pid);
          const pe = exe.get(e.pid);
          if (pe !== undefined) exe.set(e.childPid, pe);
        }
        break;
      case 'exec': {
        const pp = parent.get(e.pid);
        const pexe = pp === undefined ? null : exe.get(pp) ?? null;
        const prev = exe.get(e.pid) ?? null;
        processes.push(`${pexe} > ${prev} => ${e.exe} ${JSON.stringify(e.argv)}`);
        executed.push(e.exe);
        exe.set(e.pid, e.exe);
        break;
      }
      case 'syscall': {
        const ok = e.ret !== null && e.ret >= 0;
        if (e.signal) signalled.push(`${e.name}:${e.signal}`);
        switch (e.name) {
          case 'open': case 'openat': case 'openat2': {
            const flags = e.args[e.name === 'open' ? 1 : 2] ?? 0;
            // openat2 passes flags in a struct: the source may not know them (0); its path is still a read at least.
            if (ok && e.path !== undefined && ((flags & O_ACCMODE) !== 0 || (flags & (O_CREAT | O_TRUNC)) !== 0)) written.push(e.path);
            break;
          }
          case 'creat':
            if (ok && e.path !== undefined) written.push(e.path);
            break;
          case 'unlink': case 'rmdir':
            if (ok && e.path !== undefined) deleted.push(e.path);
            break;
          case 'unlinkat':
            if (ok && e.path !== undefined) deleted.push(e.path + (((e.args[2] ?? 0) & AT_REMOVEDIR) !== 0 ? '/' : ''));
            break;
          case 'rename': case 'renameat': case 'renameat2':
            if (ok && e.path !== undefined && e.path2 !== undefined) renamed.push(`${e.path} -> ${e.path2}`);
            break;
          case 'connect':
            if (e.addr) connections.push(addrKey(e.addr));
            break;
          case 'bind':
            if (e.addr) bound.push(addrKey(e.addr));
            break;
          case 'sendto': case 'sendmsg':
            if (e.addr) sent.push(addrKey(e.addr));
            break;
          case 'sendmmsg':
            for (const a of e.addrs ?? []) if (a) sent.push(addrKey(a));
            break;
          case 'recvfrom': case 'recvmsg':
            if (ok && e.addr) received.push(addrKey(e.addr));
            break;
          case 'recvmmsg':
            if (ok) for (const a of e.addrs ?? []) if (a) received.push(addrKey(a));
            break;
        }
        break;
      }
      case 'exit':
        break;
    }
  }
  return {
    processes: sortedUnique(processes),
    executed: sortedUnique(executed),
    written: sortedUnique(written),
    deleted: sortedUnique(deleted),
    renamed: sortedUnique(renamed),
    connections: sortedUnique(connections),
    bound: sortedUnique(bound),
    sent: sortedUnique(sent),
    received: sortedUnique(received),
    signalled: sortedUnique(signalled),
  };
}
