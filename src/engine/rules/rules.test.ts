// The rule language: parsing, every operator, macros, lists, append/override, exceptions,
// diagnostics for bad input, and compatibility with Falco's own rule files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinRulePaths, createRuleDetector, falcoRulePaths, loadRuleFiles, loadRules, loadRuleStrings } from './index.js';
import { parseCondition, ConditionSyntaxError } from './parse.js';
import { compileGlob } from './compile.js';
import { isSandtraceError } from '../../errors.js';
import { runCli } from '../models/testutil.js';
import { O, Sim } from '../../../test/rules/sim.js';
import { DNS_SERVER } from '../../sandbox/dns.js';

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

test('evt.arg.addrs: a sendmmsg\'s destinations, one per message, for rules on batched datagrams', () => {
  const yaml = rule('batch', 'evt.type = sendmmsg and evt.arg.addrs contains "10.0.0.9:53"');
  const at = (address: string, port: number) => ({ family: 'inet' as const, address, port });
  assert.ok(fire(yaml, (s) => { s.sys(1, 'sendmmsg', [3, 0, 3, 0], 3, { addrs: [at('10.0.0.1', 53), null, at('10.0.0.9', 53)] }); }).has('batch'));
  assert.ok(!fire(yaml, (s) => { s.sys(1, 'sendmmsg', [3, 0, 2, 0], 2, { addrs: [at('10.0.0.1', 53), null] }); }).has('batch'));
});

test('a sendmmsg is judged per destination: an outside address after a loopback one fires, a second destination of an unconnected socket is its own', () => {
  const out = rule('out', 'evt.type in (sendto, sendmmsg) and evt.arg.addr exists and fd.typechar = 4 and not fd.sip startswith "127."');
  const at = (address: string, port: number) => ({ family: 'inet' as const, address, port });
  assert.ok(fire(out, (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendmmsg', [fd, 0, 3, 0], 3, { addrs: [at('127.0.0.1', 53), null, at('203.0.113.9', 53)] }); }).has('out'));
  assert.ok(!fire(out, (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendmmsg', [fd, 0, 2, 0], 2, { addrs: [at('127.0.0.1', 53), at('127.0.0.2', 53)] }); }).has('out'));
  // sendto does not connect: the second datagram's destination is its own, not the first's
  assert.ok(fire(out, (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('127.0.0.1', 53) }); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('203.0.113.9', 53) }); }).has('out'));
  // a connected socket's batch without names goes to its peer: judged once, by the connect
  assert.ok(!fire(out, (s) => { const fd = s.connect(1, '127.0.0.1', 53, 0); s.sys(1, 'sendmmsg', [fd, 0, 2, 0], 2, { addrs: [null, null] }); }).has('out'));
  // a datagram socket, bound or connected, sends where each message says (as musl's resolver binds first)
  const bound = (s: Sim) => { const fd = s.socket(1, 2, 2); s.sys(1, 'bind', [fd, 0, 16], 0, { addr: at('0.0.0.0', 0) }); return fd; };
  assert.ok(fire(out, (s) => { const fd = bound(s); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('203.0.113.9', 53) }); }).has('out'));
  assert.ok(fire(out, (s) => { const fd = bound(s); s.sys(1, 'sendmmsg', [fd, 0, 2, 0], 2, { addrs: [at('127.0.0.1', 53), at('203.0.113.9', 53)] }); }).has('out'));
  assert.ok(fire(out, (s) => { const fd = s.connect(1, '127.0.0.1', 53, 0, s.socket(1, 2, 2)); s.sys(1, 'sendmmsg', [fd, 0, 2, 0], 2, { addrs: [null, at('203.0.113.9', 53)] }); }).has('out'));
  // a connected stream socket's data goes to its peer, whatever address a send names
  assert.ok(!fire(out, (s) => { const fd = s.socket(1, 2, 1); s.sys(1, 'connect', [fd, 0, 16], 0, { addr: at('127.0.0.1', 80) }); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('203.0.113.9', 80) }); }).has('out'));
});

test('the built-in sweep and scan rules count datagram destinations too, each message of a sendmmsg batch as its own; lookups through the sandbox\'s resolver count as neither, nor as datagrams out', async () => {
  const { ruleset } = await loadRuleFiles(builtinRulePaths());
  const fired = (scenario: (s: Sim) => void) => {
    const s = new Sim();
    scenario(s);
    const d = createRuleDetector(ruleset);
    for (const e of s.events) d.onEvent(e);
    return new Set(d.finish().map((f) => f.rule));
  };
  const at = (address: string, port: number) => ({ family: 'inet' as const, address, port });
  // one batch to 22 hosts: a host sweep over UDP (a worm's or a scanner's probes)
  const sweep = fired((s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendmmsg', [fd, 0, 16, 0], 16, { addrs: Array.from({ length: 16 }, (_, i) => at(`198.51.100.${i + 1}`, 161)) }); for (let i = 17; i <= 22; i++) s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at(`198.51.100.${i}`, 161) }); });
  assert.ok(sweep.has('ST-DIS-010'), [...sweep].join(' '));
  assert.ok(sweep.has('ST-C2-009'));
  // 20 ports of one host: a UDP port scan, even on loopback
  assert.ok(fired((s) => { const fd = s.socket(1, 2, 2); for (let p = 20; p < 40; p++) s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('127.0.0.1', p) }); }).has('ST-DIS-011'));
  // many datagrams to one resolver: neither
  const dns = fired((s) => { const fd = s.socket(1, 2, 2); for (let i = 0; i < 30; i++) s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: at('192.0.2.53', 53) }); });
  assert.ok(!dns.has('ST-DIS-010') && !dns.has('ST-DIS-011'), [...dns].join(' '));
  // and, that resolver being the sandbox's own, no datagram out either
  assert.ok(!dns.has('ST-C2-009'), [...dns].join(' '));
  const base = readFileSync(builtinRulePaths().find((p) => p.endsWith('00-base.yaml'))!, 'utf8');
  assert.match(base, new RegExp(`macro: st_sandbox_resolver\\n  condition: \\(fd\\.sip = "${DNS_SERVER.replace(/\./g, '\\.')}" and fd\\.sport = 53\\)`), 'the rules name the address the sinkhole serves on');
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

/** Rule file text from lines, so that tests can name the line a diagnostic must point at. */
const lines = (...l: string[]) => l.join('\n') + '\n';
const full = (name: string, condition = 'evt.type = openat', output = '%proc.name') =>
  [`- rule: ${name}`, '  desc: d', `  condition: ${condition}`, `  output: "${output}"`, '  priority: NOTICE'];

test('unknown keys are warned of at their line with the closest known key; a misspelt required key makes the rule an error', () => {
  const text = lines(
    '- rule: misspelt', //               1
    '  desc: d',
    '  condition: evt.type = openat',
    '  output: "%proc.name"',
    '  priorty: WARNING', //             5
    '- macro: m',
    '  condtion: evt.type = openat', //  7
    '- list: l',
    '  items: [a]',
    '  apend: true', //                  10
    ...full('good'), //                  11-15
    '  exceptions:',
    '    - name: e',
    '      fields: [proc.name]',
    '      value: [[x]]', //             19
    '  sequnce: {}', //                  20
    '- macro: m2',
    '  condition: evt.type = openat',
    '  output: x', //                    23: a rule key on a macro
  );
  const r = loadRuleStrings([{ file: 'keys.yaml', text }]);
  const unknown = r.diagnostics.filter((d) => d.code === 'UNKNOWN_KEY');
  assert.deepEqual(unknown.map((d) => [d.line, d.severity]), [[5, 'warning'], [7, 'warning'], [10, 'warning'], [20, 'warning'], [19, 'warning'], [23, 'warning']]);
  const at = (n: number) => unknown.find((d) => d.line === n)!.message;
  assert.match(at(5), /unknown key 'priorty'.*did you mean 'priority'\?/);
  assert.match(at(7), /'condtion'.*did you mean 'condition'\?/);
  assert.match(at(10), /did you mean 'append'\?/);
  assert.match(at(19), /'value' in an exception; did you mean 'values'\?/);
  assert.match(at(20), /did you mean 'sequence'\?/);
  assert.match(at(23), /'output' is not a key of a macro/);
  assert.equal(unknown.find((d) => d.line === 5)?.rule, 'misspelt');
  // Without its priority the rule is not defined at all (Falco requires it); the message points at the typo.
  const errs = r.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errs.map((d) => [d.code, d.line]), [['INVALID_ITEM', 1], ['INVALID_ITEM', 6]]);
  assert.match(errs[0]!.message, /rule 'misspelt' needs 'priority' \('priorty' looks like a misspelling of 'priority'\)/);
  assert.match(errs[1]!.message, /macro 'm' needs a condition \('condtion' looks like a misspelling of 'condition'\)/);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['good']);
});

test('a new rule without desc, output or priority (or with an empty one) is an error; appends, overrides and enabled-only items need none', () => {
  const text = lines(
    ...full('base'), //                   1-5
    '- rule: only condition', //           6
    '  condition: evt.type = openat',
    '- rule: empty desc', //               8
    '  desc: ""',
    '  condition: evt.type = openat',
    '  output: x',
    '  priority: NOTICE',
    '- rule: base', //                     13: override, no desc/output/priority
    '  condition: and proc.name = x',
    '  override:',
    '    condition: append',
    '- rule: base', //                     17: append
    '  append: true',
    '  condition: and proc.name != y',
    '- rule: base', //                     20: switched off, with a tag Falco ignores here
    '  enabled: false',
    '  tags: [t]',
  );
  const r = loadRuleStrings([{ file: 'req.yaml', text }]);
  const errs = r.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errs.map((d) => [d.code, d.line, d.rule]), [['INVALID_ITEM', 6, 'only condition'], ['INVALID_ITEM', 8, 'empty desc']]);
  assert.match(errs[0]!.message, /needs 'desc', 'output' and 'priority'/);
  assert.match(errs[1]!.message, /needs a non-empty 'desc'/);
  assert.deepEqual(r.ruleset.off, ['base'], 'the override, the append and the switch apply to the earlier rule');
  assert.equal(r.ruleset.total, 1);
  assert.equal(r.diagnostics.filter((d) => d.severity === 'warning').length, 0);
});

test('enabled: Falco\'s boolean words are read as yaml-cpp reads them with a warning; anything else is an error, never true', () => {
  const text = lines(
    ...full('quoted false'), //           1-5
    '  enabled: "false"', //               6
    ...full('word no'), //                 7-11
    '  enabled: no', //                    12
    ...full('maybe'), //                   13-17
    '  enabled: maybe', //                 18
    ...full('zero'), //                    19-23
    '  enabled: 0', //                     24
    ...full('empty'), //                   25-29
    '  enabled:', //                       30
    ...full('bool false'), //              31-35
    '  enabled: false',
    ...full('switched'), //                37-41
    '- rule: switched', //                 42
    '  enabled: "Off"', //                 43
    '- rule: bool false', //               44
    '  enabled: yes please', //            45: invalid: the rule stays as it was
  );
  const r = loadRuleStrings([{ file: 'enabled.yaml', text }]);
  const diag = r.diagnostics.map((d) => [d.code, d.severity, d.line, d.rule]);
  assert.deepEqual(diag, [
    ['INVALID_ITEM', 'warning', 6, 'quoted false'],
    ['INVALID_ITEM', 'warning', 12, 'word no'],
    ['INVALID_ITEM', 'error', 18, 'maybe'],
    ['INVALID_ITEM', 'error', 24, 'zero'],
    ['INVALID_ITEM', 'error', 30, 'empty'],
    ['INVALID_ITEM', 'warning', 43, 'switched'],
    ['INVALID_ITEM', 'error', 45, 'bool false'],
  ]);
  assert.match(r.diagnostics[0]!.message, /"false" is text, not a boolean; read as false/);
  assert.match(r.diagnostics[2]!.message, /enabled must be true or false \(got "maybe"\)/);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), [], 'no rule with a non-boolean enabled runs');
  assert.deepEqual(r.ruleset.off.sort(), ['bool false', 'quoted false', 'switched', 'word no']);
});

test('an unknown field in an output is an UNSUPPORTED_FIELD warning at the output\'s line; the rule still runs and prints <NA> there', () => {
  const text = lines(
    ...full('bad output', 'evt.type = openat', '%proc.name %nosuch.field'), //  1-5
    ...full('good output', 'evt.type = openat', 'a=%proc.aname[2] f=%evt.arg.flags ns=%k8s.ns.name img=%container.image.repository 100%'), // 6-10
    ...full('appended'), //                                                     11-15
    ...full('falco fields', 'evt.type = openat', 'at %evt.time.iso8601 info=%evt.info src=%evt.source p=%evt.plugininfo by %proc.name'), // 16-20
  );
  const extra = lines(
    '- rule: appended', //                 1
    '  output: "%proc.nmae"', //           2
    '  override:',
    '    output: append',
  );
  const r = loadRuleStrings([{ file: 'out.yaml', text }, { file: 'more.yaml', text: extra }]);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.severity, d.file, d.line, d.rule]), [
    ['UNSUPPORTED_FIELD', 'warning', 'out.yaml', 4, 'bad output'],
    ['UNSUPPORTED_FIELD', 'warning', 'more.yaml', 2, 'appended'],
    ['UNSUPPORTED_FIELD', 'warning', 'out.yaml', 19, 'falco fields'],
    ['UNSUPPORTED_FIELD', 'warning', 'out.yaml', 19, 'falco fields'],
    ['UNSUPPORTED_FIELD', 'warning', 'out.yaml', 19, 'falco fields'],
    ['UNSUPPORTED_FIELD', 'warning', 'out.yaml', 19, 'falco fields'],
  ]);
  assert.match(r.diagnostics[0]!.message, /output: unsupported field 'nosuch\.field' \(%nosuch\.field\); it prints as <NA>, the rule still runs/);
  assert.match(r.diagnostics[1]!.message, /proc\.nmae/);
  assert.deepEqual(r.diagnostics.slice(2).map((d) => /'([^']+)'/.exec(d.message)?.[1]), ['evt.time.iso8601', 'evt.info', 'evt.source', 'evt.plugininfo']);
  assert.equal(r.ruleset.loaded, 4);
  assert.deepEqual(r.ruleset.disabled, []);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['bad output', 'good output', 'appended', 'falco fields']);
  const s = new Sim();
  s.open(s.run('/usr/bin/cat', ['cat', '/etc/hosts']), '/etc/hosts');
  const d = createRuleDetector(r.ruleset);
  for (const e of s.events) d.onEvent(e);
  const out = new Map(d.finish().map((f) => [f.rule, f.output]));
  assert.equal(out.get('bad output'), 'cat <NA>');
  assert.equal(out.get('appended'), 'cat <NA>');
  assert.equal(out.get('falco fields'), 'at <NA> info=<NA> src=<NA> p=<NA> by cat');
});

test("output placeholders are delimited as Falco's formatter does: a '.' after a field is text, widths, transformers, '%' before no name is text", () => {
  const text = lines(
    ...full('dot', 'evt.type = openat', 'opened by %user.name. File %fd.name, pid %proc.pid:'), // 1-5
    ...full('width', 'evt.type = openat', '[%6proc.name][%2fd.name]'), //                         6-10
    ...full('transformers', 'evt.type = openat', '%toupper(proc.name) %basename(fd.name) %len(fd.name) %tolower(toupper(proc.name))'), // 11-15
    ...full('text', 'evt.type = openat', '100% of %% %proc.name%'), //                          16-20
    ...full('unsupported transformer', 'evt.type = openat', '%b64(proc.name)|%toupper(proc.name'), // 21-25
  );
  const r = loadRuleStrings([{ file: 'fmt.yaml', text }]);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.severity, d.line, d.rule]), [
    ['UNSUPPORTED_FIELD', 'warning', 24, 'unsupported transformer'],
    ['UNSUPPORTED_FIELD', 'warning', 24, 'unsupported transformer'],
  ]);
  assert.match(r.diagnostics[0]!.message, /field transformer 'b64\(\.\.\.\)' is not supported \(%b64\(proc\.name\)\)/);
  assert.match(r.diagnostics[1]!.message, /malformed field transformer 'toupper\(\.\.\.\)'/);
  assert.equal(r.ruleset.loaded, 5);
  const s = new Sim();
  const pid = s.run('/usr/bin/cat', ['cat', '/etc/hosts']);
  s.open(pid, '/etc/hosts');
  const d = createRuleDetector(r.ruleset);
  for (const e of s.events) d.onEvent(e);
  const out = new Map(d.finish().map((f) => [f.rule, f.output]));
  assert.equal(out.get('dot'), `opened by root. File /etc/hosts, pid ${pid}:`);
  assert.equal(out.get('width'), '[cat   ][/e]');
  assert.equal(out.get('transformers'), 'CAT hosts 10 cat');
  assert.equal(out.get('text'), '100% of %% cat%');
  assert.equal(out.get('unsupported transformer'), '<NA>|<NA>');
});

test('lists that include each other: a LIST_CYCLE warning at the first list, each holding the items of all; long and exponential chains do not hang', () => {
  const text = lines(
    '- list: la', //                        1
    '  items: [x, lb]',
    '- list: lb', //                        3
    '  items: [y, la]',
    '- list: self', //                      5
    '  items: [z, self]',
    ...full('uses la', 'evt.type = openat and proc.name in (la)'), // 7-11
  );
  const r = loadRuleStrings([{ file: 'lists.yaml', text }]);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.severity, d.line]), [['LIST_CYCLE', 'warning', 1], ['LIST_CYCLE', 'warning', 5]]);
  assert.match(r.diagnostics[0]!.message, /la -> lb -> la/);
  assert.match(r.diagnostics[1]!.message, /self -> self/);
  const hit = (comm: string) => {
    const s = new Sim();
    s.open(s.run(`/bin/${comm}`, [comm], { comm }), '/etc/hosts');
    const d = createRuleDetector(r.ruleset);
    for (const e of s.events) d.onEvent(e);
    return d.finish().some((f) => f.rule === 'uses la');
  };
  assert.ok(hit('x') && hit('y'), 'la holds the items of la and lb');
  assert.ok(!hit('lb') && !hit('la'), 'the names of the lists in the cycle are not items');

  // A ring of 20,000 lists (deeper than the stack allows a recursive expansion) and 40 lists each
  // naming the next twice (2^40 items if expanded naively).
  const n = 20000;
  const ring = Array.from({ length: n }, (_, i) => `- list: r${i}\n  items: [v${i}, r${(i + 1) % n}]\n`).join('');
  const doubling = Array.from({ length: 40 }, (_, i) => `- list: d${i}\n  items: [${i === 39 ? 'leaf' : `d${i + 1}, d${i + 1}`}]\n`).join('');
  const t0 = Date.now();
  const big = loadRuleStrings([{ file: 'big.yaml', text: ring + doubling + lines(...full('ring', 'evt.type = openat and proc.name in (r0, d0)')) }]);
  assert.ok(Date.now() - t0 < 20000, 'loads in seconds');
  assert.deepEqual(big.diagnostics.map((d) => [d.code, d.line]), [['LIST_CYCLE', 1]]);
  assert.match(big.diagnostics[0]!.message, /r0 -> r1 -> r2 -> r3 -> \.\.\. \(19995 more\) -> r19999 -> r0/);
  assert.deepEqual(big.ruleset.rules.map((x) => x.name), ['ring']);
});

test('macros that use each other in a cycle are a MACRO_CYCLE error where the first is defined, even when no rule uses them', () => {
  const text = lines(
    '- macro: c1', //                       1
    '  condition: c2 and evt.type = openat', // 2
    '- macro: c2',
    '  condition: (c3 or c1)',
    '- macro: c3',
    '  condition: proc.name = x',
    '- macro: me', //                       7
    '  condition: me or evt.type = close', //  8
    ...full('uses c1', 'c1'), //            9-13
  );
  const r = loadRuleStrings([{ file: 'macros.yaml', text }]);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.severity, d.line, d.rule]), [
    ['MACRO_CYCLE', 'error', 2, undefined],
    ['MACRO_CYCLE', 'error', 8, undefined],
    ['MACRO_CYCLE', 'error', 11, 'uses c1'],
  ]);
  assert.match(r.diagnostics[0]!.message, /c1 -> c2 -> c1/);
  assert.match(r.diagnostics[1]!.message, /me -> me/);
  assert.deepEqual(r.ruleset.rules, []);
  // A ring of 10,000 macros nobody uses: reported once, no stack overflow.
  const n = 10000;
  const ring = Array.from({ length: n }, (_, i) => `- macro: k${i}\n  condition: k${(i + 1) % n} or evt.type = openat\n`).join('');
  const big = loadRuleStrings([{ file: 'ring.yaml', text: ring }]);
  assert.deepEqual(big.diagnostics.map((d) => [d.code, d.line]), [['MACRO_CYCLE', 2]]);
});

test("Falco's own rule files load exactly as before: 76 of 77 rules, one warning (evt.buffer), no key, enabled or output diagnostics", async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(falcoRulePaths());
  assert.equal(ruleset.total, 77);
  assert.equal(ruleset.loaded, 76);
  assert.equal(ruleset.off.length, 11);
  assert.deepEqual(diagnostics.map((d) => [d.code, d.severity, d.rule, d.line]), [['UNSUPPORTED_FIELD', 'warning', 'Java Process Class File Download', 1666]]);
});

test('a malformed exceptions entry or override disables its rule with an error at its own line, not silently', () => {
  const base = '- rule: r\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: WARNING\n';
  const cases: [string, RegExp][] = [
    [`${base}  exceptions:\n    - 5\n`, /exceptions\[0\] must be a mapping/],
    [`${base}  exceptions:\n    - name: e1\n      fields: [proc.name, fd.name]\n      values:\n        - [sh]\n`, /exception 'e1': values\[0\] must list one value per field \(2\)/],
    [`${base}  exceptions:\n    - name: e1\n      fields: [proc.name, fd.name]\n      comps: [=]\n      values: []\n`, /comps must list one operator per field/],
    [`${base}- rule: r\n  override:\n    condition: sideways\n  condition: evt.type = open\n`, /override condition: "sideways" is neither append nor replace/],
  ];
  for (const [text, why] of cases) {
    const { ruleset, diagnostics } = loadRuleStrings([{ file: 'x.yaml', text }]);
    const errors = diagnostics.filter((d) => d.severity === 'error');
    assert.equal(errors.length, 1, JSON.stringify(diagnostics));
    assert.match(errors[0]!.message, why);
    if (!/override/.test(text)) assert.equal(ruleset.rules.length, 0, 'the rule with a bad exception does not run as if it had none');
  }
  // a well-formed exception still works, and Falco's own files load without errors
  const ok = loadRuleStrings([{ file: 'ok.yaml', text: `${base}  exceptions:\n    - name: e1\n      fields: [proc.name]\n      values:\n        - [sh]\n` }]);
  assert.deepEqual(ok.diagnostics.filter((d) => d.severity === 'error'), []);
});

/** User rule files as analyze, replay and monitor load them (loadRules), written to a scratch folder. */
async function withRuleFiles(files: Record<string, string>, body: (path: (name: string) => string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-rules-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    await body((name) => join(dir, name));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** loadRules refuses the file: RULES_INVALID, one line matching `why`. */
const rulesInvalid = (why: RegExp) => (e: unknown) => isSandtraceError(e) && e.code === 'RULES_INVALID' && why.test(e.message) && !e.message.includes('\n');

test('a rules file that defines nothing (empty, only comments, [], null) loads as in Falco, with an EMPTY_FILE warning naming the file, in rules check, loadRules and analyze; one of only macros or lists has none', async () => {
  for (const [what, text] of [['empty', ''], ['only comments', '# my rules\n# (none yet)\n'], ['an empty list', '[]\n'], ['null', 'null\n'],
    ['empty documents', '---\n---\n# nothing\n'], ['only a required_engine_version', '- required_engine_version: 26\n']] as const) {
    const { diagnostics } = loadRuleStrings([{ file: 'none.yaml', text }]);
    assert.deepEqual(diagnostics.map((d) => [d.code, d.severity, d.file, d.line]), [['EMPTY_FILE', 'warning', 'none.yaml', 0]], what);
    assert.match(diagnostics[0]!.message, /defines no rule, macro or list/, what);
  }
  for (const text of ['- macro: m\n  condition: evt.type = openat\n', '- list: l\n  items: [a, b]\n']) {
    assert.deepEqual(loadRuleStrings([{ file: 'parts.yaml', text }]).diagnostics, [], text);
  }
  // only the empty file is named, not the file beside it; a broken file is not also called empty
  const two = loadRuleStrings([{ file: 'a.yaml', text: rule('r', 'evt.type = openat') }, { file: 'b.yaml', text: '' }]);
  assert.deepEqual(two.diagnostics.map((d) => d.file), ['b.yaml']);
  assert.deepEqual(two.ruleset.rules.map((r) => r.name), ['r']);
  assert.deepEqual(loadRuleStrings([{ file: 'bad.yaml', text: '- rule: x\n  desc: [oops\n' }]).diagnostics.map((d) => d.code), ['YAML_SYNTAX']);
  await withRuleFiles({ 'empty.yaml': '', 'comments.yaml': '# nothing\n', 'macros.yaml': '- macro: m\n  condition: evt.type = openat\n' }, async (path) => {
    // --rules of analyze, replay and monitor: the pack runs beside it, the warning names the file
    for (const f of ['empty.yaml', 'comments.yaml', 'macros.yaml']) {
      const { ruleset, diagnostics } = await loadRules([path(f)]);
      assert.ok(ruleset.rules.length > 50, `the pack still runs beside ${f}`);
      assert.deepEqual(diagnostics.filter((d) => d.file === path(f)).map((d) => d.code), f === 'macros.yaml' ? [] : ['EMPTY_FILE'], f);
    }
    // rules check: the diagnostic line, exit 0 (a warning)
    const r = await runCli(['rules', 'check', path('empty.yaml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /empty\.yaml:0: warning EMPTY_FILE: the file defines no rule, macro or list/);
    assert.match(r.stdout, /0 of 0 rules loaded .* 0 errors/);
    assert.equal(r.stderr, '');
  });
});

test('one stray word before a long rules file gives the first 5 YAML syntax errors and one line counting the rest, not thousands of lines', async () => {
  const text = ' contains\n' + Array.from({ length: 200 }, (_, i) => rule(`r${i}`, 'evt.type = openat')).join('');
  const { diagnostics } = loadRuleStrings([{ file: 'stray.yaml', text }]);
  assert.equal(diagnostics.length, 6, diagnostics.map((d) => d.message).join('\n'));
  assert.ok(diagnostics.every((d) => d.code === 'YAML_SYNTAX' && d.severity === 'error' && d.file === 'stray.yaml'));
  assert.equal(diagnostics[0]!.line, 1);
  assert.match(diagnostics[5]!.message, /^\d{3,} more YAML syntax errors after line \d+ \(most follow from the first ones/);
  // a file beside it keeps its own diagnostics
  const two = loadRuleStrings([{ file: 'stray.yaml', text }, { file: 'ok.yaml', text: rule('fine', 'evt.type = openat') }]);
  assert.deepEqual(two.ruleset.rules.map((r) => r.name), ['fine']);
  assert.equal(two.diagnostics.length, 6);
});

test('YAML nested 100,000 levels deep is one YAML_SYNTAX error naming the depth limit and where, not a stack overflow', async () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  for (const [what, text, line] of [['a flow list', deep(100_000), 1], ['a flow mapping', `${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}`, 1],
    ['a block list', `${'- '.repeat(100_000)}x\n`, 1], ["a rule's tags", `${rule('r', 'evt.type = openat')}  tags: ${deep(100_000)}\n`, 6]] as const) {
    const { diagnostics } = loadRuleStrings([{ file: 'deep.yaml', text }]);
    assert.deepEqual(diagnostics.map((d) => [d.code, d.severity, d.line]), [['YAML_SYNTAX', 'error', line]], what);
    assert.match(diagnostics[0]!.message, /^YAML nested deeper than 256 levels .*at line \d+, column \d+/, what);
    assert.doesNotMatch(diagnostics[0]!.message, /call stack/i, what);
  }
  // within the limit it is read as before
  const tags = loadRuleStrings([{ file: 'ok.yaml', text: `${rule('r', 'evt.type = openat')}  tags: ${deep(250)}\n` }]);
  assert.deepEqual(tags.diagnostics, []);
  assert.deepEqual(tags.ruleset.rules.map((r) => r.name), ['r']);
  await withRuleFiles({ 'deep.yaml': deep(100_000) }, async (path) => {
    await assert.rejects(loadRules([path('deep.yaml')]), rulesInvalid(new RegExp(`^${path('deep.yaml')}:1: YAML nested deeper than 256 levels`)));
    const r = await runCli(['rules', 'check', path('deep.yaml')]);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /deep\.yaml:1: error YAML_SYNTAX: YAML nested deeper than 256 levels/);
  });
});

test("a malformed glob (a '[' no ']' closes, a backwards range, an unknown class, a lone trailing backslash) disables its rule with a BAD_VALUE error at the condition's line", async () => {
  const patterns = ['[', '/tmp/[ab', '*.[ch', '[]', '[!]', '[z-a]*', '/dev/[[:disk:]]', 'C:\\\\'];
  const text = [rule('good', 'evt.type = openat and fd.name glob "/etc/[!x]os[[:alpha:]]s"'),
    ...patterns.map((p, i) => rule(`bad ${i}`, `evt.type = openat and fd.name ${i % 2 ? 'iglob' : 'glob'} '${p}'`)),
    '- macro: bad_glob\n  condition: fd.name glob "/proc/[0-9*/mem"\n', rule('uses bad macro', 'evt.type = openat and bad_glob')].join('\n');
  const r = loadRuleStrings([{ file: 'globs.yaml', text }]);
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['good']);
  const by = new Map(r.diagnostics.map((d) => [d.rule, d]));
  for (let i = 0; i < patterns.length; i++) {
    const d = by.get(`bad ${i}`);
    assert.equal(d?.code, 'BAD_VALUE', patterns[i]);
    assert.equal(d?.severity, 'error');
    assert.equal(d?.line, 3 + (i + 1) * 6, 'the line of the condition');
    assert.match(d?.message ?? '', /^fd\.name i?glob: bad pattern '/);
  }
  assert.match(by.get('bad 0')!.message, /the '\[' at character 1 opens a character class that no '\]' closes/);
  assert.match(by.get('bad 5')!.message, /range 'z-a' is written backwards/);
  assert.match(by.get('bad 6')!.message, /unknown character class '\[:disk:\]'/);
  assert.match(by.get('bad 7')!.message, /ends in a lone '\\'/);
  assert.equal(by.get('uses bad macro')?.code, 'BAD_VALUE');
  // what fnmatch (Falco's glob) accepts still compiles and matches as it does
  const m = (g: string, s: string, flags = '') => compileGlob(g, flags).re.test(s);
  assert.ok(m('/etc/[!x]os[[:alpha:]]s', '/etc/hosts') && !m('/etc/[!h]os[[:alpha:]]s', '/etc/hosts'));
  assert.ok(m('[]a]', ']') && m('[!]a]', 'b') && !m('[!]a]', ']'));
  assert.ok(m('a\\*', 'a*') && !m('a\\*', 'ab'), 'a backslash escapes');
  assert.ok(m('/tmp/*', '/tmp/a\nb'), '* matches a newline, as in fnmatch');
  assert.ok(m('/TMP/[a-c]', '/tmp/B', 'i'));
  await withRuleFiles({ 'glob.yaml': rule('bad glob', 'fd.name glob "["') }, async (path) => {
    await assert.rejects(loadRules([path('glob.yaml')]), rulesInvalid(new RegExp(`^${path('glob.yaml')}:3: bad glob: fd\\.name glob: bad pattern '\\['`)));
  });
});

test('required_engine_version above the engine\'s (999, 0.27.0, 1.0.0) is a NEWER_ENGINE warning naming both versions, and the file loads; 26, "0.26.0" and lower say nothing; a malformed one is an error', async () => {
  const file = (v: string) => `- required_engine_version: ${v}\n${rule('r', 'evt.type = openat')}`;
  for (const v of ['26', '17', '0', '"0.26.0"', '0.25.9', '"26"']) {
    assert.deepEqual(loadRuleStrings([{ file: 'v.yaml', text: file(v) }]).diagnostics, [], v);
  }
  for (const [v, shown] of [['999', '999 \\(0\\.999\\.0\\)'], ['27', '27 \\(0\\.27\\.0\\)'], ['0.27.0', '0\\.27\\.0'], ['"1.0.0"', '1\\.0\\.0']] as const) {
    const { ruleset, diagnostics } = loadRuleStrings([{ file: 'v.yaml', text: file(v) }]);
    assert.deepEqual(diagnostics.map((d) => [d.code, d.severity, d.line]), [['NEWER_ENGINE', 'warning', 1]], v);
    assert.match(diagnostics[0]!.message, new RegExp(`requires rule engine version ${shown}, newer than the 0\\.26\\.0 sandtrace's rule engine is checked against`), v);
    assert.deepEqual(ruleset.rules.map((r) => r.name), ['r'], v);
  }
  for (const v of ['0.31', 'latest', '-1', '[26]', '']) {
    const { diagnostics } = loadRuleStrings([{ file: 'v.yaml', text: file(v) }]);
    assert.deepEqual(diagnostics.map((d) => [d.code, d.severity]), [['INVALID_ITEM', 'error']], v);
    assert.match(diagnostics[0]!.message, /required_engine_version must be a whole number \(26\) or a version x\.y\.z/, v);
  }
  // a newer file runs (what it uses is supported); a malformed version refuses it
  await withRuleFiles({ 'new.yaml': file('999'), 'bad.yaml': file('latest') }, async (path) => {
    const { ruleset } = await loadRules([path('new.yaml')]);
    assert.ok(ruleset.rules.some((r) => r.name === 'r'));
    await assert.rejects(loadRules([path('bad.yaml')]), rulesInvalid(new RegExp(`^${path('bad.yaml')}:1: required_engine_version must be`)));
  });
});

/** One rule of source session (named `name`), loaded without diagnostics. */
function sessionRule(condition: string, output: string, extra = '', name = 'session_rule') {
  const { ruleset, diagnostics } = loadRuleStrings(`- rule: ${name}\n  desc: a rule about caught connections\n  condition: ${condition}\n  output: "${output}"\n  priority: WARNING\n  source: session\n${extra}`);
  assert.deepEqual(diagnostics, []);
  return ruleset;
}

/** The findings of `ruleset` over the simulation's events, then its caught connections, as an analysis gives them. */
function withSessions(ruleset: Parameters<typeof createRuleDetector>[0], s: Sim) {
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  d.onSessions?.(s.sessions);
  return d.finish();
}

test('rules of source session: session fields in a syscall rule, a sequence on a session rule and an unknown source are refused by name; the rest load', () => {
  const yaml = [
    rule('sys_with_http', 'evt.type = connect and http.method = POST'),
    rule('sys_with_http_in_macro', 'evt.type = connect and st_posted', ''),
    '- macro: st_posted\n  condition: http.method = POST',
    rule('session_seq', 'http.method = POST', '  source: session\n  sequence:\n    after: [evt.type = connect]\n'),
    rule('k8s', 'ka.verb = get', '  source: k8s_audit\n'),
    rule('ok', 'http.method = POST and proc.name = curl', '  source: session\n'),
  ].join('\n');
  const { ruleset, diagnostics } = loadRuleStrings(yaml);
  const by = new Map(diagnostics.map((d) => [d.rule, d]));
  assert.equal(by.get('sys_with_http')?.code, 'UNSUPPORTED_FIELD');
  assert.equal(by.get('sys_with_http')?.severity, 'error');
  assert.match(by.get('sys_with_http')?.message ?? '', /http\.method .*source: session/);
  assert.equal(by.get('sys_with_http_in_macro')?.code, 'UNSUPPORTED_FIELD');
  assert.equal(by.get('session_seq')?.code, 'BAD_STATEFUL');
  assert.equal(by.get('k8s')?.code, 'UNSUPPORTED_SOURCE');
  assert.equal(by.get('k8s')?.severity, 'warning');
  assert.deepEqual(ruleset.rules.map((r) => [r.name, r.source]), [['ok', 'session']]);
});

test('rules of source dns: each domain asked of the sinkhole once, after the last event, as the unknown process; dns fields in a syscall or session rule, session fields in a dns rule and a sequence on a dns rule are refused by name', () => {
  const yaml = [
    rule('tunnel', 'dns.names >= 3 and dns.label_max >= 20', '  source: dns\n'),
    rule('types', 'dns.types contains TXT and evt.type = dns', '  source: dns\n'),
    rule('sys_with_dns', 'evt.type = connect and dns.names > 1'),
    rule('session_with_dns', 'dns.names > 1', '  source: session\n'),
    rule('dns_with_http', 'http.method = POST', '  source: dns\n'),
    rule('dns_seq', 'dns.names > 1', '  source: dns\n  sequence:\n    after: [evt.type = connect]\n'),
  ].join('\n');
  const { ruleset, diagnostics } = loadRuleStrings(yaml);
  const by = new Map(diagnostics.map((d) => [d.rule, d]));
  assert.deepEqual([by.get('sys_with_dns')?.code, by.get('session_with_dns')?.code, by.get('dns_with_http')?.code, by.get('dns_seq')?.code],
    ['UNSUPPORTED_FIELD', 'UNSUPPORTED_FIELD', 'UNSUPPORTED_FIELD', 'BAD_STATEFUL']);
  assert.match(by.get('sys_with_dns')?.message ?? '', /dns\.names is a field of the names the sample asked the DNS sinkhole about: the rule needs `source: dns`/);
  assert.match(by.get('dns_with_http')?.message ?? '', /http\.method .*source: session/);
  assert.deepEqual(ruleset.rules.map((r) => [r.name, r.source]), [['tunnel', 'dns'], ['types', 'dns']]);
  const s = new Sim();
  for (const l of ['aaaaaaaaaaaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaaaaaaaaaaa3']) s.lookup(`${l}.x.tunnel.test`);
  s.lookup('www.tunnel.test');
  s.lookup('www.other.test');
  s.ask('other.test', 16).ask('other.test', 16);
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  assert.deepEqual(d.drain(), [], 'no syscall event is a dns event');
  d.onDns?.(s.dns.log().queries);
  const found = d.finish();
  assert.deepEqual(found.map((f) => [f.rule, f.pid, f.evidence[0]?.event]), [['tunnel', 0, 'dns'], ['types', 0, 'dns']]);
  assert.deepEqual(found[0]?.evidence[0]?.fields, { 'dns.names': 4, 'dns.label_max': 25 });
});

test('a session rule sees each caught connection once, with the process and descriptor of the connect that made it; syscall rules never see it', () => {
  const yaml = [
    rule('post', 'http.method = POST', '  source: session\n'),
    rule('by_curl', 'session.protocol = http and proc.name = curl and fd.sport = 80 and evt.type = session', '  source: session\n'),
    rule('any_curl', 'proc.name = curl'),
  ].join('\n');
  const { ruleset, diagnostics } = loadRuleStrings(yaml);
  assert.deepEqual(diagnostics, []);
  const s = new Sim();
  const curl = s.run('/usr/bin/curl', ['curl', '-d', 'x', 'http://203.0.113.7/']);
  s.connect(curl, '203.0.113.7', 80, -115);
  const wget = s.run('/usr/bin/wget', ['wget', '--post-data', 'x', 'http://203.0.113.7/']);
  s.connect(wget, '203.0.113.7', 80, -115);
  const head = 'POST / HTTP/1.1\r\nHost: 203.0.113.7\r\n\r\n';
  // caught in the order the connects were made: the first is curl's, the second wget's
  s.caught('203.0.113.7', 80, head).caught('203.0.113.7', 80, head);
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  const syscallOnly = d.drain();
  d.onSessions?.(s.sessions);
  const found = [...syscallOnly, ...d.finish()];
  const post = found.filter((f) => f.rule === 'post');
  assert.deepEqual(post.map((f) => f.pid).sort(), [curl, wget].sort());
  const connectSeq = s.events.find((e) => e.ev.pid === curl && e.ev.type === 'syscall' && e.ev.name === 'connect')!.ev.seq;
  const fromCurl = post.find((f) => f.pid === curl)!;
  assert.equal(fromCurl.evidence[0]?.event, 'session');
  assert.equal(fromCurl.evidence[0]?.seq, connectSeq);
  assert.deepEqual(fromCurl.evidence[0]?.fields, { 'http.method': 'POST' });
  assert.deepEqual(found.filter((f) => f.rule === 'by_curl').map((f) => f.pid), [curl]);
  // the syscall rule counts curl's events only, not its caught connection a second time
  const anyCurl = found.filter((f) => f.rule === 'any_curl');
  assert.equal(anyCurl.length, 1);
  assert.equal(anyCurl[0]!.count, s.events.filter((e) => e.ev.pid === curl && e.ev.seq > 0 && (e.ev.type !== 'syscall' || e.ev.name !== 'execve')).length);
});

test('a caught connection without its port (rootless) is matched by address; one whose connect was never seen is the unknown process <NA>', () => {
  const ruleset = sessionRule('session.protocol = http', '%proc.name %fd.name %http.host');
  const s = new Sim();
  const py = s.run('/usr/bin/python3', ['python3', 'c2.py']);
  s.connect(py, '203.0.113.7', 8080, -115);
  s.caught('203.0.113.7', null, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n').caught('198.51.100.9', 80, 'GET / HTTP/1.1\r\nHost: b\r\n\r\n');
  assert.deepEqual(withSessions(ruleset, s).map((f) => [f.pid, f.output]), [[py, 'python3 0.0.0.0:0->203.0.113.7:8080 a'], [0, '<NA> ->198.51.100.9:80 b']]);
});

test('a threshold on a session rule counts caught connections: two uploads by one process make one finding of count 2, one does not', () => {
  const ruleset = sessionRule('http.method = POST', '%proc.name', '  threshold:\n    count: 2\n    within: 60s\n', 'uploads');
  const run = (n: number) => {
    const s = new Sim();
    for (let i = 0; i < n; i++) s.connect(1, '203.0.113.7', 80, -115);
    for (let i = 0; i < n; i++) s.caught('203.0.113.7', 80, 'POST /up HTTP/1.1\r\nHost: x\r\n\r\n');
    return withSessions(ruleset, s).map((f) => [f.rule, f.pid, f.count]);
  };
  assert.deepEqual(run(1), []);
  assert.deepEqual(run(2), [['uploads', 1, 2]]);
});

test('a caught UDP flow is matched with the first send of a socket to its destination (UDP), never with a TCP connect to the same place', () => {
  const ruleset = sessionRule('session.transport = udp', '%proc.name %fd.l4proto %fd.sport %session.payload_bytes %session.payload');
  const s = new Sim();
  const curl = s.run('/usr/bin/curl', ['curl', 'http://203.0.113.7:5000/']);
  s.connect(curl, '203.0.113.7', 5000, -115);
  const py = s.run('/usr/bin/python3', ['python3', 'bot.py']);
  const fd = s.socket(py, 2, 2);
  const addr = { family: 'inet' as const, address: '203.0.113.7', port: 5000 };
  s.sys(py, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr }).sys(py, 'sendto', [fd, 0, 4, 0, 0, 16], 4, { addr });
  s.caughtDatagrams('203.0.113.7', 5000, 'HELLO', 'PING');
  assert.deepEqual(withSessions(ruleset, s).map((f) => [f.pid, f.output]), [[py, 'python3 udp 5000 9 HELLO']]);
});
