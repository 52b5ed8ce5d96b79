// The command line's contract for bad input: a one-line reason and a stable non-zero exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, ftruncateSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { assertOneLineError, cli, ROOT, tempDir } from './helpers.js';

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
  // `help NAME` for a command that does not exist says so too, rather than printing the general help
  const h = cli(['help', 'detonate']);
  assert.equal(h.code, 2, h.stderr);
  assert.match(assertOneLineError(h.stderr), /unknown command 'detonate'/);
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

test('a timeout longer than a timer can wait is refused, not taken as 1 ms (which killed the sample at once and called it benign)', () => {
  for (const argv of [['analyze', 'examples/dropper.sh', '--timeout', '99999999999'], ['vm', 'run', 'examples/dropper.sh', '--timeout', '2000001']]) {
    const r = cli(argv);
    assert.equal(r.code, 2, r.stderr);
    assert.match(assertOneLineError(r.stderr), /--timeout must be at most 2000000/);
  }
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
      // an earlier model is not replaced without --force, before an hour of learning, not after
      [['monitor', '--pid', String(process.pid), '--learn', '1h', '--out', afile], /cannot write .*afile: the file exists \(use --force to replace it\)/],
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

test('a negative number for a flag is a usage error asking for a positive number, not node\'s "ambiguous"', () => {
  const t = tempDir();
  try {
    for (const [args, flag, v] of [
      [['analyze', 'examples/dropper.sh', '--timeout', '-5'], '--timeout', '-5'],
      [['model', 'train', 'examples/dropper.sh', '--out', join(t.path, 'm.json'), '--far', '-1'], '--far', '-1'],
      [['model', 'train', 'examples/dropper.sh', '--out', join(t.path, 'm.json'), '--n', '-3'], '--n', '-3'],
      [['vm', 'run', 'examples/dropper.sh', '--timeout', '-0.5'], '--timeout', '-0.5'],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const line = assertOneLineError(r.stderr);
      assert.ok(line.includes(`${flag} needs a positive number, got '${v}'`), line);
      assert.doesNotMatch(line, /ambiguous/);
    }
  } finally {
    t.cleanup();
  }
});

test('an integer flag refuses a fraction instead of rounding it (model train --n 2.5)', () => {
  const t = tempDir();
  try {
    for (const v of ['2.5', '1e1', '0x4']) {
      const r = cli(['model', 'train', 'examples/dropper.sh', '--out', join(t.path, 'm.json'), '--n', v]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(assertOneLineError(r.stderr).includes(`--n needs a positive whole number, got '${v}'`), r.stderr);
    }
  } finally {
    t.cleanup();
  }
});

test('an extra positional argument is refused with one line naming it; variable file lists still work', () => {
  const t = tempDir();
  try {
    for (const args of [
      ['analyze', 'examples/dropper.sh', 'extra'],
      ['analyze', 'examples/dropper.sh', 'extra', '--', 'sample-arg'],
      ['replay', 'some.rec', 'extra'],
      ['report', t.path, 'extra'],
      ['trace', 'extra', '--', '/bin/true'],
      ['rules', 'list', 'extra'],
      ['model', 'info', 'm.json', 'extra'],
      ['eval', 'adfa-ld', t.path, 'extra'],
      ['vm', 'profile', 'vmlinuz', 'extra'],
      ['vm', 'run', 'examples/dropper.sh', 'extra'],
      ['bench', 'sandbox', 'extra'],
      ['bench', 'capture', 'extra'],
      ['bench', 'models', t.path, 'extra'],
    ]) {
      const r = cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(assertOneLineError(r.stderr), /unexpected argument 'extra'; usage: sandtrace /, args.join(' '));
    }
    // what follows `--` belongs to the sample or the traced command
    const traced = cli(['trace', '--quiet', '--', '/bin/sh', '-c', 'exit 0', 'extra']);
    assert.equal(traced.code, 0, traced.stderr);
    // commands that take any number of files take them all
    const traces: string[] = [];
    for (let i = 0; i < 4; i++) {
      const f = join(t.path, `t${i}.txt`);
      writeFileSync(f, Array.from({ length: 200 }, (_, k) => [3, 4, 5, 6, 11, 45][(k * (i + 3) + i) % 6]).join(' ') + '\n');
      traces.push(f);
    }
    const model = join(t.path, 'm.json');
    const trained = cli(['model', 'train', ...traces, '--out', model]);
    assert.equal(trained.code, 0, trained.stderr);
    assert.match(trained.stdout, /on 4 traces/);
    const scored = cli(['model', 'score', model, ...traces.slice(0, 2)]);
    assert.equal(scored.code, 0, scored.stderr);
    assert.match(scored.stdout, /of 2 trace\(s\) anomalous/);
    const checked = cli(['rules', 'check', 'rules/00-base.yaml', 'rules/10-execution.yaml']);
    assert.notEqual(checked.code, 2, checked.stderr);
    assert.match(checked.stdout, /rules loaded/);
  } finally {
    t.cleanup();
  }
});

test('COMMAND --help prints that command\'s usage on stdout and exits 0; --help and help print the command list', () => {
  for (const name of ['analyze', 'report', 'replay', 'trace', 'rules', 'model', 'monitor', 'eval', 'vm', 'bench']) {
    const r = cli([name, '--help']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`^usage: sandtrace ${name} `), name);
  }
  for (const args of [['model', 'train', '--help'], ['analyze', 'examples/dropper.sh', '-h'], ['help', 'trace']]) {
    const r = cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: sandtrace ${args[0] === 'help' ? args[1] : args[0]} `));
  }
  for (const top of ['--help', '-h', 'help']) {
    const r = cli([top]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: sandtrace <command>/);
    assert.match(r.stdout, /^ {2}trace /m);
  }
  // after `--`, --help is the sample's argument, not a request for help
  const s = cli(['analyze', '/nonexistent/sample.bin', '--', '--help']);
  assert.equal(s.code, 4);
  assert.match(assertOneLineError(s.stderr), /INPUT_MISSING/);
});

test('--version prints the version from package.json', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = cli(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `sandtrace ${version}\n`);
  assert.equal(r.stderr, '');
});

test('an earlier analysis is never silently replaced: replay and analyze refuse its directory, --force replaces it', () => {
  const t = tempDir();
  try {
    const rec = join(t.path, 'run.events.gz');
    const traced = cli(['trace', '--quiet', '--record', rec, '--', '/bin/sh', '-c', 'echo hi > /dev/null']);
    assert.equal(traced.code, 0, traced.stderr);
    const out = join(t.path, 'replayed');
    const first = cli(['replay', rec, '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    const report = join(out, 'report.json');
    writeFileSync(report, readFileSync(report, 'utf8').replace('"sandtrace.report"', '"sandtrace.report" ') + '\n');
    const earlier = readFileSync(report, 'utf8');
    const again = cli(['replay', rec, '--out', out]);
    assert.equal(again.code, 4, again.stderr);
    assert.match(assertOneLineError(again.stderr), /^sandtrace replay: cannot write .*replayed: it already holds an analysis \(report\.json; use --force to replace it\) \[OUTPUT_UNWRITABLE\]$/);
    assert.equal(readFileSync(report, 'utf8'), earlier, 'the earlier report is untouched');
    // what the earlier analysis wrote besides its report (a live run's dropped files) goes with it
    mkdirSync(join(out, 'dropped', 'tmp'), { recursive: true });
    writeFileSync(join(out, 'dropped', 'tmp', 'payload.bin'), 'from the earlier run');
    const forced = cli(['replay', rec, '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(report, 'utf8'), earlier, 'replaced with --force');
    assert.equal(existsSync(join(out, 'dropped')), false, 'no stale dropped/ beside a report that names none');
    assert.deepEqual(JSON.parse(readFileSync(report, 'utf8')).dropped, []);
    // --out '' would be the current directory
    const here = join(t.path, 'cwd');
    mkdirSync(here);
    const empty = cli(['replay', rec, '--out', ''], { cwd: here });
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(assertOneLineError(empty.stderr), /^sandtrace replay: --out needs a directory .*\[USAGE\]$/);
    assert.deepEqual(readdirSync(here), [], 'nothing written into the current directory');

    // analyze: the same rule, said before the sample runs
    const sample = join(t.path, 's.sh');
    writeFileSync(sample, '#!/bin/sh\ntrue\n');
    const a = cli(['analyze', sample, '--out', out, '--timeout', '5']);
    assert.equal(a.code, 4, a.stderr);
    assert.match(assertOneLineError(a.stderr), /^sandtrace analyze: cannot write .*replayed: it already holds an analysis .*\[OUTPUT_UNWRITABLE\]$/);
    assert.equal(a.stdout, '');
    const existing = join(t.path, 'earlier.events.gz');
    writeFileSync(existing, 'an earlier recording');
    const r = cli(['analyze', sample, '--out', join(t.path, 'fresh'), '--record', existing, '--timeout', '5']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(assertOneLineError(r.stderr), /cannot write .*earlier\.events\.gz: the file exists \(use --force to replace it\) \[OUTPUT_UNWRITABLE\]/);
    assert.equal(readFileSync(existing, 'utf8'), 'an earlier recording');
  } finally {
    t.cleanup();
  }
});

test('analyze --image with a file that is not a tar archive is an input error naming the file, before anything runs', () => {
  const t = tempDir();
  try {
    const sample = join(t.path, 's.sh');
    writeFileSync(sample, '#!/bin/sh\ntrue\n');
    const garbage = join(t.path, 'garbage.tar');
    writeFileSync(garbage, 'not an archive\n'.repeat(64));
    const r = cli(['analyze', sample, '--image', garbage, '--out', join(t.path, 'out'), '--timeout', '5']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(assertOneLineError(r.stderr), /^sandtrace analyze: image archive .*garbage\.tar is not a tar archive \(no tar header at its start\) \[INPUT_CORRUPT\]$/);
    assert.equal(r.stdout, '', 'no analysis was run');
  } finally {
    t.cleanup();
  }
});
