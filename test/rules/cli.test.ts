// `sandtrace rules check|list` and `sandtrace bench engine` through the built CLI (bin/sandtrace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { scratchDir } from '../helpers.js';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'bin', 'sandtrace');
const run = (...args: string[]) => {
  assert.ok(existsSync(join(root, 'dist', 'src', 'cli', 'main.js')), "dist/ is missing: run 'make setup' (or 'make build') first");
  return spawnSync(cli, args, { encoding: 'utf8', cwd: root });
};

test("rules check --json on Falco's files prints {rules, loaded, disabled} and exits 0", () => {
  const files = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => join(root, 'test', 'fixtures', 'falco', f));
  const r = run('rules', 'check', ...files, '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rules: number; loaded: number; disabled: { rule: string; reason: string }[] };
  assert.ok(out.rules >= 70);
  assert.ok(out.loaded / out.rules >= 0.9);
  assert.equal(out.rules - out.loaded, out.disabled.length);
  for (const d of out.disabled) assert.ok(d.rule && d.reason);
});

test('rules check on a malformed file: diagnostics with file and line, non-zero exit', async () => {
  const dir = scratchDir('sandtrace-rules-');
  const file = join(dir, 'broken.yaml');
  await writeFile(file, [
    '- rule: fine', '  desc: ok', '  condition: evt.type = openat', '  output: x', '  priority: NOTICE',
    '- rule: unknown macro', '  desc: d', '  condition: not_a_macro and evt.type = openat', '  output: x', '  priority: NOTICE',
    '- rule: unbalanced', '  desc: d', '  condition: (evt.type = openat', '  output: x', '  priority: NOTICE', '',
  ].join('\n'));
  const r = run('rules', 'check', file);
  assert.equal(r.status, 4);
  assert.match(r.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:8: error UNKNOWN_MACRO \\[unknown macro\\]`));
  assert.match(r.stdout, /:13: error CONDITION_SYNTAX \[unbalanced\]/);
  assert.match(r.stdout, /1 of 3 rules loaded/);
  const yamlBad = join(dir, 'bad.yaml');
  await writeFile(yamlBad, '- rule: x\n  desc: [oops\n');
  const y = run('rules', 'check', yamlBad, '--json');
  assert.equal(y.status, 4);
  assert.equal(JSON.parse(y.stdout).diagnostics[0].code, 'YAML_SYNTAX');
  const missing = run('rules', 'check', join(dir, 'nope.yaml'));
  assert.equal(missing.status, 4);
  assert.match(missing.stdout, /FILE_UNREADABLE/);
  const usage = run('rules', 'check');
  assert.equal(usage.status, 2);
  assert.equal(usage.stderr.trim().split('\n').length, 1);
});

test('rules list shows the built-in pack with ids, severities, ATT&CK ids and each rule\'s source (the caught-connection rules marked)', () => {
  const r = run('rules', 'list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { id: string; severity: string; attack: string[]; source: string }[];
  assert.ok(rows.length >= 60);
  assert.ok(rows.every((x) => /^ST-/.test(x.id) && x.attack.length > 0));
  assert.deepEqual(rows.filter((x) => x.source === 'session').map((x) => x.id).sort(), ['ST-C2-012', 'ST-C2-013', 'ST-C2-014', 'ST-C2-015', 'ST-C2-016', 'ST-C2-017', 'ST-C2-019', 'ST-CRD-013', 'ST-CRD-015', 'ST-EXF-002', 'ST-EXF-003', 'ST-EXF-004']);
  assert.deepEqual(rows.filter((x) => x.source === 'dns').map((x) => x.id), ['ST-C2-018']);
  assert.ok(rows.every((x) => x.source === 'session' || x.source === 'syscall' || x.source === 'dns'));
  const text = run('rules', 'list');
  assert.match(text.stdout, /^ST-EXF-002 .*Data sent out in an HTTP request \(caught connections\)$/m);
  assert.match(text.stdout, /^ST-C2-018 .*DNS tunnel \(DNS lookups\)$/m);
});

test('bench engine prints {events, seconds, events_per_s, rules} (shape only: figures come from the benchmark)', () => {
  const r = run('bench', 'engine', '--events', '20000', '--pool', '5000', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, number>;
  assert.equal(out['events'], 20000);
  for (const k of ['seconds', 'events_per_s', 'rules']) assert.ok(typeof out[k] === 'number' && out[k]! > 0, k);
  assert.ok(out['rules']! >= 60 + 20, 'built-in pack plus Falco default rules');
});

test('rules check reports misspelt keys, missing desc/output/priority, a non-boolean enabled, unknown output fields and cycles with their lines', async () => {
  const dir = scratchDir('sandtrace-rules-');
  const file = join(dir, 'defects.yaml');
  await writeFile(file, [
    '- rule: misspelt', '  desc: d', '  condition: evt.type = openat', '  output: "%proc.name"', '  priorty: WARNING', //  1-5
    '- rule: bare', '  condition: evt.type = openat', //                                                                6-7
    '- rule: string enabled', '  desc: d', '  condition: evt.type = openat', '  output: "%proc.name"', '  priority: NOTICE',
    '  enabled: "false"', //                                                                                          8-13
    '- rule: bad output', '  desc: d', '  condition: evt.type = openat', '  output: "%proc.name %nosuch.field"',
    '  priority: NOTICE', //                                                                                          14-18
    '- list: a', '  items: [x, b]', '- list: b', '  items: [y, a]', //                                                 19-22
    '- macro: m1', '  condition: m2 and evt.type = openat', '- macro: m2', '  condition: m1', //                         23-26
    '- rule: word enabled', '  desc: d', '  condition: evt.type = openat', '  output: x', '  priority: NOTICE', '  enabled: maybe', // 27-32
    '',
  ].join('\n'));
  const r = run('rules', 'check', file);
  assert.equal(r.status, 4, r.stdout + r.stderr);
  const lines = r.stdout.trim().split('\n');
  const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `${re} not in:\n${r.stdout}`);
  has(/defects\.yaml:5: warning UNKNOWN_KEY \[misspelt\]: unknown key 'priorty'.*did you mean 'priority'\?/);
  has(/defects\.yaml:1: error INVALID_ITEM \[misspelt\]: rule 'misspelt' needs 'priority'/);
  has(/defects\.yaml:6: error INVALID_ITEM \[bare\]: rule 'bare' needs 'desc', 'output' and 'priority'/);
  has(/defects\.yaml:13: warning INVALID_ITEM \[string enabled\]: enabled: "false" is text, not a boolean; read as false/);
  has(/defects\.yaml:17: warning UNSUPPORTED_FIELD \[bad output\]: output: unsupported field 'nosuch\.field'/);
  has(/defects\.yaml:19: warning LIST_CYCLE: lists include each other in a cycle: a -> b -> a/);
  has(/defects\.yaml:24: error MACRO_CYCLE: macros use each other in a cycle: m1 -> m2 -> m1/);
  has(/defects\.yaml:32: error INVALID_ITEM \[word enabled\]: enabled must be true or false/);
  // the unknown output field is only a warning: that rule still loads and runs
  assert.match(lines.at(-1)!, /^2 of 2 rules loaded \(100\.0%\), 0 disabled, 1 switched off \(enabled: false\); 4 errors$/);

  // Warnings alone (valid Falco): printed, exit 0.
  const warn = join(dir, 'warnings.yaml');
  await writeFile(warn, ['- rule: r', '  desc: d', '  condition: evt.type = openat', '  output: "%proc.name"', '  priority: NOTICE',
    '  enabled: "no"', '  tgas: [x]', ''].join('\n'));
  const w = run('rules', 'check', warn, '--json');
  assert.equal(w.status, 0, w.stdout + w.stderr);
  const out = JSON.parse(w.stdout) as { diagnostics: { code: string; severity: string; line: number }[] };
  assert.deepEqual(out.diagnostics.map((d) => [d.code, d.severity, d.line]), [['UNKNOWN_KEY', 'warning', 7], ['INVALID_ITEM', 'warning', 6]]);
});

test('rules check: the built-in pack has no diagnostics and Falco\'s files load 76 of 77 rules, as before', () => {
  const pack = run('rules', 'check', ...readdirSync(join(root, 'rules')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'rules', f)));
  assert.equal(pack.status, 0, pack.stdout);
  assert.match(pack.stdout, /^(\d+) of \1 rules loaded \(100\.0%\), 0 disabled, 0 switched off \(enabled: false\); 0 errors\n$/);
  const falco = run('rules', 'check', ...['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => join(root, 'test', 'fixtures', 'falco', f)));
  assert.equal(falco.status, 0, falco.stdout);
  const lines = falco.stdout.trim().split('\n');
  assert.equal(lines.length, 2, falco.stdout);
  assert.match(lines[0]!, /falco-sandbox_rules\.yaml:1666: warning UNSUPPORTED_FIELD \[Java Process Class File Download\]/);
  assert.equal(lines[1], '76 of 77 rules loaded (98.7%), 1 disabled, 11 switched off (enabled: false); 0 errors');
});

test("rules check: an output's text and fields it cannot fill never switch a rule off (a '.' after a field is text; Falco fields sandtrace lacks print <NA>)", async () => {
  const dir = scratchDir('sandtrace-rules-');
  const file = join(dir, 'outputs.yaml');
  const rule = (name: string, output: string) => ['- rule: ' + name, '  desc: d', '  condition: evt.type = openat', `  output: "${output}"`, '  priority: NOTICE'];
  await writeFile(file, [
    ...rule('full stop', 'opened by %user.name.'),
    ...rule('falco fields', 'at %evt.time.iso8601 %evt.info src=%evt.source %evt.plugininfo'),
    ...rule('plain', 'x %proc.name'), '',
  ].join('\n'));
  const r = run('rules', 'check', file);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^3 of 3 rules loaded \(100\.0%\), 0 disabled/m);
  assert.doesNotMatch(r.stdout, /full stop/, 'nothing to say about %user.name.');
  assert.equal(r.stdout.match(/:9: warning UNSUPPORTED_FIELD \[falco fields\]: output: unsupported field '[\w.]+' \(%[\w.]+\); it prints as <NA>, the rule still runs$/gm)?.length, 4);
});
