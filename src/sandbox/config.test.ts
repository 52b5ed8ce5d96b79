// The generated OCI config and seccomp policy: namespaces, limits, capabilities, masked paths and
// the deny list the engine relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, CAPABILITIES, DEFAULT_LIMITS, ID_SHIFT, INIT_PATH } from './config.js';
import { DENIED_SYSCALLS, seccompProfile } from './seccomp.js';
import { syscallNumber } from '../semantics/syscalls.js';

const cfg = buildConfig({ rootfs: '/x/rootfs', args: ['/tmp/s', 'a'], cgroupsPath: '/sandtrace/st-1', limits: { memoryMiB: 128, pids: 64, cpus: 0.5 } });

test('every namespace is new, including a user namespace mapping root to an unprivileged range', () => {
  assert.deepEqual(cfg.linux.namespaces.map((n) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
  assert.ok(cfg.linux.namespaces.every((n) => !('path' in n)), 'no namespace is joined from the host');
  assert.deepEqual(cfg.linux.uidMappings, [{ containerID: 0, hostID: ID_SHIFT, size: 65536 }]);
  assert.deepEqual(cfg.linux.gidMappings, cfg.linux.uidMappings);
  assert.ok(ID_SHIFT >= 65536, 'the mapped range excludes every host system uid');
});

test('limits map onto cgroup resources; process has no terminal and no new privileges', () => {
  const r = cfg.linux.resources as { memory: { limit: number; swap: number }; pids: { limit: number }; cpu: { quota: number; period: number } };
  assert.equal(r.memory.limit, 128 * 1024 * 1024);
  assert.equal(r.memory.swap, r.memory.limit, 'no swap beyond the memory limit');
  assert.equal(r.pids.limit, 64);
  assert.equal(r.cpu.quota / r.cpu.period, 0.5);
  assert.equal(cfg.linux.cgroupsPath, '/sandtrace/st-1');
  assert.equal(cfg.process.terminal, false);
  assert.equal(cfg.process.noNewPrivileges, true);
  assert.deepEqual(cfg.process.args, ['/tmp/s', 'a']);
  assert.ok(DEFAULT_LIMITS.pids > 0 && DEFAULT_LIMITS.memoryMiB > 0 && DEFAULT_LIMITS.cpus > 0);
});

test('with an init, the sample runs under it: the init is the first process, bound read-only from the host onto the /dev tmpfs', () => {
  const withInit = buildConfig({ rootfs: '/x/rootfs', args: ['/tmp/s', 'a'], cgroupsPath: '/sandtrace/st-1', limits: DEFAULT_LIMITS, init: '/var/cache/sandtrace/bin/sandtrace-init' });
  assert.deepEqual(withInit.process.args, [INIT_PATH, '--', '/tmp/s', 'a']);
  assert.deepEqual(withInit.mounts.find((m) => m.destination === INIT_PATH), { destination: INIT_PATH, type: 'bind', source: '/var/cache/sandtrace/bin/sandtrace-init', options: ['bind', 'ro', 'nosuid', 'nodev'] });
  assert.ok(withInit.mounts.findIndex((m) => m.destination === INIT_PATH) > withInit.mounts.findIndex((m) => m.destination === '/dev'), 'bound after the /dev tmpfs it sits on');
  assert.equal(cfg.mounts.some((m) => m.destination === INIT_PATH), false);
});

test('capabilities are at most Docker\'s default set, without the dangerous ones', () => {
  const docker = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
    'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];
  for (const set of ['bounding', 'effective', 'permitted'] as const) {
    for (const c of cfg.process.capabilities[set]) assert.ok(docker.includes(c), `${c} is beyond Docker's default`);
    for (const c of ['CAP_SYS_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_PTRACE', 'CAP_NET_ADMIN', 'CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_RAWIO']) {
      assert.ok(!cfg.process.capabilities[set].includes(c), `${c} in ${set}`);
    }
  }
  assert.deepEqual(cfg.process.capabilities.ambient, []);
  assert.deepEqual(cfg.process.capabilities.inheritable, []);
  assert.deepEqual([...CAPABILITIES], cfg.process.capabilities.bounding);
});

test('Docker-like masked and read-only paths; /sys read-only; no cgroupfs mount', () => {
  for (const p of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware']) assert.ok(cfg.linux.maskedPaths.includes(p), p);
  for (const p of ['/proc/sys', '/proc/bus', '/proc/irq']) assert.ok(cfg.linux.readonlyPaths.includes(p), p);
  const sys = cfg.mounts.find((m) => m.destination === '/sys');
  assert.ok(sys?.options.includes('ro'));
  assert.ok(!cfg.mounts.some((m) => m.type === 'cgroup' || m.type === 'cgroup2' || m.destination.startsWith('/sys/fs/cgroup')));
  assert.ok(!cfg.mounts.some((m) => m.type === 'bind'), 'nothing from the host is bind-mounted');
});

test('seccomp: default allow, the brief\'s deny list fails with EPERM, namespace clones refused', () => {
  const p = seccompProfile();
  assert.equal(p.defaultAction, 'SCMP_ACT_ALLOW');
  assert.deepEqual(cfg.linux.seccomp, p);
  const deny = p.syscalls.find((r) => r.errnoRet === 1 && !r.args);
  assert.ok(deny);
  const required = ['init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'bpf', 'perf_event_open', 'mount',
    'umount2', 'pivot_root', 'move_mount', 'open_tree', 'fsopen', 'fsmount', 'fsconfig', 'fspick', 'mount_setattr', 'keyctl', 'add_key',
    'request_key', 'unshare', 'setns', 'reboot', 'swapon', 'swapoff', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'acct',
    'quotactl', 'userfaultfd', 'open_by_handle_at', 'name_to_handle_at', 'iopl', 'ioperm', 'lookup_dcookie', 'syslog', 'vhangup', 'ptrace',
    'process_vm_writev'];
  for (const name of required) {
    assert.ok(DENIED_SYSCALLS.includes(name), `${name} missing from DENIED_SYSCALLS`);
    assert.ok(deny.names.includes(name), `${name} missing from the profile`);
  }
  // the engine matches events by name: every denied name must exist in the syscall tables
  for (const name of DENIED_SYSCALLS) {
    assert.ok(syscallNumber(name, 'x86_64') >= 0 || syscallNumber(name, 'i386') >= 0, `${name} is not a known syscall`);
  }
  for (const name of ['read', 'write', 'openat', 'execve', 'clone', 'connect']) assert.ok(!DENIED_SYSCALLS.includes(name), name);
  assert.equal(p.syscalls.find((r) => r.names.includes('clone3'))?.errnoRet, 38, 'clone3 -> ENOSYS so libc falls back to clone');
  const cloneRules = p.syscalls.filter((r) => r.names.includes('clone') && r.args);
  const newuser = 0x10000000;
  assert.ok(cloneRules.some((r) => r.args?.[0]?.value === newuser && r.args[0].valueTwo === newuser), 'clone(CLONE_NEWUSER) refused');
  assert.ok(cloneRules.every((r) => r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === 1));
  assert.ok(Object.isFrozen(DENIED_SYSCALLS));
});
