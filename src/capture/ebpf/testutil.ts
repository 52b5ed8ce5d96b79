// Test helpers for the eBPF backend: a throw-away cgroup v2 directory, workloads placed in it, and
// a capture that collects everything. Used by the *.test.ts files here and by bench/capture.ts.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptureStats } from '../collector.js';
import type { TraceEvent } from '../events.js';
import { EbpfCollector, type EbpfCollectorOptions } from './collector.js';
import { hierarchies } from '../../sandbox/cgroups.js';

/** The cgroup v2 mount: .../unified on this hybrid host, /sys/fs/cgroup on a pure v2 one. */
export const UNIFIED = hierarchies().find((h) => h.version === 2)?.mount ?? '/sys/fs/cgroup/unified';

export interface TestCgroup {
  path: string;
  remove(): Promise<void>;
}

/** Creates a fresh cgroup v2 directory; remove() kills what is left in it and deletes it. */
export function makeCgroup(tag: string): TestCgroup {
  if (!existsSync(join(UNIFIED, 'cgroup.procs'))) throw new Error(`no cgroup v2 hierarchy at ${UNIFIED}`);
  const path = join(UNIFIED, `sandtrace-test-${tag}-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(path);
  return {
    path,
    async remove() {
      if (!existsSync(path)) return;
      try { writeFileSync(join(path, 'cgroup.freeze'), '0'); } catch { /* absent */ }
      try { writeFileSync(join(path, 'cgroup.kill'), '1'); } catch { /* absent */ }
      for (let i = 0; i < 100; i++) {
        if (readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() === '') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      rmdirSync(path);
    },
  };
}

export const V1_FREEZER = '/sys/fs/cgroup/freezer';

/** A cgroup v1 freezer directory next to a test cgroup (runc puts containers in both hierarchies). */
export function makeV1Freezer(tag: string): TestCgroup {
  if (!existsSync(join(V1_FREEZER, 'cgroup.procs'))) throw new Error(`no cgroup v1 freezer at ${V1_FREEZER}`);
  const path = join(V1_FREEZER, `sandtrace-test-${tag}-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(path);
  return {
    path,
    async remove() {
      if (!existsSync(path)) return;
      try { writeFileSync(join(path, 'freezer.state'), 'THAWED'); } catch { /* gone */ }
      for (let i = 0; i < 100; i++) {
        if (readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() === '') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      rmdirSync(path);
    },
  };
}

/**
 * Runs `sh -c` that first moves itself into the cgroup (and `alsoInto`, e.g. a v1 freezer), then
 * runs `script`; resolves with its exit.
 */
export function runInCgroup(cg: string, script: string, opts: { stdin?: string; alsoInto?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const also = opts.alsoInto ? `echo $$ > ${opts.alsoInto}/cgroup.procs && ` : '';
    const child = spawn('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && ${also}${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid ?? -1 }));
    // a script that exits before reading its stdin (`true`) closes the pipe first: its exit says
    // how it went, an EPIPE on the way in is no failure of the run
    child.stdin.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') reject(e); });
    child.stdin.end(opts.stdin ?? '');
  });
}

export interface Captured {
  events: TraceEvent[];
  stats: CaptureStats;
}

/**
 * Starts an EbpfCollector on `cg`, runs `work`, stops and returns every event. `slowMs` makes the
 * consumer sleep after each batch (to exercise back-pressure).
 */
export async function capture<T>(opts: EbpfCollectorOptions, work: () => Promise<T>, slowMs = 0): Promise<Captured & { result: T }> {
  const c = new EbpfCollector(opts);
  await c.start();
  const events: TraceEvent[] = [];
  const consumer = (async () => {
    for await (const batch of c.events()) {
      for (const e of batch) events.push(e);
      if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
    }
  })();
  let result: T;
  try {
    result = await work();
  } finally {
    await c.stop();
    await consumer;
  }
  return { events, stats: c.stats(), result };
}

/**
 * The opening of the python workloads that make socket calls through libc: ctypes' libc (mmap
 * typed), x86_64's struct iovec, msghdr and mmsghdr, and udp(), a UDP socket bound to a port of
 * 127.0.0.1 the kernel picks.
 */
export const PY_SOCKETS = `
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint32)]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); return s
`;

/**
 * Runs a python3 script in a throw-away cgroup under the probe and returns what was captured, with
 * the script's exit code, output and pid. `files` are written next to the script first; `args`
 * gets that directory (to name them).
 */
export async function capturePython(tag: string, script: string, o: { args?: (dir: string) => string[]; files?: Record<string, string | Buffer> } = {}):
  Promise<Captured & { result: Awaited<ReturnType<typeof runInCgroup>> }> {
  const cg = makeCgroup(tag);
  const dir = mkdtempSync(join(tmpdir(), `sandtrace-${tag}-`));
  try {
    const path = join(dir, `${tag}.py`);
    writeFileSync(path, script);
    for (const [name, data] of Object.entries(o.files ?? {})) writeFileSync(join(dir, name), data);
    const args = (o.args?.(dir) ?? []).join(' ');
    return await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec /usr/bin/python3 ${path} ${args}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cg.remove();
  }
}

/**
 * Whether this host's kernel runs 32-bit system calls at all: a 64-bit python makes one `int 0x80`
 * (getpid). Kernels built or booted without IA-32 emulation (ia32_emulation=0, or hypervisors that
 * run 64-bit user code only) fault it with SIGSEGV, so no i386 call can reach the probe there.
 */
export function ia32Syscalls(): { ok: true } | { ok: false; why: string } {
  const py = `
import ctypes
libc = ctypes.CDLL(None)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (getpid); int 0x80; ret
p = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)
ctypes.memmove(p, code, len(code))
print(ctypes.CFUNCTYPE(ctypes.c_int)(p)())
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0 && /^\d+$/.test(r.stdout.trim())) return { ok: true };
  return { ok: false, why: `this kernel runs no 32-bit system calls (int 0x80 ${r.signal ? `killed the process with ${r.signal}` : `failed: ${r.stderr.trim().split('\n').pop() ?? r.status}`}; IA-32 emulation is off)` };
}
