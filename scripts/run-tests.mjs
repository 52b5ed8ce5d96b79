#!/usr/bin/env node
// Runs every *.test.ts under src/, bench/ and test/ with node's test runner (TypeScript through
// tsx). Arguments filter test files by substring: `node scripts/run-tests.mjs engine/rules`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
}
for (const d of ['src', 'bench', 'test']) {
  try { walk(join(root, d)); } catch { /* folder absent */ }
}
const chosen = files.sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (chosen.length === 0) {
  console.error('run-tests: no test file matches ' + JSON.stringify(filters));
  process.exit(1);
}
const r = spawnSync(process.execPath,
  // a test that hangs fails after 20 minutes instead of holding CI (tests that need longer say so)
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=1200000', '--test-reporter=spec', ...chosen],
  { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
