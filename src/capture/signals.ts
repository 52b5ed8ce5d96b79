// What a program sees of a system call a signal cut into. A blocked call the kernel wakes for a
// signal exits with an internal code (ERESTARTSYS and its kin, never seen by the program); the
// signal code that runs right after decides what the program sees (arch/x86/kernel/signal.c:
// handle_signal() when a handler runs, arch_do_signal_or_restart() when none does). Sources that
// see the exit code (the eBPF probe, strace) settle it with these rules; VM introspection reads
// the outcome from the handler's signal frame instead. SyscallEvent.signal says which it was.
import type { ArgName, SyscallEvent } from './events.js';

export const ERESTARTSYS = 512;
export const ERESTARTNOINTR = 513;
export const ERESTARTNOHAND = 514;
export const ERESTART_RESTARTBLOCK = 516;
export const EINTR = 4;
/** sigaction's sa_flags bit: restart a call the handler's signal cut into (x86). */
export const SA_RESTART = 0x10000000;

/** Whether a call's return value is one of the kernel-internal restart codes (a signal is pending). */
export function isRestartCode(ret: number | null | undefined): ret is number {
  return ret === -ERESTARTSYS || ret === -ERESTARTNOINTR || ret === -ERESTARTNOHAND || ret === -ERESTART_RESTARTBLOCK;
}

/** What a signal is set to do (sigaction): run a handler (with SA_RESTART or not), its default, or nothing. */
export type Disposition = { kind: 'handler'; restart: boolean } | { kind: 'default' } | { kind: 'ignore' };

/** A signal's default action on Linux (signal(7)): core dumps count as 'kill'; real-time signals kill. */
export function defaultAction(sig: number): 'kill' | 'ignore' | 'stop' | 'continue' {
  switch (sig) {
    case 17: case 23: case 28: return 'ignore'; // SIGCHLD, SIGURG, SIGWINCH
    case 18: return 'continue'; // SIGCONT
    case 19: case 20: case 21: case 22: return 'stop'; // SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU
    default: return 'kill';
  }
}

/** How a call pending with a restart code ends. 'killed': the process died before it returned. */
export type Outcome = 'interrupted' | 'restarted' | 'killed';

/**
 * The outcome for a call that exited with `ret` (a restart code) when signal `sig`, set to `d`, is
 * delivered to its thread; undefined when no handler runs and the process lives on (ignored, a
 * stop, a continue): the call stays pending, to be made again unless a later signal's handler runs
 * first (then `noHandler()` settles it).
 */
export function onDelivery(ret: number, sig: number, d: Disposition): Outcome | undefined {
  if (d.kind === 'handler') {
    // handle_signal(): RESTARTBLOCK and NOHAND fail with EINTR; SYS restarts only with SA_RESTART; NOINTR always restarts
    if (ret === -ERESTARTNOINTR) return 'restarted';
    if (ret === -ERESTARTSYS) return d.restart ? 'restarted' : 'interrupted';
    return 'interrupted';
  }
  if (sig === 9 || (d.kind === 'default' && defaultAction(sig) === 'kill')) return 'killed'; // SIGKILL has no handler
  return undefined;
}

/** The outcome when the thread goes on without any handler having run: the kernel makes the call again. */
export function noHandler(): Outcome {
  return 'restarted';
}

/**
 * Rewrites a call's event to what the program saw: 'interrupted', ret -EINTR; 'restarted', no
 * result (ret null: the same call is made again, or restart_syscall for ERESTART_RESTARTBLOCK);
 * 'killed', no result and no signal mark (the call never returned, as for a task killed inside it).
 */
export function settle(ev: SyscallEvent, outcome: Outcome): void {
  if (outcome === 'interrupted') {
    ev.ret = -EINTR;
    ev.signal = 'interrupted';
  } else if (outcome === 'restarted') {
    ev.ret = null;
    ev.signal = 'restarted';
    // a sendmmsg made again sends its messages then: the call made again names them (and says
    // whether they could be read)
    if (ev.name === 'sendmmsg') dropAddrs(ev);
  } else {
    ev.ret = null;
  }
}

function dropAddrs(ev: SyscallEvent): void {
  delete ev.addrs;
  const only = (l: ArgName[] | undefined) => l?.filter((a) => a !== 'addr');
  const t = only(ev.truncated), u = only(ev.unreadable);
  if (t?.length) ev.truncated = t; else delete ev.truncated;
  if (u?.length) ev.unreadable = u; else delete ev.unreadable;
}
