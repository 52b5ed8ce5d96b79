// End to end: a sample that attacks the analyst's side (test/samples/hostile_strings.sh) through
// the real sandbox and CLI. Whatever it names or prints must reach the terminal and the browser as
// text: no control character on stdout/stderr but the line ends, no script or event handler of its
// own in report.html, and report.json still JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '../src/report/schema.js';
import { cli, ROOT, scratchDir } from './helpers.js';

const SAMPLE = join(ROOT, 'test', 'samples', 'hostile_strings.sh');
// what a terminal acts on: C0 but \n, DEL, C1 (U+009B is CSI to some), bidi controls, line separators
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

test('a sample naming its files, argv, sockets and comm with markup and escape sequences cannot reach the analyst\'s terminal or browser', () => {
  const dir = scratchDir();
  const out = join(dir, 'out');
  const rec = join(dir, 'run.rec');
  const r = cli(['analyze', SAMPLE, '--out', out, '--timeout', '30', '--record', rec]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, CONTROL, `raw control characters from the sample on the terminal: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stdout, /^verdict: \w+ \(score [\d.]+\/10\)/);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'one verdict line');

  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  assert.ok(report.files.some((f) => f.path.includes('<script>alert(1)<_script>')), 'the hostile names are in the report, as data');
  assert.ok(report.processes.some((p) => p.argv.includes('javascript:alert(7)')));

  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.equal(html.match(/<script/gi)?.length, 1, 'only the report\'s own script');
  assert.doesNotMatch(html, /<(img|svg|iframe)\b[^>]*\bon\w+=|<a\b[^>]*href="javascript:/i);
  assert.doesNotMatch(html, /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/, 'no raw control character in the page');
  assert.match(html, /&#60;script&#62;alert\(1\)/, 'the markup is shown as text');

  // the same events replayed, as JSON on stdout: the sample's C1 and bidi characters escaped, the value kept
  const j = cli(['replay', rec, '--out', join(dir, 'replayed'), '--json']);
  assert.equal(j.code, 0, j.stderr);
  assert.doesNotMatch(j.stdout + j.stderr, CONTROL);
  const replayed = JSON.parse(j.stdout) as Report;
  assert.ok(replayed.files.some((f) => f.path.includes('\u009b31m\u202e')), 'escaped on the terminal, exact in the JSON value');
});
