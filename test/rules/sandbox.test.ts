// The rule pack end to end: small hostile samples detonated in the real sandbox (runc, eBPF
// capture, semantics) must produce the findings their behaviour calls for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyze } from '../../src/analyze.js';
import { scratchDir } from '../helpers.js';

async function detonate(name: string, body: string): Promise<Set<string>> {
  assert.equal(process.getuid?.(), 0, 'the sandbox needs root; run the tests as root after make setup');
  const dir = scratchDir(`sandtrace-live-${name}-`);
  const sample = join(dir, name);
  await writeFile(sample, body);
  await chmod(sample, 0o755);
  const { report } = await analyze({ sample, outDir: join(dir, 'out'), timeout: 30 });
  assert.equal(report.analysis.status, 'completed', JSON.stringify(report.analysis.errors));
  return new Set(report.findings.map((f) => f.rule));
}

const has = (got: Set<string>, ...ids: string[]) => {
  for (const id of ids) assert.ok(got.has(id), `${id} missing; found ${[...got].join(', ')}`);
};

test('reverse shell over loopback: socket on stdin/stdout, then a shell', { timeout: 120_000 }, async () => {
  has(await detonate('revshell.sh', [
    '#!/bin/sh',
    '(sleep 3 | nc -l -p 4444 >/dev/null 2>&1 &)',
    'sleep 0.5',
    `python3 -c 'import socket,os;s=socket.socket();s.connect(("127.0.0.1",4444));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.execv("/bin/sh",["sh","-c","id"])'`,
    '',
  ].join('\n')), 'ST-EXE-011', 'ST-EXE-010', 'ST-EXE-002', 'ST-C2-008');
});

test('masquerading: a python copied and a bash linked under other names are still python and bash', { timeout: 120_000 }, async () => {
  const got = await detonate('masq.sh', [
    '#!/bin/sh',
    'cp "$(command -v python3)" /tmp/update',
    `/tmp/update -c 'import socket;s=socket.socket();s.connect(("127.0.0.1",4444))' 2>/dev/null`,
    'ln -s /bin/bash /tmp/kworker',
    "/tmp/kworker -c 'unset HISTFILE; exit 0'",
    '',
  ].join('\n'));
  // the one-liner rule knows the copy for a python; the renamed copy and link are findings of their own
  has(got, 'ST-EXE-002', 'ST-DEF-013', 'ST-DEF-012');
});

test('fileless execution: memfd_create, then exec of the memory file in a child', { timeout: 120_000 }, async () => {
  has(await detonate('fileless.py', [
    '#!/usr/bin/env python3',
    'import os',
    "fd = os.memfd_create('payload')",
    "os.write(fd, open('/bin/true', 'rb').read())",
    'pid = os.fork()',
    'if pid == 0:',
    "    os.execv(f'/proc/self/fd/{fd}', ['kworker'])",
    'os.waitpid(pid, 0)',
    '',
  ].join('\n')), 'ST-EXE-006', 'ST-EXE-007');
});

test('namespace escape attempts denied by seccomp are still findings; the script deletes itself', { timeout: 120_000 }, async () => {
  has(await detonate('escape.sh', [
    '#!/bin/sh',
    'unshare -U -r true 2>/dev/null',
    'cat /proc/1/root/etc/hostname 2>/dev/null',
    'rm -f "$0"',
    '',
  ].join('\n')), 'ST-ESC-002', 'ST-ESC-009', 'ST-ESC-011', 'ST-ESC-004', 'ST-DEF-008');
});

test('cd /tmp && cat x: rule outputs carry the process\'s cwd and the analysis\' container', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the sandbox needs root; run the tests as root after make setup');
  const dir = scratchDir('sandtrace-live-cwd-');
  const sample = join(dir, 'cwd.sh');
  await writeFile(sample, ['#!/bin/sh', 'cd /tmp', 'echo data > x', 'cat x', ''].join('\n'));
  await chmod(sample, 0o755);
  const rules = join(dir, 'cwd.yaml');
  const r = (name: string, condition: string) =>
    `- rule: ${name}\n  desc: ${name}\n  condition: ${condition}\n  output: "cwd=%proc.cwd container=%container.id name=%container.name image=%container.image file=%fd.name ns=%k8s.ns.name"\n  priority: NOTICE\n`;
  await writeFile(rules, [
    r('cat in tmp', 'evt.type in (open, openat) and proc.name = cat and fd.name = /tmp/x and proc.cwd = /tmp/ and container.id != host'),
    r('cat elsewhere', 'evt.type in (open, openat) and proc.name = cat and fd.name = /tmp/x and not proc.cwd = /tmp/'),
    r('started in root', 'evt.type = execve and proc.cwd = /root/ and container.id != host'),
    r('k8s', 'evt.type in (open, openat) and proc.name = cat and k8s.ns.name != kube-system'),
  ].join(''));
  const { report } = await analyze({ sample, outDir: join(dir, 'out'), timeout: 30, rules: [rules] });
  assert.equal(report.analysis.status, 'completed', JSON.stringify(report.analysis.errors));
  const by = new Map(report.findings.map((f) => [f.rule, f]));
  const cat = by.get('cat in tmp');
  assert.ok(cat, `no finding for cat in /tmp; found ${[...by.keys()].join(', ')}`);
  const id = report.analysis.id;
  // `cat x` opened a relative name: fd.name and proc.cwd both come from the shell's chdir.
  assert.equal(cat.output, `cwd=/tmp/ container=${id} name=sandtrace-${id} image=<NA> file=/tmp/x ns=<NA>`);
  assert.ok(!by.has('cat elsewhere'));
  // The sample itself starts in the sandbox's working directory.
  assert.match(by.get('started in root')?.output ?? '', new RegExp(`^cwd=/root/ container=${id} `));
  assert.ok(!by.has('k8s'), 'k8s fields are missing here: comparisons on them are false');
});
