// Inputs the commands read: regular files only (or folders where a folder is allowed), checked
// by stat before anything is opened; a model judges only traces of its own ABI; a recording cut
// short is replayed as far as it goes and the verdict line says so. The CLI runs from source (tsx)
// in a child process with a timeout, so a regression that blocks on a FIFO fails, never hangs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { ROOT, assertOneLineError, tempDir } from './helpers.js';
import { RecordingWriter } from '../src/capture/replay/index.js';
import type { TraceEvent } from '../src/capture/events.js';
import { saveModel, trainModelFile } from '../src/engine/models/model.js';

const t = tempDir('sandtrace-inputs-');
after(() => t.cleanup());

interface Ran { code: number; stdout: string; stderr: string }

/** `sandtrace ARGS` from source; killed after `ms` (a command blocked on a FIFO fails the test). */
function sandtrace(args: string[], ms = 60_000): Ran {
  const main = pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href;
  const code = `const { main } = await import(${JSON.stringify(main)}); process.exitCode = await main(${JSON.stringify(args)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT, encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL',
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') assert.fail(`sandtrace ${args.join(' ')}: still running after ${ms / 1000}s (blocked?)`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const fifo = join(t.path, 'in.fifo');
assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');

/** A recording of one x86_64 process (as every live capture is), gzip'd, with its trailer. */
async function recording(path: string): Promise<string> {
  const events: TraceEvent[] = [{ type: 'exec', seq: 1, ts: 1000, pid: 7, tid: 7, exe: '/usr/bin/svc', argv: ['svc'] }];
  for (let i = 2; i <= 400; i++) events.push({ type: 'syscall', seq: i, ts: i * 1000, pid: 7, tid: 7, abi: 'x86_64', nr: 0, name: ['read', 'write', 'poll'][i % 3] as string, args: [3, i, 4096], ret: 0 });
  const w = await RecordingWriter.create(path, { backend: 'ebpf', target: 'svc' });
  w.write(events);
  await w.close({ backend: 'ebpf', events: events.length, lost: 0, parseErrors: 0, duration: 1, notes: [] });
  return path;
}

/** A model of ADFA-LD-like i386 traces (numbers in the i386 table), and the traces' folder. */
async function i386Model(): Promise<{ model: string; traces: string }> {
  const traces = join(t.path, 'adfa');
  mkdirSync(traces, { recursive: true });
  // brk mmap2 open read fstat64 close socketcall write exit (i386 numbers)
  for (let i = 0; i < 12; i++) writeFileSync(join(traces, `UTD-${i}.txt`), '45 192 5 3 197 6 102 4 3 6 1 \n');
  const model = join(t.path, 'i386.model.json');
  await saveModel(model, trainModelFile({ traces: Array.from({ length: 12 }, () => ['brk', 'mmap2', 'open', 'read', 'fstat64', 'close', 'socketcall', 'write', 'read', 'close', 'exit']), source: 'test' }, { kind: 'vmm', abi: 'i386' }));
  return { model, traces };
}

test('a FIFO without a writer given as any input is refused with one line naming it, exit 4, never a hang', async () => {
  const rec = await recording(join(t.path, 'ok.events.gz'));
  const { model } = await i386Model();
  const reportDir = join(t.path, 'report-dir');
  mkdirSync(reportDir);
  spawnSync('mkfifo', [join(reportDir, 'report.json')]);
  const out = join(t.path, 'out');
  for (const [args, path] of [
    [['rules', 'check', fifo], fifo],
    [['model', 'info', fifo], fifo],
    [['model', 'score', fifo, rec], fifo],
    [['model', 'score', model, fifo], fifo],
    [['model', 'train', fifo, '--out', join(t.path, 'm.json')], fifo],
    [['replay', fifo, '--out', out], fifo],
    [['replay', rec, '--rules', fifo, '--out', out], fifo],
    [['replay', rec, '--model', fifo, '--out', out], fifo],
    [['report', fifo], fifo],
    [['report', reportDir], join(reportDir, 'report.json')],
    [['analyze', fifo, '--out', out], fifo],
  ] as const) {
    const r = sandtrace([...args]);
    assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    const line = assertOneLineError(r.stderr);
    assert.ok(line.includes(`${path} is a FIFO, not a regular file`), `${args.join(' ')}: ${line}`);
  }
});

test('a device is not a trace: replay /dev/zero says what it is, not "is empty"', () => {
  const r = sandtrace(['replay', '/dev/zero', '--out', join(t.path, 'zero')]);
  assert.equal(r.code, 4, r.stderr);
  assert.match(assertOneLineError(r.stderr), /\/dev\/zero is a character device, not a regular file \[INPUT_UNREADABLE\]/);
});

test('model score: a model judges only traces of its own ABI; the flag, the model and the trace must agree', async () => {
  const { model, traces } = await i386Model();
  const rec = await recording(join(t.path, 'x64.events.gz'));
  // an i386 model (ADFA-LD numbering) and an x86_64 recording: refused, both ABIs named
  let r = sandtrace(['model', 'score', model, rec]);
  assert.equal(r.code, 4, r.stderr);
  let line = assertOneLineError(r.stderr);
  assert.match(line, /trained on i386 system calls but .*x64\.events\.gz holds x86_64 calls.*\[MODEL_INVALID\]/);
  // --abi contradicting the model: a usage error naming both
  r = sandtrace(['model', 'score', model, traces, '--abi', 'x86_64']);
  assert.equal(r.code, 2, r.stderr);
  line = assertOneLineError(r.stderr);
  assert.match(line, /--abi x86_64 does not match the model: .* was trained on i386 system calls \[USAGE\]/);
  // numeric traces without --abi are numbered as the model's calls: scored, all normal
  r = sandtrace(['model', 'score', model, traces]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^0 of 12 trace\(s\) anomalous$/m);
  // training: --abi i386 over a recording of x86_64 calls would make an i386 model of x86_64 names
  r = sandtrace(['model', 'train', rec, '--abi', 'i386', '--out', join(t.path, 'wrong.json')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(assertOneLineError(r.stderr), /x64\.events\.gz holds x86_64 calls, not i386 \(--abi\)/);
  // replay: the same refusal
  r = sandtrace(['replay', rec, '--model', model, '--out', join(t.path, 'replay-abi')]);
  assert.equal(r.code, 4, r.stderr);
  assert.match(assertOneLineError(r.stderr), /trained on i386 system calls but the trace .* holds x86_64 calls/);
});

test('replay of a recording cut short: the verdict line says so', async () => {
  const whole = readFileSync(await recording(join(t.path, 'whole.events.gz')));
  const cut = join(t.path, 'cut.events.gz');
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
  const r = sandtrace(['replay', cut, '--out', join(t.path, 'cut-out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^verdict: .* syscalls: .*report\.json \(recording cut short: the file ends unexpectedly \(unexpected end of file\)\)$/m);
  // a recording whose very header is cut: still a recording (of nothing), not "not a format"
  let size = 11;
  while (gunzipSync(whole.subarray(0, size), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).length < 30) size++;
  const stub = join(t.path, 'stub.events.gz');
  writeFileSync(stub, whole.subarray(0, size));
  const s = sandtrace(['replay', stub, '--out', join(t.path, 'stub-out')]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /0 syscalls: .* \(recording cut short: /);
});
