// Output paths: refused before any work when they cannot be written, and analysis files written
// without following links planted in the directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkOutFile, clearAnalysis, refuseExistingAnalysis, writeOutputFile } from './outpath.js';
import { scratchDir } from '../test/helpers.js';

test('checkOutFile tries the write: a file /proc will not create is refused up front, even for root, and nothing is left', () => {
  assert.throws(() => checkOutFile('/proc/sandtrace-model.json'), (e: Error & { code?: string }) =>
    e.code === 'OUTPUT_UNWRITABLE' && /cannot write \/proc\/sandtrace-model\.json/.test(e.message));
  const dir = scratchDir('sandtrace-outpath-');
  const fresh = join(dir, 'm.json');
  assert.equal(checkOutFile(fresh), fresh);
  assert.ok(!existsSync(fresh), 'the trial file was removed');
  writeFileSync(fresh, 'keep');
  assert.equal(checkOutFile(fresh), fresh);
  assert.equal(readFileSync(fresh, 'utf8'), 'keep', 'an existing file is tried without truncating it');
});

test('writeOutputFile replaces a link planted at the name instead of writing through it', async () => {
  const dir = scratchDir('sandtrace-outpath-');
  const victim = join(dir, 'precious');
  writeFileSync(victim, 'precious');
  const out = join(dir, 'report.html');
  symlinkSync(victim, out);
  await writeOutputFile(out, '<html>');
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
  assert.ok(lstatSync(out).isFile());
  assert.equal(readFileSync(out, 'utf8'), '<html>');
});

test('an analysis directory holding any analysis file is refused without --force, and --force clears them all', async () => {
  for (const f of ['report.json', 'report.html', 'attack-layer.json']) {
    const dir = scratchDir('sandtrace-outpath-');
    writeFileSync(join(dir, f), '{}');
    assert.throws(() => refuseExistingAnalysis(dir), new RegExp(`already holds an analysis \\(${f.replace('.', '\\.')}`));
  }
  const dir = scratchDir('sandtrace-outpath-');
  mkdirSync(join(dir, 'dropped', 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'dropped', 'tmp', 'old'), 'x');
  writeFileSync(join(dir, 'report.json'), '{}');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  assert.throws(() => refuseExistingAnalysis(dir), /dropped|report\.json/);
  await clearAnalysis(dir);
  assert.doesNotThrow(() => refuseExistingAnalysis(dir));
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine', 'files the analysis did not write stay');
});
