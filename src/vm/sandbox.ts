// The VM as a Sandbox (src/sandbox/types.ts): what `analyze --vm` drives. The guest boots when
// the collector starts (so nothing the sample does is missed), runs the sample once, reports
// its exit, output and the files it left, and powers off.
import { basename } from 'node:path';
import type { Sandbox, SandboxOptions, SandboxStartInfo, SandboxResult, ChangeList } from '../sandbox/types.js';
import { ChangeWalk, DEFAULT_CHANGE_LIMITS, type DescribedOmissions } from '../sandbox/changes.js';
import type { Collector } from '../capture/collector.js';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInVm, GUEST_LISTING, GUEST_SAMPLE_DIR, type VmRun } from './guest.js';
import { BASE_IMAGE } from './rootfs.js';

export interface VmSandboxOptions extends SandboxOptions {
  /** Guest kernel (vmlinuz); Debian's, fetched by the set-up, when absent. */
  kernel?: string;
  /** Keep console.log and qemu.log here (otherwise removed with the VM). */
  logDir?: string;
  /**
   * Guest userland: 'debian' (the container's base image on a snapshot disk; the sample at
   * /tmp/NAME, same programs as in the container; default when the base image exists) or
   * 'initramfs' (busybox + glibc in RAM; boots faster).
   */
  rootfs?: 'debian' | 'initramfs';
}

export interface VmSandbox extends Sandbox {
  /** The VMI collector for this VM (available after create()). */
  collector(): Collector;
}

/** What the report says about the isolation of a VM run. */
export function vmIsolation(): { kind: 'vm'; guarantees: string[]; weaker: string[] } {
  return {
    kind: 'vm',
    guarantees: [
      'own kernel (Debian linux-image-amd64) under full-system emulation (QEMU TCG)',
      'no network device (-nic none); loopback only',
      'no host files: an initramfs with busybox and the sample, in RAM; nothing written back',
      'monitoring from outside the guest: nothing installed or running in it',
      'timeout inside the guest and on the host; QEMU and its temporary files removed at the end',
    ],
    weaker: ['file changes are reported by path, size and hash only (no copies), as the guest listed them within a deadline; deletions are not listed',
      'guest kernel x86_64 Linux only (Debian 6.1 tested; 6.12 profiled and booted by hand)'],
  };
}

export function createVmSandbox(opts: VmSandboxOptions): VmSandbox {
  const rootfs = opts.rootfs ?? (existsSync(join(BASE_IMAGE(), 'rootfs', 'usr', 'bin')) ? 'debian' : 'initramfs');
  let vm: VmRun | null = null;
  let startedAt = 0;
  // the sample's copy in the guest, left out of the changes while it is the same file (guestStampCommand)
  let sample: { path: string; sha256: string; size: number } | null = null;
  return {
    async create(): Promise<SandboxStartInfo> {
      vm = runInVm({ sample: opts.sample, args: opts.args, timeout: opts.timeout, rootfs, ...(opts.interpreter ? { interpreter: opts.interpreter } : {}),
        ...(opts.kernel ? { kernel: opts.kernel } : {}), ...(opts.logDir ? { outDir: opts.logDir } : {}),
        ...(opts.limits?.memoryMiB ? { memoryMb: opts.limits.memoryMiB } : {}) });
      startedAt = performance.now();
      const samplePath = rootfs === 'debian' ? `/tmp/${basename(opts.sample)}` : `${GUEST_SAMPLE_DIR}/${basename(opts.sample)}`;
      const bytes = readFileSync(opts.sample);
      sample = { path: samplePath, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
      return { id: `vm-${vm.profile.buildId.slice(0, 12)}`, cgroupPath: '', hostPid: 0, samplePath };
    },
    collector(): Collector {
      if (!vm) throw new Error('VmSandbox.collector() before create()');
      return vm.collector;
    },
    async start(): Promise<void> { /* the guest runs the sample as soon as it has booted (collector.start()) */ },
    async wait(): Promise<SandboxResult> {
      if (!vm) throw new Error('VmSandbox.wait() before create()');
      const r = await vm.done;
      const killed = r.sampleExit === 137;
      return {
        exitCode: killed ? null : r.sampleExit, signal: killed ? 9 : null, timedOut: r.timedOut,
        duration: r.sampleSeconds ?? (performance.now() - startedAt) / 1000, console: r.output.slice(0, 64 * 1024),
      };
    },
    async freeze(): Promise<void> { /* QEMU applies back-pressure itself: the plugin blocks the vCPU */ },
    async thaw(): Promise<void> { /* see freeze() */ },
    async changes(): Promise<ChangeList> {
      const walk = new ChangeWalk(DEFAULT_CHANGE_LIMITS);
      const r = vm ? await vm.done.catch(() => null) : null;
      // A file the base image already had was modified; anything else was created by the run.
      const existed = (p: string) => rootfs === 'debian' && existsSync(join(BASE_IMAGE(), 'rootfs', p));
      for (const f of r?.files ?? []) {
        if (sample && f.path === sample.path && f.size === sample.size && f.sha256 === sample.sha256) continue;
        walk.describe({ path: f.path, change: existed(f.path) ? 'modified' : 'created', size: f.size, execBit: f.execBit, magic: f.magic, sha256: f.sha256 });
      }
      for (const p of r?.listing.notPrinted ?? []) walk.addUnlisted(p.dir, p.count);
      const list = walk.finish(null);
      const cut = !r ? (vm ? 'the guest did not finish (see the sandbox error): nothing was listed' : undefined) : r.listing.cut;
      const o = list.omitted as DescribedOmissions | undefined;
      if (cut && o) o.incomplete = cut;
      if (r && r.listing.complete && !r.listing.hashed && o) o.notHashedWhy = `the guest's ${GUEST_LISTING.seconds} s deadline cut the hashing`;
      return list;
    },
    async destroy(): Promise<void> {
      await vm?.collector.stop();
    },
  };
}
