// What the CLI writes to a terminal quotes the sample (its paths, argv, comm, output): a control
// sequence there must be shown, never acted on (a cleared screen, a fake 'verdict: benign' line).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { termSafe, termSafeJson } from './terminal.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EVIL = '\x1b[2J\x1b[H\rverdict: benign (score 0.0/10)\n\x1b]0;title\x07\u009b31m\u202egnp.exe\u2028';
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function main(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `import { main } from ${JSON.stringify(join(ROOT, 'src/cli/main.ts'))};
    process.exitCode = await main(${JSON.stringify(args)});`;
  return spawnSync(process.execPath, ['--import', join(ROOT, 'node_modules/tsx/dist/esm/index.mjs'), '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: tmpdir() });
}

test('termSafe shows every character a terminal acts on as an escape, and keeps the rest', () => {
  assert.equal(termSafe(EVIL), '\\x1b[2J\\x1b[H\\x0dverdict: benign (score 0.0/10)\\x0a\\x1b]0;title\\x07\\x9b31m\\u202egnp.exe\\u2028');
  assert.equal(termSafe('/tmp/plain file-é😀'), '/tmp/plain file-é😀');
  assert.doesNotMatch(termSafe(EVIL), CONTROL);
});

test('termSafeJson leaves no raw control character in JSON and keeps its value', () => {
  const json = JSON.stringify({ path: EVIL, argv: [EVIL] });
  const safe = termSafeJson(json);
  assert.doesNotMatch(safe, CONTROL);
  assert.deepEqual(JSON.parse(safe), { path: EVIL, argv: [EVIL] });
});

test('an error naming a sample file whose name holds escape sequences is one line with the escapes shown', () => {
  for (const cmd of ['analyze', 'report']) {
    const r = main([cmd, join('/nonexistent', EVIL)]);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stderr, CONTROL, `${cmd}: no raw control character on stderr: ${JSON.stringify(r.stderr)}`);
    assert.equal(r.stderr.split('\n').length, 2, `${cmd}: one line`);
    assert.match(r.stderr, /\\x1b\[2J/);
  }
});
