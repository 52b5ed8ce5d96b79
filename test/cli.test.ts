// The command line's contract for bad input: a one-line reason and a stable non-zero exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
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

test('output paths: one line and exit 4 before any work, never a hang (Node\'s mkdir -p loops forever under /proc)', () => {
  const t = tempDir();
  try {
    const sample = join(t.path, 's.sh');
    writeFileSync(sample, '#!/bin/sh\ntrue\n');
    const afile = join(t.path, 'afile');
    writeFileSync(afile, 'x');
    for (const [args, why] of [
      [['analyze', sample, '--out', '/proc/nope'], /cannot write \/proc\/nope: cannot be created there \[OUTPUT_UNWRITABLE\]/],
      [['analyze', sample, '--out', afile], /cannot write .*afile: exists and is not a directory \[OUTPUT_UNWRITABLE\]/],
      [['analyze', sample, '--out', join(afile, 'sub')], /cannot write .*afile\/sub: a parent is not a directory \[OUTPUT_UNWRITABLE\]/],
      [['model', 'train', sample, '--out', t.path], /cannot write .*: it is a directory \[OUTPUT_UNWRITABLE\]/],
      [['monitor', '--pid', String(process.pid), '--learn', '1h', '--out', '/proc/nope/m.json'], /cannot write \/proc\/nope\/m\.json/],
      [['eval', 'adfa-ld', t.path, '--roc', '/proc/nope/roc.svg'], /cannot write \/proc\/nope\/roc\.svg/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.match(assertOneLineError(r.stderr), why);
    }
  } finally {
    t.cleanup();
  }
});

test('monitor: a learning time no timer can wait for is a usage error, not an instant end', () => {
  const r = cli(['monitor', '--pid', String(process.pid), '--learn', '1000h', '--out', '/tmp/m.json']);
  assert.equal(r.code, 2);
  assert.match(assertOneLineError(r.stderr), /longer than the longest supported/);
});

test('a reader that closes the pipe early (| head) gets no stack trace', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" bin/sandtrace trace --json -- /bin/ls /usr/bin | head -1 >/dev/null`], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at .*\.js:\d+/);
});
