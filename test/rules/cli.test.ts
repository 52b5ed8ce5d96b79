// `sandtrace rules check|list` and `sandtrace bench engine` through the built CLI (bin/sandtrace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
  const dir = await mkdtemp(join(tmpdir(), 'sandtrace-rules-'));
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

test('rules list shows the built-in pack with ids, severities and ATT&CK ids', () => {
  const r = run('rules', 'list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { id: string; severity: string; attack: string[] }[];
  assert.ok(rows.length >= 60);
  assert.ok(rows.every((x) => /^ST-/.test(x.id) && x.attack.length > 0));
});

test('bench engine prints {events, seconds, events_per_s, rules} (shape only: figures come from the benchmark)', () => {
  const r = run('bench', 'engine', '--events', '20000', '--pool', '5000', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, number>;
  assert.equal(out['events'], 20000);
  for (const k of ['seconds', 'events_per_s', 'rules']) assert.ok(typeof out[k] === 'number' && out[k]! > 0, k);
  assert.ok(out['rules']! >= 60 + 20, 'built-in pack plus Falco default rules');
});
