// Opens whose path the VM backend cannot read at the call (a page the program has not touched
// yet), in a TCG guest. The plugin used to read the string again at the return (readAtExit), which
// a second thread can rewrite meanwhile: an open of a FIFO that blocks while the other thread
// points its path at /etc/hostname was reported as an open of /etc/hostname. Now an open, creat,
// openat or openat2 (x86_64 and i386) that returned a descriptor is named by the kernel: the
// descriptor's file (task->files), walked up to the task's root across mounts (pathFromKernel, no
// readAtExit): the FIFO, a symbolic link's target, a relative path from the root, a mount's root
// directory; in a chroot, from its root. Nothing to name (ENOENT; an O_TMPFILE file; a file outside
// the task's root): read again at the return, as before. A path readable at the call stays as the
// program gave it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { captureInVm } from './capture.js';
import { loadProfile, defaultKernel } from '../../src/vmi/profile.js';
import type { SyscallEvent } from '../../src/capture/events.js';

const SRC = fileURLToPath(new URL('./openpath.c', import.meta.url));
const OPENS = new Set(['open', 'creat', 'openat', 'openat2']);

test('an open whose path was unreadable at the call is named from the descriptor it returned, not re-read (x86_64, i386)', { timeout: 300_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  assert.ok(loadProfile(kernel).compat, 'the 6.1 kernel (IA32_EMULATION=y) has a compat part');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmopen-'));
  try {
    const exe = join(dir, 'openpath');
    // static and not PIE: the i386 call's path sits below 4 GiB
    const cc = spawnSync('cc', ['-O1', '-static', '-no-pie', '-pthread', '-o', exe, SRC], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`);
    const { events, res, stats } = await captureInVm({ sample: exe, timeout: 60 });
    assert.equal(res.sampleExit, 0, res.output);
    assert.equal(stats.lost, 0);
    const kv = (name: string) => {
      const m = new RegExp(`^${name} (.*)$`, 'm').exec(res.output);
      assert.ok(m, `no report from the sample (${name}): ${res.output}`);
      return Object.fromEntries(m[1]!.trim().split(' ').map((x) => x.split('=') as [string, string]));
    };
    const g = kv('openpath'), j = kv('jail');
    // what the guest saw: every open but the missing file's returned a descriptor; the FIFO's path
    // was rewritten while its open was blocked
    assert.deepEqual([g['race'], g['writer'], g['link'], g['compat'], g['creat'], g['mountroot'], g['missing'], g['tmpfile'], g['plain'], g['rewritten']],
      ['3', '4', '5', '6', '7', '8', '-2', '9', '10', '/etc/hostname']);
    assert.deepEqual([j['inside'], j['outside']], ['11', '12']); // (the parent's descriptors are inherited)
    const opens = (pid: number) => events.filter((e): e is SyscallEvent => e.type === 'syscall' && e.pid === pid && OPENS.has(e.name) &&
      !/^\/tmp\/openpath\.page\d+$/.test(e.path ?? ''));
    const row = (e: SyscallEvent) => [e.tid === e.pid ? 'main' : 'thread', e.abi, e.name, e.ret, e.path, e.readAtExit ?? null, e.pathFromKernel ?? null];
    const calls = opens(Number(g['pid']));
    assert.deepEqual(calls.map(row), [
      ['main', 'x86_64', 'openat', 3, '/tmp/openpath.target', null, null], // (creating it: a readable path)
      // the FIFO the open returned, not the /etc/hostname its string said at the return
      ['main', 'x86_64', 'openat', 3, '/tmp/openpath.fifo', null, true],
      ['thread', 'x86_64', 'openat', 4, '/tmp/openpath.fifo', null, null],
      ['main', 'x86_64', 'open', 5, '/tmp/openpath.target', null, true], // /tmp/openpath.link's target
      ['main', 'i386', 'open', 6, '/tmp/openpath.target', null, true],
      ['main', 'x86_64', 'creat', 7, '/work/openpath.new', null, true], // "openpath.new" in the working directory
      ['main', 'x86_64', 'openat', 8, '/tmp', null, true], // the tmpfs' own root (never hashed, yet named)
      // no file to name: the string read again at the return, as before
      ['main', 'x86_64', 'openat', -2, '/tmp/openpath.missing', true, null],
      ['main', 'x86_64', 'openat', 9, '/tmp', true, null], // O_TMPFILE: a file without a name
      ['main', 'x86_64', 'openat', 10, '/tmp/openpath.target', null, null], // readable at the call: as given
      ['main', 'x86_64', 'openat', 11, '/tmp/jail/f', null, null],
    ], JSON.stringify(calls.map(row)));
    assert.ok(!calls.some((e) => e.path === '/etc/hostname'), 'an open of /etc/hostname was reported');
    // chroot'ed to /tmp/jail: named from the task's root; a file outside it has no name there
    assert.deepEqual(opens(Number(j['pid'])).map(row), [
      ['main', 'x86_64', 'openat', 11, '/f', null, true],
      ['main', 'x86_64', 'openat', 12, 'openpath.target', true, null],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
