// Calls a signal cut into, in real strace -f output (test/fixtures/strace-signals: each NAME.strace
// recorded from NAME.py by record.sh there): the parser reports what the program saw, never the
// kernel-internal restart code (ERESTARTSYS and kin) strace prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StraceParser } from './parser.js';
import type { ExitEvent, SyscallEvent, TraceEvent } from '../events.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/strace-signals/', import.meta.url));

function parse(text: string, opts: ConstructorParameters<typeof StraceParser>[0] = {}): { evs: TraceEvent[]; p: StraceParser } {
  const p = new StraceParser(opts);
  const evs = [...p.push(text), ...p.end()];
  // the stream stays in seq order although a call a signal cut into is held for a while
  assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1), 'seq is 1.. in stream order');
  return { evs, p };
}
const fixture = (name: string) => parse(readFileSync(`${FIX}${name}.strace`, 'latin1'));
const calls = (evs: TraceEvent[], name: string) => evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.name === name);
const RESTART_CODES = [-512, -513, -514, -516];
/** Events of one thread after `ev`, in stream order. */
const after = (evs: TraceEvent[], ev: TraceEvent) => evs.slice(evs.indexOf(ev) + 1).filter((e) => e.tid === ev.tid);
const noRawCodes = (evs: TraceEvent[]) =>
  assert.deepEqual(evs.filter((e) => e.type === 'syscall' && RESTART_CODES.includes(e.ret ?? 0)), [], 'no restart code is left');

test('signal_accept sample: accept4 fails with EINTR under a handler without SA_RESTART, and is made again under one with it', () => {
  const { evs, p } = fixture('signal_accept');
  noRawCodes(evs);
  const acc = calls(evs, 'accept4');
  assert.deepEqual(acc.map((e) => [e.ret, e.signal]), [[-4, 'interrupted'], [4, undefined], [null, 'restarted'], [4, undefined]]);
  // a restarted call's result is carried by the same call made again, once the handler has returned
  assert.deepEqual(after(evs, acc[2] as SyscallEvent).slice(0, 2).map((e) => [(e as SyscallEvent).name, (e as SyscallEvent).ret]), [['rt_sigreturn', 288], ['accept4', 4]]);
  assert.equal(p.notes.filter((n) => /restart code/.test(n)).length, 0);
});

test('stop and continue: no handler runs, so the kernel makes the blocked read again; a default-kill signal ends it unreturned', () => {
  const { evs } = fixture('stopcont');
  noRawCodes(evs);
  const fork = evs.find((e) => e.type === 'fork') as TraceEvent;
  const reads = calls(evs, 'read').filter((e) => e.seq > fork.seq && e.tid === fork.tid);
  // SIGSTOP, SIGCONT: made again, and returns the byte written; the next read: SIGTERM, no handler
  assert.deepEqual(reads.map((e) => [e.ret, e.signal]), [[null, 'restarted'], [1, undefined], [null, undefined]]);
  assert.equal(after(evs, reads[0] as SyscallEvent)[0], reads[1], 'the read made again follows at once');
  const exit = after(evs, reads[2] as SyscallEvent)[0] as ExitEvent;
  assert.deepEqual([exit.type, exit.signal], ['exit', 15], 'the killed read is the last event before its process dies of SIGTERM');
});

test('sleeps a handler cuts short fail with EINTR, SA_RESTART or not: ERESTART_RESTARTBLOCK (relative) and ERESTARTNOHAND (absolute)', () => {
  const { evs } = fixture('sleeps');
  noRawCodes(evs);
  const sl = calls(evs, 'clock_nanosleep');
  // relative (ERESTART_RESTARTBLOCK), absolute (ERESTARTNOHAND), then the absolute one made again by Python
  assert.deepEqual(sl.map((e) => [e.ret, e.signal]), [[-4, 'interrupted'], [-4, 'interrupted'], [0, undefined]]);
});

test('a handler that itself writes is not the blocked write made again: the write fails with EINTR, the handler\'s is its own event', () => {
  const { evs } = fixture('pipewrite');
  noRawCodes(evs);
  const w = calls(evs, 'write');
  assert.deepEqual(w.map((e) => [e.args[0], e.ret, e.signal]), [[4, 4096, undefined], [4, -4, 'interrupted'], [6, 1, undefined]]);
  assert.ok((w[1] as SyscallEvent).seq < (w[2] as SyscallEvent).seq, 'the cut-short write comes before its handler\'s write');
});

test('dispositions are inherited at fork and reset at exec: handlers to default, ignored signals stay ignored', () => {
  const { evs } = fixture('forkexec');
  noRawCodes(evs);
  const child = (evs.find((e) => e.type === 'fork') as { childPid: number }).childPid;
  const mine = evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === child);
  // the parent's SIGUSR1 handler runs in the child (it writes to the wakeup pipe first)
  const read = mine.find((e) => e.name === 'read' && e.args[0] === 5);
  assert.deepEqual([read?.ret, read?.signal], [-4, 'interrupted']);
  // after the exec, /bin/sleep: SIGUSR2 is still ignored (made again, as restart_syscall), SIGUSR1 kills
  const sleep = mine.find((e) => e.name === 'clock_nanosleep');
  assert.deepEqual([sleep?.ret, sleep?.signal], [null, 'restarted']);
  const again = after(evs, sleep as SyscallEvent)[0] as SyscallEvent;
  assert.deepEqual([again.name, again.ret, again.signal], ['restart_syscall', null, undefined], 'then killed by SIGUSR1 inside it');
  assert.deepEqual(after(evs, again).map((e) => [e.type, (e as ExitEvent).signal]), [['exit', 10]]);
});

test('threads share their process\'s handlers: one set after a thread started runs in it', () => {
  const { evs } = fixture('thread');
  noRawCodes(evs);
  const thread = evs.find((e) => e.type === 'fork' && e.thread) as { childTid: number; pid: number };
  const read = calls(evs, 'read').find((e) => e.tid === thread.childTid);
  assert.deepEqual([read?.pid, read?.ret, read?.signal], [thread.pid, -4, 'interrupted']);
  const next = after(evs, read as SyscallEvent).filter((e) => e.type === 'syscall').map((e) => (e as SyscallEvent).name);
  assert.deepEqual(next.slice(0, 3), ['write', 'rt_sigreturn', 'read'], 'the handler\'s write, its return, the read made again by Python');
});

test('traced from mid-run: a handler the trace never saw set is read from rt_sigreturn alone; otherwise the raw code stays, with a note', () => {
  const { evs, p } = fixture('attached');
  const reads = calls(evs, 'read');
  assert.deepEqual(reads.map((e) => [e.ret, e.signal]), [[-4, 'interrupted'], [-512, undefined]]);
  assert.ok(p.notes.some((n) => /1 call\(s\) a signal cut into keep the kernel's restart code .*could not be told/.test(n)), p.notes.join('\n'));
});

test('edge lines: a child\'s changes and exec before its fork is reported, a stop and continue, SA_RESETHAND, i386 signal(), the end of the trace', () => {
  const act = (h: string, flags = 'SA_RESTORER') => `{sa_handler=${h}, sa_mask=[], sa_flags=${flags}, sa_restorer=0x7f}`;
  const { evs, p } = parse([
    '10 execve("/bin/x", ["x"], 0x1 /* 1 var */) = 0',
    `10 rt_sigaction(SIGUSR1, ${act('0x401000')}, NULL, 8) = 0`,
    `10 rt_sigaction(SIGHUP, ${act('0x401000', 'SA_RESTORER|SA_RESETHAND|SA_RESTART')}, NULL, 8) = 0`,
    '10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>',
    // the child's lines come before the parent's clone returns: it sets a SIGUSR2 handler
    `11 rt_sigaction(SIGUSR2, ${act('0x402000')}, NULL, 8) = 0`,
    '10 <... clone resumed>, child_tidptr=0x7f) = 11',
    // the inherited SIGUSR1 handler (no SA_RESTART)
    '11 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '11 --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=10, si_uid=0} ---',
    '11 rt_sigreturn({mask=[]}) = -1 EINTR (Interrupted system call)',
    // its own SIGUSR2 handler, set before its fork was seen, writes before it returns
    '11 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '11 --- SIGUSR2 {si_signo=SIGUSR2, si_code=SI_USER, si_pid=10, si_uid=0} ---',
    '11 write(2, "h", 1) = 1',
    '11 rt_sigreturn({mask=[]}) = -1 EINTR (Interrupted system call)',
    // a stop and continue (SIGCONT's default: continue): no handler, made again
    '11 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '11 --- SIGSTOP {si_signo=SIGSTOP, si_code=SI_USER, si_pid=10, si_uid=0} ---',
    '11 --- stopped by SIGSTOP ---',
    '11 --- SIGCONT {si_signo=SIGCONT, si_code=SI_USER, si_pid=10, si_uid=0} ---',
    '11 read(0, "a", 1) = 1',
    // a child that execs before its fork is reported: the inherited SIGUSR1 handler is gone, default kills
    '10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>',
    '13 execve("/bin/z", ["z"], 0x1 /* 1 var */) = 0',
    '10 <... clone resumed>, child_tidptr=0x7f) = 13',
    '13 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '13 --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=10, si_uid=0} ---',
    '13 +++ killed by SIGUSR1 +++',
    // SIGHUP's handler runs once (SA_RESETHAND, and SA_RESTART: made again); then it is default: kill
    '10 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '10 --- SIGHUP {si_signo=SIGHUP, si_code=SI_USER, si_pid=1, si_uid=0} ---',
    '10 rt_sigreturn({mask=[]}) = 0',
    '10 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '10 --- SIGHUP {si_signo=SIGHUP, si_code=SI_USER, si_pid=1, si_uid=0} ---',
    '10 +++ killed by SIGHUP +++',
    // i386 signal(): the handler runs once, without SA_RESTART
    '12 [ Process PID=12 runs in 32 bit mode. ]',
    '12 execve("/bin/y", ["y"], 0x1 /* 1 var */) = 0',
    '12 signal(SIGALRM, 0x8049000) = 0 (SIG_DFL)',
    '12 read(0, 0x1, 1) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '12 --- SIGALRM {si_signo=SIGALRM, si_code=SI_KERNEL} ---',
    '12 write(2, "x", 1) = 1',
    // the trace ends with a call still waiting for its thread to go on
    '11 pause() = ? ERESTARTNOHAND (To be restarted if no handler)',
  ].join('\n') + '\n', { knownTids: [10, 12] });
  assert.equal(p.parseErrors, 0);
  const r = (tid: number) => calls(evs, 'read').filter((e) => e.tid === tid).map((e) => [e.ret, e.signal]);
  assert.deepEqual(r(11), [[-4, 'interrupted'], [-4, 'interrupted'], [null, 'restarted'], [1, undefined]]);
  assert.deepEqual(r(13), [[null, undefined]]);
  assert.deepEqual(r(10), [[null, 'restarted'], [null, undefined]]);
  assert.deepEqual(r(12), [[-4, 'interrupted']]);
  assert.deepEqual(calls(evs, 'pause').map((e) => [e.ret, e.signal]), [[-514, undefined]], 'released raw at the end, not lost');
  assert.ok(p.notes.some((n) => /1 call\(s\) a signal cut into keep .* the trace ended/.test(n)), p.notes.join('\n'));
});
