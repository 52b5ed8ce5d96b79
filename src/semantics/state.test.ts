import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyscallEvent, TraceEvent } from '../capture/events.js';
import { syscallNumber } from './syscalls.js';
import { SemanticState, ttyNumber } from './state.js';
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

test('sockets: an IPv6 socket that carries IPv4 (an IPv4-mapped peer, as Java\'s sockets and dual-stack servers have) is an IPv4 one, as Falco shows it; a true IPv6 peer stays IPv6', () => {
  const s = new SemanticState();
  s.apply(exec(1, '/usr/bin/java', ['java', '-jar', 'bot.jar']));
  s.apply(sc(1, 'socket', [10, 1, 0], 3));
  const c = s.apply(sc(1, 'connect', [3, 0, 28], -115, { addr: { family: 'inet6', address: '::ffff:198.18.0.1', port: 80 } }));
  assert.deepEqual([c.fd?.type, c.fd?.rip, c.fd?.name], ['ipv4', '198.18.0.1', '0.0.0.0:0->198.18.0.1:80']);
  // a server bound to [::]:8080 accepts an IPv4 client: that connection is IPv4, its own address 0.0.0.0
  s.apply(sc(1, 'socket', [10, 1, 0], 4));
  s.apply(sc(1, 'bind', [4, 0, 28], 0, { addr: { family: 'inet6', address: '::', port: 8080 } }));
  s.apply(sc(1, 'listen', [4, 16], 0));
  const a = s.apply(sc(1, 'accept4', [4, 0, 0, 0], 5, { addr: { family: 'inet6', address: '::ffff:198.51.100.3', port: 5555 } }));
  assert.deepEqual([a.fd?.type, a.fd?.rip, a.fd?.name], ['ipv4', '198.51.100.3', '198.51.100.3:5555->0.0.0.0:8080']);
  // and an IPv6 client of the same server stays IPv6
  const b = s.apply(sc(1, 'accept4', [4, 0, 0, 0], 6, { addr: { family: 'inet6', address: '2001:db8::9', port: 5556 } }));
  assert.deepEqual([b.fd?.type, b.fd?.name], ['ipv6', '[2001:db8::9]:5556->[::]:8080']);
  s.apply(sc(1, 'socket', [10, 2, 0], 7));
  const u = s.apply(sc(1, 'connect', [7, 0, 28], 0, { addr: { family: 'inet6', address: '2001:db8:1::7', port: 7000 } }));
  assert.deepEqual([u.fd?.type, u.fd?.l4proto, u.fd?.name], ['ipv6', 'udp', '0.0.0.0:0->[2001:db8:1::7]:7000']);
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

test('a working directory deeper than the longest name kept costs bounded work per call; names in it stay relative, and climbing out with .. is still exact', () => {
  // mkdir+chdir of 250-character names, 20000 deep (5 MB): joined whole on every call, the work grows with the square of the depth
  const s = new SemanticState({ initialCwd: '/tmp' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  const dir = 'd'.repeat(250);
  const t0 = Date.now();
  let last = s.apply(sc(1, 'getpid', [], 1));
  for (let i = 0; i < 20000; i++) {
    s.apply(sc(1, 'mkdir', [0, 0o755], 0, { path: dir }));
    s.apply(sc(1, 'chdir', [0], 0, { path: dir }));
    last = s.apply(sc(1, 'openat', [-100, 0, 0o101], 3, { path: 'f' }));
  }
  const ms = Date.now() - t0;
  assert.ok(ms < 5000, `20000 levels took ${ms} ms`);
  assert.equal(last.path, 'f', 'a name past the longest kept stays as given, as for an unknown cwd');
  assert.equal(s.process(1)?.cwd, undefined, 'no 5 MB cwd on the process (and in the report)');
  // 20001 levels up from the deepest (under /tmp): the kernel's lookup reaches /etc/shadow; so does the name
  const up = `${'../'.repeat(20001)}etc/shadow`;
  assert.equal(s.apply(sc(1, 'openat', [-100, 0, 0], 4, { path: up })).path, '/etc/shadow');
  assert.equal(s.apply(sc(1, 'openat', [-100, 0, 0], 5, { path: `${'../'.repeat(19999)}x/../y/` })).path, `/tmp/${dir}/y`);
  s.apply(sc(1, 'chdir', [0], 0, { path: `${'../'.repeat(19990)}.` }));
  assert.equal(s.process(1)?.cwd, `/tmp/${Array(10).fill(dir).join('/')}`, 'back under the longest kept: the cwd is known again');
  assert.equal(s.apply(sc(1, 'openat', [-100, 0, 0], 6, { path: 'g' })).path, `/tmp/${Array(10).fill(dir).join('/')}/g`);
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

test('a process found mid-life takes the program and terminal the capture named (`running`); an exec or a known program wins', () => {
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
  // a shell found on a terminal (taken before the capture attached) keeps it, and its children too
  const shell = s.apply(sc(40, 'read', [0, 0, 0], 0, { running: { exe: '/usr/bin/bash', argv: ['bash'], tty: 34817 } }));
  assert.equal(shell.proc.tty, 34817);
  s.apply(fork(40, 41));
  assert.equal(s.process(41)?.tty, 34817);
  assert.equal(first.proc.tty, 0, 'one found without a terminal has none');
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

// ---- what a name names: Falco's normalization, /proc's magic links, symlinks, renames, hard links ----

const open = (s: SemanticState, pid: number, path: string, ret: number, flags = 0, dirfd = -100) =>
  s.apply(sc(pid, 'openat', [dirfd, 0, flags, 0], ret, { path }));

test('names are normalized as Falco does: no //, /./, /../ and no trailing / (fd.name and fs.path.name)', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  assert.equal(open(s, 1, '//root//.aws/./credentials', 3).fd?.name, '/root/.aws/credentials');
  assert.equal(open(s, 1, '/root/../root/.ssh/id_rsa', 4).fd?.name, '/root/.ssh/id_rsa');
  // a trailing slash (ENOTDIR on a file) is no part of the name, as in libsinsp's concatenate_paths
  const failed = open(s, 1, '/etc/shadow/', -20);
  assert.equal(failed.fd?.name, '/etc/shadow');
  assert.equal(failed.path, '/etc/shadow');
  assert.equal(open(s, 1, '.ssh//', 5, 0o200000).fd?.name, '/root/.ssh');
  assert.equal(s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: '/tmp/d///' })).path, '/tmp/d');
  assert.equal(open(s, 1, '/', 6).fd?.name, '/');
  // nothing resolved, nothing to add: a name that is the file's own carries no real name
  assert.equal(open(s, 1, '/etc/passwd', 7).fd?.real, undefined);
  assert.equal(open(s, 1, '/proc/self/status', 8).fd?.real, undefined);
});

test('/proc/self/root, /proc/PID/root, /proc/thread-self, /proc/self/cwd, /proc/PID/cwd, /proc/self/fd/N and /dev/fd/N name the file they lead to', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  const real = (e: ReturnType<SemanticState['apply']>) => e.fd?.real;
  assert.equal(real(open(s, 1, '/proc/self/root/etc/shadow', 3)), '/etc/shadow');
  assert.equal(real(open(s, 1, '/proc/1/root/root/.aws/credentials', 4)), '/root/.aws/credentials');
  assert.equal(real(open(s, 1, '/proc/thread-self/root/etc/shadow', 5)), '/etc/shadow');
  assert.equal(real(open(s, 1, '/proc/1/task/1/root//etc/./gshadow', 6)), '/etc/gshadow');
  // a relative name in /proc/self
  s.apply(sc(1, 'chdir', [0], 0, { path: '/proc/self' }));
  assert.equal(real(open(s, 1, 'root/etc/shadow', 7)), '/etc/shadow');
  s.apply(sc(1, 'chdir', [0], 0, { path: '/root/.ssh' }));
  const cwd = open(s, 1, '/proc/self/cwd/id_rsa', 8);
  assert.equal(cwd.fd?.name, '/proc/self/cwd/id_rsa', 'fd.name stays the name as given');
  assert.equal(cwd.fd?.real, '/root/.ssh/id_rsa');
  assert.equal(s.apply(sc(1, 'newfstatat', [-100, 0, 0, 0], 0, { path: '/proc/self/cwd/../.aws/credentials' })).real, '/root/.aws/credentials',
    "'..' after a magic link is taken from where it leads (fs.path.realname)");
  // another process's cwd and descriptors
  s.apply(fork(1, 2));
  assert.equal(real(open(s, 2, '/proc/1/cwd/id_rsa', 3)), '/root/.ssh/id_rsa');
  const dir = open(s, 1, '/root/.aws', 9, 0o10000000 /* O_PATH */);
  assert.equal(dir.fd?.real, undefined);
  assert.equal(real(open(s, 1, '/proc/self/fd/9/credentials', 10)), '/root/.aws/credentials');
  assert.equal(real(open(s, 1, '/dev/fd/9/credentials', 11)), '/root/.aws/credentials');
  assert.equal(real(open(s, 2, '/proc/1/fd/9/credentials', 4)), '/root/.aws/credentials');
  open(s, 1, '/etc/shadow', 12, 0o10000000);
  assert.equal(real(open(s, 1, '/proc/self/fd/12', 13)), '/etc/shadow', 'reopening an O_PATH descriptor');
  assert.equal(real(open(s, 1, '/dev/stdin', 0)), undefined, 'a descriptor of unknown kind leaves the name as it is');
  // an openat relative to a descriptor opened through a magic link
  const d = open(s, 1, '/proc/self/root/root/.ssh', 14, 0o200000);
  assert.equal(d.fd?.real, '/root/.ssh');
  assert.equal(real(open(s, 1, 'id_rsa', 15, 0, 14)), '/root/.ssh/id_rsa');
  // fchdir to it: /proc/self/cwd and relative names follow
  s.apply(sc(1, 'fchdir', [14], 0));
  assert.equal(real(open(s, 1, 'id_rsa', 16)), '/root/.ssh/id_rsa');
  // a pid nobody has: left as it is
  assert.equal(real(open(s, 1, '/proc/4242/root/etc/shadow', 17)), undefined);
});

test('symlinks the sample makes: to a file or folder, chained, relative, through a chdir, with .. after them; loops end', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  const symlink = (target: string, link: string, ret = 0) => s.apply(sc(1, 'symlinkat', [0, -100, 0], ret, { path: target, path2: link }));
  const real = (path: string, ret = 3) => open(s, 1, path, ret).fd?.real;
  const made = symlink('/root/.aws/credentials', '/tmp/l');
  assert.equal(made.path, '/root/.aws/credentials', 'fs.path.name of a symlink stays its target as written');
  assert.equal(real('/tmp/l'), '/root/.aws/credentials');
  symlink('/root/.aws', '/tmp/d');
  assert.equal(real('/tmp/d/credentials'), '/root/.aws/credentials');
  assert.equal(real('/tmp/d/'), '/root/.aws', 'a trailing slash follows the link');
  // chains, and a relative target is its own directory's
  symlink('/etc/shadow', '/tmp/a');
  symlink('/tmp/a', '/tmp/b');
  assert.equal(real('/tmp/b'), '/etc/shadow');
  s.apply(sc(1, 'chdir', [0], 0, { path: '/tmp' }));
  const rel = symlink('../root/.ssh/id_rsa', 'r');
  assert.equal(rel.real, '/root/.ssh/id_rsa', 'fs.path.realname of a symlink: its target from the link\'s directory');
  assert.equal(real('r'), '/root/.ssh/id_rsa');
  symlink('../../etc', '/tmp/w/e');
  assert.equal(real('/tmp/w/e/shadow'), '/etc/shadow');
  // '..' is taken after following: /tmp/s is /root/.ssh, so /tmp/s/.. is /root (the textual name says /tmp)
  symlink('/root/.ssh', '/tmp/s');
  const dotdot = open(s, 1, '/tmp/s/../.aws/credentials', 3);
  assert.equal(dotdot.fd?.name, '/tmp/.aws/credentials');
  assert.equal(dotdot.fd?.real, '/root/.aws/credentials');
  // cd through a symlink: relative names and /proc/self/cwd are in the folder it leads to
  s.apply(sc(1, 'chdir', [0], 0, { path: '/tmp/s' }));
  assert.equal(s.process(1)?.cwd, '/tmp/s', 'proc.cwd stays as given');
  assert.equal(real('id_rsa'), '/root/.ssh/id_rsa');
  assert.equal(real('/proc/self/cwd/id_rsa'), '/root/.ssh/id_rsa');
  // a relative symlink made relative to a directory descriptor
  const dirfd = open(s, 1, '/tmp/w', 20, 0o200000).fd!.num;
  s.apply(sc(1, 'symlinkat', [0, dirfd, 0], 0, { path: '../s/id_rsa', path2: 'k' }));
  assert.equal(real('/tmp/w/k'), '/root/.ssh/id_rsa');
  // lstat and readlink name the link itself; stat follows it
  assert.equal(s.apply(sc(1, 'newfstatat', [-100, 0, 0, 0x100], 0, { path: '/tmp/l' })).real, undefined);
  assert.equal(s.apply(sc(1, 'newfstatat', [-100, 0, 0, 0], 0, { path: '/tmp/l' })).real, '/root/.aws/credentials');
  assert.equal(open(s, 1, '/tmp/l', -40, 0o400000).fd?.real, undefined, 'O_NOFOLLOW');
  // loops end (ELOOP): the name is left as it is
  symlink('/tmp/loop2', '/tmp/loop1');
  symlink('/tmp/loop1', '/tmp/loop2');
  assert.equal(real('/tmp/loop1/x', -40), undefined);
  // a failed symlink makes nothing; unlinking one forgets it; a new one replaces it
  symlink('/etc/shadow', '/tmp/nope', -17);
  assert.equal(real('/tmp/nope'), undefined);
  s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: '/tmp/l' }));
  assert.equal(real('/tmp/l'), undefined);
  symlink('/etc/hostname', '/tmp/a');
  assert.equal(real('/tmp/b'), '/etc/hostname');
  // a child inherits nothing of it but sees the same filesystem
  s.apply(fork(1, 2));
  assert.equal(open(s, 2, '/tmp/d/credentials', 3).fd?.real, '/root/.aws/credentials');
});

test('renames and hard links: the file keeps the name it had before them (fd.realname); removing the name forgets it', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  const real = (path: string) => open(s, 1, path, 3).fd?.real;
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/etc/shadow', path2: '/tmp/h' }));
  assert.equal(real('/tmp/h'), '/etc/shadow');
  assert.equal(real('/etc/shadow'), undefined, 'the original name is its own');
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/tmp/h', path2: '/tmp/h2' }));
  assert.equal(real('/tmp/h2'), '/etc/shadow', 'a chain names its start');
  assert.equal(real('/tmp/h'), undefined);
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/root/.aws/credentials', path2: '/tmp/m' }));
  assert.equal(real('/tmp/m'), '/root/.aws/credentials');
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/tmp/m', path2: '/root/.aws/credentials' }));
  assert.equal(real('/root/.aws/credentials'), undefined, 'moved back: its own name again');
  // a folder moves with what is in it
  s.apply(sc(1, 'rename', [0, 0], 0, { path: '/root/.ssh', path2: '/tmp/s' }));
  assert.equal(real('/tmp/s/id_rsa'), '/root/.ssh/id_rsa');
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/etc/gshadow', path2: '/tmp/dir/g' }));
  s.apply(sc(1, 'rename', [0, 0], 0, { path: '/tmp/dir', path2: '/tmp/dir2' }));
  assert.equal(real('/tmp/dir2/g'), '/etc/gshadow');
  // a symlink moved or hard-linked is still a symlink
  s.apply(sc(1, 'symlinkat', [0, -100, 0], 0, { path: '/etc/shadow', path2: '/tmp/l' }));
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/tmp/l', path2: '/tmp/lh' }));
  assert.equal(real('/tmp/lh'), '/etc/shadow');
  s.apply(sc(1, 'rename', [0, 0], 0, { path: '/tmp/l', path2: '/tmp/l2' }));
  assert.equal(real('/tmp/l2'), '/etc/shadow');
  assert.equal(real('/tmp/l'), undefined);
  // ... and with AT_SYMLINK_FOLLOW the link is to the file itself
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0x400], 0, { path: '/tmp/l2', path2: '/tmp/lf' }));
  assert.equal(real('/tmp/lf'), '/etc/shadow');
  // removed, the name is free again; a failed link makes nothing
  s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: '/tmp/h2' }));
  assert.equal(real('/tmp/h2'), undefined);
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], -1, { path: '/etc/shadow', path2: '/tmp/x' }));
  assert.equal(real('/tmp/x'), undefined);
  // RENAME_EXCHANGE swaps the two names
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/etc/shadow', path2: '/tmp/e1' }));
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 2], 0, { path: '/tmp/e1', path2: '/tmp/e2' }));
  assert.equal(real('/tmp/e2'), '/etc/shadow');
  assert.equal(real('/tmp/e1'), '/tmp/e2');
  // a hard link through a symlinked folder is to the file the folder holds
  s.apply(sc(1, 'symlinkat', [0, -100, 0], 0, { path: '/etc', path2: '/tmp/etc' }));
  s.apply(sc(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/tmp/etc/shadow-', path2: '/tmp/b' }));
  assert.equal(real('/tmp/b'), '/etc/shadow-');
});

test('a name made during the capture and moved into place is that name: mv\'s copy of a folder moved back is the folder', () => {
  const s = new SemanticState({ initialCwd: '/root' });
  s.apply(exec(1, '/bin/sh', ['sh']));
  const real = (path: string) => open(s, 1, path, 3).fd?.real;
  // mv /root/.ssh /tmp/s across filesystems: EXDEV, then a copy (mkdir, O_EXCL creates) and the originals removed
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], -18, { path: '/root/.ssh', path2: '/tmp/s' }));
  s.apply(sc(1, 'mkdirat', [-100, 0, 0o700], 0, { path: '/tmp/s' }));
  open(s, 1, '/tmp/s/id_rsa', 4, 0o301 /* O_WRONLY|O_CREAT|O_EXCL */);
  s.apply(sc(1, 'unlinkat', [-100, 0, 0], 0, { path: '/root/.ssh/id_rsa' }));
  s.apply(sc(1, 'unlinkat', [-100, 0, 0x200], 0, { path: '/root/.ssh' }));
  assert.equal(real('/tmp/s/id_rsa'), undefined, 'a copy is its own file');
  // mv /tmp/s /root/.ssh: the folder made as /tmp/s is now /root/.ssh, and nothing else
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/tmp/s', path2: '/root/.ssh' }));
  assert.equal(real('/root/.ssh/id_rsa'), undefined);
  s.apply(sc(1, 'chdir', [0], 0, { path: '/root/.ssh' }));
  assert.equal(real('/proc/self/cwd/id_rsa'), '/root/.ssh/id_rsa');
  // while a file that was there before keeps its name wherever it goes
  s.apply(sc(1, 'renameat2', [-100, 0, -100, 0, 0], 0, { path: '/root/.aws/credentials', path2: '/tmp/c' }));
  assert.equal(real('/tmp/c'), '/root/.aws/credentials');
});

test('utimensat(fd, NULL, times), as touch and os.utime(fd) call it, names the file the descriptor was opened on; with a path, the path', () => {
  const s = new SemanticState({ initialCwd: '/tmp' });
  s.apply(exec(1, '/usr/bin/python3', ['python3', '-']));
  s.apply(sc(1, 'openat', [-100, 0, 0o101, 0o755], 3, { path: '/usr/local/bin/dbus-launch' }));
  s.apply(sc(1, 'dup2', [3, 0], 0));
  assert.equal(s.apply(sc(1, 'utimensat', [3, 0, 0x7ffc0000, 0], 0)).path, '/usr/local/bin/dbus-launch');
  assert.equal(s.apply(sc(1, 'utimensat', [0, 0, 0x7ffc0000, 0], 0)).path, '/usr/local/bin/dbus-launch', 'through the dup2 copy (touch uses fd 0)');
  assert.equal(s.apply(sc(1, 'futimesat', [3, 0, 0x7ffc0000], 0)).path, '/usr/local/bin/dbus-launch');
  assert.equal(s.apply(sc(1, 'utimensat', [-100, 0x7ffd0000, 0x7ffc0000, 0], 0, { path: 'x' })).path, '/tmp/x');
  assert.equal(s.apply(sc(1, 'utimensat', [9, 0, 0x7ffc0000, 0], -9)).path, undefined, 'a descriptor it does not know: no name made up');
});

test('controlling terminal: a new session has none; ioctl TIOCSCTTY gives the terminal the descriptor names (a pseudo-terminal\'s unnamed other end reads as /dev/pts/0), a session leader opening one without O_NOCTTY takes it, children and execs keep it, TIOCNOTTY drops it', () => {
  assert.deepEqual([ttyNumber('/dev/pts/3'), ttyNumber('/dev/pts/300'), ttyNumber('/dev/tty2'), ttyNumber('/dev/ttyS0'), ttyNumber('/dev/null'), ttyNumber(undefined)], [34819, (137 << 8) | 44, 1026, 1088, 0, 0]);
  const s = new SemanticState();
  s.apply(exec(1, '/usr/bin/python3', ['python3']));
  s.apply(sc(1, 'openat', [-100, 0, 2, 0], 3, { path: '/dev/ptmx' }));
  s.apply(sc(1, 'ioctl', [3, 0x5441, 0x102], 4)); // TIOCGPTPEER: the other end, unnamed
  s.apply(fork(1, 2));
  s.apply(sc(2, 'ioctl', [4, 0x540e, 0], -1)); // not a session leader yet: EPERM
  assert.equal(s.process(2)?.tty, 0);
  s.apply(sc(2, 'setsid', [], 2));
  s.apply(sc(2, 'ioctl', [4, 0x540e, 0], 0));
  assert.equal(s.process(2)?.tty, 34816, 'the unnamed end reads as /dev/pts/0');
  assert.equal(s.process(1)?.tty, 0, 'the parent has none');
  const shell = s.apply(exec(2, '/bin/sh', ['/bin/sh']));
  assert.equal(shell.proc.tty, 34816, 'kept across exec');
  s.apply(fork(2, 5));
  assert.equal(s.process(5)?.tty, 34816, 'inherited');
  s.apply(sc(5, 'ioctl', [0, 0x5422, 0], 0)); // TIOCNOTTY
  assert.equal(s.process(5)?.tty, 0);
  // a new session that opens a terminal by name takes it, unless O_NOCTTY
  s.apply(fork(1, 3));
  s.apply(sc(3, 'setsid', [], 3));
  s.apply(sc(3, 'openat', [-100, 0, 0o402, 0], 5, { path: '/dev/pts/7' }));
  assert.equal(s.process(3)?.tty, 0, 'O_NOCTTY');
  s.apply(sc(3, 'openat', [-100, 0, 2, 0], 6, { path: '/etc/hostname' }));
  assert.equal(s.process(3)?.tty, 0, 'not a terminal');
  s.apply(sc(3, 'openat', [-100, 0, 2, 0], 7, { path: '/dev/pts/7' }));
  assert.equal(s.process(3)?.tty, 34823);
  s.apply(sc(3, 'ioctl', [5, 0x540e, 0], 0));
  assert.equal(s.process(3)?.tty, 34823, 'TIOCSCTTY through a named descriptor: its number');
  // not a session leader: opening a terminal gives nothing
  s.apply(fork(1, 4));
  s.apply(sc(4, 'openat', [-100, 0, 2, 0], 5, { path: '/dev/pts/9' }));
  assert.equal(s.process(4)?.tty, 0);
});
