// The probe's two exit hooks (2-argument sched_process_exit on recent kernels, 1-argument on 6.1 and 5.15): the
// loader picks one from the kernel's BTF and says which; the 1-argument one, forced here, must
// report exactly the same process and thread exits as the default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExitEvent, ForkEvent, TraceEvent } from '../events.js';
import { defaultLoaderPath } from './collector.js';
import { capture, makeCgroup, runInCgroup } from './testutil.js';

const SOURCE = join(defaultLoaderPath(), '..', '..', 'test', 'exits.c');

/** Exits of the workload as `who:code:thread`, pids replaced by their role (from its output). */
function exitsByRole(events: TraceEvent[], stdout: string): { exits: string[]; forks: string[] } {
  const main = Number(/main (\d+)/.exec(stdout)?.[1]);
  const child = Number(/main \d+ child (\d+)/.exec(stdout)?.[1]);
  const grandchild = Number(/grandchild (\d+)/.exec(stdout)?.[1]);
  const threads = [...stdout.matchAll(/thread (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(threads.length, 3, stdout);
  const role = (tid: number): string => tid === main ? 'main' : tid === child ? 'child' : tid === grandchild ? 'grandchild'
    : threads.includes(tid) ? `thread${threads.indexOf(tid) + 1}` : `other`;
  const ours = new Set([main, child, grandchild]);
  const exits = events.filter((e): e is ExitEvent => e.type === 'exit' && ours.has(e.pid))
    .map((e) => `${role(e.tid)}:${e.code}:${e.thread}`);
  const forks = events.filter((e): e is ForkEvent => e.type === 'fork' && ours.has(e.pid))
    .map((e) => `${role(e.tid)}>${role(e.childTid)}:${e.thread}`);
  return { exits, forks };
}

async function run(exe: string, forceV1: boolean): Promise<{ exits: string[]; forks: string[]; notes: string[] }> {
  const cg = makeCgroup(forceV1 ? 'exit-v1' : 'exit-v2');
  const saved = process.env['SANDTRACE_PROBE_FORCE_EXIT_V1'];
  try {
    // The loader inherits the environment when start() spawns it.
    if (forceV1) process.env['SANDTRACE_PROBE_FORCE_EXIT_V1'] = '1';
    else delete process.env['SANDTRACE_PROBE_FORCE_EXIT_V1'];
    const { events, stats, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `exec ${exe}`));
    assert.equal(result.code, 5, result.stderr);
    assert.equal(stats.lost, 0);
    return { ...exitsByRole(events, result.stdout), notes: stats.notes };
  } finally {
    if (saved === undefined) delete process.env['SANDTRACE_PROBE_FORCE_EXIT_V1'];
    else process.env['SANDTRACE_PROBE_FORCE_EXIT_V1'] = saved;
    await cg.remove();
  }
}

test('the 1-argument exit hook reports the same thread and process exits as the 2-argument one', { timeout: 60_000 }, async () => {
  assert.ok(existsSync(defaultLoaderPath()), `probe not built at ${defaultLoaderPath()}: run make setup`);
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-exits-'));
  try {
    const exe = join(dir, 'exits');
    const cc = spawnSync('cc', ['-O2', '-pthread', '-o', exe, SOURCE], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cannot compile ${SOURCE}: ${cc.stderr}`);

    const v2 = await run(exe, false);
    const v1 = await run(exe, true);
    // The loader says which hook it loaded: the one the kernel's prototype asks for (6.18 here: 2 arguments).
    const proto = spawnSync('sh', ['-c', 'bpftool btf dump file /sys/kernel/btf/vmlinux format c | grep "(\\*btf_trace_sched_process_exit)"'], { encoding: 'utf8' });
    assert.equal(proto.status, 0, `no sched_process_exit prototype in the kernel BTF: ${proto.stderr}`);
    const args = proto.stdout.split(',').length - 1; // after the void * ctx
    assert.ok(v2.notes.includes(`probe: exit hook: ${args}-arg tracepoint`), `${proto.stdout} ${JSON.stringify(v2.notes)}`);
    assert.ok(v1.notes.includes('probe: exit hook: 1-arg tracepoint (forced)'), JSON.stringify(v1.notes));
    // Staggered threads exit as threads, the last task of each process ends it; with their exit codes.
    assert.deepEqual(v2.exits, ['thread1:0:true', 'thread2:0:true', 'thread3:0:true', 'grandchild:4:false', 'child:3:false', 'main:5:false']);
    assert.deepEqual(v1.exits, v2.exits);
    assert.deepEqual(v2.forks, ['main>thread1:true', 'main>thread2:true', 'main>thread3:true', 'main>child:false', 'child>grandchild:false']);
    assert.deepEqual(v1.forks, v2.forks);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
