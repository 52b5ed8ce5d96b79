// replay() over hand-made recordings: a live monitor's recording is judged as the monitor judged it
// (lives seen only in part get no whole-life verdict), and a corrupt trailer is reported, not trusted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from './capture/events.js';
import { RecordingWriter } from './capture/replay/index.js';
import { saveModel, trainModelFile } from './engine/models/model.js';
import { replay } from './replay.js';

const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-replay-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const EXE = '/usr/sbin/svc';
const NORMAL = ['brk', 'mmap', 'openat', 'fstat', 'close', ...Array.from({ length: 40 }, (_, i) => ['read', 'write', 'read', 'poll'][i % 4] as string)];
const ODD = ['socket', 'connect', 'dup2', 'setuid', 'ptrace', 'kill', 'mprotect', 'socket', 'connect', 'dup2', 'setuid', 'kill'];

async function model(): Promise<string> {
  const data = trainModelFile({ traces: [], byExe: new Map([[EXE, Array.from({ length: 12 }, () => NORMAL)]]), source: 'test' }, { kind: 'vmm' });
  const cal = data.programs[EXE]?.calibration;
  assert.ok(cal);
  cal.windowThreshold = 1e9; // whole-life verdicts are what is checked: no window alert
  const path = join(tmp, 'svc.model.json');
  await saveModel(path, data);
  return path;
}

/** 100: found mid-life (named by `running`), then odd calls and its exit; 200: begun in view, odd, still running at the end. */
function events(): TraceEvent[] {
  let seq = 0;
  const sc = (pid: number, name: string, extra: Partial<TraceEvent> = {}): TraceEvent =>
    ({ type: 'syscall', seq: ++seq, ts: seq * 1000, pid, tid: pid, abi: 'x86_64', nr: -1, name, args: [], ret: 0, ...extra }) as TraceEvent;
  const out: TraceEvent[] = [sc(100, 'read', { running: { exe: EXE, argv: [EXE] } })];
  for (const n of ODD) out.push(sc(100, n));
  out.push({ type: 'exit', seq: ++seq, ts: seq * 1000, pid: 100, tid: 100, code: 0, thread: false });
  out.push({ type: 'exec', seq: ++seq, ts: seq * 1000, pid: 200, tid: 200, exe: EXE, argv: [EXE] });
  for (const n of [...NORMAL.slice(0, 5), ...ODD]) out.push(sc(200, n));
  return out;
}

async function record(name: string, meta: Record<string, unknown>): Promise<string> {
  const path = join(tmp, name);
  const w = await RecordingWriter.create(path, { target: 'test', backend: 'ebpf', ...meta });
  w.write(events());
  await w.close({ backend: 'ebpf', events: events().length, lost: 0, parseErrors: 0, duration: 1, notes: [] });
  return path;
}

const wholeLife = (pids: number[]) => pids.sort((a, b) => a - b);

test('replay: a monitor recording gets the monitor\'s verdicts; the same events from a sandbox run judge the life still running at the end', async () => {
  const m = await model();
  const live = await replay({ file: await record('live.events.gz', { live: true }), outDir: join(tmp, 'live'), model: m });
  // 100 was found mid-life, 200 was cut short by the monitor stopping: no whole-life verdict
  assert.deepEqual(wholeLife(live.report.findings.filter((f) => f.rule === 'model.anomalous_process').map((f) => f.pid)), []);
  const sandbox = await replay({ file: await record('sandbox.events.gz', {}), outDir: join(tmp, 'sandbox'), model: m });
  // a sandbox run ends its processes itself: 200 is judged on what it did; 100, found mid-life, still is not
  assert.deepEqual(wholeLife(sandbox.report.findings.filter((f) => f.rule === 'model.anomalous_process').map((f) => f.pid)), [200]);
});

test('replay: malformed file changes in a trailer are left out and reported; a recorded copy path is never taken', async () => {
  const good = { path: '/tmp/x', change: 'created', size: 3, sha256: 'ab'.repeat(32), truncated: false, copy: '/etc/shadow' };
  // written by hand: a trailer no RecordingWriter would write
  const file = join(tmp, 'corrupt.events');
  const stats = { backend: 'ebpf', events: 1, lost: 0, parseErrors: 0, duration: 1, notes: [] };
  writeFileSync(file, [{ format: 'sandtrace.events', version: 1, created: 'x', meta: {} }, events()[0],
    { format: 'sandtrace.events.end', stats, changes: [null, good, { path: 7 }, { ...good, change: 'exploded' }] }].map((o) => JSON.stringify(o)).join('\n') + '\n');
  const r = await replay({ file, outDir: join(tmp, 'corrupt') });
  assert.deepEqual(r.report.dropped.map((d) => [d.path, d.copy]), [['/tmp/x', undefined]]);
  assert.ok(r.report.analysis.warnings.some((w) => w.code === 'INPUT_CORRUPT' && /3 file change\(s\)/.test(w.message)), JSON.stringify(r.report.analysis.warnings));
});
