// End to end: test/samples/alias_secrets.sh reads the decoy credentials and the password hashes
// through names that are not theirs (symlinks, hard links, a rename, /proc's magic links, /dev/fd,
// '..' after a symlinked folder, a trailing '/', cat under a trusted tool's name) in the real
// sandbox (runc, the eBPF probe). Each variant must yield its credential finding, with the name
// the program gave (fd.name) and the file it opened (fd.realname) in the evidence; the links and
// the move are findings of their own (ST-CRD-011, ST-CRD-012).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import type { Report } from '../src/report/schema.js';
import { ROOT, tempDir } from './helpers.js';

type Evidence = Report['findings'][number]['evidence'][number];

// fd.name (exact, or a pattern where it holds a pid or descriptor number), fd.realname, rule, and
// proc.name where the variant is about the program's name
const VARIANTS: { what: string; name: string | RegExp; real: string; rule: string; proc?: string }[] = [
  { what: 'symlink to the file', name: '/tmp/v02_l', real: '/root/.aws/credentials', rule: 'ST-CRD-003' },
  { what: 'symlink to its folder', name: '/tmp/v03_d/credentials', real: '/root/.aws/credentials', rule: 'ST-CRD-004' },
  { what: 'a chain of symlinks', name: '/tmp/v04_b', real: '/etc/shadow', rule: 'ST-CRD-001' },
  { what: 'a relative symlink', name: '/tmp/v05_r', real: '/root/.ssh/id_rsa', rule: 'ST-CRD-002' },
  { what: 'a hard link', name: '/tmp/v06_h', real: '/etc/shadow', rule: 'ST-CRD-001' },
  { what: '/proc/self/root', name: '/proc/self/root/etc/shadow', real: '/etc/shadow', rule: 'ST-CRD-001' },
  { what: '/proc/self/cwd', name: '/proc/self/cwd/id_rsa', real: '/root/.ssh/id_rsa', rule: 'ST-CRD-002' },
  { what: '/proc/PID/root', name: /^\/proc\/\d+\/root\/root\/\.ssh\/id_rsa$/, real: '/root/.ssh/id_rsa', rule: 'ST-CRD-004' },
  { what: "a trailing '/'", name: '/etc/shadow', real: '/etc/shadow', rule: 'ST-CRD-001', proc: 'cat' },
  { what: 'cd through a symlink', name: '/tmp/v14_d/credentials', real: '/root/.aws/credentials', rule: 'ST-CRD-004' },
  { what: '/dev/fd/N', name: /^\/dev\/fd\/\d+\/credentials$/, real: '/root/.aws/credentials', rule: 'ST-CRD-004' },
  { what: '/proc/self/fd/N', name: /^\/proc\/self\/fd\/\d+\/id_rsa$/, real: '/root/.ssh/id_rsa', rule: 'ST-CRD-002' },
  { what: 'a rename', name: '/tmp/v20_m', real: '/home/user/.aws/credentials', rule: 'ST-CRD-004' },
  { what: "'..' after a symlinked folder", name: '/tmp/.aws/credentials', real: '/root/.aws/credentials', rule: 'ST-CRD-004' },
  { what: 'a hard link of a symlink', name: '/tmp/v30_h', real: '/etc/shadow', rule: 'ST-CRD-001' },
  { what: 'a relative symlink to /etc', name: '/tmp/v31/e/shadow', real: '/etc/shadow', rule: 'ST-CRD-001' },
  { what: "another process's cwd", name: /^\/proc\/\d+\/cwd\/id_rsa$/, real: '/root/.ssh/id_rsa', rule: 'ST-CRD-002' },
  { what: 'cat copied to /tmp/ssh', name: '/home/user/.ssh/id_rsa', real: '/home/user/.ssh/id_rsa', rule: 'ST-CRD-002', proc: 'ssh' },
  { what: 'cat linked to /tmp/login', name: '/etc/gshadow', real: '/etc/gshadow', rule: 'ST-CRD-001', proc: 'login' },
  { what: 'a symlink made and followed by python', name: '/tmp/v34_p/id_rsa', real: '/root/.ssh/id_rsa', rule: 'ST-CRD-002' },
];

test('credentials read through names that are not theirs: every variant is a credential finding naming the file', { timeout: 180_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the sandbox needs root; run the tests as root after make setup');
  const t = tempDir();
  let report: Report;
  try {
    ({ report } = await analyze({ sample: join(ROOT, 'test', 'samples', 'alias_secrets.sh'), outDir: t.path, timeout: 60 }));
  } finally {
    t.cleanup();
  }
  assert.equal(report.analysis.status, 'completed', JSON.stringify(report.analysis.errors));
  const evidence = (rule: string): Evidence[] => report.findings.filter((f) => f.rule === rule).flatMap((f) => f.evidence);
  const missing: string[] = [];
  for (const v of VARIANTS) {
    const hit = evidence(v.rule).some((e) => e.event === 'openat'
      && (typeof v.name === 'string' ? e.fields['fd.name'] === v.name : v.name.test(String(e.fields['fd.name'])))
      && e.fields['fd.realname'] === v.real && (v.proc === undefined || e.fields['proc.name'] === v.proc));
    if (!hit) missing.push(`${v.what}: ${v.rule} with fd.name ${v.name} fd.realname ${v.real}`);
  }
  const seen = report.findings.filter((f) => f.rule.startsWith('ST-CRD')).flatMap((f) => f.evidence.map((e) => `${f.rule} ${e.event} ${e.fields['fd.name']} -> ${e.fields['fd.realname']}`));
  assert.deepEqual(missing, [], `credential findings seen:\n${seen.join('\n')}`);
  // the links and the move themselves, their targets resolved
  const targets = (rule: string) => new Set(evidence(rule).map((e) => e.fields['fs.path.realname']));
  for (const t of ['/root/.aws/credentials', '/root/.aws', '/etc/shadow', '/root/.ssh/id_rsa', '/root/.ssh', '/etc']) {
    assert.equal(targets('ST-CRD-011').has(t), true, `ST-CRD-011 for a symlink to ${t}: ${[...targets('ST-CRD-011')].join(', ')}`);
  }
  for (const t of ['/etc/shadow', '/home/user/.aws/credentials']) {
    assert.equal(targets('ST-CRD-012').has(t), true, `ST-CRD-012 for ${t}: ${[...targets('ST-CRD-012')].join(', ')}`);
  }
  assert.equal(report.verdict.label, 'malicious');
});
