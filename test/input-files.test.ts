// Inputs the commands read: regular files only (or folders where a folder is allowed), checked
// by stat before anything is opened; a model judges only traces of its own ABI; a recording cut
// short is replayed as far as it goes and the verdict line says so. The CLI runs from source (tsx)
// in a child process with a timeout, so a regression that blocks on a FIFO fails, never hangs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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

/** A runner for `sandtrace ARGS` from source that a shell can call: `node --import tsx RUNNER ARGS`. */
const runner = join(t.path, 'sandtrace-runner.mjs');
writeFileSync(runner, `const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href)});\nprocess.exitCode = await main(process.argv.slice(2));\n`);
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `script` run by bash, where `sandtrace` is the CLI from source; killed after `ms`. */
function bash(script: string, ms = 60_000): Ran {
  const r = spawnSync('bash', ['-c', `sandtrace() { ${sh(process.execPath)} --import tsx ${sh(runner)} "$@"; }\n${script}`], {
    cwd: ROOT, encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL',
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') assert.fail(`bash -c ${script}: still running after ${ms / 1000}s (blocked?)`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('a pipe handed over as /dev/stdin or /dev/fd/N (<(...)) is read like a file by every command that reads rules, models or traces; a named FIFO still is not', async () => {
  const rec = await recording(join(t.path, 'piped.events.gz'));
  const { model, traces } = await i386Model();
  const out = (n: string) => sh(join(t.path, n));
  // rules
  let r = bash('cat rules/00-base.yaml rules/10-execution.yaml | sandtrace rules check /dev/stdin');
  assert.equal(r.code, 0, r.stderr);
  const direct = sandtrace(['rules', 'check', 'rules/00-base.yaml', 'rules/10-execution.yaml']);
  assert.match(direct.stdout, /^(\d+) of \1 rules loaded \(100\.0%\)/m);
  assert.equal(r.stdout, direct.stdout);
  r = bash('sandtrace rules check <(cat rules/*.yaml)');
  assert.equal(r.code, 0, r.stderr);
  // every rule of the pack, read through the pipe
  const pack = readdirSync(join(ROOT, 'rules')).filter((f) => f.endsWith('.yaml'))
    .reduce((n, f) => n + (readFileSync(join(ROOT, 'rules', f), 'utf8').match(/^- rule: /gm) ?? []).length, 0);
  assert.ok(pack >= 100, `the pack has ${pack} rules`);
  assert.match(r.stdout, new RegExp(`^${pack} of ${pack} rules loaded \\(100\\.0%\\), 0 disabled`, 'm'));
  // models: read, trained from a pipe, and scoring piped traces
  r = bash(`sandtrace model info <(cat ${sh(model)})`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /"abi": "i386"/);
  r = bash(`cat ${sh(join(traces, 'UTD-0.txt'))} | sandtrace model train /dev/stdin --abi i386 --out ${out('piped.model.json')} && sandtrace model score ${sh(model)} <(cat ${sh(join(traces, 'UTD-1.txt'))})`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /trained vmm.* on 1 traces \(11 calls/);
  assert.match(r.stdout, /^normal .* calls=11 \/dev\/fd\/\d+$/m);
  assert.match(r.stdout, /^0 of 1 trace\(s\) anomalous$/m);
  // traces: a gzip'd recording through a pipe gives the report its file gives; rules and model by <(...)
  const file = sandtrace(['replay', rec, '--out', join(t.path, 'replay-file')]);
  assert.equal(file.code, 0, file.stderr);
  r = bash(`cat ${sh(rec)} | sandtrace replay /dev/stdin --out ${out('replay-pipe')} --rules <(cat rules/10-execution.yaml)`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.replace(/: \S+report\.json/, ''), file.stdout.replace(/: \S+report\.json/, ''));
  assert.match(r.stdout, /, 399 syscalls: /);
  const x64 = bash(`sandtrace model train <(cat ${sh(rec)}) --out ${out('x64.model.json')} && cat ${sh(rec)} | sandtrace replay /dev/stdin --model <(cat ${out('x64.model.json')}) --out ${out('replay-model')}`);
  assert.equal(x64.code, 0, x64.stderr);
  assert.match(x64.stdout, /verdict: .*399 syscalls/);
  // an empty pipe holds no trace
  r = bash(`true | sandtrace replay /dev/stdin --out ${out('replay-empty')}`);
  assert.equal(r.code, 4, r.stderr);
  assert.match(assertOneLineError(r.stderr), /\/dev\/stdin is empty \[INPUT_EMPTY\]/);
  // analyze must hash the sample and then copy it into the sandbox: a pipe is refused, in one line
  r = bash(`echo 'echo hi' | sandtrace analyze /dev/stdin --out ${out('analyze-pipe')}`);
  assert.equal(r.code, 4, r.stderr);
  assert.match(assertOneLineError(r.stderr), /sample \/dev\/stdin is a pipe: analyze needs the sample as a regular file .* \[INPUT_UNREADABLE\]/);
  assert.ok(!existsSync(join(t.path, 'analyze-pipe')));
  // a named FIFO is refused without being opened: given by its name or through a symlink
  const link = join(t.path, 'fifo-link');
  symlinkSync(fifo, link);
  for (const path of [fifo, link]) {
    for (const args of [['rules', 'check', path], ['model', 'info', path], ['replay', path, '--out', join(t.path, 'nope')]]) {
      const f = sandtrace(args, 30_000);
      assert.equal(f.code, 4, `${args.join(' ')}: ${f.stderr}`);
      assert.ok(assertOneLineError(f.stderr).includes(`${path} is a FIFO, not a regular file`), f.stderr);
    }
  }
});

test('a file of megabytes without a newline: one-line error, exit 4, never an internal error; a recording with such a line reports it by number', async () => {
  const noise = join(t.path, 'noise.bin');
  // 4 MB of pseudo-random bytes, no newline among them
  const bytes = Buffer.alloc(4_000_000);
  for (let i = 0, x = 1; i < bytes.length; i++) { x = (x * 1103515245 + 12345) >>> 0; bytes[i] = (x >>> 16) & 0xff || 1; if (bytes[i] === 10) bytes[i] = 11; }
  writeFileSync(noise, bytes);
  for (const args of [['replay', noise, '--out', join(t.path, 'noise-out')], ['model', 'train', noise, '--out', join(t.path, 'noise.json')], ['model', 'train', t.path + '/noise-dir', '--out', join(t.path, 'noise2.json')]]) {
    if (args[2]?.endsWith('noise-dir')) { mkdirSync(args[2], { recursive: true }); writeFileSync(join(args[2], 'x.bin'), bytes); }
    const r = sandtrace(args);
    assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    const line = assertOneLineError(r.stderr);
    assert.match(line, /noise.*: not a format sandtrace can import .*\[INPUT_FORMAT_UNKNOWN\]/);
    assert.doesNotMatch(line, /internal error/i);
  }
  // a recording whose line 3 is 3 MB without an end: that line is reported, the rest replays
  const lines = gunzipSync(readFileSync(await recording(join(t.path, 'longline.events.gz')))).toString('utf8').trim().split('\n');
  const rec = join(t.path, 'longline.events');
  writeFileSync(rec, [...lines.slice(0, 2), bytes.subarray(0, 3_000_000).toString('latin1'), ...lines.slice(3)].join('\n') + '\n');
  const r = sandtrace(['replay', rec, '--out', join(t.path, 'longline-out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /, 398 syscalls: /);
  const report = JSON.parse(readFileSync(join(t.path, 'longline-out', 'report.json'), 'utf8')) as { capture: { lost: number }; analysis: { warnings: { code: string; message: string }[] } };
  assert.equal(report.capture.lost, 1, 'the event on that line is lost');
  assert.ok(report.analysis.warnings.some((w) => w.code === 'INPUT_CORRUPT' && w.message === 'line 3: more than 1,048,576 characters long (binary data, or a line that never ends?); skipped'), JSON.stringify(report.analysis.warnings));
  const m = sandtrace(['model', 'train', rec, '--out', join(t.path, 'longline.json')]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stderr, new RegExp(`^${rec.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: more than 1,048,576 characters long`, 'm'));
});

test('replay --rules: a missing or malformed rule file is refused before any work, in one line, exit 4; the report\'s warnings are said on stderr', async () => {
  const rec = await recording(join(t.path, 'rules-in.events.gz'));
  const broken = join(t.path, 'broken-rules.yaml');
  writeFileSync(broken, '- rule: x\n  desc: d\n  condition: evt.type = open and (\n  output: o\n  priority: WARNING\n');
  for (const [rules, code, what] of [
    [join(t.path, 'no-such-rules.yaml'), 'INPUT_MISSING', /rule file .*no-such-rules\.yaml does not exist/],
    [broken, 'RULES_INVALID', /broken-rules\.yaml:\d+: /],
  ] as const) {
    // replay, and analyze before its sandbox starts (it used to run the sample without the rules)
    for (const cmd of [['replay', rec], ['analyze', 'examples/dropper.sh']]) {
      const out = join(t.path, `rules-out-${code}-${cmd[0]}`);
      const r = sandtrace([...cmd, '--rules', rules, '--out', out]);
      assert.equal(r.code, 4, r.stderr);
      const line = assertOneLineError(r.stderr);
      assert.match(line, what);
      assert.ok(line.endsWith(`[${code}]`), line);
      assert.equal(r.stdout, '');
      assert.equal(existsSync(out), false, 'nothing written');
    }
  }
  // a good rule file still runs; a recording with a bad line says so on stderr too, not only in report.json
  const lines = gunzipSync(readFileSync(rec)).toString('utf8').trim().split('\n');
  const bad = join(t.path, 'bad-line.events');
  writeFileSync(bad, [lines[0], '{"type":"exec","seq":1,"ts":0,"pid":1,"tid":1,"exe":"/bin/sh","argv":5}', ...lines.slice(1)].join('\n') + '\n');
  const r = sandtrace(['replay', bad, '--rules', 'rules/10-execution.yaml', '--out', join(t.path, 'bad-line-out')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /, 399 syscalls: /);
  assert.ok(r.stderr.split('\n').includes(`sandtrace replay: warning: ${bad}: line 2: exec event: argv is not a list of strings [INPUT_CORRUPT]`), r.stderr);
  // a rules file with nothing in it (Falco's local-rules template) runs beside the pack, and analyze says so on stderr
  const empty = join(t.path, 'empty-rules.yaml');
  writeFileSync(empty, '# Add your own rules here\n');
  const a = sandtrace(['analyze', 'examples/dropper.sh', '--rules', empty, '--out', join(t.path, 'empty-rules-out'), '--timeout', '30'], 120_000);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^verdict: malicious /);
  assert.ok(a.stderr.split('\n').includes(`sandtrace analyze: warning: ${empty}:0: the file defines no rule, macro or list (empty, only comments, [] or null), so it adds nothing [EMPTY_FILE]`), a.stderr);
});

test('analyze: a bad --model or --rules is refused before the output directory is made', async () => {
  const { model } = await i386Model();
  const sample = join(ROOT, 'test', 'samples', 'fork_exec_chain.sh');
  for (const [i, [flag, value, why]] of ([
    ['--model', fifo, /is a FIFO, not a regular file \[INPUT_UNREADABLE\]/],
    ['--rules', fifo, /is a FIFO, not a regular file \[INPUT_UNREADABLE\]/],
    ['--model', join(t.path, 'missing.model.json'), /does not exist \[INPUT_MISSING\]/],
    ['--model', model, /trained on i386 system calls but the capture holds x86_64 calls.* \[MODEL_INVALID\]/],
  ] as const).entries()) {
    const dir = join(t.path, `analyze-out-${i}`);
    const r = sandtrace(['analyze', sample, flag, value, '--out', dir]);
    assert.equal(r.code, 4, `${flag} ${value}: ${r.stderr}`);
    assert.match(assertOneLineError(r.stderr), why);
    assert.ok(!existsSync(dir), `${flag} ${value}: ${dir} was made`);
  }
});
