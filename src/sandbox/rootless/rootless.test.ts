// The rootless sandbox for real, as an unprivileged user (nobody via setpriv when the test runs as
// root): host files invisible, host loopback unreachable, the timeout kills everything, and the
// ptrace capture yields a report-worthy event stream in the sandbox's own pid numbering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunOnce } from './run-once.js';
import type { ExecEvent, SyscallEvent } from '../../capture/events.js';
import { rootlessGuarantees } from './index.js';
import { baseImageDir, DECOY_PATHS } from '../image.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RUN = join(ROOT, 'src/sandbox/rootless/run-once.ts');
const TSX = join(ROOT, 'node_modules/tsx/dist/esm/index.mjs');

/**
 * Run one rootless analysis in a child process, as nobody when we are root. A child that has not
 * exited long after its timeout is killed and run once more: Node can deadlock in its own runtime
 * (a CI run hung 50 minutes with every thread of the child in a futex wait and nothing of ours on
 * the stack; nodejs/node#54918, tsx's loader thread), which is no finding about the sandbox, while
 * a second hang still fails the test, in bounded time.
 */
async function runUnprivileged(sample: string, args: string[], timeout = 20, pids?: number, interpreter?: string, dns?: 'nxdomain'): Promise<RunOnce> {
  try {
    return await runChild(sample, args, timeout, pids, interpreter, dns);
  } catch (e) {
    if (!(e instanceof ChildHung)) throw e;
    return runChild(sample, args, timeout, pids, interpreter, dns);
  }
}

class ChildHung extends Error {}

function runChild(sample: string, args: string[], timeout: number, pids?: number, interpreter?: string, dns?: 'nxdomain'): Promise<RunOnce> {
  const cmd = process.getuid?.() === 0
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath]
    : [process.execPath];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0] as string, [...cmd.slice(1), '--import', TSX, RUN, `--timeout=${timeout}`, ...(pids ? [`--pids=${pids}`] : []), ...(interpreter ? [`--interpreter=${interpreter}`] : []), ...(dns ? [`--dns=${dns}`] : []), sample, ...args], {
      cwd: tmpdir(), env: { ...process.env, HOME: tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let hung = false;
    const watchdog = setTimeout(() => { hung = true; p.kill('SIGKILL'); }, (timeout + 90) * 1000);
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (code) => {
      clearTimeout(watchdog);
      if (hung) { reject(new ChildHung(`rootless run did not exit ${timeout + 90} s after it started: killed. ${err.trim()}`)); return; }
      if (code !== 0) { reject(new Error(`rootless run failed (${code}): ${err.trim()}`)); return; }
      try { resolve(JSON.parse(out) as RunOnce); } catch (e) { reject(new Error(`bad output: ${(e as Error).message}: ${out.slice(0, 200)} ${err}`)); }
    });
  });
}

test('rootless: as nobody, host files are invisible, host loopback unreachable, events are report-worthy', async () => {
  assert.ok(existsSync(join(baseImageDir(), 'rootfs', 'bin', 'sh')), `base image missing at ${baseImageDir()}: run make setup`);
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-marker-'));
  chmodSync(dir, 0o755);
  const marker = join(dir, 'host-marker');
  writeFileSync(marker, 'host secret\n', { mode: 0o644 });
  // A listener on the host's loopback the sample must not reach.
  const server = createServer((s) => s.end('hello\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await runUnprivileged(join(ROOT, 'test/samples/rootless_probe.sh'), [marker, String(port)]);
    assert.notEqual(r.uid, 0, 'ran unprivileged');
    assert.match(r.result.console, /marker: invisible/);
    assert.match(r.result.console, /net: unreachable/);
    assert.match(r.result.console, /uid: 1000/, 'the sample runs as the image\'s user');
    assert.equal(r.result.exitCode, 0);
    assert.equal(r.result.timedOut, false);
    assert.equal(r.stats.parseErrors, 0, r.stats.notes.join('\n'));
    assert.equal(r.stats.lost, 0);
    const execs = r.events.filter((e): e is ExecEvent => e.type === 'exec');
    assert.equal(execs[0]?.exe, r.info.samplePath, 'the sample is the first program run');
    assert.ok(execs[0] && execs[0].pid !== 1 && r.info.hiddenPid === 1, 'under the init, pid 1 of the namespace, whose events are hidden');
    assert.ok(!r.events.some((e) => e.pid === 1));
    assert.ok(execs.some((e) => e.exe === '/bin/ls' && e.argv.join(' ') === '/bin/ls /'));
    const open = r.events.find((e): e is SyscallEvent => e.type === 'syscall' && e.path === marker);
    assert.equal(open?.ret, -2, 'the marker open failed with ENOENT');
    const conn = r.events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'connect' && e.addr?.family === 'inet');
    assert.deepEqual(conn?.addr, { family: 'inet', address: '127.0.0.1', port });
    assert.ok(r.events.every((e) => e.pid < 100), 'pids are the sandbox\'s, not the host\'s');
    assert.deepEqual(r.changes.map((c) => [c.path, c.change, c.size]), [['/tmp/probe-out', 'created', 8]]);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: the DNS sinkhole answers in the sample\'s own namespace, though sandtrace is not root: names listed, each its own address, the connect to it caught inside the namespace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'c2.sh');
  writeFileSync(sample, `#!/bin/sh
getent ahostsv4 c2.example.test
python3 -c "
import socket
try: socket.create_connection(('gulf.moneroocean.stream', 443), timeout=3)
except OSError as e: print('connect:', e.errno)
"
`, { mode: 0o755 });
  try {
    const r = await runUnprivileged(sample, []);
    assert.notEqual(r.uid, 0, 'ran unprivileged');
    assert.equal(r.dns.unavailable, undefined);
    const a = (name: string) => r.dns.queries.find((q) => q.name === name && q.type === 'A');
    assert.match(a('c2.example.test')?.answer ?? '', /^198\.1[89]\.\d+\.\d+$/, JSON.stringify(r.dns));
    assert.match(r.result.console, new RegExp(`^${(a('c2.example.test')?.answer ?? '-').replace(/\./g, '\\.')} +STREAM c2\\.example\\.test$`, 'm'), 'the sample got the answer');
    const pool = a('gulf.moneroocean.stream');
    assert.ok(pool?.answer && pool.answer !== a('c2.example.test')?.answer, 'each name its own address');
    const conn = r.events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'connect' && e.addr?.family === 'inet' && e.addr.port === 443);
    assert.deepEqual(conn && [conn.addr, conn.ret], [{ family: 'inet', address: pool.answer, port: 443 }, -115], 'EINPROGRESS: python connects without blocking when it has a timeout');
    assert.doesNotMatch(r.result.console, /^connect:/m, 'the connection was made');
    // caught by sandtrace inside the namespace; without root the namespace's conntrack table is
    // unreadable, so the sandbox leaves the port to the report (which takes the connect's)
    assert.deepEqual(r.dns.sessions?.map((c) => [c.address, c.port, c.domain, c.protocol]), [[pool.answer, null, 'gulf.moneroocean.stream', 'none']]);
    // the rootless sandbox passes --dns on as the root one does
    const nx = await runUnprivileged(sample, [], 20, undefined, undefined, 'nxdomain');
    const nxA = nx.dns.queries.filter((q) => q.type === 'A');
    assert.ok(['c2.example.test', 'gulf.moneroocean.stream'].every((n) => nxA.some((q) => q.name === n)), JSON.stringify(nxA));
    assert.ok(nxA.every((q) => q.answer === null && q.rcode === 'NXDOMAIN'), JSON.stringify(nxA));
    assert.match(nx.result.console, /^connect: -[23]$/m, 'the lookup failed (EAI_NONAME or EAI_AGAIN), no connect was made');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: a sample that forks children sleeping forever is killed at the timeout, nothing left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'sleeper.sh');
  writeFileSync(sample, '#!/bin/sh\nsleep 1000 & sleep 1000 & echo started; wait\n', { mode: 0o755 });
  try {
    const t0 = Date.now();
    const r = await runUnprivileged(sample, [], 2);
    assert.ok(Date.now() - t0 < 20_000, 'ended soon after the 2 s timeout');
    assert.equal(r.result.timedOut, true);
    assert.equal(r.result.signal, 9);
    const sleepers = r.events.filter((e): e is ExecEvent => e.type === 'exec' && e.argv[0] === 'sleep');
    assert.equal(sleepers.length, 2);
    // No process of that run survives: every sleep 1000 on the host is someone else's (none expected).
    const { readdirSync, readFileSync } = await import('node:fs');
    const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u00001000\u0000'; } catch { return false; }
    });
    assert.deepEqual(left, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: file_ops.sh creates, modifies, deletes and renames; changes() reports it like the root sandbox', async () => {
  const r = await runUnprivileged(join(ROOT, 'test/samples/file_ops.sh'), []);
  assert.equal(r.result.exitCode, 0, r.result.console);
  assert.match(r.result.console, /file ops done/);
  const ch = r.changes.map((c) => [c.path, c.change]).sort();
  assert.deepEqual(ch, [
    ['/etc/issue.net', 'deleted'], ['/etc/motd', 'modified'], ['/tmp/created.txt', 'created'], ['/tmp/renamed.txt', 'created'],
  ]);
  const created = r.changes.find((c) => c.path === '/tmp/created.txt');
  assert.equal(created?.sha256, createHash('sha256').update('created\n').digest('hex'));
  assert.ok(r.events.some((e) => e.type === 'syscall' && e.name === 'unlinkat' && e.path === '/etc/issue.net' && e.ret === 0));
});

test('rootless: the decoy credentials are in the home as in the root sandbox; reading them is in the capture, and they are no file change', async () => {
  const r = await runUnprivileged(join(ROOT, 'test/samples/read_secrets.sh'), []);
  assert.equal(r.result.exitCode, 0, r.result.console);
  assert.match(r.result.console, /^-----BEGIN RSA PRIVATE KEY-----\n2\n$/m, r.result.console);
  for (const path of ['/home/user/.ssh/id_rsa', '/home/user/.aws/credentials']) {
    assert.ok(r.events.some((e) => e.type === 'syscall' && e.name === 'openat' && e.path === path && (e.ret ?? -1) >= 0), `${path} opened`);
  }
  assert.deepEqual(r.changes, []);
  // every decoy the image plants in the user's home is there, readable by the sample's user only
  const home = DECOY_PATHS.filter((p) => p.startsWith('/home/user/'));
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rootless-decoys-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'decoys.sh');
  writeFileSync(sample, `#!/bin/sh\nfor f in ${home.join(' ')}; do [ -s "$f" ] && stat -c '%a %u %n' "$f"; done\n`, { mode: 0o755 });
  try {
    const d = await runUnprivileged(sample, []);
    const listed = d.result.console.trim().split('\n');
    assert.deepEqual(listed.map((l) => l.split(' ')[2]), home, d.result.console);
    assert.ok(listed.every((l) => / 1000 /.test(l)), d.result.console);
    assert.ok(listed.find((l) => l.endsWith('/.ssh/id_rsa'))?.startsWith('600 '), d.result.console);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: the task cap stops a fork storm inside the sandbox', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'storm.sh');
  writeFileSync(sample, '#!/bin/sh\ni=0\nwhile [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null\necho spawned\nexit 0\n', { mode: 0o755 });
  try {
    const r = await runUnprivileged(sample, [], 3, 20);
    const forks = r.events.filter((e) => e.type === 'fork' && !e.thread).length;
    assert.ok(forks > 0 && forks < 20, `${forks} children with a cap of 20 tasks`);
    const failed = r.events.filter((e) => e.type === 'syscall' && /^(clone|clone3|fork|vfork)$/.test(e.name) && e.ret === -11);
    assert.ok(failed.length > 0, 'further forks failed with EAGAIN, visible in the events');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: memory is capped per process at the memory limit: a 1 GiB allocation fails, a 100 MiB one works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-mem-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'hog.sh');
  writeFileSync(sample, `#!/bin/sh
python3 -c '
for mib in (100, 1024):
    try:
        b = bytearray(mib << 20); print(mib, "ok"); del b
    except MemoryError:
        print(mib, "refused")
'
`, { mode: 0o755 });
  try {
    const r = await runUnprivileged(sample, []);
    assert.match(r.result.console, /^100 ok\n1024 refused\n$/m, r.result.console);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: the root sandbox\'s seccomp policy holds: mount, bpf, modules, unshare, ptrace, namespace clones, keyrings, io_uring fail with EPERM', async () => {
  // keyctl and io_uring_setup succeed for an unprivileged user anywhere else: only the filter refuses them
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rootless-seccomp-'));
  chmodSync(dir, 0o755);
  const sample = join(dir, 'escape.sh');
  writeFileSync(sample, `#!/bin/sh
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
calls = [('mount', 165, (b'none', b'/mnt', b'tmpfs', 0, None)), ('bpf', 321, (0, 0, 0)),
         ('init_module', 175, (None, 0, b'')), ('unshare', 272, (0x10000000,)), ('ptrace', 101, (0, 0, 0, 0)),
         ('clone_newns', 56, (0x00020000 | 17, 0, 0, 0, 0)), ('keyctl', 250, (0, -3, 0, 0, 0)),
         ('io_uring_setup', 425, (8, params)), ('clone3', 435, (None, 0)), ('x32_getpid', 0x40000000 + 39, ())]
for name, nr, args in calls:
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    print(name, r, ctypes.get_errno())
pid = os.fork()
if pid == 0:
    os._exit(7)
print('fork', os.waitpid(pid, 0)[1] >> 8)
PY
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
`, { mode: 0o755 });
  try {
    const r = await runUnprivileged(sample, []);
    const c = r.result.console;
    for (const name of ['mount', 'bpf', 'init_module', 'unshare', 'ptrace', 'clone_newns', 'keyctl', 'io_uring_setup', 'x32_getpid']) {
      assert.match(c, new RegExp(`^${name} -1 1$`, 'm'), `${name} must fail with EPERM:\n${c}`);
    }
    assert.match(c, /^clone3 -1 38$/m, 'clone3: ENOSYS, so that libc falls back to clone');
    assert.match(c, /^fork 7$/m, 'a plain fork still works');
    assert.match(c, /NoNewPrivs:\s+1/);
    assert.match(c, /Seccomp:\s+2/);
    // the refused attempts are in the capture as failed calls
    const keyctl = r.events.find((e): e is SyscallEvent => e.type === 'syscall' && e.name === 'keyctl');
    assert.equal(keyctl?.ret, -1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless guarantees name what is weaker than the root sandbox', () => {
  const g = rootlessGuarantees();
  assert.ok(g.weaker.some((w) => /cgroup/.test(w)));
  assert.ok(g.weaker.some((w) => /eBPF/.test(w)));
  assert.ok(!g.weaker.some((w) => /seccomp/.test(w)));
  assert.ok(g.guarantees.some((w) => /^seccomp: /.test(w)));
  assert.ok(g.guarantees.some((w) => /loopback only/.test(w)));
  assert.ok(g.guarantees.some((w) => /DNS answered by sandtrace's sinkhole/.test(w)));
  assert.ok(g.guarantees.some((w) => /^TLS caught there is answered .* certificate authority that sandtrace made in memory/.test(w)));
});

test('rootless: sparse files past the hashing budget are listed with their size and first bytes, unhashed, in bounded time', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-sparse-'));
  try {
    const sample = join(dir, 'sparse.sh');
    // eight files of the 256 MiB size cap, all holes but their first bytes: 2 GiB to read, twice
    // the budget (each used to be read whole, and a sample can make as many as it likes)
    writeFileSync(sample, '#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8; do printf MZ > /tmp/s$i; truncate -s 256M /tmp/s$i; done\n');
    chmodSync(sample, 0o755);
    chmodSync(dir, 0o755);
    const r = await runUnprivileged(sample, []);
    const files = r.changes.filter((c) => /^\/tmp\/s\d$/.test(c.path));
    assert.equal(files.length, 8, JSON.stringify(r.changes));
    assert.ok(files.every((c) => c.size === 256 << 20));
    const unhashed = files.filter((c) => c.sha256 === null);
    assert.ok(unhashed.length >= 4 && unhashed.every((c) => c.unhashed === true), JSON.stringify(files.map((c) => [c.path, c.sha256])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: changes() is the root sandbox\'s walk: a FIFO the sample makes is listed, a seeded file it grows is modified, its dropped payload is hashed and copied', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rl-walk-'));
  try {
    const sample = join(dir, 'walk.sh');
    writeFileSync(sample, '#!/bin/sh\nmkfifo /tmp/fifo\nprintf "x" >> /etc/hostname\nprintf "\\177ELF payload" > /tmp/payload\n');
    chmodSync(sample, 0o755);
    chmodSync(dir, 0o755);
    const r = await runUnprivileged(sample, []);
    assert.equal(r.result.exitCode, 0, r.result.console);
    assert.deepEqual(r.changes.map((c) => [c.path, c.change]), [['/etc/hostname', 'modified'], ['/tmp/fifo', 'created'], ['/tmp/payload', 'created']]);
    const p = r.changes.find((c) => c.path === '/tmp/payload');
    assert.equal(p?.sha256, createHash('sha256').update('\x7fELF payload').digest('hex'));
    assert.ok(p?.copy !== undefined && !p.truncated);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: a script without #! runs as `/bin/sh SCRIPT ARGS`, the interpreter the analysis chose', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rootless-sh-'));
  try {
    const script = join(dir, 'bins.sh');
    writeFileSync(script, 'printf "%s" "$1" > /tmp/arg\n');
    chmodSync(dir, 0o755);
    chmodSync(script, 0o644);
    const r = await runUnprivileged(script, ['x86'], 20, undefined, '/bin/sh');
    const first = r.events.find((e): e is ExecEvent => e.type === 'exec');
    assert.deepEqual(first?.argv, ['/bin/sh', '/tmp/bins.sh', 'x86']);
    assert.equal(r.result.exitCode, 0);
    assert.ok(r.changes.some((c) => c.path === '/tmp/arg' && c.size === 3), JSON.stringify(r.changes.map((c) => c.path)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rootless: a sample that forks into the background and exits does not take its child with it (it runs under the init, not as pid 1): the child\'s file is there', async () => {
  const r = await runUnprivileged(join(ROOT, 'test/samples/daemonize.sh'), [], 20);
  assert.equal(r.result.timedOut, false);
  assert.ok(r.events.some((e) => e.type === 'exec' && e.exe.endsWith('/cat')), 'the child ran cat after the sample exited');
  assert.deepEqual(r.changes.map((c) => [c.path, c.change, c.size]), [['/tmp/daemon.out', 'created', 'alive\n'.length]]);
});
