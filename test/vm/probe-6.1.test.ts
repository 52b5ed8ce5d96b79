// The eBPF probe on Debian 12's kernel (6.1, the VM backend's guest kernel): its
// sched_process_exit has one argument, so the loader must pick the 1-argument exit hook, and
// the whole program must pass 6.1's verifier. The loader runs inside a guest on a cgroup2
// subtree; its binary stream comes back base64-encoded on the serial console. The guest kernel
// runs i386 programs (IA32_EMULATION), which this host's may not: an exec says which ABI the new
// image has. A call a signal cuts into is settled by the signal_deliver hook there too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ExecEvent, ExitEvent, ForkEvent, SyscallEvent, TraceEvent } from '../../src/capture/events.js';
import { ProbeDecoder } from '../../src/capture/ebpf/decode.js';
import { buildInitramfs } from '../../src/vm/guest.js';
import { defaultKernel } from '../../src/vmi/profile.js';
import { ROOT, tempDir } from '../helpers.js';

const LOADER = join(ROOT, 'probe', 'build', 'sandtrace-probe');
const WORKLOAD = join(ROOT, 'probe', 'test', 'exits.c');
const I386 = join(ROOT, 'test', 'vm', 'compat-fast32.c'); // a freestanding i386 program
const SIGNALS = join(ROOT, 'probe', 'test', 'signals.c'); // calls a signal cuts into
const TAG = 'probe-vm';

/** Host shared libraries of the given executables (ldd), to run them in the guest. */
function sharedLibs(exes: string[]): string[] {
  const r = spawnSync('ldd', exes, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return [...new Set([...r.stdout.matchAll(/(?:=>\s*)?(\/\S+\.so[.\d]*)\s+\(/g)].map((m) => m[1]!))];
}

function runGuest(kernel: string, initrd: string, consoleLog: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    // TCG, like the other guest tests (no KVM needed); the guest powers itself off.
    const q = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-nodefaults',
      '-display', 'none', '-m', '512', '-no-reboot', '-nic', 'none', '-kernel', kernel, '-initrd', initrd,
      '-append', 'console=ttyS0 quiet panic=-1 rdinit=/init', '-serial', `file:${consoleLog}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    q.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => q.kill('SIGKILL'), 100_000);
    q.on('error', reject);
    q.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`qemu exited with ${code}: ${err.trim()}`));
      else resolve(code);
    });
  });
}

test('the probe loads on Debian 12\'s 6.1 kernel, picks the 1-argument exit hook, reports thread and process exits and which ABI an exec\'s image has', { timeout: 150_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.match(basename(kernel), /^vmlinuz-6\.1\./, 'this test is about the 6.1 kernel');
  assert.ok(existsSync(LOADER), `probe not built at ${LOADER}: run make setup`);
  const t = tempDir();
  try {
    const exe = join(t.path, 'exits');
    const cc = spawnSync('cc', ['-O2', '-pthread', '-o', exe, WORKLOAD], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const fast32 = join(t.path, 'fast32');
    const cc32 = spawnSync('cc', ['-m32', '-nostdlib', '-static', '-fno-pie', '-no-pie', '-ffreestanding', '-fno-stack-protector',
      '-fno-asynchronous-unwind-tables', '-O1', '-o', fast32, I386], { encoding: 'utf8' });
    assert.equal(cc32.status, 0, cc32.stderr);
    const sigs = join(t.path, 'signals');
    const ccs = spawnSync('cc', ['-O2', '-o', sigs, SIGNALS], { encoding: 'utf8' });
    assert.equal(ccs.status, 0, ccs.stderr);
    // The loader on a fresh cgroup2 subtree; the workload moves itself in; SIGTERM ends the capture.
    const script = join(t.path, 'guest.sh');
    writeFileSync(script, `#!/bin/sh
mount -t cgroup2 none /sys/fs/cgroup && mkdir /sys/fs/cgroup/t || echo "${TAG}: no cgroup2"
mkfifo /work/ctl
/sample/sandtrace-probe --cgroup /sys/fs/cgroup/t --ring 1048576 <>/work/ctl >/work/out.bin 2>/work/err.txt &
P=$!
i=0
while [ ! -s /work/out.bin ] && [ $i -lt 600 ] && kill -0 $P 2>/dev/null; do sleep 0.1; i=$((i+1)); done
sh -c 'echo $$ > /sys/fs/cgroup/t/cgroup.procs && exec /sample/exits' > /work/exits.txt
echo "${TAG}: workload rc $?"
sh -c 'echo $$ > /sys/fs/cgroup/t/cgroup.procs && exec /sample/fast32 x' > /dev/null
echo "${TAG}: i386 rc $?"
sh -c 'echo $$ > /sys/fs/cgroup/t/cgroup.procs && exec /sample/signals' > /work/signals.txt
echo "${TAG}: signals rc $?"
kill -TERM $P
wait $P
echo "${TAG}: loader rc $?"
sed "s/^/${TAG}: err /" /work/err.txt
sed "s/^/${TAG}: out /" /work/exits.txt
sed "s/^/${TAG}: sig /" /work/signals.txt
echo "${TAG}: b64 begin"
base64 /work/out.bin
echo "${TAG}: b64 end"
`, { mode: 0o755 });
    const initrd = buildInitramfs(t.path, script, [], 80, TAG);
    // Add the loader, the workload and their libraries (the host's, consistent with its ld.so).
    const root = join(t.path, 'root');
    copyFileSync(LOADER, join(root, 'sample', 'sandtrace-probe'));
    copyFileSync(exe, join(root, 'sample', 'exits'));
    copyFileSync(fast32, join(root, 'sample', 'fast32'));
    copyFileSync(sigs, join(root, 'sample', 'signals'));
    for (const lib of sharedLibs([LOADER, exe, sigs])) {
      copyFileSync(lib, join(root, lib.startsWith('/lib64/') ? lib.slice(1) : join('lib', 'x86_64-linux-gnu', basename(lib))));
    }
    const cpio = spawnSync('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc --quiet > '${initrd}'`]);
    assert.equal(cpio.status, 0, cpio.stderr.toString());

    const consoleLog = join(t.path, 'console.log');
    await runGuest(kernel, initrd, consoleLog);
    const lines = readFileSync(consoleLog, 'utf8').split(/\r?\n/);
    const said = (p: string): string[] => lines.filter((l) => l.startsWith(`${TAG}: ${p}`)).map((l) => l.slice(TAG.length + 2 + p.length));
    const log = lines.filter((l) => l.startsWith(`${TAG}: `) && !/^[A-Za-z0-9+/=]+$/.test(l)).join('\n');
    assert.deepEqual(said('loader rc '), ['0'], `the loader failed in the guest:\n${log}`);
    assert.deepEqual(said('err '), ['sandtrace-probe: exit hook: 1-arg tracepoint'], log);
    assert.deepEqual(said('workload rc '), ['5'], log);
    assert.deepEqual(said('i386 rc '), ['5'], log); // its calls worked (mkdir /work/dir32 too)
    assert.deepEqual([said('signals rc '), said('sig ')], [['0'], ['pause -1', 'read 1']], log);

    const begin = lines.indexOf(`${TAG}: b64 begin`);
    const end = lines.indexOf(`${TAG}: b64 end`);
    assert.ok(begin >= 0 && end > begin, 'the stream came back');
    const dec = new ProbeDecoder();
    const events: TraceEvent[] = dec.push(Buffer.from(lines.slice(begin + 1, end).join(''), 'base64'));
    assert.ok(dec.stats, 'the stream ends with the STATS record');
    assert.equal(dec.stats.lost, 0);
    assert.equal(dec.parseErrors, 0);

    const stdout = said('out ').join('\n');
    const main = Number(/main (\d+)/.exec(stdout)?.[1]);
    const child = Number(/main \d+ child (\d+)/.exec(stdout)?.[1]);
    const grandchild = Number(/grandchild (\d+)/.exec(stdout)?.[1]);
    const threads = [...stdout.matchAll(/thread (\d+)/g)].map((m) => Number(m[1]));
    const role = (tid: number): string => tid === main ? 'main' : tid === child ? 'child' : tid === grandchild ? 'grandchild'
      : threads.includes(tid) ? `thread${threads.indexOf(tid) + 1}` : 'other';
    const ours = new Set([main, child, grandchild]);
    // The same facts as on this host's kernel with the 2-argument hook (src/capture/ebpf/exit-hook.test.ts).
    assert.deepEqual(events.filter((e): e is ExitEvent => e.type === 'exit' && ours.has(e.pid)).map((e) => `${role(e.tid)}:${e.code}:${e.thread}`),
      ['thread1:0:true', 'thread2:0:true', 'thread3:0:true', 'grandchild:4:false', 'child:3:false', 'main:5:false']);
    assert.deepEqual(events.filter((e): e is ForkEvent => e.type === 'fork' && ours.has(e.pid)).map((e) => `${role(e.tid)}>${role(e.childTid)}:${e.thread}`),
      ['main>thread1:true', 'main>thread2:true', 'main>thread3:true', 'main>child:false', 'child>grandchild:false']);
    // Syscalls with paths were captured too (the dynamic loader opening libc), and the exec.
    assert.ok(events.some((e) => e.type === 'syscall' && e.pid === main && e.name === 'openat' && /libc\.so\.6$/.test(e.path ?? '')));
    assert.ok(events.some((e) => e.type === 'exec' && e.pid === main));
    // Each exec says which ABI the new image has; the i386 program's calls are i386 ones.
    const execs = events.filter((e): e is ExecEvent => e.type === 'exec' && e.exe.startsWith('/sample/'));
    assert.deepEqual(execs.map((e) => [e.exe, e.abi]), [['/sample/exits', 'x86_64'], ['/sample/fast32', 'i386'], ['/sample/signals', 'x86_64']]);
    const i386 = execs[1]!.pid;
    assert.ok(events.some((e) => e.type === 'syscall' && e.pid === i386 && e.abi === 'i386' && e.name === 'mkdir' && e.path === '/work/dir32'));
    // Calls a signal cut into (the signal_deliver hook, bpf_task_pt_regs: 5.15+) report what the
    // program saw: pause() failed with EINTR; read() was made again and then read the byte.
    const sig = execs[2]!.pid;
    const calls = events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === sig && (e.name === 'pause' || e.name === 'read'));
    assert.deepEqual(calls.slice(-3).map((e) => [e.name, e.ret, e.signal ?? null]), [['pause', -4, 'interrupted'], ['read', null, 'restarted'], ['read', 1, null]]);
    assert.ok(!events.some((e) => e.type === 'syscall' && e.ret !== null && e.ret <= -512 && e.ret >= -516), 'no kernel-internal restart code left');
  } finally {
    t.cleanup();
  }
});
