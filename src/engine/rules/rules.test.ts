// The rule language: parsing, every operator, macros, lists, append/override, exceptions,
// diagnostics for bad input, and compatibility with Falco's own rule files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRuleDetector, falcoRulePaths, loadRuleFiles, loadRuleStrings } from './index.js';
import { parseCondition, ConditionSyntaxError } from './parse.js';
import { O, Sim } from '../../../test/rules/sim.js';

const rule = (name: string, condition: string, extra = '') =>
  `- rule: ${name}\n  desc: test rule ${name}\n  condition: ${condition}\n  output: "%proc.name %fd.name"\n  priority: WARNING\n${extra}`;

function fire(yaml: string, scenario: (s: Sim) => void, opts: { container?: boolean } = {}): Set<string> {
  const { ruleset, diagnostics } = loadRuleStrings(yaml);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  const s = new Sim(opts);
  scenario(s);
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  return new Set(d.finish().map((f) => f.rule));
}

test('parser: precedence, parentheses, lists, quoted strings, field arguments and val()', () => {
  assert.deepEqual(parseCondition('a or b and not c'), {
    k: 'or', items: [{ k: 'macro', name: 'a' }, { k: 'and', items: [{ k: 'macro', name: 'b' }, { k: 'not', item: { k: 'macro', name: 'c' } }] }],
  });
  assert.deepEqual(parseCondition('proc.aname[2] in (sh, "a b", \'c\')'), {
    k: 'cmp', field: { name: 'proc.aname', arg: '2' }, op: 'in', value: { k: 'list', items: ['sh', 'a b', 'c'] },
  });
  assert.deepEqual(parseCondition('proc.pname in (runc:[0:PARENT], x)').k, 'cmp');
  assert.deepEqual(parseCondition('fd.name = val(proc.exepath)'), {
    k: 'cmp', field: { name: 'fd.name' }, op: '=', value: { k: 'field', ref: { name: 'proc.exepath' } },
  });
  assert.equal((parseCondition('evt.dir=<') as { value: { v: string } }).value.v, '<');
  assert.throws(() => parseCondition('(evt.type=open'), ConditionSyntaxError);
  assert.throws(() => parseCondition('evt.type=open)'), /unbalanced '\)'/);
  assert.throws(() => parseCondition('proc.name'), /without an operator/);
  assert.throws(() => parseCondition('tolower(proc.name) = a'), /transformers/);
});

test('operators: =, !=, <, >, in, intersects, contains, icontains, startswith, endswith, glob, pmatch, exists, regex', () => {
  const yaml = [
    rule('eq', 'evt.type=openat and fd.name=/etc/hosts'),
    rule('ne', 'evt.type=openat and fd.name!=/etc/hosts'),
    rule('lt', 'evt.type=openat and fd.num < 4'),
    rule('ge', 'evt.type=openat and fd.num >= 4'),
    rule('in', 'evt.type in (openat) and fd.filename in (hosts, passwd)'),
    rule('intersects', 'evt.type = openat and fd.filename intersects (hosts)'),
    rule('contains', 'evt.type=openat and fd.name contains "/et"'),
    rule('icontains', 'evt.type=openat and fd.name icontains "/ETC/HO"'),
    rule('startswith', 'evt.type=openat and fd.name startswith /etc/'),
    rule('endswith', 'evt.type=openat and fd.name endswith sts'),
    rule('glob', 'evt.type=openat and fd.name glob "/e?c/*s"'),
    rule('pmatch', 'evt.type=openat and fd.name pmatch (/usr, /etc)'),
    rule('pmatch_no', 'evt.type=openat and fd.name pmatch (/et)'),
    rule('exists', 'evt.type=openat and proc.pname exists'),
    rule('regex', 'evt.type=openat and fd.name regex "^/etc/h[o]+sts$"'),
    rule('net', 'evt.type=connect and fd.snet in ("10.0.0.0/8", "192.168.0.0/16")'),
    rule('notnet', 'evt.type=connect and fd.net != "127.0.0.0/8"'),
  ].join('\n');
  const got = fire(yaml, (s) => {
    s.open(1, '/etc/hosts');
    s.connect(1, '10.1.2.3', 80);
  });
  assert.deepEqual([...got].sort(), ['contains', 'endswith', 'eq', 'glob', 'icontains', 'in', 'intersects', 'lt', 'net', 'notnet', 'pmatch', 'regex', 'startswith']);
  // exists: the sample (pid 1) has no parent; a child does.
  assert.ok(fire(yaml, (s) => s.open(s.run('/bin/cat', ['cat']), '/etc/hosts')).has('exists'));
});

test('proc.aname without an index matches any ancestor; with one, that ancestor', () => {
  const yaml = [rule('any', 'evt.type=execve and proc.aname=sh'), rule('second', 'evt.type=execve and proc.aname[2]=sh'), rule('first', 'evt.type=execve and proc.aname[1]=sh')].join('\n');
  const got = fire(yaml, (s) => {
    const a = s.run('/usr/bin/python3', ['python3', 'x.py']);
    s.run('/usr/bin/id', ['id'], { ppid: a });
  });
  assert.deepEqual([...got].sort(), ['any', 'first', 'second']);
});

test('macros and lists, defined in any order, nested; append and override', () => {
  const yaml = `
- rule: uses macro
  desc: d
  condition: opened and fd.name in (watched)
  output: x
  priority: ERROR
- macro: opened
  condition: evt.type in (open, openat)
- list: watched
  items: [/etc/a, nested]
- list: nested
  items: [/etc/b]
- list: watched
  items: [/etc/c]
  append: true
- rule: uses macro
  condition: and not proc.name = skipme
  append: true
- rule: replaced
  desc: d
  condition: evt.type = openat
  output: x
  priority: ERROR
- rule: replaced
  condition: evt.type = close
  override:
    condition: replace
- rule: off
  desc: d
  condition: evt.type = openat
  output: x
  priority: ERROR
- rule: off
  enabled: false
`;
  const { ruleset } = loadRuleStrings(yaml);
  assert.deepEqual(ruleset.rules.map((r) => r.name), ['uses macro', 'replaced']);
  assert.deepEqual(ruleset.off, ['off']);
  const got = (f: (s: Sim) => void) => fire(yaml, f);
  assert.ok(got((s) => s.open(1, '/etc/b')).has('uses macro'), 'nested list item');
  assert.ok(got((s) => s.open(1, '/etc/c')).has('uses macro'), 'appended list item');
  assert.ok(!got((s) => s.open(s.run('/bin/skipme', ['skipme'], { comm: 'skipme' }), '/etc/c')).has('uses macro'), 'appended condition');
  assert.ok(!got((s) => s.open(1, '/etc/a')).has('replaced'), 'overridden condition no longer matches opens');
});

test('exceptions: tuples of fields, comps and values suppress matches', () => {
  const yaml = rule('ex', 'evt.type = openat and fd.directory = /etc', `  exceptions:
    - name: known
      fields: [proc.name, fd.filename]
      comps: [=, in]
      values:
        - [cat, [hosts, hostname]]
    - name: single
      fields: proc.name
      values: [ls]
`);
  assert.ok(fire(yaml, (s) => s.open(s.run('/bin/cat', ['cat']), '/etc/passwd')).has('ex'));
  assert.ok(!fire(yaml, (s) => s.open(s.run('/bin/cat', ['cat']), '/etc/hosts')).has('ex'));
  assert.ok(!fire(yaml, (s) => s.open(s.run('/bin/ls', ['ls']), '/etc/passwd')).has('ex'));
});

test('Falco event mapping: spawned_process, open_write, evt.rawres, evt.res, evt.arg.*, container', () => {
  const yaml = [
    rule('spawn', '(evt.type in (execve, execveat) and evt.dir=<) and proc.name = id and proc.cmdline = "id -u"'),
    rule('write', 'evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar=\'f\' and fd.num>=0 and evt.arg.flags contains O_TRUNC'),
    rule('failed', 'evt.type = openat and fd.num = -1 and evt.res = ENOENT and evt.rawres = -2'),
    rule('container', 'evt.type = openat and container.id != host'),
  ].join('\n');
  const got = fire(yaml, (s) => {
    s.run('/usr/bin/id', ['id', '-u']);
    s.open(1, '/tmp/out', O.w);
    s.open(1, '/nope', O.r, -2);
  });
  assert.deepEqual([...got].sort(), ['container', 'failed', 'spawn', 'write']);
  assert.ok(!fire(yaml, (s) => s.open(1, '/tmp/x'), { container: false }).has('container'));
});

test('stateful: threshold counts distinct values per process within the window; sequences run in order', () => {
  const yaml = [
    rule('scan', 'evt.type = connect', '  threshold:\n    count: 5\n    within: 2s\n    distinct: fd.sport\n'),
    rule('seq', 'evt.type = execve and proc.name = sh', '  sequence:\n    within: 5s\n    after:\n      - evt.type = memfd_create\n      - evt.type = write\n'),
  ].join('\n');
  assert.ok(fire(yaml, (s) => { for (let p = 1; p <= 5; p++) s.connect(1, '10.0.0.1', p); }).has('scan'));
  assert.ok(!fire(yaml, (s) => { for (let i = 0; i < 9; i++) s.connect(1, '10.0.0.1', 80); }).has('scan'), 'same port repeated');
  assert.ok(!fire(yaml, (s) => { for (let p = 1; p <= 5; p++) s.connect(s.run('/bin/nc', ['nc']), '10.0.0.1', p); }).has('scan'), 'spread over processes');
  const seqOk = (s: Sim) => { const p = s.fork(1); s.sys(p, 'memfd_create', [0, 0], 3, { path: 'm' }).sys(p, 'write', [3, 0, 10], 10); s.exec(p, '/bin/sh', ['sh']); };
  const seqWrongOrder = (s: Sim) => { const p = s.fork(1); s.sys(p, 'write', [3, 0, 10], 10).sys(p, 'memfd_create', [0, 0], 3, { path: 'm' }); s.exec(p, '/bin/sh', ['sh']); };
  const seqTooLate = (s: Sim) => { const p = s.fork(1); s.sys(p, 'memfd_create', [0, 0], 3, { path: 'm' }).sys(p, 'write', [3, 0, 10], 10); s.wait(6e9); s.exec(p, '/bin/sh', ['sh']); };
  assert.ok(fire(yaml, seqOk).has('seq'));
  assert.ok(!fire(yaml, seqWrongOrder).has('seq'));
  assert.ok(!fire(yaml, seqTooLate).has('seq'));
});

test('diagnostics: bad YAML, unknown macro, unbalanced condition, unsupported field each name file, line and rule', () => {
  const bad = loadRuleStrings([{ file: 'bad.yaml', text: '- rule: x\n  condition: [unclosed\n' }]);
  assert.equal(bad.diagnostics[0]?.code, 'YAML_SYNTAX');
  assert.equal(bad.diagnostics[0]?.file, 'bad.yaml');
  assert.ok((bad.diagnostics[0]?.line ?? 0) >= 2);

  const text = [rule('good', 'evt.type = openat'), rule('unknown macro', 'nosuch_macro and evt.type = openat'),
    rule('unbalanced', '(evt.type = openat and proc.name = x'), rule('unsupported', 'evt.type = openat and k8s_audit.verb = get'),
    rule('bad op', 'evt.type = openat and fd.num contains 3')].join('\n');
  const r = loadRuleStrings([{ file: 'mixed.yaml', text }]);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['good'], 'only the broken rules are disabled');
  const by = new Map(r.diagnostics.map((d) => [d.rule, d]));
  assert.equal(by.get('unknown macro')?.code, 'UNKNOWN_MACRO');
  assert.equal(by.get('unknown macro')?.severity, 'error');
  assert.equal(by.get('unknown macro')?.line, 9);
  assert.equal(by.get('unbalanced')?.code, 'CONDITION_SYNTAX');
  assert.equal(by.get('unsupported')?.code, 'UNSUPPORTED_FIELD');
  assert.equal(by.get('unsupported')?.severity, 'warning');
  assert.match(by.get('unsupported')?.message ?? '', /k8s_audit\.verb/);
  assert.equal(by.get('bad op')?.code, 'UNSUPPORTED_OPERATOR');
  assert.equal(r.ruleset.total, 5);
  assert.equal(r.ruleset.loaded, 1);
});

test('deep nesting: 20000 parentheses, 50000 nots and a 5000-deep macro chain disable only their rule', () => {
  const parens = `${'('.repeat(20000)}evt.type = openat${')'.repeat(20000)}`;
  const nots = `${'not '.repeat(50000)}evt.type = openat`;
  const chain = Array.from({ length: 5000 }, (_, i) =>
    `- macro: m${i + 1}\n  condition: ${i + 1 < 5000 ? `m${i + 2}` : 'evt.type = openat'}\n`).join('');
  const cycle = '- macro: c1\n  condition: c2 and evt.type = openat\n- macro: c2\n  condition: (c1)\n';
  const text = [rule('good', 'evt.type = openat'), rule('parens', parens), rule('nots', nots), chain, rule('chain', 'm1'),
    cycle, rule('cycle', 'c1'), rule('ok depth', `${'('.repeat(50)}not not evt.type = openat${')'.repeat(50)}`)].join('\n');
  const r = loadRuleStrings([{ file: 'deep.yaml', text }]);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['good', 'ok depth'], 'only the deep rules are disabled');
  const by = new Map(r.diagnostics.filter((d) => d.rule).map((d) => [d.rule, d]));
  for (const name of ['parens', 'nots', 'chain']) {
    assert.equal(by.get(name)?.code, 'CONDITION_TOO_DEEP', name);
    assert.equal(by.get(name)?.severity, 'error');
    assert.match(by.get(name)?.message ?? '', /nested deeper than \d+/);
    assert.ok(r.ruleset.disabled.some((d) => d.rule === name && d.code === 'CONDITION_TOO_DEEP'), name);
  }
  assert.equal(by.get('cycle')?.code, 'MACRO_CYCLE');
  // Each macro within the per-condition limit, but 30 of them nest 6000 levels once expanded.
  const wide = Array.from({ length: 30 }, (_, i) =>
    `- macro: w${i + 1}\n  condition: ${'not '.repeat(200)}${i + 1 < 30 ? `w${i + 2}` : 'evt.type = openat'}\n`).join('');
  const w = loadRuleStrings([{ file: 'wide.yaml', text: [rule('good', 'evt.type = openat'), wide, rule('wide', 'w1')].join('\n') }]);
  assert.deepEqual(w.ruleset.rules.map((x) => x.name), ['good']);
  assert.equal(w.diagnostics.find((d) => d.rule === 'wide')?.code, 'CONDITION_TOO_DEEP');
  assert.throws(() => parseCondition(parens), /nested deeper than \d+/);
  assert.throws(() => parseCondition(nots), ConditionSyntaxError);
});

test('confidence outside 0..1 (or not a number) is a diagnostic that disables only that rule', () => {
  const text = [rule('good', 'evt.type = openat', '  confidence: 0.5\n'), rule('edge', 'evt.type = openat', '  confidence: 1\n'),
    rule('high', 'evt.type = openat', '  confidence: 1.5\n'), rule('negative', 'evt.type = openat', '  confidence: -0.1\n'),
    rule('word', 'evt.type = openat', '  confidence: high\n')].join('\n');
  const r = loadRuleStrings([{ file: 'conf.yaml', text }]);
  assert.deepEqual(r.ruleset.rules.map((x) => [x.name, x.confidence]), [['good', 0.5], ['edge', 1]]);
  const by = new Map(r.diagnostics.map((d) => [d.rule, d]));
  for (const name of ['high', 'negative', 'word']) {
    assert.equal(by.get(name)?.code, 'INVALID_ITEM', name);
    assert.equal(by.get(name)?.severity, 'error');
    assert.match(by.get(name)?.message ?? '', /confidence/);
  }
});

test("Falco's own rule files: at least 90% of their rules load, and they evaluate on real event sequences", async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(falcoRulePaths());
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  assert.ok(ruleset.total >= 70, `only ${ruleset.total} rules in the vendored files`);
  const share = ruleset.loaded / ruleset.total;
  assert.ok(share >= 0.9, `${ruleset.loaded}/${ruleset.total} loaded`);
  // Falco's rules fire on the behaviour they describe, via Falco's own macros.
  const s = new Sim();
  s.open(s.run('/usr/bin/cat', ['cat', '/etc/shadow']), '/etc/shadow');
  s.run('/usr/bin/grep', ['grep', '-r', 'BEGIN RSA PRIVATE', '/home']);
  const p = s.fork(1);
  const fd = s.connect(p, '203.0.113.5', 4444, 0);
  s.dup2(p, fd, 0);
  s.exec(p, '/memfd:x (deleted)', ['x']);
  s.open(s.run('/usr/bin/python3', ['python3', 'evil.py']), '/root/.bashrc', O.a);
  s.open(1, '/var/log/auth.log', O.w);
  s.run('/tmp/xmrig', ['xmrig', '-o', 'stratum+tcp://pool:3333']);
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  const got = new Set(d.finish().map((f) => f.rule));
  for (const r of ['Read sensitive file untrusted', 'Search Private Keys or Passwords', 'Redirect STDOUT/STDIN to Network Connection in Container',
    'Fileless execution via memfd_create', 'Modify Shell Configuration File', 'Clear Log Activities', 'Detect crypto miners using the Stratum protocol']) {
    assert.ok(got.has(r), `${r} did not fire; fired: ${[...got].join('; ')}`);
  }
});
