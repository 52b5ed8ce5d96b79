// Builds the OCI runtime config (config.json) of one analysis: namespaces incl. a user namespace,
// cgroup limits, capabilities, masked paths and the seccomp policy. Pure data, no I/O.
import { seccompProfile, type OciSeccomp } from './seccomp.js';
import type { SandboxLimits } from './types.js';

/** Host uid/gid that container root maps to; the image is owned by this range (see image.ts). */
export const ID_SHIFT = 100000;
export const ID_RANGE = 65536;

export const DEFAULT_LIMITS: SandboxLimits = { memoryMiB: 512, pids: 256, cpus: 1 };

/** Docker's default capability set less NET_RAW, MKNOD and SYS_CHROOT: nothing that reaches the host kernel's globals. */
export const CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP',
  'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]);

export const MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/proc/kallsyms', '/proc/sysrq-trigger',
  '/sys/firmware', '/sys/devices/virtual/powercap', '/sys/kernel/debug', '/sys/kernel/tracing',
]);

export const READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys',
]);

export const SANDBOX_HOSTNAME = 'devbox';

export interface ConfigParams {
  /** Absolute host path of the merged root filesystem. */
  rootfs: string;
  args: string[];
  /** cgroup path relative to each hierarchy's root, e.g. /sandtrace/<id>. */
  cgroupsPath: string;
  limits: SandboxLimits;
  cwd?: string;
  env?: string[];
  /**
   * Host path of the init (init.c) to run `args` under as the container's first process, bound
   * read-only at INIT_PATH: the sample is then not pid 1, whose exit would kill every process it
   * left running. Without it, `args` are the first process.
   */
  init?: string;
}

/** Where the container sees its init: on the /dev tmpfs, so that no file of the image is touched or added. */
export const INIT_PATH = '/dev/init';
/** The init's pid in the container's pid namespace (its first process); the sample is its child. */
export const CONTAINER_INIT_PID = 1;

export interface OciConfig {
  ociVersion: string;
  root: { path: string; readonly: boolean };
  hostname: string;
  process: {
    terminal: boolean; user: { uid: number; gid: number; additionalGids: number[] };
    args: string[]; env: string[]; cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits: Array<{ type: string; hard: number; soft: number }>;
    noNewPrivileges: boolean; oomScoreAdj: number;
  };
  mounts: Array<{ destination: string; type: string; source: string; options: string[] }>;
  linux: {
    uidMappings: Array<{ containerID: number; hostID: number; size: number }>;
    gidMappings: Array<{ containerID: number; hostID: number; size: number }>;
    namespaces: Array<{ type: string }>;
    cgroupsPath: string;
    resources: Record<string, unknown>;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp: OciSeccomp;
    rootfsPropagation: string;
  };
}

export function buildConfig(p: ConfigParams): OciConfig {
  const caps = [...CAPABILITIES];
  const mem = Math.max(16, Math.floor(p.limits.memoryMiB)) * 1024 * 1024;
  const period = 100000;
  return {
    ociVersion: '1.0.2',
    root: { path: p.rootfs, readonly: false },
    hostname: SANDBOX_HOSTNAME,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0, additionalGids: [] },
      args: p.init ? [INIT_PATH, '--', ...p.args] : p.args,
      env: p.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'USER=root'],
      cwd: p.cwd ?? '/root',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 },
        { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
      ],
      noNewPrivileges: true,
      // the sample is the first thing the OOM killer takes
      oomScoreAdj: 1000,
    },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      // no cgroupfs at all: the sample cannot see or move between cgroups
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...(p.init ? [{ destination: INIT_PATH, type: 'bind', source: p.init, options: ['bind', 'ro', 'nosuid', 'nodev'] }] : []),
    ],
    linux: {
      uidMappings: [{ containerID: 0, hostID: ID_SHIFT, size: ID_RANGE }],
      gidMappings: [{ containerID: 0, hostID: ID_SHIFT, size: ID_RANGE }],
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup', 'user'].map((type) => ({ type })),
      cgroupsPath: p.cgroupsPath,
      resources: {
        // no device nodes beyond runc's defaults (null, zero, full, tty, random, urandom, pts)
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: mem, swap: mem },
        pids: { limit: Math.max(8, Math.floor(p.limits.pids)) },
        cpu: { quota: Math.max(1000, Math.round(p.limits.cpus * period)), period },
      },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      seccomp: seccompProfile(),
      rootfsPropagation: 'private',
    },
  };
}
