// The command line's contract for bad input: a one-line reason and a stable non-zero exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, cli, tempDir } from './helpers.js';

test('no command prints usage and the command list', () => {
  const r = cli([]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: sandtrace <command>/);
  assert.match(r.stdout, /analyze/);
});

test('an unknown command exits 2 with one line', () => {
  const r = cli(['detonate']);
  assert.equal(r.code, 2);
  assert.match(assertOneLineError(r.stderr), /unknown command 'detonate'/);
});

test('analyze: a missing sample exits 4 and says so', () => {
  const r = cli(['analyze', '/nonexistent/sample.bin']);
  assert.equal(r.code, 4);
  assert.match(assertOneLineError(r.stderr), /sample not found: \/nonexistent\/sample\.bin \[INPUT_MISSING\]/);
});

test('analyze: an empty file, a directory and a file over the size limit are refused before anything runs', () => {
  const t = tempDir();
  try {
    const empty = join(t.path, 'empty');
    writeFileSync(empty, '');
    let r = cli(['analyze', empty, '--out', join(t.path, 'o1')]);
    assert.equal(r.code, 4);
    assert.match(assertOneLineError(r.stderr), /INPUT_EMPTY/);

    const dir = join(t.path, 'adir');
    mkdirSync(dir);
    r = cli(['analyze', dir, '--out', join(t.path, 'o2')]);
    assert.equal(r.code, 4);
    assert.match(assertOneLineError(r.stderr), /is a directory.*INPUT_IS_DIRECTORY/);

    const big = join(t.path, 'big');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 300 * 1024 * 1024); // sparse: costs no disk
    closeSync(fd);
    r = cli(['analyze', big, '--out', join(t.path, 'o3')]);
    assert.equal(r.code, 4);
    assert.match(assertOneLineError(r.stderr), /limit.*INPUT_TOO_LARGE/);
  } finally {
    t.cleanup();
  }
});

test('analyze: bad flags are usage errors (exit 2)', () => {
  let r = cli(['analyze', 'examples/dropper.sh', '--timeout', 'soon']);
  assert.equal(r.code, 2);
  assert.match(assertOneLineError(r.stderr), /--timeout needs a positive number/);
  r = cli(['analyze', 'examples/dropper.sh', '--backend', 'dtrace']);
  assert.equal(r.code, 2);
  r = cli(['analyze', 'examples/dropper.sh', '--frobnicate']);
  assert.equal(r.code, 2);
  assertOneLineError(r.stderr);
});
