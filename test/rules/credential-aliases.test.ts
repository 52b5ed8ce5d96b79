// The credential rules see the file a program opened, whatever name it gave: symlinks, hard links
// and renames the sample made, /proc's magic links (root, cwd, fd/N), /dev/fd/N, '..' after a
// symlinked folder, a trailing '/'. fd.name stays the name as given; fd.realname is the file's own,
// and the evidence carries both. Event sequences through the real SemanticState (see sim.ts); the
// same variants run in the real sandbox in test/alias-secrets.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinRulePaths, createRuleDetector, loadRuleFiles, loadRuleStrings } from '../../src/engine/rules/index.js';
import type { RuleSet } from '../../src/engine/rules/index.js';
import type { Finding } from '../../src/engine/types.js';
import { O, Sim } from './sim.js';

let pack: RuleSet;

test('the built-in pack loads', async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(builtinRulePaths());
  assert.deepEqual(diagnostics, []);
  pack = ruleset;
});

function findings(run: (s: Sim) => void, rs = pack): Finding[] {
  const s = new Sim();
  run(s);
  const d = createRuleDetector(rs);
  for (const e of s.events) d.onEvent(e);
  return d.finish();
}

const symlink = (s: Sim, pid: number, target: string, link: string) => s.sys(pid, 'symlinkat', [0, -100, 0], 0, { path: target, path2: link });
const link = (s: Sim, pid: number, from: string, to: string, flags = 0) => s.sys(pid, 'linkat', [-100, 0, -100, 0, flags], 0, { path: from, path2: to });
const cat = (s: Sim, path: string, o: { ppid?: number } = {}) => {
  const p = s.run('/usr/bin/cat', ['cat', path], o);
  s.open(p, path, O.r);
  return p;
};

interface Variant {
  name: string;
  run: (s: Sim) => void;
  rule: string;
  /** fd.name and fd.realname of the evidence. */
  fdName: string;
  real: string;
}

const VARIANTS: Variant[] = [
  { name: 'symlink to the file', run: (s) => { symlink(s, 1, '/root/.aws/credentials', '/tmp/l'); cat(s, '/tmp/l'); },
    rule: 'ST-CRD-003', fdName: '/tmp/l', real: '/root/.aws/credentials' },
  { name: 'symlink to its folder', run: (s) => { symlink(s, 1, '/root/.aws', '/tmp/d'); cat(s, '/tmp/d/credentials'); },
    rule: 'ST-CRD-004', fdName: '/tmp/d/credentials', real: '/root/.aws/credentials' },
  { name: 'a chain of symlinks', run: (s) => { symlink(s, 1, '/etc/shadow', '/tmp/a'); symlink(s, 1, '/tmp/a', '/tmp/b'); cat(s, '/tmp/b'); },
    rule: 'ST-CRD-001', fdName: '/tmp/b', real: '/etc/shadow' },
  { name: 'a relative symlink', run: (s) => { s.chdir(1, '/tmp'); symlink(s, 1, '../root/.ssh/id_rsa', 'r'); cat(s, 'r'); },
    rule: 'ST-CRD-002', fdName: '/tmp/r', real: '/root/.ssh/id_rsa' },
  { name: 'a hard link', run: (s) => { link(s, 1, '/etc/shadow', '/tmp/h'); cat(s, '/tmp/h'); },
    rule: 'ST-CRD-001', fdName: '/tmp/h', real: '/etc/shadow' },
  { name: 'a hard link of a symlink', run: (s) => { symlink(s, 1, '/etc/shadow', '/tmp/l'); link(s, 1, '/tmp/l', '/tmp/h'); cat(s, '/tmp/h'); },
    rule: 'ST-CRD-001', fdName: '/tmp/h', real: '/etc/shadow' },
  { name: 'a rename', run: (s) => { s.rename(1, '/root/.aws/credentials', '/tmp/m'); cat(s, '/tmp/m'); },
    rule: 'ST-CRD-004', fdName: '/tmp/m', real: '/root/.aws/credentials' },
  { name: 'a folder renamed', run: (s) => { s.rename(1, '/root/.ssh', '/tmp/s'); cat(s, '/tmp/s/id_rsa'); },
    rule: 'ST-CRD-002', fdName: '/tmp/s/id_rsa', real: '/root/.ssh/id_rsa' },
  { name: '/proc/self/root', run: (s) => { cat(s, '/proc/self/root/etc/shadow'); },
    rule: 'ST-CRD-001', fdName: '/proc/self/root/etc/shadow', real: '/etc/shadow' },
  { name: '/proc/PID/root', run: (s) => { cat(s, '/proc/1/root/root/.aws/credentials'); },
    rule: 'ST-CRD-004', fdName: '/proc/1/root/root/.aws/credentials', real: '/root/.aws/credentials' },
  { name: '/proc/self/cwd', run: (s) => { const sh = s.fork(1); s.chdir(sh, '/root/.ssh'); cat(s, '/proc/self/cwd/id_rsa', { ppid: sh }); },
    rule: 'ST-CRD-002', fdName: '/proc/self/cwd/id_rsa', real: '/root/.ssh/id_rsa' },
  { name: "another process's cwd", run: (s) => { const sh = s.fork(1); s.chdir(sh, '/root/.ssh'); cat(s, `/proc/${sh}/cwd/id_rsa`); },
    rule: 'ST-CRD-002', fdName: '/proc/100/cwd/id_rsa', real: '/root/.ssh/id_rsa' },
  { name: '/proc/self/fd/N of a folder opened O_PATH', run: (s) => {
    const py = s.run('/usr/bin/python3', ['python3', '-c', '...']);
    const d = s.open(py, '/root/.ssh', 0o10000000);
    s.open(py, `/proc/self/fd/${d}/id_rsa`, O.r);
  }, rule: 'ST-CRD-002', fdName: '/proc/self/fd/3/id_rsa', real: '/root/.ssh/id_rsa' },
  { name: '/dev/fd/N', run: (s) => {
    const py = s.run('/usr/bin/python3', ['python3', '-c', '...']);
    const d = s.open(py, '/root/.aws', 0o10000000);
    s.open(py, `/dev/fd/${d}/credentials`, O.r);
  }, rule: 'ST-CRD-003', fdName: '/dev/fd/3/credentials', real: '/root/.aws/credentials' },
  { name: "'..' after a symlinked folder", run: (s) => { symlink(s, 1, '/root/.ssh', '/tmp/d'); cat(s, '/tmp/d/../.aws/credentials'); },
    rule: 'ST-CRD-004', fdName: '/tmp/.aws/credentials', real: '/root/.aws/credentials' },
  { name: 'cd through a symlink', run: (s) => { symlink(s, 1, '/root/.aws', '/tmp/d'); const sh = s.fork(1); s.chdir(sh, '/tmp/d'); cat(s, 'credentials', { ppid: sh }); },
    rule: 'ST-CRD-004', fdName: '/tmp/d/credentials', real: '/root/.aws/credentials' },
  { name: "a trailing '/' (ENOTDIR)", run: (s) => { const p = s.run('/usr/bin/cat', ['cat', '/etc/shadow/']); s.open(p, '/etc/shadow/', O.r, -20); },
    rule: 'ST-CRD-001', fdName: '/etc/shadow', real: '/etc/shadow' },
];

for (const v of VARIANTS) {
  test(`credential read through ${v.name}: ${v.rule} with fd.name ${v.fdName} and fd.realname ${v.real}`, () => {
    const got = findings(v.run).filter((f) => f.rule === v.rule);
    assert.ok(got.length > 0, `${v.rule} did not fire`);
    const ev = got.flatMap((f) => f.evidence).find((e) => e.event === 'openat');
    assert.ok(ev, 'an open in the evidence');
    assert.equal(ev.fields['fd.name'], v.fdName);
    assert.equal(ev.fields['fd.realname'], v.real);
    if (v.rule !== 'ST-CRD-004') assert.match(got[0]!.output ?? '', new RegExp(`realname=${v.real.replace(/\./g, '\\.')}`));
  });
}

test('the tools the rules trust are trusted only as the system\'s own programs, not as a copy or link under their name', () => {
  const ids = (run: (s: Sim) => void) => new Set(findings(run).map((f) => f.rule));
  // cat copied to /tmp/ssh reading a key that is no decoy; cat linked to /tmp/login reading /etc/shadow
  const copied = ids((s) => {
    s.copy('/usr/bin/cat', '/tmp/ssh');
    const p = s.run('/tmp/ssh', ['/tmp/ssh', '/home/user/.ssh/id_ed25519']);
    s.open(p, '/home/user/.ssh/id_ed25519', O.r);
  });
  assert.equal(copied.has('ST-CRD-002'), true, 'a cat copied to /tmp/ssh');
  const linked = ids((s) => {
    symlink(s, 1, '/usr/bin/cat', '/tmp/login');
    const p = s.run('/tmp/login', ['/tmp/login', '/etc/shadow']);
    s.open(p, '/etc/shadow', O.r);
  });
  assert.equal(linked.has('ST-CRD-001'), true, 'a cat linked to /tmp/login');
  // a program the sample wrote under a trusted name
  const written = ids((s) => {
    s.open(1, '/tmp/su', O.w);
    const p = s.run('/tmp/su', ['/tmp/su']);
    s.open(p, '/etc/shadow', O.r);
  });
  assert.equal(written.has('ST-CRD-001'), true, 'a program written as /tmp/su');
  // the system's own tools still are
  assert.equal(ids((s) => { const p = s.run('/usr/bin/ssh', ['ssh', 'host']); s.open(p, '/home/user/.ssh/id_ed25519', O.r); }).has('ST-CRD-002'), false, 'ssh');
  assert.equal(ids((s) => { const p = s.run('/usr/bin/passwd', ['passwd']); s.open(p, '/etc/shadow', O.r); }).has('ST-CRD-001'), false, 'passwd');
});

test('links and moves of credential files are findings of their own (ST-CRD-011, ST-CRD-012), their target resolved', () => {
  const of = (run: (s: Sim) => void, id: string) => findings(run).filter((f) => f.rule === id);
  // a relative target, and one through another symlink
  const rel = of((s) => { s.chdir(1, '/tmp'); symlink(s, 1, '../root/.ssh', 'k'); }, 'ST-CRD-011');
  assert.equal(rel[0]?.evidence[0]?.fields['fs.path.realname'], '/root/.ssh');
  assert.match(rel[0]?.output ?? '', /target=\.\.\/root\/\.ssh realname=\/root\/\.ssh linkpath=\/tmp\/k/);
  const chained = of((s) => { symlink(s, 1, '/etc', '/tmp/e'); symlink(s, 1, '/tmp/e/shadow', '/tmp/x'); }, 'ST-CRD-011');
  assert.deepEqual(chained[0]?.evidence.map((e) => e.fields['fs.path.realname']), ['/etc', '/etc/shadow']);
  assert.equal(of((s) => symlink(s, 1, '/', '/tmp/root'), 'ST-CRD-011').length, 1, 'Falco\'s sensitive directories');
  // hard links (through a symlinked folder too) and renames, failed attempts included
  assert.equal(of((s) => { symlink(s, 1, '/root/.ssh', '/tmp/s'); link(s, 1, '/tmp/s/id_rsa', '/tmp/k'); }, 'ST-CRD-012')[0]?.evidence[0]?.fields['fs.path.realname'], '/root/.ssh/id_rsa');
  assert.equal(of((s) => s.rename(1, '/root/.aws/credentials', '/tmp/c', -18), 'ST-CRD-012').length, 1);
  // benign: links to ordinary files, public keys, ordinary renames
  assert.equal(of((s) => { symlink(s, 1, '/usr/bin/python3', '/tmp/py'); symlink(s, 1, '/home/user/.ssh/id_ed25519.pub', '/tmp/pub'); }, 'ST-CRD-011').length, 0);
  assert.equal(of((s) => { s.rename(1, '/root/a.txt', '/root/b.txt'); link(s, 1, '/etc/hostname', '/tmp/h'); }, 'ST-CRD-012').length, 0);
});

test('fd.realname and fs.path.realname: the name as given when nothing is resolved; in outputs and on any descriptor event', () => {
  const { ruleset, diagnostics } = loadRuleStrings([
    '- rule: reads\n  desc: reads\n  condition: evt.type = read\n  output: "name=%fd.name real=%fd.realname"\n  priority: NOTICE\n',
    '- rule: stats\n  desc: stats\n  condition: evt.type = newfstatat\n  output: "path=%fs.path.name real=%fs.path.realname"\n  priority: NOTICE\n',
  ].join(''));
  assert.deepEqual(diagnostics, []);
  const out = (run: (s: Sim) => void) => findings(run, ruleset).map((f) => f.output);
  assert.deepEqual(out((s) => { const fd = s.open(1, '/etc/hostname'); s.sys(1, 'read', [fd, 0, 10], 10); }), ['name=/etc/hostname real=/etc/hostname']);
  assert.deepEqual(out((s) => {
    symlink(s, 1, '/etc/shadow', '/tmp/l');
    const fd = s.open(1, '/tmp/l');
    s.sys(1, 'dup2', [fd, 9], 9).sys(1, 'read', [9, 0, 10], 10);
  }), ['name=/tmp/l real=/etc/shadow']);
  assert.deepEqual(out((s) => { s.sys(1, 'newfstatat', [-100, 0, 0, 0], 0, { path: '/proc/self/root/etc/shadow' }); }),
    ['path=/proc/self/root/etc/shadow real=/etc/shadow']);
});

test('persistence and privilege rules see the file written, whatever name it was written through: a symlink the sample made, or /proc/self/root', () => {
  const TARGETS: [string, string][] = [
    ['ST-PER-001', '/etc/cron.d/update'], ['ST-PER-003', '/etc/systemd/system/backdoor.service'], ['ST-PER-004', '/root/.bashrc'],
    ['ST-PER-005', '/etc/ld.so.preload'], ['ST-PER-006', '/root/.ssh/authorized_keys'], ['ST-PER-007', '/etc/rc.local'],
    ['ST-PER-009', '/etc/passwd'], ['ST-PER-011', '/root/.config/autostart/x.desktop'], ['ST-PER-012', '/etc/modprobe.d/x.conf'],
    ['ST-PRV-003', '/etc/sudoers.d/x'],
  ];
  for (const [rule, target] of TARGETS) {
    const viaLink = findings((s) => { symlink(s, 1, target, '/tmp/innocent'); s.open(1, '/tmp/innocent', O.a); });
    assert.ok(viaLink.some((f) => f.rule === rule), `${rule} through a symlink to ${target}: ${viaLink.map((f) => f.rule).join(', ')}`);
    const viaProc = findings((s) => s.open(1, `/proc/self/root${target}`, O.a));
    assert.ok(viaProc.some((f) => f.rule === rule), `${rule} through /proc/self/root${target}: ${viaProc.map((f) => f.rule).join(', ')}`);
  }
  // the name alone, unrelated to any of them, still says nothing
  assert.deepEqual(findings((s) => s.open(1, '/tmp/innocent', O.a)).filter((f) => f.rule.startsWith('ST-PER') || f.rule === 'ST-PRV-003'), []);
});
