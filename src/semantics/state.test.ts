import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyscallEvent, TraceEvent } from '../capture/events.js';
import { syscallNumber } from './syscalls.js';
import { SemanticState } from './state.js';
import { decodeArgs } from './args.js';

let seq = 0;
function sc(pid: number, name: string, args: number[], ret: number | null, extra: Partial<SyscallEvent> = {}): SyscallEvent {
  return { type: 'syscall', seq: ++seq, ts: seq * 1000, pid, tid: pid, abi: 'x86_64', nr: syscallNumber(name), name, args, ret, ...extra };
}
const exec = (pid: number, exe: string, argv: string[]): TraceEvent => ({ type: 'exec', seq: ++seq, ts: seq * 1000, pid, tid: pid, exe, argv });
const fork = (pid: number, child: number, thread = false): TraceEvent => ({ type: 'fork', seq: ++seq, ts: seq * 1000, pid, tid: pid, childPid: child, childTid: child, thread });

test('process tree: fork inherits exe and parent; exec replaces exe and argv; exit records status', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/bin/sh', ['sh', '-c', 'ls']));
  s.apply(fork(1, 7));
  const e = s.apply(exec(7, '/usr/bin/ls', ['ls', '-l']));
  assert.equal(e.proc.pid, 7);
  assert.equal(e.proc.ppid, 1);
  assert.equal(e.proc.exe, '/usr/bin/ls');
  assert.equal(e.proc.name, 'ls');
  assert.equal(e.proc.parent?.exe, '/bin/sh');
  s.apply({ type: 'exit', seq: ++seq, ts: 99_000, pid: 7, tid: 7, code: 0, signal: 9, thread: false });
  const ls = s.process(7);
  assert.equal(ls?.exit, 137);
  assert.equal(ls?.signal, 9);
  assert.deepEqual(s.processes().map((p) => p.pid), [1, 7]);
});

test('threads do not create processes', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/bin/app', ['app']));
  s.apply(fork(1, 2, true));
  assert.equal(s.processes().length, 1);
});

test('fd table: open gives read/write events their path; dup copies; close forgets; fork copies', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/bin/sh', ['sh']));
  s.apply(sc(1, 'openat', [-100, 0, 0o101, 0o644], 3, { path: '/tmp/out.txt' }));
  assert.equal(s.apply(sc(1, 'write', [3, 0, 5], 5)).fd?.path, '/tmp/out.txt');
  assert.equal(s.apply(sc(1, 'dup2', [3, 1], 1)).fd?.num, 1);
  assert.equal(s.apply(sc(1, 'write', [1, 0, 5], 5)).fd?.path, '/tmp/out.txt');
  s.apply(fork(1, 5));
  assert.equal(s.apply(sc(5, 'write', [3, 0, 1], 1)).fd?.path, '/tmp/out.txt');
  s.apply(sc(1, 'close', [3], 0));
  assert.equal(s.apply(sc(1, 'write', [3, 0, 5], -9)).fd?.type, 'unknown');
  assert.equal(s.apply(sc(5, 'write', [3, 0, 1], 1)).fd?.path, '/tmp/out.txt', 'the child keeps its own copy');
});

test('relative paths resolve against chdir and dirfd', () => {
  const s = new SemanticState({ initialCwd: '/home/user' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  assert.equal(s.apply(sc(1, 'openat', [-100, 0, 0], 3, { path: 'notes.txt' })).path, '/home/user/notes.txt');
  s.apply(sc(1, 'chdir', [0], 0, { path: '../../etc' }));
  assert.equal(s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: 'passwd' })).path, '/etc/passwd');
  s.apply(sc(1, 'openat', [-100, 0, 0o200000], 4, { path: '/var/log' }));
  assert.equal(s.apply(sc(1, 'unlinkat', [4, 0, 0], 0, { path: 'auth.log' })).path, '/var/log/auth.log');
  const r = s.apply(sc(1, 'renameat2', [4, 0, -100, 0, 0], 0, { path: 'a', path2: '/tmp/b' }));
  assert.equal(r.path, '/var/log/a');
  assert.equal(r.path2, '/tmp/b');
});

test('sockets: connect gives the fd its remote endpoint and a Falco-style name', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/usr/bin/curl', ['curl']));
  s.apply(sc(1, 'socket', [2, 1, 0], 3));
  const c = s.apply(sc(1, 'connect', [3, 0, 16], 0, { addr: { family: 'inet', address: '10.9.8.7', port: 4444 } }));
  assert.equal(c.fd?.type, 'ipv4');
  assert.equal(c.fd?.l4proto, 'tcp');
  assert.equal(c.fd?.rip, '10.9.8.7');
  assert.equal(c.fd?.rport, 4444);
  assert.equal(c.fd?.role, 'client');
  assert.equal(c.fd?.name, '0.0.0.0:0->10.9.8.7:4444');
  // a reverse shell duplicates the socket onto stdin
  const d = s.apply(sc(1, 'dup2', [3, 0], 0));
  assert.equal(d.fd?.rport, 4444);
});

test('decodeArgs names arguments like Falco', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/bin/sh', ['sh']));
  const e = s.apply(sc(1, 'openat', [-100, 0, 0o1101, 0o600], 3, { path: '/etc/cron.d/x' }));
  const a = decodeArgs(e);
  assert.equal(a['name'], '/etc/cron.d/x');
  assert.equal(a['flags'], 'O_WRONLY|O_CREAT|O_TRUNC');
  assert.equal(a['mode'], '0600');
  assert.equal(a['fd'], 3);
  const failed = decodeArgs(s.apply(sc(1, 'mount', [0, 0, 0, 0], -1, { path: 'none', path2: '/mnt' })));
  assert.equal(failed['res'], 'EPERM');
  assert.equal(failed['dir'], '/mnt');
});

test('an exec of a relative path gets an absolute exe', () => {
  const s = new SemanticState({ initialCwd: '/home/user' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  s.apply(sc(1, 'chdir', [0], 0, { path: '/tmp/work' }));
  const e = s.apply(exec(1, './stage2', ['./stage2']));
  assert.equal(e.proc.exe, '/tmp/work/stage2');
  assert.equal(e.path, '/tmp/work/stage2');
});

test('cwd: one per process, kept on ProcessInfo; the same value relative paths resolve against', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  assert.equal(s.apply(exec(1, '/bin/sh', ['sh'])).proc.cwd, '/root');
  s.apply(fork(1, 2));
  s.apply(sc(1, 'chdir', [0], 0, { path: 'work/' }));
  assert.equal(s.process(1)?.cwd, '/root/work', 'relative chdir from the old cwd, no trailing slash kept');
  assert.equal(s.process(2)?.cwd, '/root', 'the child forked before keeps its copy');
  s.apply(sc(1, 'chdir', [0], -2, { path: '/nonexistent' }));
  assert.equal(s.process(1)?.cwd, '/root/work', 'a failed chdir changes nothing');
  s.apply(fork(1, 3));
  const o = s.apply(sc(3, 'openat', [-100, 0, 0], 3, { path: '../x' }));
  assert.equal(o.proc.cwd, '/root/work');
  assert.equal(o.path, '/root/x');
  s.apply(exec(3, '/usr/bin/cat', ['cat']));
  assert.equal(s.process(3)?.cwd, '/root/work', 'exec keeps the cwd');
  // fchdir: to a directory fd of known path; to an fd never seen opened, the cwd becomes unknown.
  s.apply(sc(3, 'openat', [-100, 0, 0o200000], 4, { path: '/var/log' }));
  s.apply(sc(3, 'fchdir', [4], 0));
  assert.equal(s.process(3)?.cwd, '/var/log');
  s.apply(sc(3, 'fchdir', [9], 0));
  assert.equal(s.process(3)?.cwd, undefined);
  assert.equal(s.apply(sc(3, 'openat', [-100, 0, 0], 5, { path: 'y' })).path, 'y', 'unknown cwd: the path stays relative');
  // A process first seen mid-life, without a start directory, has no cwd; a relative initialCwd is not one.
  assert.equal(new SemanticState().apply(sc(9, 'getpid', [], 9)).proc.cwd, undefined);
  assert.equal(new SemanticState({ initialCwd: 'rel' }).apply(sc(9, 'getpid', [], 9)).proc.cwd, undefined);
});

test('container identity and image reach every process, the first one and forked ones alike', () => {
  const image = { name: 'debian:bookworm', id: '0123456789ab' };
  const s = new SemanticState({ containerId: 'c1', containerName: 'n1', containerImage: image });
  s.apply(exec(1, '/bin/sh', ['sh']));
  s.apply(fork(1, 2));
  for (const pid of [1, 2]) {
    const p = s.process(pid);
    assert.equal(p?.containerId, 'c1');
    assert.equal(p?.containerName, 'n1');
    assert.equal(p?.containerImage, image);
  }
  assert.equal('containerImage' in (new SemanticState().apply(exec(1, '/bin/sh', ['sh'])).proc), false, 'no image given: none invented');
});

test('a process found mid-life takes the program the capture named (`running`); an exec or a known program wins', () => {
  const s = new SemanticState();
  const first = s.apply(sc(30, 'read', [0, 0, 0], 0, { comm: 'python3', running: { exe: '/usr/bin/python3.11', argv: ['python3', 'svc.py'] } }));
  assert.equal(first.proc.exe, '/usr/bin/python3.11');
  assert.deepEqual(first.proc.argv, ['python3', 'svc.py']);
  assert.equal(first.proc.name, 'python3');
  // its children run it too, until they exec
  s.apply(fork(30, 31));
  assert.equal(s.process(31)?.exe, '/usr/bin/python3.11');
  // a process whose program is known is not renamed by a later `running`
  s.apply(exec(32, '/usr/bin/ls', ['ls']));
  assert.equal(s.apply(sc(32, 'read', [0, 0, 0], 0, { running: { exe: '/usr/bin/other', argv: [] } })).proc.exe, '/usr/bin/ls');
});

test('copy provenance: a program run from a copy, move or link of another file knows the file it came from', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  // cp: each block written exactly as read
  s.apply(fork(1, 2));
  s.apply(exec(2, '/usr/bin/cp', ['cp', '/usr/bin/python3', '/tmp/update']));
  s.apply(sc(2, 'openat', [-100, 0, 0], 3, { path: '/usr/bin/python3' }));
  s.apply(sc(2, 'openat', [-100, 0, 0o1101], 4, { path: '/tmp/update' }));
  s.apply(sc(2, 'read', [3, 0, 131072], 131072));
  s.apply(sc(2, 'write', [4, 0, 131072], 131072));
  s.apply(fork(1, 3));
  assert.equal(s.apply(exec(3, '/tmp/update', ['update'])).proc.exeCopiedFrom, '/usr/bin/python3');
  // a child of the copy runs the same file
  s.apply(fork(3, 4));
  assert.equal(s.process(4)?.exeCopiedFrom, '/usr/bin/python3');
  // an exec of an untouched program forgets it
  assert.equal(s.apply(exec(4, '/usr/bin/id', ['id'])).proc.exeCopiedFrom, undefined);

  // the chain is followed to its start: a rename of the copy, then a relative hard link to that
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/tmp/update', path2: '/tmp/.u' }));
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/tmp/.u', path2: 'kworker' }));
  s.apply(fork(1, 5));
  assert.equal(s.apply(exec(5, '/root/kworker', ['kworker'])).proc.exeCopiedFrom, '/usr/bin/python3');
  // a symlink's relative target is its own directory's
  s.apply(sc(1, 'symlinkat', [0, -100, 0], 0, { path: '../bin/bash', path2: '/usr/sbin/cron' }));
  s.apply(fork(1, 6));
  assert.equal(s.apply(exec(6, '/usr/sbin/cron', ['cron'])).proc.exeCopiedFrom, '/usr/bin/bash');

  // sendfile(out, in) and copy_file_range(in, _, out, ...)
  s.apply(sc(1, 'openat', [-100, 0, 0], 7, { path: '/usr/bin/perl' }));
  s.apply(sc(1, 'openat', [-100, 0, 0o101], 8, { path: '/tmp/a' }));
  s.apply(sc(1, 'sendfile', [8, 7, 0, 1 << 20], 4096));
  s.apply(sc(1, 'openat', [-100, 0, 0o101], 9, { path: '/tmp/b' }));
  s.apply(sc(1, 'copy_file_range', [7, 0, 9, 0, 1 << 20, 0], 4096));
  s.apply(fork(1, 8));
  assert.equal(s.apply(exec(8, '/tmp/a', ['a'])).proc.exeCopiedFrom, '/usr/bin/perl');
  s.apply(fork(1, 9));
  assert.equal(s.apply(exec(9, '/tmp/b', ['b'])).proc.exeCopiedFrom, '/usr/bin/perl');
});

test('copy provenance: writes that are not what was just read, overwrites and removals leave no origin', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh', '/root/sample.sh']));
  // a shell reads its script, then writes a few bytes of its own into a file
  s.apply(sc(1, 'openat', [-100, 0, 0], 3, { path: '/root/sample.sh' }));
  s.apply(sc(1, 'read', [3, 0, 8192], 300));
  s.apply(sc(1, 'openat', [-100, 0, 0o1101], 4, { path: '/tmp/x' }));
  s.apply(sc(1, 'write', [4, 0, 12], 12));
  s.apply(fork(1, 2));
  assert.equal(s.apply(exec(2, '/tmp/x', ['x'])).proc.exeCopiedFrom, undefined);
  // a copy that is then overwritten (O_TRUNC) by other content is no longer a copy
  s.apply(sc(1, 'openat', [-100, 0, 0], 5, { path: '/usr/bin/python3' }));
  s.apply(sc(1, 'openat', [-100, 0, 0o1101], 6, { path: '/tmp/y' }));
  s.apply(sc(1, 'read', [5, 0, 4096], 4096));
  s.apply(sc(1, 'write', [6, 0, 4096], 4096));
  s.apply(sc(1, 'openat', [-100, 0, 0o1101], 7, { path: '/tmp/y' }));
  s.apply(sc(1, 'write', [7, 0, 10], 10));
  s.apply(fork(1, 3));
  assert.equal(s.apply(exec(3, '/tmp/y', ['y'])).proc.exeCopiedFrom, undefined);
  // removed, then created anew
  s.apply(sc(1, 'symlinkat', [0, -100, 0], 0, { path: '/usr/bin/python3', path2: '/tmp/z' }));
  s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: '/tmp/z' }));
  s.apply(fork(1, 4));
  assert.equal(s.apply(exec(4, '/tmp/z', ['z'])).proc.exeCopiedFrom, undefined);
  // a failed copy (the write failed) names nothing
  s.apply(sc(1, 'openat', [-100, 0, 0o1101], 8, { path: '/tmp/w' }));
  s.apply(sc(1, 'read', [5, 0, 4096], 4096));
  s.apply(sc(1, 'write', [8, 0, 4096], -28));
  s.apply(fork(1, 5));
  assert.equal(s.apply(exec(5, '/tmp/w', ['w'])).proc.exeCopiedFrom, undefined);
});
