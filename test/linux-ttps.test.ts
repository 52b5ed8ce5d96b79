// End to end: test/samples/linux_ttps.sh runs 64 common Linux malware techniques (reverse and
// bind shells, fileless execution, download and run, masquerading, LD_PRELOAD, log and history
// tampering, timestomping, miners, persistence, discovery, defence evasion, container-escape
// probes, ptrace, module loads, raw sockets, hosts-file and watchdog tampering, shell ransomware,
// rival-miner clean-up, cloud and pod credentials) in the real sandbox (runc, the eBPF probe), each in
// its own process tree under `sh linux_ttps.sh vNN`. Every variant must yield the rules named
// here in that tree; test/rules/linux-ttps.test.ts holds the same techniques as event sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import type { Report } from '../src/report/schema.js';
import { ROOT, tempDir } from './helpers.js';

const EXPECT: Record<string, { what: string; rules: string[] }> = {
  v01: { what: 'bash /dev/tcp reverse shell', rules: ['ST-EXE-011', 'ST-EXE-012'] },
  v02: { what: 'python pty reverse shell one-liner', rules: ['ST-EXE-010', 'ST-EXE-002', 'ST-EXE-014'] },
  v03: { what: 'python dup2, then a shell child', rules: ['ST-EXE-010', 'ST-EXE-012'] },
  v04: { what: 'python dup2, then exec sh', rules: ['ST-EXE-011'] },
  v05: { what: 'mkfifo + nc reverse shell (script)', rules: ['ST-EXE-012'] },
  v06: { what: 'nc -e', rules: ['ST-EXE-009'] },
  v07: { what: 'memfd_create + execve /proc/self/fd/N', rules: ['ST-EXE-006', 'ST-EXE-007'] },
  v08: { what: 'execveat(AT_EMPTY_PATH) of a memfd', rules: ['ST-EXE-006'] },
  v09: { what: 'curl, chmod +x, run', rules: ['ST-C2-006', 'ST-C2-007', 'ST-DEF-009'] },
  v10: { what: 'python download, chmod, run', rules: ['ST-EXE-005', 'ST-DEF-009'] },
  v11: { what: 'python script deletes itself', rules: ['ST-DEF-008'] },
  v12: { what: 'prctl(PR_SET_NAME)', rules: ['ST-DEF-004'] },
  v13: { what: '/proc/self/comm written', rules: ['ST-DEF-004'] },
  v14: { what: 'argv[0] [kworker/0:2]', rules: ['ST-DEF-005'] },
  v15: { what: 'LD_PRELOAD of a library in /tmp', rules: ['ST-DEF-014'] },
  v16: { what: '/etc/ld.so.preload', rules: ['ST-PER-005', 'ST-DEF-014'] },
  v17: { what: 'unset HISTFILE', rules: ['ST-DEF-012'] },
  v18: { what: 'history linked to /dev/null', rules: ['ST-DEF-002'] },
  v19: { what: 'log truncated', rules: ['ST-DEF-001'] },
  v20: { what: 'log lines removed with sed -i', rules: ['ST-DEF-001'] },
  v21: { what: 'wtmp zeroed in place', rules: ['ST-DEF-001'] },
  v22: { what: 'touch -r', rules: ['ST-DEF-003'] },
  v23: { what: 'python os.utime onto a system binary', rules: ['ST-DEF-015'] },
  v55: { what: 'python os.utime on a descriptor of a system binary', rules: ['ST-DEF-015'] },
  v56: { what: 'LD_PRELOAD of a library dropped to /usr/local/lib', rules: ['ST-DEF-016'] },
  v24: { what: 'stratum URL', rules: ['ST-IMP-005'] },
  v25: { what: 'xmrig options, a Monero wallet', rules: ['ST-IMP-005'] },
  v26: { what: 'crontab -', rules: ['ST-PER-001', 'ST-PER-002'] },
  v27: { what: 'global user unit, generator', rules: ['ST-PER-003'] },
  v28: { what: "a user's unit", rules: ['ST-PER-003'] },
  v29: { what: '.bashrc, profile.d', rules: ['ST-PER-004'] },
  v30: { what: 'bash completion hook', rules: ['ST-PER-004'] },
  v31: { what: 'rc.local, init.d', rules: ['ST-PER-007'] },
  v32: { what: 'udev, motd', rules: ['ST-PER-011'] },
  v33: { what: 'PAM backdoor line', rules: ['ST-PER-013'] },
  v34: { what: 'ld.so.conf.d', rules: ['ST-PER-014'] },
  v35: { what: 'APT hook', rules: ['ST-PER-011'] },
  v36: { what: 'authorized_keys', rules: ['ST-PER-006'] },
  v37: { what: '/proc/*/cmdline en masse', rules: ['ST-DIS-005'] },
  v38: { what: '/proc/net tables', rules: ['ST-DIS-012'] },
  v39: { what: '/proc/1/cgroup, /.dockerenv', rules: ['ST-DIS-006'] },
  v40: { what: 'DMI and /proc/1/sched', rules: ['ST-DIS-006'] },
  v41: { what: 'pkill of security tools', rules: ['ST-DEF-007'] },
  v42: { what: 'mkfifo + nc reverse shell (one-liner)', rules: ['ST-EXE-012'] },
  v43: { what: 'mount', rules: ['ST-ESC-001'] },
  v44: { what: 'core_pattern, release_agent, binfmt_misc, sysrq-trigger', rules: ['ST-ESC-007', 'ST-IMP-008'] },
  v45: { what: 'docker.sock', rules: ['ST-ESC-005'] },
  v46: { what: 'nsenter, unshare', rules: ['ST-ESC-011', 'ST-ESC-002'] },
  v47: { what: 'ptrace attach, process_vm_readv, /proc/PID/mem', rules: ['ST-PRV-007', 'ST-PRV-008', 'ST-CRD-007'] },
  v48: { what: 'finit_module, raw and packet sockets, TRACEME', rules: ['ST-ESC-003', 'ST-LAT-002', 'ST-DEF-010'] },
  v49: { what: 'python exec of decoded code', rules: ['ST-EXE-013'] },
  v50: { what: 'eval of decoded text', rules: ['ST-EXE-003'] },
  v51: { what: 'bind shell', rules: ['ST-EXE-011', 'ST-C2-008'] },
  v52: { what: 'sysrq-trigger', rules: ['ST-IMP-008'] },
  v53: { what: 'useradd -o -u 0, /etc/passwd appended', rules: ['ST-PER-008', 'ST-PER-009'] },
  v54: { what: 'setuid shell', rules: ['ST-PRV-001'] },
  v57: { what: '/etc/hosts appended', rules: ['ST-DEF-017'] },
  v58: { what: 'watchdog opened', rules: ['ST-DEF-018'] },
  v59: { what: 'openssl enc per file, originals removed', rules: ['ST-IMP-010'] },
  v60: { what: 'pkill and ps | grep of rival miners', rules: ['ST-IMP-011'] },
  v61: { what: 'SELINUX=disabled written', rules: ['ST-DEF-007'] },
  v62: { what: 'service account token read', rules: ['ST-CRD-016'] },
  v63: { what: '/proc/1/environ read', rules: ['ST-CRD-017'] },
  v64: { what: 'metadata service asked for role credentials', rules: ['ST-CRD-014', 'ST-CRD-015'] },
};

test('Linux malware techniques: every variant of linux_ttps.sh yields its rules in its own process tree', { timeout: 300_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the sandbox needs root; run the tests as root after make setup');
  const t = tempDir();
  let report: Report;
  try {
    ({ report } = await analyze({ sample: join(ROOT, 'test', 'samples', 'linux_ttps.sh'), outDir: t.path, timeout: 150 }));
  } finally {
    t.cleanup();
  }
  assert.equal(report.analysis.status, 'completed', JSON.stringify(report.analysis.errors));
  const procs = new Map(report.processes.map((p) => [p.pid, p]));
  // the variant of a process: the nearest `sh linux_ttps.sh vNN` at or above it
  const variantOf = (pid: number): string | undefined => {
    for (let p = procs.get(pid), n = 0; p && n < 64; p = procs.get(p.ppid), n++) {
      if (p.argv.length === 3 && p.argv[1]?.endsWith('linux_ttps.sh') && /^v\d\d$/.test(p.argv[2] ?? '')) return p.argv[2];
    }
    return undefined;
  };
  const seen = new Map<string, Set<string>>();
  for (const f of report.findings) {
    for (const pid of new Set([f.pid, ...f.evidence.map((e) => e.pid)])) {
      const v = variantOf(pid);
      if (v) seen.set(v, (seen.get(v) ?? new Set()).add(f.rule));
    }
  }
  const missing: string[] = [];
  for (const [v, { what, rules }] of Object.entries(EXPECT)) {
    const got = seen.get(v) ?? new Set();
    const lack = rules.filter((r) => !got.has(r));
    if (lack.length > 0) missing.push(`${v} (${what}): missing ${lack.join(', ')}; found ${[...got].sort().join(', ') || 'nothing'}`);
  }
  assert.deepEqual(missing, []);
  // each escape interface of v44 is in the evidence, not only the first
  const escape = report.findings.filter((f) => f.rule === 'ST-ESC-007').flatMap((f) => f.evidence.map((e) => String(e.fields['fd.name'])));
  for (const p of ['/proc/sys/kernel/core_pattern', '/sys/fs/cgroup/release_agent', '/proc/sys/fs/binfmt_misc/register']) {
    assert.ok(escape.includes(p), `ST-ESC-007 evidence lacks ${p}: ${escape.join(', ')}`);
  }
  // useradd's audit netlink socket is raw by type, but not a raw network socket
  assert.ok(!seen.get('v53')?.has('ST-LAT-002'), 'ST-LAT-002 on useradd\'s netlink socket');
  assert.equal(report.verdict.label, 'malicious');
});
