// The strace parser on every line form strace prints: hand-written edge lines, and real output of
// real commands traced here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StraceParser, argValue, decodeCString, parseSockaddr, splitArgs } from './parser.js';
import type { ExecEvent, ExitEvent, ForkEvent, SockAddr, SyscallEvent, TraceEvent } from '../events.js';
import { syscallNumber } from '../../semantics/syscalls.js';

function parse(text: string, opts: ConstructorParameters<typeof StraceParser>[0] = {}): { evs: TraceEvent[]; p: StraceParser } {
  const p = new StraceParser(opts);
  // Feed in odd-sized chunks: lines split across reads must not matter.
  const evs: TraceEvent[] = [];
  for (let i = 0; i < text.length; i += 7) evs.push(...p.push(text.slice(i, i + 7)));
  evs.push(...p.end());
  return { evs, p };
}
const sys = (evs: TraceEvent[], name: string) => evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.name === name);

test('helpers: argument splitting, escapes, numeric values, sockaddrs', () => {
  assert.deepEqual(splitArgs('AT_FDCWD</tmp>, "/a, b", O_RDONLY|O_CLOEXEC'), ['AT_FDCWD</tmp>', '"/a, b"', 'O_RDONLY|O_CLOEXEC']);
  assert.deepEqual(splitArgs('0x7ffe /* 3 vars, really */, {a=1, b=[2, 3]}'), ['0x7ffe /* 3 vars, really */', '{a=1, b=[2, 3]}']);
  assert.equal(decodeCString('"a\\tb\\n\\"q\\"\\\\"'), 'a\tb\n"q"\\');
  assert.equal(decodeCString('"\\303\\251t\\303\\251"'), 'été');
  assert.equal(decodeCString('"\\xc3\\xa9"'), 'é');
  assert.equal(decodeCString('"\\0"'), '\0');
  assert.equal(argValue('O_WRONLY|O_CREAT|O_TRUNC'), 0o1101);
  assert.equal(argValue('AT_FDCWD</tmp/x>'), -100);
  assert.equal(argValue('3</etc/passwd>'), 3);
  assert.equal(argValue('0644'), 0o644);
  assert.equal(argValue('0x10'), 16);
  assert.equal(argValue('CLONE_VM|CLONE_THREAD|0x400000'), 0x100 | 0x10000 | 0x400000);
  assert.equal(argValue('"str"'), 0);
  assert.equal(argValue('NULL'), 0);
  assert.deepEqual(parseSockaddr('3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}, 16'),
    { family: 'inet', address: '1.2.3.4', port: 80 });
  assert.deepEqual(parseSockaddr('{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}'),
    { family: 'inet6', address: '2001:db8::1', port: 443 });
  assert.deepEqual(parseSockaddr('{sa_family=AF_UNIX, sun_path="/run/x.sock"}'), { family: 'unix', path: '/run/x.sock', abstract: false });
  assert.deepEqual(parseSockaddr('{sa_family=AF_UNIX, sun_path=@"abs\\0"}'), { family: 'unix', path: 'abs\0', abstract: true });
  assert.deepEqual(parseSockaddr('{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}'), { family: 'netlink', raw: 16 });
});

test('hand-written edge lines: every form strace prints', () => {
  const text = [
    '100 1700000000.000000 execve("/bin/sh", ["sh", "-c", "x"], 0x7ffc /* 3 vars */) = 0',
    '100 1700000000.000100 openat(AT_FDCWD</root>, "/etc/\\351t\\351", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</etc/\\351t\\351>',
    '100 1700000000.000200 openat(AT_FDCWD</root>, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)',
    '100 1700000000.000300 write(1</dev/pts/0<char 136:0>>, "aaaa"..., 4096) = 4096',
    '100 1700000000.000400 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>',
    '101 1700000000.000500 execve("/usr/bin/curl", ["curl", "http://x"], 0x5 /* 3 vars */ <unfinished ...>',
    '100 1700000000.000600 <... clone resumed>, child_tidptr=0x7f) = 101',
    '101 1700000000.000700 <... execve resumed>) = 0',
    '101 1700000000.000800 connect(3<TCP:[1234]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("1.2.3.4")}, 16) = -1 EINPROGRESS (Operation now in progress)',
    '101 1700000000.000850 accept4(3<TCP:[127.0.0.1:4444]>, {sa_family=AF_INET, sin_port=htons(5555), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4<TCP:[127.0.0.1:4444->127.0.0.1:5555]>',
    '101 1700000000.000860 sendmsg(5<UNIX-STREAM:[28646->28647,@"/tmp/.X11-unix/X0"]>, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="a\\\"b", iov_len=4}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, MSG_NOSIGNAL) = 4',
    '101 1700000000.000900 syscall_0x1c8(0x1, 0x2, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)',
    '101 1700000000.001000 read(3</x>,  <unfinished ...>',
    '101 1700000000.001100 <... read resumed>0x7ffd, 10) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)',
    '101 1700000000.001200 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=102, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---',
    '101 1700000000.001300 rt_sigreturn({mask=[]}) = 0',
    '101 1700000000.001400 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff00, tls=0x7f} => {parent_tid=[103]}, 88) = 103',
    '103 1700000000.001500 gettid() = 103',
    '103 1700000000.001600 +++ exited with 0 +++',
    '101 1700000000.001700 renameat2(AT_FDCWD</>, "/tmp/a", AT_FDCWD</>, "/tmp/b", RENAME_NOREPLACE) = 0',
    '101 1700000000.001800 exit_group(0) = ?',
    '101 1700000000.001900 +++ killed by SIGKILL (core dumped) +++',
    '100 1700000000.002000 wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 101',
    '100 1700000000.002100 nanosleep({tv_sec=100, tv_nsec=0},  <unfinished ...>',
    'strace: Process 100 detached',
    'this is not a strace line',
    '100 1700000000.002200 +++ exited with 3 +++',
  ].join('\n') + '\n';
  const { evs, p } = parse(text);
  assert.equal(p.parseErrors, 1, 'exactly the one garbage line is a parse error');
  assert.match(p.errorSamples[0] ?? '', /line 26: this is not a strace line/);
  assert.ok(p.notes.some((n) => /parsed/.test(n)), 'parse errors are reported in the notes');
  assert.equal(p.counts.detached, 1);

  const [exec0] = evs.filter((e): e is ExecEvent => e.type === 'exec');
  assert.deepEqual([exec0?.exe, exec0?.argv, exec0?.pid], ['/bin/sh', ['sh', '-c', 'x'], 100]);
  const opens = sys(evs, 'openat');
  assert.equal(opens[0]?.path, '/etc/\uFFFDt\uFFFD', 'non-UTF-8 bytes decode to U+FFFD, never crash');
  assert.deepEqual(opens[0]?.args, [-100, 0, 0o1101, 0o666]);
  assert.equal(opens[0]?.ret, 3);
  assert.equal(opens[1]?.ret, -2, 'ENOENT is -2');
  assert.equal(sys(evs, 'write')[0]?.ret, 4096, 'truncated strings and nested fd annotations parse');

  // The child's execve started before the parent's clone returned: the fork event still comes first.
  const i = (pred: (e: TraceEvent) => boolean) => evs.findIndex(pred);
  const forkI = i((e) => e.type === 'fork' && e.childPid === 101);
  const execI = i((e) => e.type === 'exec' && e.pid === 101);
  assert.ok(forkI >= 0 && execI > forkI, `fork (${forkI}) before the child's exec (${execI})`);
  const fork = evs[forkI] as ForkEvent;
  assert.deepEqual([fork.pid, fork.childTid, fork.thread], [100, 101, false]);
  assert.equal((evs[execI] as ExecEvent).exe, '/usr/bin/curl');
  assert.equal(sys(evs, 'connect')[0]?.ret, -115);
  assert.deepEqual(sys(evs, 'connect')[0]?.addr, { family: 'inet', address: '1.2.3.4', port: 80 });
  const acc = sys(evs, 'accept4')[0];
  assert.deepEqual([acc?.ret, acc?.args[0], acc?.args[3], acc?.addr], [4, 3, 0o2000000, { family: 'inet', address: '127.0.0.1', port: 5555 }]);
  assert.deepEqual([sys(evs, 'sendmsg')[0]?.ret, sys(evs, 'sendmsg')[0]?.args[0]], [4, 5], 'socket annotations with -> and commas stay one argument');
  const unknown = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.nr === 0x1c8);
  assert.ok(unknown, 'unknown syscall kept with its number');
  assert.equal(unknown.ret, -38);
  // SIGCHLD has no handler the trace showed, yet an rt_sigreturn follows: a handler ran, and its
  // frame restores read's number (0), so the kernel makes read again
  assert.deepEqual([sys(evs, 'read')[0]?.ret, sys(evs, 'read')[0]?.signal], [null, 'restarted'], 'ERESTARTSYS settled by the rt_sigreturn after it');
  const thread = evs.find((e): e is ForkEvent => e.type === 'fork' && e.thread);
  assert.deepEqual([thread?.pid, thread?.childPid, thread?.childTid], [101, 101, 103], 'clone3 with CLONE_THREAD is a thread of 101');
  assert.equal(sys(evs, 'gettid')[0]?.pid, 101, 'a thread reports its group id as pid');
  assert.equal(sys(evs, 'gettid')[0]?.tid, 103);
  const exits = evs.filter((e): e is ExitEvent => e.type === 'exit');
  assert.deepEqual(exits.map((e) => [e.pid, e.tid, e.code, e.signal, e.thread]),
    [[101, 103, 0, undefined, true], [101, 101, 137, 9, false], [100, 100, 3, undefined, false]]);
  assert.ok(p.notes.some((n) => /dumped core/.test(n)));
  const rn = sys(evs, 'renameat2')[0];
  assert.deepEqual([rn?.path, rn?.path2], ['/tmp/a', '/tmp/b']);
  assert.equal(sys(evs, 'exit_group')[0]?.ret, null);
  assert.equal(sys(evs, 'nanosleep')[0]?.ret, null, 'a call cut short by the exit is delivered with ret null');
  assert.ok(evs.indexOf(sys(evs, 'nanosleep')[0] as TraceEvent) < evs.findIndex((e) => e.type === 'exit' && e.pid === 100));
  // A call still unfinished when the trace ends (a detach) is delivered at end() and noted.
  const cut = parse('1 1.0 pause( <unfinished ...>\n');
  assert.deepEqual(cut.evs.map((e) => [e.type, e.type === 'syscall' ? e.ret : 0]), [['syscall', null]]);
  assert.ok(cut.p.notes.some((n) => /never returned/.test(n)));
  // seq is 1.. strictly increasing; ts is ns since the first line.
  assert.deepEqual(evs.map((e) => e.seq), evs.map((_, k) => k + 1));
  assert.equal(sys(evs, 'wait4')[0]?.ts, 2_000_000);
});

test('a script\'s exec reports the interpreter\'s argv, as the kernel builds it', () => {
  const heads: Record<string, string> = { '/tmp/s.sh': '#!/bin/sh\necho', '/tmp/p.py': '#! /usr/bin/env  python3 -u \n', '/bin/ls': '\x7fELF' };
  const { evs } = parse([
    '1 1.0 execve("/tmp/s.sh", ["/tmp/s.sh", "a"], 0x1 /* 1 var */) = 0',
    '1 1.1 execve("/tmp/p.py", ["p.py"], 0x1 /* 1 var */) = 0',
    '1 1.2 execve("/bin/ls", ["ls", "-l"], 0x1 /* 1 var */) = 0',
  ].join('\n'), { readHead: (p) => heads[p] });
  const ex = evs.filter((e): e is ExecEvent => e.type === 'exec');
  assert.deepEqual(ex.map((e) => e.argv), [['/bin/sh', '/tmp/s.sh', 'a'], ['/usr/bin/env', 'python3 -u', '/tmp/p.py'], ['ls', '-l']]);
  assert.deepEqual(sys(evs, 'execve')[0]?.argv, ['/tmp/s.sh', 'a'], 'the execve call keeps the argv it was given');
});

test('[pid N] prefixes (strace -f to stderr), -tt clock times, no pid column, i386 tasks', () => {
  const { evs, p } = parse([
    '10:00:00.000000 execve("/bin/true", ["true"], 0x1 /* 1 var */) = 0',
    '[pid  7] 10:00:00.500000 getpid() = 7',
    '[ Process PID=7 runs in 32 bit mode. ]',
    '[pid  7] 10:00:01.000000 getpid() = 7',
  ].join('\n'), { defaultTid: 7 });
  assert.equal(p.parseErrors, 0);
  assert.equal(evs[0]?.pid, 7);
  const gp = sys(evs, 'getpid');
  assert.deepEqual(gp.map((e) => [e.abi, e.nr, e.ts]), [['x86_64', 39, 500_000_000], ['i386', 20, 1_000_000_000]]);
});

test('pid namespace translation: strace --pidns-translation comments and the attach-time map', () => {
  const { evs } = parse([
    '5000 1.0 execve("/sample", ["/sample"], 0x1 /* 1 var */) = 0',
    '5000 1.1 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 2 /* 5001 in strace\'s PID NS */',
    '5001 1.2 getpid() = 2 /* 5001 in strace\'s PID NS */',
    '5001 1.3 +++ exited with 0 +++',
  ].join('\n'), { knownTids: [5000], nsPidOf: (t) => (t === 5000 ? 1 : undefined) });
  assert.deepEqual(evs.map((e) => [e.type, e.pid, e.tid]),
    [['exec', 1, 1], ['syscall', 1, 1], ['fork', 1, 1], ['syscall', 1, 1], ['syscall', 2, 2], ['exit', 2, 2]]);
  assert.equal((evs[2] as ForkEvent).childPid, 2);
});

test('skipUntilExecOf drops a runtime\'s set-up before the sample starts', () => {
  const { evs } = parse([
    '900 1.0 read(3</run/exec.fifo>, "0", 1) = 1',
    '901 1.0 futex(0x1, FUTEX_WAKE, 1) = 0',
    '900 1.1 execve("/home/user/sample", ["/home/user/sample"], 0x1 /* 1 var */) = 0',
    '901 1.1 +++ exited with 0 +++',
    '900 1.2 getpid() = 1',
  ].join('\n'), { knownTids: [900, 901], knownTgids: new Map([[900, 900], [901, 900]]), skipUntilExecOf: 900 });
  assert.deepEqual(evs.map((e) => e.type === 'syscall' ? e.name : e.type), ['exec', 'execve', 'getpid']);
});

test('real strace output of real commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-parser-'));
  try {
    const script = join(dir, 's.sh');
    writeFileSync(script, [
      `echo data > ${dir}/created`,
      `cat ${dir}/created /nonexistent-${process.pid} 2>/dev/null`,
      `mv ${dir}/created ${dir}/moved`,
      `rm ${dir}/moved`,
      `/usr/bin/python3 -c "import socket,threading\nt=threading.Thread(target=lambda:0); t.start(); t.join()\ns=socket.socket()\ntry: s.connect(('127.0.0.1', 9))\nexcept OSError: pass"`,
      'exit 7',
    ].join('\n'));
    const out = join(dir, 'trace.txt');
    const r = spawnSync('strace', ['-f', '-ttt', '-yy', '-s', '256', '-o', out, 'sh', script], { encoding: 'utf8' });
    assert.equal(r.status, 7, `strace ran the script: ${r.stderr}`);
    const { evs, p } = parse(readFileSync(out, 'latin1'));
    assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
    const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
    assert.deepEqual(execs.map((e) => e.argv[0]), ['sh', 'cat', 'mv', 'rm', '/usr/bin/python3']);
    assert.deepEqual(execs[1]?.argv, ['cat', `${dir}/created`, `/nonexistent-${process.pid}`]);
    const root = execs[0]?.pid;
    // Every exec'd child was announced by a fork from the shell before its first event.
    for (const ex of execs.slice(1)) {
      const f = evs.findIndex((e) => e.type === 'fork' && e.childPid === ex.pid);
      const first = evs.findIndex((e) => e.pid === ex.pid);
      assert.ok(f >= 0 && f < first, `fork of ${ex.argv[0]} precedes its events`);
      assert.equal((evs[f] as ForkEvent).pid, root);
    }
    const created = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.path === `${dir}/created` && (e.name === 'openat' || e.name === 'open'));
    assert.ok(created && created.ret !== null && created.ret >= 0 && (created.args[2] ?? 0) & 0o100, 'O_CREAT open of the file');
    const missing = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.path === `/nonexistent-${process.pid}`);
    assert.equal(missing?.ret, -2);
    const rename = evs.find((e): e is SyscallEvent => e.type === 'syscall' && /^rename/.test(e.name));
    assert.deepEqual([rename?.path, rename?.path2], [`${dir}/created`, `${dir}/moved`]);
    assert.ok(evs.some((e) => e.type === 'syscall' && e.name === 'unlinkat' && e.path === `${dir}/moved` && e.ret === 0));
    const conn = evs.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'connect' && e.addr?.family === 'inet');
    assert.deepEqual(conn?.addr, { family: 'inet', address: '127.0.0.1', port: 9 });
    assert.equal(conn?.ret, -111, 'ECONNREFUSED');
    assert.ok(evs.some((e) => e.type === 'fork' && e.thread), 'the python thread is a thread fork');
    const rootExit = evs.find((e): e is ExitEvent => e.type === 'exit' && e.pid === root && !e.thread);
    assert.equal(rootExit?.code, 7);
    for (const e of evs) if (e.type === 'syscall' && !e.name.startsWith('syscall_')) assert.equal(e.nr, syscallNumber(e.name), e.name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damaged input never throws: every cut-short or garbled line is counted, the rest parsed', () => {
  const good = [
    '7 1.0 execve("/bin/sh", ["sh", "-c", "x"], 0x1 /* 1 var */) = 0',
    '7 1.1 openat(AT_FDCWD</>, "/etc/a\\"b", O_RDONLY) = 3</etc/a"b>',
    '7 1.2 connect(3<TCP:[1]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
    '7 1.3 write(1</dev/null<char 1:3>>, "\\0\\1\\377"..., 3) = 3',
  ];
  // A fixed pseudo-random sequence: the same damage every run.
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const lines: string[] = [];
  let damaged = 0;
  for (let i = 0; i < 400; i++) {
    const l = good[rnd(good.length)] as string;
    const kind = rnd(4);
    if (kind === 0) { lines.push(`7 2.${i} ${l.slice(8, 8 + rnd(l.length - 8))}`); damaged++; }
    else if (kind === 1) { lines.push(l.replace(' = ', ' =?= ')); damaged++; }
    else lines.push(l);
  }
  const { evs, p } = parse(lines.join('\n') + '\n');
  assert.ok(p.parseErrors > 0 && p.parseErrors <= damaged, `${p.parseErrors} errors for ${damaged} damaged lines`);
  // Each line is exactly one call or one counted error: nothing silently dropped.
  const calls = evs.filter((e) => e.type === 'syscall').length;
  assert.equal(calls + p.parseErrors, lines.length);
  assert.ok(calls >= lines.length - damaged);
  assert.ok(evs.every((e, i) => e.seq === i + 1));
});

test('a call strace could not identify (???), started and resumed, is an unknown call, not a parse error', () => {
  const { evs, p } = parse([
    '6873  1795419306.705038 ???( <unfinished ...>',
    '6873  1795419306.705395 <... ??? resumed>) = ?',
    '6873  1795419306.705400 ???() = -1 ENOSYS (Function not implemented)',
  ].join('\n') + '\n');
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  assert.equal(p.parseErrors, 0, p.errorSamples.join("\n"));
  assert.deepEqual(calls.map((c) => [c.name, c.nr, c.ret]), [['syscall_unknown', -1, null], ['syscall_unknown', -1, -38]]);
});

// Lines printed by strace 6.1 on this machine (`strace -f -ttt -yy -s 32` or `-s 256`, python3
// ctypes issuing the calls); the PATH_MAX-long paths are rebuilt with repeat() to keep this file small.
const B4090 = 'b'.repeat(4090);
const C4090 = 'c'.repeat(4090);
const CUT_LINES = [
  // -s 32: an argv element cut at 32 bytes, and argv elements past the 32nd.
  `31184 1795423557.304961 execve("/bin/true", ["true", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"..., "y"], 0x7ffd13b33d88 /* 38 vars */) = 0`,
  `31184 1795423557.305490 execve("/nonexistent", ["/nonexistent", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "a12", "a13", "a14", "a15", "a16", "a17", "a18", "a19", "a20", "a21", "a22", "a23", "a24", "a25", "a26", "a27", "a28", "a29", "a30", ...], 0x7fff7461bf90 /* 35 vars */) = -1 ENOENT (No such file or directory)`,
  // Paths ignore -s: cut only past PATH_MAX - 1 bytes (a 5005-byte path), complete at 4095.
  `31184 1795423561.875090 openat(AT_FDCWD</tmp/h10>, "/tmp/${B4090}"..., O_RDONLY) = -1 ENAMETOOLONG (File name too long)`,
  `31184 1795423561.875164 openat(AT_FDCWD</tmp/h10>, "/tmp/${C4090}", O_RDONLY) = -1 ENAMETOOLONG (File name too long)`,
  `31184 1795423561.875233 rename("/tmp/${B4090}"..., "/tmp/x") = -1 ENAMETOOLONG (File name too long)`,
  // Bad pointers print as addresses.
  `31184 1795423561.875285 rename("/tmp/x", 0x1) = -1 EFAULT (Bad address)`,
  `31184 1795423561.875322 rename(0x1, "/tmp/x") = -1 EFAULT (Bad address)`,
  `31184 1795423557.304546 openat(AT_FDCWD</tmp/h10>, 0x1, O_RDONLY) = -1 EFAULT (Bad address)`,
  `31184 1795423612.875167 openat(AT_FDCWD</tmp/h10>, 0x7fbee7befff6, O_RDONLY) = -1 EFAULT (Bad address)`,
  `31184 1795423557.304633 execve(0x1, NULL, NULL) = -1 EFAULT (Bad address)`,
  `31184 1795423561.875393 execve("/nonexistent", ["true", 0x1], NULL) = -1 ENOENT (No such file or directory)`,
  `31184 1795423561.875431 execve("/nonexistent", 0x1, NULL) = -1 ENOENT (No such file or directory)`,
  // argv running into an unmapped page after two elements.
  `31184 1795423612.875089 execve("/nonexistent", ["true", "true", ... /* 0x7fbee7bf0000 */], NULL) = -1 ENOENT (No such file or directory)`,
  `31184 1795423557.304885 connect(3<UNIX-STREAM:[868984]>, 0x1, 16) = -1 EFAULT (Bad address)`,
  `31184 1795423612.879747 sendto(6<UDP:[876537]>, "x", 1, 0, 0x1, 16) = -1 EFAULT (Bad address)`,
  `31184 1795423612.879977 sendmsg(6<UDP:[876537]>, {msg_name=0x1, msg_namelen=16, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 EFAULT (Bad address)`,
  // An address longer than sockaddr_storage: strace shows its first 128 bytes.
  `31184 1795423767.054801 connect(3<UDP:[888794]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, 200) = -1 EINVAL (Invalid argument)`,
];
// The same forms that are complete: nothing may be marked on these (the echo and write lines edited short).
const WHOLE_LINES = [
  `3423  1795423778.745991 openat(AT_FDCWD</tmp/h10>, "/tmp/a...", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)`,
  `3423  1795423778.746360 execve("/bin/echo", ["echo", "...", "z"], 0x7fff6d020818 /* 35 vars */) = 0`,
  `3423  1795423612.877031 accept4(3<TCP:[127.0.0.1:37183]>, 0x7ffd5dd7ce90, [16], SOCK_CLOEXEC) = -1 EAGAIN (Resource temporarily unavailable)`,
  `3423  1795423612.879027 recvfrom(4<TCP:[127.0.0.1:41024->127.0.0.1:37183]>, "hi", 10, 0, 0x7ffd5dd7cdf0, [16 => 0]) = 2`,
  `3423  1795423612.879494 accept(3<TCP:[127.0.0.1:37183]>, 0x1, NULL) = -1 EAGAIN (Resource temporarily unavailable)`,
  `3423  1795423612.878946 sendto(5<TCP:[127.0.0.1:37183->127.0.0.1:41024]>, "hi", 2, 0, NULL, 0) = 2`,
  `3423  1795423612.878347 accept4(3<TCP:[127.0.0.1:37183]>, {sa_family=AF_INET, sin_port=htons(41024), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 5<TCP:[127.0.0.1:37183->127.0.0.1:41024]>`,
  `3423  1795423557.304703 connect(3<UNIX-STREAM:[868984]>, {sa_family=AF_UNIX, sun_path="/tmp/${'u'.repeat(90)}"}, 98) = -1 ENOENT (No such file or directory)`,
  // A data buffer cut at -s is not an argument the events carry.
  `3423  1795423612.880000 write(1</dev/null<char 1:3>>, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"..., 4096) = 4096`,
];

test('strace\'s cut strings and arrays, and its unread pointers, are marked as the eBPF probe marks them', () => {
  const { evs, p } = parse(CUT_LINES.join('\n') + '\n');
  assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  assert.equal(calls.length, CUT_LINES.length);
  const marks = calls.map((e) => [e.name, e.truncated ?? [], e.unreadable ?? []]);
  assert.deepEqual(marks, [
    ['execve', ['argv'], []],
    ['execve', ['argv'], []],
    ['openat', ['path'], []],
    ['openat', [], []],
    ['rename', ['path'], []],
    ['rename', [], ['path2']],
    ['rename', [], ['path']],
    ['openat', [], ['path']],
    ['openat', [], ['path']],
    ['execve', [], ['path']],
    ['execve', [], ['argv']],
    ['execve', [], ['argv']],
    ['execve', [], ['argv']],
    ['connect', [], ['addr']],
    ['sendto', [], ['addr']],
    ['sendmsg', [], ['addr']],
    ['connect', ['addr'], []],
  ]);
  // The values: a cut value is the prefix strace printed; an unread one is absent, not empty.
  const [trueExec, many, longOpen, fullOpen, longRename, badTo, badFrom, badOpen] = calls;
  assert.deepEqual(trueExec?.argv, ['true', 'x'.repeat(32), 'y']);
  assert.equal(many?.argv?.length, 32);
  assert.equal(longOpen?.path, `/tmp/${B4090}`);
  assert.equal(longOpen?.path?.length, 4095);
  assert.equal(fullOpen?.path, `/tmp/${C4090}`);
  assert.equal(longRename?.path2, '/tmp/x');
  assert.equal(badTo?.path, '/tmp/x');
  assert.equal(badTo?.path2, undefined);
  assert.equal(badFrom?.path, undefined);
  assert.equal(badFrom?.path2, '/tmp/x');
  assert.equal(badOpen?.path, undefined);
  assert.deepEqual(calls[10]?.argv, ['true'], 'argv stops at the unreadable element');
  assert.equal(calls[11]?.argv, undefined);
  assert.deepEqual(calls[12]?.argv, ['true', 'true']);
  assert.deepEqual(calls[16]?.addr, { family: 'inet', address: '127.0.0.1', port: 80 });
  // The successful exec carries the cut on its exec event too.
  const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
  assert.equal(execs.length, 1);
  assert.deepEqual(execs[0]?.truncated, ['argv']);
  assert.equal(execs[0]?.unreadable, undefined);
});

test('complete arguments carry no marks: literal dots, a failed accept\'s pointer, an empty recvfrom address', () => {
  const { evs, p } = parse(WHOLE_LINES.join('\n') + '\n');
  assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  assert.equal(calls.length, WHOLE_LINES.length);
  for (const e of calls) {
    assert.equal(e.truncated, undefined, `${e.name} marked truncated`);
    assert.equal(e.unreadable, undefined, `${e.name} marked unreadable`);
  }
  assert.equal(calls[0]?.path, '/tmp/a...');
  assert.deepEqual(calls[1]?.argv, ['echo', '...', 'z']);
  const exec = evs.find((e): e is ExecEvent => e.type === 'exec');
  assert.ok(exec && exec.truncated === undefined && exec.unreadable === undefined);
});

test('recvmsg names its sender from msg_name only, and marks a sender cut at the caller\'s room; a datagram that reads like an address is none', () => {
  // strace 6.1's lines for the four calls of test/samples/udp_recvmsg.sh (and a 4-byte room)
  const fake = '{iov_base="{sa_family=AF_INET, sin_port=htons(7), sin_addr=inet_addr(\\"6.6.6.6\\")}", iov_len=256}';
  const lines = [
    `9 1795423612.1 recvmsg(3<UDP:[876537]>, {msg_name={sa_family=AF_INET, sin_port=htons(4446), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=128 => 16, msg_iov=[{iov_base="beacon", iov_len=256}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 6`,
    `9 1795423612.2 recvmsg(3<UDP:[876537]>, {msg_name=NULL, msg_namelen=0, msg_iov=[${fake}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 69`,
    `9 1795423612.3 recvmsg(3<UDP:[876537]>, {msg_name=0x7f6fca177830, msg_namelen=0 => 16, msg_iov=[${fake}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 69`,
    `9 1795423612.4 recvmsg(3<UDP:[876537]>, {msg_name={sa_family=AF_INET, sa_data="\\202\\23"}, msg_namelen=4 => 16, msg_iov=[{iov_base="sin_port=htons(7)", iov_len=256}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 17`,
    // a connected socket's data read with recvfrom and no address asked for, and sent with sendmsg
    `9 1795423612.5 recvfrom(3<UDP:[876537]>, "{sa_family=AF_INET, sin_port=htons(7), sin_addr=inet_addr(\\"6.6.6.6\\")}", 256, 0, NULL, NULL) = 69`,
    `9 1795423612.6 sendmsg(3<UDP:[876537]>, {msg_name=NULL, msg_namelen=0, msg_iov=[${fake}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 69`,
    // a msghdr strace could not read back (another thread unmapped it): the sender is unreadable; a failed call has none
    `9 1795423612.7 recvmsg(3<UDP:[876537]>, 0x7f6fca170000, 0) = 6`,
    `9 1795423612.8 recvmsg(3<UDP:[876537]>, 0x8, 0) = -1 EFAULT (Bad address)`,
  ];
  const { evs, p } = parse(lines.join('\n') + '\n');
  assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  assert.deepEqual(calls.map((e) => [e.name, e.addr ?? null, e.truncated ?? [], e.unreadable ?? []]), [
    ['recvmsg', { family: 'inet', address: '127.0.0.1', port: 4446 }, [], []],
    ['recvmsg', null, [], []],
    ['recvmsg', null, ['addr'], []], // room for none: the kernel copied none of its 16 bytes
    ['recvmsg', { family: 'inet', address: '', port: 0 }, ['addr'], []],
    ['recvfrom', null, [], []],
    ['sendmsg', null, [], []],
    ['recvmsg', null, [], ['addr']],
    ['recvmsg', null, [], []],
  ]);
});

test('sendmmsg names each sent message\'s destination and recvmmsg each received message\'s sender, from their own headers only', () => {
  // strace 6.1's lines for test/samples/udp_mmsg.sh, plus the ret rules and what strace could not read
  const to = (port: number) => `{sa_family=AF_INET, sin_port=htons(${port}), sin_addr=inet_addr("127.0.0.1")}`;
  const fake = '{iov_base="{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(7), sin_addr=inet_addr(\\"6.6.6.6\\")}", iov_len=64}';
  const sent = (name: string, len = 16) => `{msg_hdr={msg_name=${name}, msg_namelen=${len}, msg_iov=[${fake}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=5}`;
  const got = (name: string, lens: string) => `{msg_hdr={msg_name=${name}, msg_namelen=${lens}, msg_iov=[${fake}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=5}`;
  const many = Array.from({ length: 20 }, () => sent(to(9))).join(', ');
  const lines = [
    `9 1795423612.1 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${sent(to(4448))}, ${sent(to(4449))}, ${sent(to(4448))}], 3, 0) = 3`,
    `9 1795423612.2 recvmmsg(3<UDP:[127.0.0.1:4448]>, [${got(to(4450), '128 => 16')}, ${got('NULL', '0')}, ${got(to(4451), '128 => 16')}], 4, MSG_DONTWAIT, NULL) = 3`,
    // a connected socket: no message names a destination
    `9 1795423612.3 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${sent('NULL', 0)}, ${sent('NULL', 0)}], 2, 0) = 2`,
    // two of three sent: the third was never sent; a failure: only the first was tried
    `9 1795423612.4 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${sent(to(1))}, ${sent(to(2))}, ${sent(to(3))}], 3, 0) = 2`,
    `9 1795423612.5 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${sent(to(4))}, ${sent(to(5))}], 2, 0) = -1 EPERM (Operation not permitted)`,
    // 20 messages: 16 addresses, marked cut; a sender cut at a 4-byte room, and room for none
    `9 1795423612.6 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${many}], 20, 0) = 20`,
    `9 1795423612.7 recvmmsg(3<UDP:[127.0.0.1:4448]>, [${got('{sa_family=AF_INET, sa_data="\\202\\23"}', '4 => 16')}, ${got('0x7f6fca177830', '0 => 16')}], 2, 0, NULL) = 2`,
    // a header strace could not read: the list ends there; a failed recvmmsg has none
    `9 1795423612.8 sendmmsg(5<UDP:[127.0.0.1:4450]>, [${sent(to(6))}, ${sent('0x7f6fca170000')}], 2, 0) = 2`,
    `9 1795423612.9 sendmmsg(5<UDP:[127.0.0.1:4450]>, 0x7f6fca170000, 2, 0) = 2`,
    `9 1795423613.0 recvmmsg(3<UDP:[127.0.0.1:4448]>, 0x7f6fca170000, 2, 0, NULL) = -1 EFAULT (Bad address)`,
  ];
  const { evs, p } = parse(lines.join('\n') + '\n');
  assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  const port = (a: SockAddr | null) => (a === null ? null : 'port' in a ? a.port : a.family);
  assert.deepEqual(calls.map((e) => [e.name, e.addrs?.map(port) ?? null, e.truncated ?? [], e.unreadable ?? [], e.addr ?? null]), [
    ['sendmmsg', [4448, 4449, 4448], [], [], null],
    ['recvmmsg', [4450, null, 4451], [], [], null],
    ['sendmmsg', [null, null], [], [], null],
    ['sendmmsg', [1, 2], [], [], null],
    ['sendmmsg', [4], [], [], null],
    ['sendmmsg', Array.from({ length: 16 }, () => 9), ['addr'], [], null],
    ['recvmmsg', [0, null], ['addr'], [], null],
    ['sendmmsg', [6], [], ['addr'], null],
    ['sendmmsg', null, [], ['addr'], null],
    ['recvmmsg', null, [], [], null],
  ]);
  // `msg_namelen=128 => 16` closes nothing: the arguments after the vector are its own
  assert.deepEqual([calls[1]?.args.length, calls[1]?.args[2]], [5, 4]);
});

test('fd annotations close where strace closes them: a path ending in = or holding ( [ { stays one argument; a socket\'s -> does not close it', () => {
  // strace 6.1 -yy: a path escapes <, > (\76) and quotes, not ( [ { =; sockets print -> and quoted paths
  const lines = [
    `7 1795423612.1 openat(3</tmp/d=>, "../../etc/shadow", O_RDONLY) = 4</etc/shadow>`,
    `7 1795423612.2 openat(4</tmp/wd/b(>, "x", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)`,
    `7 1795423612.3 openat(5</tmp/wd/c\\"q[{>, "y", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)`,
    `7 1795423612.4 openat(6</tmp/wd/d\\76e>, "z", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)`,
    `7 1795423612.5 write(8</memfd:a=> (deleted)>, "\\177ELF", 4) = 4`,
    `7 1795423612.6 sendto(9<UNIX-DGRAM:[28646->28647,"/run/a>b"]>, "x", 1, 0, NULL, 0) = 1`,
    `7 1795423612.7 execveat(8</memfd:a=> (deleted)>, "", ["kworker"], 0x7ffd0000 /* 0 vars */, AT_EMPTY_PATH) = 0`,
  ];
  const { evs, p } = parse(lines.join('\n') + '\n');
  assert.equal(p.parseErrors, 0, p.errorSamples.join('\n'));
  const calls = evs.filter((e): e is SyscallEvent => e.type === 'syscall');
  assert.deepEqual(calls.map((e) => [e.name, e.args[0], e.path ?? null, e.ret]), [
    ['openat', 3, '../../etc/shadow', 4],
    ['openat', 4, 'x', -2],
    ['openat', 5, 'y', -2],
    ['openat', 6, 'z', -2],
    ['write', 8, null, 4],
    ['sendto', 9, null, 1],
    ['execveat', 8, '', 0],
  ]);
  assert.ok(evs.some((e) => e.type === 'exec'), 'the fileless exec is an exec event');
});

test('unfinished and resumed lines out of order: no call is dropped, each such line is counted with its number', () => {
  // as a log stitched together out of order: resumed lines without their start, an unfinished
  // call started again (the replay test imports the same file)
  const { evs, p } = parse(readFileSync(new URL('../../../test/fixtures/traces/strace-out-of-order.log', import.meta.url), 'utf8'));
  const calls = (pid: number) => evs.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === pid).map((e) => [e.name, e.args[0], e.ret]);
  // each read never resumed is a call that never returned, in its place: before the task's next call
  assert.deepEqual(calls(100), [['execve', 0, 0], ['read', 3, 3], ['openat', undefined, 4], ['read', 4, null], ['read', 5, null], ['open', 0, 3], ['exit_group', 0, null]]);
  assert.deepEqual(calls(101), [['write', 0, 2], ['write', 1, null]]);
  assert.equal(p.parseErrors, 0);
  assert.equal(p.outOfOrder, 4);
  assert.deepEqual(p.outOfOrderSamples.map((s) => s.line), [3, 5, 7, 8]);
  assert.match(p.outOfOrderSamples[2]?.message ?? '', /^read\(\.\.\. <unfinished \.\.\.> is never resumed: task 100 goes on with read\( \(line 8\); kept as a call that never returned \(ret null\)$/);
  assert.match(p.outOfOrderSamples[1]?.message ?? '', /^<\.\.\. openat resumed> without its start/);
  assert.ok(p.notes.some((n) => n.startsWith('4 strace line(s) out of order')), p.notes.join('\n'));
  assert.ok(evs.every((e, i) => e.seq === i + 1));
});

test('a thread that execs takes its leader\'s tid: its execve resumed under the leader\'s tid is the same call, whole', () => {
  // strace -f of a python thread calling os.execv (strace 6.1)
  const { evs, p } = parse([
    '14247 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 5 vars */) = 0',
    '14247 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff00, tls=0x7f} => {parent_tid=[14301]}, 88) = 14301',
    '14247 futex(0x7f, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_ANY <unfinished ...>',
    '14301 execve("/bin/true", ["true"], 0x7fff3fb92b98 /* 38 vars */ <unfinished ...>',
    '14247 <... futex resumed>)              = ?',
    '14247 +++ superseded by execve in pid 14301 +++',
    '14247 <... execve resumed>)             = 0',
    '14247 exit_group(0) = ?',
    '14247 +++ exited with 0 +++',
  ].join('\n') + '\n');
  assert.equal(p.outOfOrder, 0, p.outOfOrderSamples.map((s) => s.message).join('\n'));
  const execs = sys(evs, 'execve');
  assert.deepEqual(execs.map((e) => [e.pid, e.tid, e.path, e.ret]), [[14247, 14247, '/usr/bin/python3', 0], [14247, 14247, '/bin/true', 0]]);
  assert.deepEqual(evs.filter((e): e is ExecEvent => e.type === 'exec').map((e) => e.exe), ['/usr/bin/python3', '/bin/true']);
  assert.ok(!p.notes.some((n) => /never returned/.test(n)), p.notes.join('\n'));
});

test('a utime-family times argument strace decoded is a pointer that was not NULL (1), NULL is 0: set times and "now" stay apart', () => {
  const { evs } = parse([
    '100 utimensat(0, NULL, [{tv_sec=1663687647, tv_nsec=0} /* 2022-09-20T15:27:27+0000 */, {tv_sec=1663687647, tv_nsec=0}], 0) = 0',
    '100 utimensat(AT_FDCWD, "/tmp/x", NULL, 0) = 0',
    '100 futimesat(AT_FDCWD, "/tmp/y", [{tv_sec=1, tv_usec=0}, {tv_sec=2, tv_usec=0}]) = 0',
    '100 utime("/tmp/z", {actime=1, modtime=2}) = 0',
    '100 utimes("/tmp/z", NULL) = 0',
    '',
  ].join('\n'));
  assert.deepEqual(sys(evs, 'utimensat').map((e) => [e.args.slice(0, 4), e.path]), [[[0, 0, 1, 0], undefined], [[-100, 0, 0, 0], '/tmp/x']]);
  assert.deepEqual(sys(evs, 'futimesat')[0]?.args.slice(0, 3), [-100, 0, 1]);
  assert.deepEqual(sys(evs, 'utime')[0]?.args.slice(0, 2), [0, 1]);
  assert.deepEqual(sys(evs, 'utimes')[0]?.args.slice(0, 2), [0, 0]);
});
