// Live monitoring of a guest started with the user's own QEMU arguments: every process, boot
// included, is attributed; stop() ends QEMU and the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorGuest } from '../../src/vm/monitor.js';
import { buildInitramfs } from '../../src/vm/guest.js';
import { defaultKernel } from '../../src/vmi/profile.js';
import type { ExecEvent, TraceEvent } from '../../src/capture/events.js';

test('monitorGuest: a user-launched guest streams every process until stop()', { timeout: 240_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-montest-'));
  try {
    const sample = join(dir, 'loop.sh');
    writeFileSync(sample, '#!/bin/sh\nwhile true; do cat /proc/uptime > /dev/null; sleep 0.1; done\n', { mode: 0o755 });
    const initrd = buildInitramfs(dir, sample, [], 600);
    const g = monitorGuest({ kernel, qemuArgs: ['-nodefaults', '-display', 'none', '-m', '256', '-no-reboot', '-nic', 'none',
      '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 quiet panic=-1 rdinit=/init', '-serial', `file:${join(dir, 'console.log')}`] });
    await g.collector.start();
    const seen: TraceEvent[] = [];
    let cats = 0, requested = false;
    const loopPid = () => seen.find((e): e is ExecEvent => e.type === 'exec' && e.exe === '/sample/loop.sh')?.pid;
    for await (const batch of g.collector.events()) {
      seen.push(...batch);
      cats += batch.filter((e) => e.type === 'exec' && e.argv[0] === 'cat').length;
      if (cats >= 1 && !requested) { requested = true; g.collector.requestTaskList(); }
      const walked = g.collector.taskList().some((t) => t.pid === loopPid());
      if ((cats >= 3 && walked) || cats >= 200) void g.collector.stop();
    }
    const { qemuExit } = await g.done;
    // The loop never ends by itself: the stream ended because stop() shut QEMU down (cleanly, on SIGTERM).
    assert.equal(qemuExit, 0);
    assert.ok(cats >= 3);
    // The guest's init (pid 1, the /init script) is seen too: nothing is filtered.
    assert.ok(seen.some((e) => e.pid === 1 && e.comm === 'init'));
    const loopExec = seen.find((e): e is ExecEvent => e.type === 'exec' && e.exe === '/sample/loop.sh');
    assert.ok(loopExec, 'the loop script exec was not seen');
    const catParents = new Set(g.collector.processes().filter((p) => p.comm === 'cat').map((p) => p.ppid));
    assert.deepEqual([...catParents], [loopExec.pid]);
    assert.equal(existsSync(join(tmpdir(), 'plugin.sock')), false);
    // The process list walked from init_task (task_struct.tasks), on request while the guest ran.
    const tasks = new Map(g.collector.taskList().map((t) => [t.pid, t]));
    assert.equal(tasks.get(0)?.comm, 'swapper/0');
    assert.deepEqual([tasks.get(1)?.comm, tasks.get(1)?.uid, tasks.get(1)?.kernelThread], ['init', 0, false]);
    assert.deepEqual([tasks.get(2)?.comm, tasks.get(2)?.kernelThread], ['kthreadd', true]);
    assert.deepEqual([tasks.get(loopExec.pid)?.comm, tasks.get(loopExec.pid)?.ppid], ['loop.sh', 1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
