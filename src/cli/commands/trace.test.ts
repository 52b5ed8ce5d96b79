// `sandtrace trace` end to end through the CLI entry: JSON lines on stdout, the command's exit
// status passed through, a readable line per event, and --record readable by the replay source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecEvent, TraceEvent } from '../../capture/events.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `import { main } from ${JSON.stringify(join(ROOT, 'src/cli/main.ts'))};
    process.exitCode = await main(${JSON.stringify(args)});`;
  return spawnSync(process.execPath, ['--import', join(ROOT, 'node_modules/tsx/dist/esm/index.mjs'), '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: tmpdir() });
}

test('trace --json prints one event per line and passes the exit status through', () => {
  const r = cli(['trace', '--json', '--', '/bin/sh', '-c', '/bin/echo hello >&2; exit 6']);
  assert.equal(r.status, 6, r.stderr);
  const evs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as TraceEvent);
  const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
  assert.deepEqual(execs.map((e) => e.exe), ['/bin/sh', '/bin/echo']);
  assert.deepEqual(execs[1]?.argv, ['/bin/echo', 'hello']);
  assert.match(r.stderr, /hello\n/, 'the command\'s output goes to stderr, not into the event stream');
  assert.match(r.stderr, /sandtrace trace: \d+ events, 0 parse errors, [\d.]+ s; the command exited with status 6\n/);
});

test('trace: a command killed by a signal is a completed trace (exit 128+signal as a shell says, the signal stated), not a tracer failure', () => {
  const r = cli(['trace', '--quiet', '--', '/bin/sh', '-c', 'kill -9 $$']);
  assert.equal(r.status, 137, r.stderr);
  assert.match(r.stderr, /^sandtrace trace: \d+ events, 0 parse errors, [\d.]+ s; the command was killed by SIGKILL$/m);
  assert.doesNotMatch(r.stderr, /strace was killed|tracer|TRACER_FAILED/);
});

test('trace --record refuses to replace an existing file unless --force (a device such as /dev/null is still fine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-trace-rec-'));
  try {
    const file = join(dir, 'earlier.events.gz');
    writeFileSync(file, 'an earlier recording');
    const r = cli(['trace', '--record', file, '--', '/bin/true']);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /^sandtrace trace: cannot write .*earlier\.events\.gz: the file exists \(use --force to replace it\) \[OUTPUT_UNWRITABLE\]\n$/);
    assert.equal(readFileSync(file, 'utf8'), 'an earlier recording', 'the earlier file is untouched');
    const f = cli(['trace', '--record', file, '--force', '--', '/bin/true']);
    assert.equal(f.status, 0, f.stderr);
    assert.notEqual(readFileSync(file, 'latin1'), 'an earlier recording', 'replaced with --force');
    assert.equal(cli(['trace', '--record', '/dev/null', '--', '/bin/true']).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trace prints readable lines; usage errors exit 2 with a one-line reason', () => {
  const r = cli(['trace', '--', '/bin/true']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\[\d+ true\] exec \/bin\/true \["\/bin\/true"\]$/m);
  assert.match(r.stdout, /\] exit 0$/m);
  const u = cli(['trace']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /^sandtrace trace: no command to trace; usage: /);
  assert.equal(u.stderr.trim().split('\n').length, 1);
});

test('trace --record writes a recording the replay collector reads back event for event', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-trace-rec-'));
  try {
    const file = join(dir, 'run.events.gz');
    const r = cli(['trace', '--record', file, '--json', '--', '/bin/sh', '-c', '/bin/ls / > /dev/null']);
    assert.equal(r.status, 0, r.stderr);
    const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as TraceEvent);
    const { RecordingCollector } = await import('../../capture/replay/index.js');
    const c = new RecordingCollector(file);
    await c.start();
    const replayed: TraceEvent[] = [];
    for await (const b of c.events()) replayed.push(...b);
    await c.stop();
    assert.equal(replayed.length, printed.length);
    assert.deepEqual(replayed.map((e) => [e.seq, e.type, e.pid]), printed.map((e) => [e.seq, e.type, e.pid]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trace: a command that cannot run is refused in one line, exit 4, before strace starts (not "exited with status 1")', () => {
  for (const [cmd, why] of [
    ['/nonexistent_cmd', /\/nonexistent_cmd does not exist \[INPUT_MISSING\]$/],
    ['/etc/passwd', /\/etc\/passwd is not executable \[INPUT_UNREADABLE\]$/],
    ['no_such_command_xyz', /no_such_command_xyz: command not found in PATH \[INPUT_MISSING\]$/],
    ['/tmp', /\/tmp is a directory, not a program \[INPUT_IS_DIRECTORY\]$/],
  ] as const) {
    const r = cli(['trace', '--', cmd]);
    assert.equal(r.status, 4, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), why);
  }
  const empty = cli(['trace', '--record', '', '--', 'true']);
  assert.equal(empty.status, 2, empty.stderr);
  assert.match(empty.stderr, /--record needs a file name/);
});

test('trace: a traced program\'s name, paths and socket names reach the terminal as escapes, never as control sequences', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-trace-'));
  try {
    // a program named to clear the screen and write a fake line over the real one (it becomes the comm, the exe and a file name)
    const evil = join(dir, '\x1b[2J\x1b[H\rverdict: benign\x1b]0;t\x07\u009b31m\u202e');
    const r = cli(['trace', '--', '/bin/sh', '-c', 'cp /bin/true "$1" && "$1" && : > "$1.txt"', 'sh', evil]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\] exec \S*\\x1b\[2J\\x1b\[H\\x0dverdict: benign/, 'the exec line names the program, escaped');
    assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, 'no raw control character in the event lines');
    const j = cli(['trace', '--json', '--', '/bin/sh', '-c', '"$1"', 'sh', evil]);
    assert.equal(j.status, 0, j.stderr);
    assert.doesNotMatch(j.stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, 'no raw control character in the JSON lines');
    const exec = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as TraceEvent).find((e): e is ExecEvent => e.type === 'exec' && e.exe === evil);
    assert.ok(exec, 'the JSON still holds the exact name');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
