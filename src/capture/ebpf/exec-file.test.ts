// The exec record names the file the kernel loaded (ExecEvent.file), not just the path it was
// exec'd by: on the host, for a #! script (its interpreter), and on an overlayfs root like a
// runc container's. Needs root and `make setup` (the base image is the overlay's lower layer).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecEvent } from '../events.js';
import { defaultLoaderPath } from './collector.js';
import { statDev } from './decode.js';
import { capture, makeCgroup, runInCgroup } from './testutil.js';
import { baseRootfs } from '../../sandbox/image.js';
import { ExecNamer, identify } from '../../engine/models/monitor.js';
import { RecordingCollector, RecordingWriter } from '../replay/index.js';

before(() => {
  assert.ok(existsSync(defaultLoaderPath()), `the eBPF probe is not built (${defaultLoaderPath()}): run make setup`);
  assert.equal(process.getuid?.(), 0, 'the eBPF tests need root');
});

const execs = (evs: readonly { type: string }[]) => evs.filter((e): e is ExecEvent => e.type === 'exec');

/** stat()'s device and inode of a file. */
function statOf(path: string): { dev: number; ino: string } {
  const st = statSync(path, { bigint: true });
  return { dev: Number(st.dev), ino: st.ino.toString() };
}

/** The device (stat()'s encoding) /proc/self/mountinfo gives the mount at `dir`. */
function mountDev(dir: string): number {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse().find((l) => l.split(' ')[4] === dir);
  const [major, minor] = (line?.split(' ')[2] ?? '').split(':').map(Number);
  assert.ok(major !== undefined && minor !== undefined, `a mount at ${dir}`);
  return statDev(major, minor);
}

test('exec events carry the identity of the file the kernel loaded: a program, a script\'s interpreter', { timeout: 60_000 }, async () => {
  const cg = makeCgroup('execfile');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-execfile-'));
  try {
    const script = join(dir, 'job.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const { events, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, `/usr/bin/true; ${script}`));
    assert.equal(result.code, 0, result.stderr);
    const ex = execs(events);
    const prog = ex.find((e) => e.exe === '/usr/bin/true');
    assert.ok(prog, JSON.stringify(ex));
    assert.deepEqual(prog.file, statOf('/usr/bin/true'));
    // the kernel ran the script's interpreter: that is the file, and it says so
    const job = ex.find((e) => e.exe === script);
    assert.ok(job, JSON.stringify(ex));
    assert.deepEqual(job.file, { ...statOf(realpathSync('/bin/sh')), interpreter: true });

    // a recording keeps the field as it is
    const rec = join(dir, 'r.jsonl.gz');
    const w = new RecordingWriter(rec, { backend: 'ebpf' });
    w.write(events);
    await w.close();
    const back = new RecordingCollector(rec);
    await back.start();
    const replayed: ExecEvent[] = [];
    for await (const batch of back.events()) replayed.push(...execs(batch));
    assert.deepEqual(replayed.map((e) => e.file), ex.map((e) => e.file));
  } finally {
    await cg.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exec events on an overlayfs root: the overlay\'s device and the file\'s inode, which the monitor matches to the path', { timeout: 60_000 }, async () => {
  const lower = baseRootfs().rootfs; // throws SANDBOX_IMAGE_MISSING with "run make setup"
  const cg = makeCgroup('execfile-ovl');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-execfile-ovl-'));
  const tmpfs = join(dir, 't');
  const merged = join(dir, 'm');
  mkdirSync(tmpfs);
  mkdirSync(merged);
  let mounted = 0;
  try {
    // as src/sandbox/overlay.ts mounts a container's root: the upper layer on a tmpfs, the image below
    execFileSync('mount', ['-t', 'tmpfs', 'sandtrace-test', tmpfs]);
    mounted++;
    mkdirSync(join(tmpfs, 'u'));
    mkdirSync(join(tmpfs, 'w'));
    execFileSync('mount', ['-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${tmpfs}/u,workdir=${tmpfs}/w`, 'sandtrace-test', merged]);
    mounted++;
    // a program of the image (lower layer), and one written into the container (upper layer)
    copyFileSync(join(merged, 'bin', 'true'), join(merged, 'tmp', 'dropped'));
    chmodSync(join(merged, 'tmp', 'dropped'), 0o755);
    const { events, result } = await capture({ cgroupPath: cg.path }, () =>
      runInCgroup(cg.path, `chroot ${merged} /bin/true && chroot ${merged} /tmp/dropped`));
    assert.equal(result.code, 0, result.stderr);
    const ex = execs(events);
    const overlay = mountDev(merged);
    for (const [exe, path] of [['/bin/true', join(merged, 'bin', 'true')], ['/tmp/dropped', join(merged, 'tmp', 'dropped')]] as const) {
      const ev = ex.find((e) => e.exe === exe);
      assert.ok(ev?.file, `${exe}: ${JSON.stringify(ex)}`);
      // what was found: the inode stat() gives, on the overlay's own device (the kernel's s_dev),
      // where stat() gives a per-layer pseudo device (this overlay's layers are on two filesystems)
      assert.equal(ev.file.ino, statOf(path).ino, exe);
      assert.equal(ev.file.dev, overlay, exe);
      assert.notEqual(statOf(path).dev, overlay, `${exe}: stat() reports a layer's device`);
      // the monitor's comparison finds it through the mount the path is on
      assert.equal(identify(path, '/proc/self/mountinfo', ev.file)?.isK, true, exe);
      assert.equal(identify(join(merged, 'bin', 'sh'), '/proc/self/mountinfo', ev.file)?.isK, false, exe);
      // the table of a process gone meanwhile is passed over for the next one that lists the mount
      assert.equal(identify(path, () => ['/proc/999999999/mountinfo', '/proc/self/mountinfo'], ev.file)?.isK, true, exe);
      assert.equal(identify(path, () => ['/proc/999999999/mountinfo'], ev.file)?.isK, false, `${exe}: no table, no verdict`);
    }
  } finally {
    if (mounted > 1) execFileSync('umount', [merged]);
    if (mounted > 0) execFileSync('umount', [tmpfs]);
    await cg.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real exec through a symlink swapped before it is named: the monitor does not name it by the new target', { timeout: 60_000 }, async () => {
  const cg = makeCgroup('execfile-swap');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-execfile-swap-'));
  try {
    const evil = join(dir, 'evil');
    const benign = join(dir, 'benign');
    copyFileSync('/usr/bin/true', evil);
    copyFileSync('/usr/bin/true', benign); // the same bytes: only the file tells them apart
    const link = join(dir, 'run');
    symlinkSync(evil, link);
    // the exec, then the swap, as the workload would do it (before sandtrace reads the event)
    const { events, result } = await capture({ cgroupPath: cg.path }, () =>
      runInCgroup(cg.path, `${link} && ln -sfn ${benign} ${link}`));
    assert.equal(result.code, 0, result.stderr);
    const ev = execs(events).find((e) => e.exe === link);
    assert.ok(ev?.file, JSON.stringify(execs(events)));
    assert.deepEqual(ev.file, statOf(evil));
    // named now: the process is gone, its path leads to benign
    new ExecNamer(cg.path).apply(ev);
    assert.notEqual(ev.exe, realpathSync(benign));
    assert.equal(ev.exe, link);
    assert.equal(ev.exeUnverified, true);
  } finally {
    await cg.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a binfmt_misc program (qemu-user, Wine): its name is confirmed by a registered entry that hands it to the loaded interpreter', { timeout: 60_000 }, async () => {
  const BINFMT = '/proc/sys/fs/binfmt_misc';
  const entry = `sandtrace-test-${process.pid}`;
  const cg = makeCgroup('execfile-binfmt');
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-execfile-binfmt-'));
  // binfmt_misc is global: mounted (if it was not) and the entry registered only for this test
  const mounted = !existsSync(join(BINFMT, 'register'));
  try {
    if (mounted) execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
    // files that open with \x7fSTX<pid> go to /usr/bin/true (a magic no real file has)
    const magic = Buffer.concat([Buffer.from('\x7fSTX', 'latin1'), Buffer.from(String(process.pid))]);
    writeFileSync(join(BINFMT, 'register'), `:${entry}:M:0:${[...magic].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}::/usr/bin/true:`);
    const prog = join(dir, 'prog');
    writeFileSync(prog, Buffer.concat([magic, Buffer.from(' a foreign binary')]), { mode: 0o755 });
    const other = join(dir, 'other'); // no entry matches it
    writeFileSync(other, 'plain data', { mode: 0o755 });
    const { events, result } = await capture({ cgroupPath: cg.path }, () => runInCgroup(cg.path, prog));
    assert.equal(result.code, 0, result.stderr);
    const ev = execs(events).find((e) => e.exe === prog);
    assert.ok(ev?.file, JSON.stringify(execs(events)));
    assert.deepEqual(ev.file, { ...statOf('/usr/bin/true'), interpreter: true });
    // named after the process is gone: the file at the name is one the entry hands to that interpreter
    const named = { ...ev, file: { ...ev.file } };
    new ExecNamer(cg.path).apply(named);
    assert.deepEqual([named.exe, named.exeUnverified], [realpathSync(prog), undefined]);
    // the path swapped for a file no entry hands to it: not confirmed
    const swapped = { ...ev, exe: other, file: { ...ev.file } };
    new ExecNamer(cg.path).apply(swapped);
    assert.equal(swapped.exeUnverified, true);
  } finally {
    if (existsSync(join(BINFMT, entry))) writeFileSync(join(BINFMT, entry), '-1');
    if (mounted) execFileSync('umount', [BINFMT]);
    await cg.remove();
    rmSync(dir, { recursive: true, force: true });
  }
});
