// Containment of the runc sandbox, checked with the real runc, the real base image and real
// samples: host files, host network, escape syscalls, process lifetime, cleanup, exit status,
// console and file changes. Needs root and `make setup` (base image + shim).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync, lstatSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox, runDir, runcRoot, shimPath, CONSOLE_CAP, type SandboxOptions, type SandboxResult, type SandboxStartInfo, type FileChange } from '../src/sandbox/index.js';
import type { SandboxDns } from '../src/sandbox/types.js';
import { baseRootfs } from '../src/sandbox/image.js';
import { hierarchies, CGROUP_PARENT } from '../src/sandbox/cgroups.js';

const SAMPLES = new URL('./samples/', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'sandtrace-containment-'));

after(() => rmSync(scratch, { recursive: true, force: true }));

before(() => {
  assert.equal(process.getuid?.(), 0, 'containment tests need root');
  assert.ok(existsSync(shimPath()), `missing ${shimPath()}: run make setup`);
  baseRootfs(); // throws SANDBOX_IMAGE_MISSING with "run make setup"
});

function script(name: string, body: string): string {
  const p = join(scratch, name);
  writeFileSync(p, '#!/bin/sh\n' + body, { mode: 0o755 });
  return p;
}

interface Run { info: SandboxStartInfo; result: SandboxResult; changes: FileChange[]; outDir: string; workDir: string; id: string; pids: number[]; dns?: SandboxDns }

/** Runs one sample to the end; `during` sees the live container (cgroup members) before wait() returns. */
async function run(sample: string, opts: Partial<SandboxOptions> = {}, during?: (info: SandboxStartInfo) => Promise<number[]>): Promise<Run> {
  const sb = createSandbox({ sample, args: [], timeout: 20, ...opts });
  const outDir = mkdtempSync(join(scratch, 'out-'));
  const workDir = opts.workDir ?? join(runDir(), sb.id);
  try {
    const info = await sb.create();
    await sb.start();
    const pids = during ? await during(info) : [];
    const result = await sb.wait();
    const changes = await sb.changes(outDir);
    const dns = sb.dns?.();
    return { info, result, changes, outDir, workDir, id: sb.id, pids, ...(dns ? { dns } : {}) };
  } finally {
    await sb.destroy();
  }
}

/** A live (non-zombie) process that is still in container `id`. */
function aliveIn(pid: number, id: string): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z' && state !== 'X' && readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id);
  } catch {
    return false;
  }
}

function assertNothingLeft(r: Run): void {
  for (const h of hierarchies()) {
    const dir = join(h.mount, CGROUP_PARENT, r.id);
    assert.ok(!existsSync(dir), `cgroup dir left: ${dir}`);
  }
  assert.ok(!existsSync(r.workDir), `bundle/work dir left: ${r.workDir}`);
  assert.ok(!existsSync(join(runcRoot(), r.id)), 'runc state left');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(r.workDir), `mount left under ${r.workDir}`);
}

test('exit code, console (stdout+stderr) and argv are reported; nothing is left after destroy', async () => {
  const s = script('exit.sh', 'echo "out $1|$2"\necho err >&2\nexit 7\n');
  const sb = createSandbox({ sample: s, args: ['a b', 'c'], timeout: 20 });
  const info = await sb.create();
  assert.equal(info.samplePath, '/tmp/exit.sh');
  assert.ok(info.cgroupPath.startsWith('/sys/fs/cgroup/unified/sandtrace/'), info.cgroupPath);
  assert.ok(existsSync(info.cgroupPath), 'cgroup v2 dir exists after create');
  assert.ok(info.freezerPath && existsSync(join(info.freezerPath, 'freezer.state')), 'v1 freezer dir exists');
  // the init waits at the exec fifo: it is in the container's cgroup and has not run the sample
  const procs = readFileSync(join(info.cgroupPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  assert.deepEqual(procs, [info.hostPid]);
  await sb.start();
  const r = await sb.wait();
  await sb.destroy();
  await sb.destroy(); // idempotent
  assert.equal(r.exitCode, 7);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
  assert.match(r.console, /out a b\|c\n/);
  assert.match(r.console, /err\n/);
  assertNothingLeft({ info, result: r, changes: [], outDir: '', workDir: join(runDir(), sb.id), id: sb.id, pids: [] });
  assert.ok(!existsSync(`/proc/${info.hostPid}`) || !readFileSync(`/proc/${info.hostPid}/cgroup`, 'utf8').includes(sb.id), 'init gone');
});

test('a host file outside the image is invisible to the sample', async () => {
  const hostDir = mkdtempSync(join(tmpdir(), 'sandtrace-marker-'));
  const marker = join(hostDir, 'marker.txt');
  writeFileSync(marker, 'host secret\n');
  const s = script('marker.sh', `if [ -e '${marker}' ] || [ -e '${hostDir}' ]; then echo VISIBLE; else echo ABSENT; fi\ncat '${marker}' 2>&1 | head -1\nls /proc/1/root${hostDir} 2>&1 | head -1\n`);
  const r = await run(s);
  rmSync(hostDir, { recursive: true, force: true });
  assert.match(r.result.console, /^ABSENT\n/);
  assert.doesNotMatch(r.result.console, /host secret/);
  assert.match(r.result.console, /No such file or directory/);
  assertNothingLeft(r);
});

test('network: loopback only, up; the host loopback listener and datagram socket are unreachable; a connection or datagram off the box ends at sandtrace\'s catcher inside the namespace', async () => {
  let accepted = 0;
  const server = createServer((c) => { accepted++; c.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let received = 0;
  const udp = createSocket('udp4', () => { received++; });
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const udpPort = udp.address().port;
  const s = script('net.sh', [
    'echo "ifaces: $(ls /sys/class/net | tr "\\n" " ")"',
    'echo "loflags: $(cat /sys/class/net/lo/flags)"',
    'echo "routes: $(tail -n +2 /proc/net/route | wc -l)"',
    `if nc -z -w 2 127.0.0.1 ${port}; then echo HOST-REACHED; else echo host-unreachable; fi`,
    'if nc -z -w 2 192.0.2.1 80; then echo offbox-caught; else echo OFFBOX-FAILED; fi',
    `python3 -c "import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'to-host', ('127.0.0.1', ${udpPort})); u.sendto(b'off-box', ('192.0.2.1', 9999))"`,
    '',
  ].join('\n'));
  const r = await run(s);
  server.close();
  udp.close();
  assert.match(r.result.console, /ifaces: lo \n/);
  // IFF_UP (0x1) | IFF_LOOPBACK (0x8)
  const flags = Number(/loflags: (0x[0-9a-f]+)/.exec(r.result.console)?.[1]);
  assert.equal(flags & 0x9, 0x9, r.result.console);
  assert.match(r.result.console, /routes: 0\n/);
  assert.match(r.result.console, /host-unreachable/);
  // the connect succeeded, but only to sandtrace inside the namespace: it is a caught session
  assert.match(r.result.console, /offbox-caught/);
  assert.deepEqual(r.dns?.sessions?.map((c) => [c.address, c.port, c.transport ?? 'tcp', c.protocol, c.preview]).sort((a, b) => Number(a[1]) - Number(b[1])), [['192.0.2.1', 80, 'tcp', 'none', ''], ['192.0.2.1', 9999, 'udp', 'other', 'off-box']]);
  assert.equal(accepted, 0);
  assert.equal(received, 0, 'no datagram reached the host');
});

test('loopback inside the sandbox works (connect_loopback.sh)', async () => {
  const r = await run(join(SAMPLES, 'connect_loopback.sh'), { args: ['4444'] });
  assert.equal(r.result.exitCode, 0, r.result.console);
  assert.match(r.result.console, /got: ping/);
});

test('mount, bpf, init_module, unshare, ptrace and namespace clones fail with EPERM; identity is unprivileged', async () => {
  const s = script('escape.sh', `python3 - <<'PY'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
calls = [('mount', 165, (b'none', b'/mnt', b'tmpfs', 0, None)), ('bpf', 321, (0, 0, 0)),
         ('init_module', 175, (None, 0, b'')), ('unshare', 272, (0x10000000,)), ('ptrace', 101, (0, 0, 0, 0)),
         ('clone_newns', 56, (0x00020000 | 17, 0, 0, 0, 0)), ('keyctl', 250, (0, 0, 0, 0, 0)),
         ('io_uring_setup', 425, (8, None))]
for name, nr, args in calls:
    ctypes.set_errno(0)
    r = libc.syscall(nr, *args)
    print(name, r, ctypes.get_errno())
PY
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
cat /proc/self/uid_map
echo "kallsyms: $(wc -c < /proc/kallsyms)"
if echo evil > /proc/sys/kernel/hostname 2>/dev/null; then echo SYSCTL-WRITTEN; else echo sysctl-readonly; fi
if touch /sys/x 2>/dev/null; then echo SYS-WRITTEN; else echo sys-readonly; fi
ls /sys/fs/cgroup | wc -l
if mknod /tmp/sda b 8 0 2>/dev/null; then echo MKNOD-OK; else echo mknod-denied; fi
echo "dev: $(ls /dev | tr '\\n' ' ')"
if echo x > /dev/init 2>/dev/null || cp /bin/true /dev/init 2>/dev/null; then echo INIT-WRITABLE; else echo init-readonly; fi
`);
  const r = await run(s);
  const c = r.result.console;
  for (const name of ['mount', 'bpf', 'init_module', 'unshare', 'ptrace', 'clone_newns', 'keyctl', 'io_uring_setup']) {
    assert.match(c, new RegExp(`^${name} -1 1$`, 'm'), `${name} must fail with EPERM:\n${c}`);
  }
  const capEff = BigInt('0x' + (/CapEff:\s+([0-9a-f]+)/.exec(c)?.[1] ?? 'ffffffffff'));
  for (const [cap, bit] of [['SYS_ADMIN', 21], ['SYS_MODULE', 16], ['SYS_PTRACE', 19], ['NET_ADMIN', 12], ['SYS_RAWIO', 17], ['BPF', 39], ['PERFMON', 38], ['MKNOD', 27]] as const) {
    assert.equal(capEff & (1n << BigInt(bit)), 0n, `CAP_${cap} must be dropped`);
  }
  assert.match(c, /NoNewPrivs:\s+1/);
  assert.match(c, /Seccomp:\s+2/);
  assert.match(c, /^\s+0\s+100000\s+65536$/m, 'container root is host uid 100000');
  assert.match(c, /kallsyms: 0\n/);
  assert.match(c, /sysctl-readonly/);
  assert.match(c, /sys-readonly/);
  assert.match(c, /^0$/m, 'no cgroupfs inside');
  assert.match(c, /mknod-denied/);
  const dev = (/dev: (.*)/.exec(c)?.[1] ?? '').trim().split(' ');
  // init: sandtrace's init (init.c), which runs the sample, bound read-only from the host
  for (const n of dev) assert.ok(['console', 'core', 'fd', 'full', 'init', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'].includes(n), `unexpected /dev/${n}`);
  assert.match(c, /^init-readonly$/m, 'the init the host binds in cannot be overwritten');
});

test('a sample that forks and sleeps forever is killed at the timeout, with every process and cgroup gone', async () => {
  const r = await run(join(SAMPLES, 'fork_sleep_forever.sh'), { timeout: 2 }, async (info) => {
    // collect the host pids of the container's processes while it runs
    const deadline = Date.now() + 1500;
    let pids: number[] = [];
    while (Date.now() < deadline) {
      pids = readFileSync(join(info.cgroupPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      if (pids.length >= 4) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    return pids;
  });
  assert.equal(r.result.timedOut, true);
  assert.equal(r.result.signal, 9);
  assert.ok(r.result.duration >= 2 && r.result.duration < 5, `duration ${r.result.duration}`);
  assert.match(r.result.console, /forked/);
  assert.ok(r.pids.length >= 4, `expected sh + 3 sleepers in the cgroup, saw ${r.pids.join(',')}`);
  for (const pid of r.pids) assert.equal(aliveIn(pid, r.id), false, `process ${pid} survived`);
  assertNothingLeft(r);
});

test('changes() lists what file_ops.sh created, modified and deleted, with sha256 of copies', async () => {
  const r = await run(join(SAMPLES, 'file_ops.sh'));
  assert.equal(r.result.exitCode, 0, r.result.console);
  const by = new Map(r.changes.map((c) => [c.path, c]));
  const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
  assert.deepEqual(by.get('/tmp/created.txt')?.change, 'created');
  assert.equal(by.get('/tmp/created.txt')?.sha256, sha('created\n'));
  assert.equal(by.get('/tmp/renamed.txt')?.sha256, sha('renamed\n'));
  assert.equal(by.has('/tmp/a.txt'), false);
  const motd = by.get('/etc/motd');
  assert.equal(motd?.change, 'modified');
  const lowerMotd = readFileSync(join(baseRootfs().rootfs, 'etc/motd'));
  assert.equal(motd?.sha256, sha(Buffer.concat([lowerMotd, Buffer.from('pwned\n')])));
  assert.equal(motd?.copy !== undefined && sha(readFileSync(motd.copy)), motd?.sha256);
  assert.equal(by.get('/etc/issue.net')?.change, 'deleted');
  assert.equal(by.has('/tmp/file_ops.sh'), false, 'the unchanged sample itself is not a change');
  assertNothingLeft(r);
});

test('copy-out never follows symlinks planted by the sample; special files are not copied', async () => {
  const hostDir = mkdtempSync(join(tmpdir(), 'sandtrace-hostsecret-'));
  writeFileSync(join(hostDir, 'secret'), 'HOST-ONLY\n');
  const s = script('plant.sh', `ln -s '${hostDir}/secret' /tmp/link\nln -s /etc/shadow /tmp/shadowlink\nmkfifo /tmp/fifo\nmkdir -p /tmp/d && ln -s '${hostDir}' /tmp/d/dirlink\necho data > /tmp/real\n`);
  const r = await run(s);
  rmSync(hostDir, { recursive: true, force: true });
  const by = new Map(r.changes.map((c) => [c.path, c]));
  for (const p of ['/tmp/link', '/tmp/shadowlink', '/tmp/fifo', '/tmp/d/dirlink']) {
    assert.equal(by.get(p)?.change, 'created', p);
    assert.equal(by.get(p)?.sha256, null, p);
    assert.equal(by.get(p)?.copy, undefined, p);
  }
  assert.ok(by.get('/tmp/real')?.copy);
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    const st = lstatSync(p);
    return st.isDirectory() ? walk(p) : [p];
  });
  for (const f of walk(r.outDir)) {
    assert.ok(lstatSync(f).isFile(), `only regular files in the output: ${f}`);
    assert.doesNotMatch(readFileSync(f, 'utf8'), /HOST-ONLY/);
  }
});

test('limits: forks stop at the pids limit', async () => {
  const s = script('forks.sh', 'i=0; while [ $i -lt 40 ]; do sleep 30 2>/dev/null & i=$((i+1)); done\nwait\n');
  const r = await run(s, { limits: { pids: 16 }, timeout: 6 }, async (info) => {
    const dir = info.cgroupPath.replace('/unified/', '/pids/');
    let peak = 0;
    let refused = 0;
    for (let i = 0; i < 200 && refused === 0; i++) {
      await new Promise((res) => setTimeout(res, 25));
      try {
        refused = Number(/max (\d+)/.exec(readFileSync(join(dir, 'pids.events'), 'utf8'))?.[1]);
        peak = Number(readFileSync(join(dir, 'pids.peak'), 'utf8'));
      } catch { break; /* container ended */ }
    }
    return [peak, refused];
  });
  const [peak, refused] = r.pids;
  assert.ok((refused ?? 0) > 0, 'forks beyond the limit were refused');
  assert.ok(peak !== undefined && peak <= 16 && peak >= 10, `peak of ${peak} processes under a limit of 16`);
  assertNothingLeft(r);
});

test('limits: writes stop at the disk cap; memory beyond the limit gets the sample OOM-killed; CPU quota applied', async () => {
  const s = script('mem.sh', [
    'if head -c 100M /dev/zero > /tmp/big 2>/dev/null; then echo DISK-UNLIMITED; else echo "disk-capped $(du -m /tmp/big | cut -f1)"; fi',
    'rm -f /tmp/big',
    'python3 -c "b = bytearray(300 << 20); print(len(b))"',
    'echo "python: $?"',
    '',
  ].join('\n'));
  let quota = '';
  const r = await run(s, { limits: { memoryMiB: 64, cpus: 0.5, diskMiB: 32 } }, async (info) => {
    quota = readFileSync(join(info.cgroupPath.replace('/unified/', '/cpu/'), 'cpu.cfs_quota_us'), 'utf8').trim();
    return [];
  });
  assert.equal(quota, '50000', 'half a core');
  const mib = Number(/disk-capped (\d+)/.exec(r.result.console)?.[1]);
  assert.ok(mib > 0 && mib <= 32, `wrote ${mib} MiB under a 32 MiB cap: ${r.result.console}`);
  assert.match(r.result.console, /python: 137\n/, r.result.console);
  assert.doesNotMatch(r.result.console, /314572800/);
  assertNothingLeft(r);
});

test('two analyses at once do not collide', async () => {
  const a = script('a.sh', 'echo A > /tmp/who; sleep 0.3; cat /tmp/who\n');
  const b = script('b.sh', 'echo B > /tmp/who; sleep 0.3; cat /tmp/who\n');
  const [ra, rb] = await Promise.all([run(a), run(b)]);
  assert.notEqual(ra.id, rb.id);
  assert.notEqual(ra.info.cgroupPath, rb.info.cgroupPath);
  assert.equal(ra.result.console, 'A\n');
  assert.equal(rb.result.console, 'B\n');
  assertNothingLeft(ra);
  assertNothingLeft(rb);
});

test('a missing sample fails with INPUT_MISSING and leaves nothing', async () => {
  const sb = createSandbox({ sample: join(scratch, 'nope'), args: [], timeout: 5 });
  await assert.rejects(sb.create(), (e: unknown) => (e as { code?: string }).code === 'INPUT_MISSING');
  assert.ok(!existsSync(join(runDir(), sb.id)));
});

test('a run dir left private (0700), as a first run once made it, is made traversable and the sample runs', async () => {
  // runc's init runs as the mapped uid: it cannot reach a rootfs under a 0700 run dir
  const parent = mkdtempSync(join(tmpdir(), 'sandtrace-rundir-'));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'run');
  mkdirSync(dir, { mode: 0o700 });
  const saved = process.env['SANDTRACE_RUN'];
  process.env['SANDTRACE_RUN'] = dir;
  try {
    const r = await run(script('hello.sh', 'echo hello\n'));
    assert.equal(r.result.exitCode, 0, r.result.console);
    assert.equal(r.result.console, 'hello\n');
    assert.equal(lstatSync(dir).mode & 0o777, 0o711);
    // what the run dir holds about containers stays private
    assert.equal(lstatSync(join(dir, 'owners')).mode & 0o777, 0o700);
    assertNothingLeft(r);
    // a run dir in a shared place keeps its own mode (search bits are only ever added)
    const shared = join(parent, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    process.env['SANDTRACE_RUN'] = shared;
    const s = await run(script('hello2.sh', 'echo hello\n'));
    assert.equal(s.result.console, 'hello\n');
    assert.equal(lstatSync(shared).mode & 0o7777, 0o1777);
  } finally {
    if (saved === undefined) delete process.env['SANDTRACE_RUN'];
    else process.env['SANDTRACE_RUN'] = saved;
    rmSync(parent, { recursive: true, force: true });
  }
});

test('freeze() and thaw() pause and resume the whole container', async () => {
  const s = script('tick.sh', 'sleep 0.5\necho done\n');
  const sb = createSandbox({ sample: s, args: [], timeout: 20 });
  try {
    const info = await sb.create();
    await sb.start();
    await sb.freeze();
    assert.equal(readFileSync(join(info.freezerPath ?? '', 'freezer.state'), 'utf8').trim(), 'FROZEN');
    await new Promise((r) => setTimeout(r, 800));
    // frozen past its 0.5 s sleep: still there, not finished
    assert.ok(readFileSync(join(info.cgroupPath, 'cgroup.procs'), 'utf8').trim() !== '');
    await sb.thaw();
    assert.equal(readFileSync(join(info.freezerPath ?? '', 'freezer.state'), 'utf8').trim(), 'THAWED');
    const r = await sb.wait();
    assert.equal(r.exitCode, 0);
    assert.equal(r.console, 'done\n');
  } finally {
    await sb.destroy();
  }
});

test('when the owner process dies, its container dies too and is reaped: nothing outlives the analysis', async () => {
  const s = script('forever.sh', 'sleep infinity\n');
  const code = `import { createSandbox } from ${JSON.stringify(new URL('../src/sandbox/index.ts', import.meta.url).pathname)};
const sb = createSandbox({ sample: ${JSON.stringify(s)}, args: [], timeout: 600 });
const info = await sb.create(); await sb.start();
process.stdout.write(JSON.stringify({ id: sb.id, cg: info.cgroupPath }) + '\\n');
setInterval(() => {}, 1000);`;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    child.stdout.on('data', (b: Buffer) => { buf += b.toString(); if (buf.includes('\n')) res(buf.split('\n')[0] ?? ''); });
    child.on('exit', () => rej(new Error('owner exited early')));
  });
  const { id, cg } = JSON.parse(line) as { id: string; cg: string };
  const pids = readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  assert.ok(pids.length >= 1);
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  // the shim takes the container's processes down with their owner...
  for (let i = 0; i < 100 && pids.some((p) => aliveIn(p, id)); i++) await new Promise((res) => setTimeout(res, 30));
  for (const pid of pids) assert.equal(aliveIn(pid, id), false, `pid ${pid} outlived its owner`);
  // ...and the next sandbox reaps what is left (cgroups, mounts, bundle)
  assert.ok(existsSync(cg));
  const { reapStale } = await import('../src/sandbox/index.js');
  assert.ok((await reapStale()).includes(id));
  for (const pid of pids) assert.equal(aliveIn(pid, id), false, `pid ${pid} survived`);
  assertNothingLeft({ info: { id, cgroupPath: cg, hostPid: 0, samplePath: '' }, result: { exitCode: null, signal: null, timedOut: false, duration: 0, console: '' }, changes: [], outDir: '', workDir: join(runDir(), id), id, pids });
});

test('console is capped, marked as truncated, and keeps multi-byte characters whole', async () => {
  const s = script('flood.sh', 'printf "h\\303\\251llo\\n"\nhead -c 600000 /dev/zero | tr "\\000" a\necho\necho tail-line\n');
  const r = await run(s);
  assert.equal(r.result.exitCode, 0);
  assert.ok(r.result.console.startsWith('héllo\n'), JSON.stringify(r.result.console.slice(0, 20)));
  assert.ok(r.result.console.length <= CONSOLE_CAP + 64, `console of ${r.result.console.length} chars`);
  assert.match(r.result.console, /console truncated/);
  assert.doesNotMatch(r.result.console, /tail-line/);
});

test('the behaviour samples do what their comments say', async () => {
  const chain = await run(join(SAMPLES, 'fork_exec_chain.sh'));
  assert.equal(chain.result.exitCode, 0);
  assert.match(chain.result.console, /^-rw-r--r-- 1 root root \d+ .* \/etc\/hostname\nchain done\n$/);
  const secrets = await run(join(SAMPLES, 'read_secrets.sh'));
  assert.equal(secrets.result.console, '-----BEGIN RSA PRIVATE KEY-----\n2\n');
  const self = await run(join(SAMPLES, 'self_delete.sh'));
  assert.equal(self.result.exitCode, 0);
  assert.equal(self.result.console, 'deleted /tmp/self_delete.sh\n');
  assert.deepEqual(self.changes, [], 'the sample was ours: deleting it leaves no change to the image');
});
