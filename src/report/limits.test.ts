// A sample decides how many names it touches: the report lists a bounded number of files,
// network entries and processes, counts what it left out, and says so. Replayed through the
// whole pipeline (rules included), as an analysis would build it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, statSync } from 'node:fs';
import type { TraceEvent } from '../capture/events.js';
import { RecordingWriter } from '../capture/replay/index.js';
import { replay } from '../replay.js';
import { ReportBuilder, REPORT_LIMITS } from './build.js';
import { SemanticState } from '../semantics/state.js';
import { scratchDir } from '../../test/helpers.js';

test('a flood of long unique names and endpoints gives a bounded report that counts what it left out; a drop-and-execute after the flood is still found', { timeout: 120_000 }, async () => {
  const dir = scratchDir('sandtrace-limits-');
  const base = { ts: 1, pid: 7, tid: 7, comm: 'f', abi: 'x86_64' as const };
  const deep = '/tmp/' + Array.from({ length: 12 }, () => 'D'.repeat(250)).join('/');
  const RENAMES = 25_000;
  const CONNECTS = REPORT_LIMITS.network + 500;
  const rec = join(dir, 'flood.jsonl.gz');
  const w = await RecordingWriter.create(rec, { backend: 'ebpf' });
  let seq = 0;
  w.write([{ ...base, type: 'exec', seq: ++seq, exe: '/usr/bin/f', argv: ['f'], uid: 0 }]);
  for (let i = 0; i < RENAMES; i += 1000) {
    const batch: TraceEvent[] = [];
    for (let j = i; j < i + 1000; j++) {
      batch.push({ ...base, type: 'syscall', seq: ++seq, nr: 82, name: 'rename', args: [0, 0], ret: 0, path: `${deep}/${String(j).padStart(10, '0')}`, path2: `${deep}/${String(j + 1).padStart(10, '0')}` });
    }
    w.write(batch);
  }
  for (let i = 0; i < CONNECTS; i += 1000) {
    const batch: TraceEvent[] = [];
    for (let j = i; j < Math.min(CONNECTS, i + 1000); j++) {
      batch.push({ ...base, type: 'syscall', seq: ++seq, nr: 42, name: 'connect', args: [3, 0, 16], ret: -111, addr: { family: 'inet', address: '127.0.0.1', port: 1 + (j % 65000) }, ...(j >= 65000 ? { pid: 8, tid: 8 } : {}) });
    }
    w.write(batch);
  }
  // after the flood: a payload written and run
  w.write([
    { ...base, type: 'syscall', seq: ++seq, nr: 257, name: 'openat', args: [-100, 0, 0o1101, 0o755], ret: 3, path: '/tmp/payload' },
    { ...base, type: 'syscall', seq: ++seq, nr: 3, name: 'close', args: [3], ret: 0 },
    { ...base, type: 'fork', seq: ++seq, childPid: 9, childTid: 9, thread: false },
    { ...base, pid: 9, tid: 9, type: 'exec', seq: ++seq, exe: '/tmp/payload', argv: ['/tmp/payload'], uid: 0 },
  ]);
  await w.close();
  const { report } = await replay({ file: rec, outDir: join(dir, 'out') });
  assert.ok(report.files.length <= REPORT_LIMITS.files);
  const chars = report.files.reduce((n, f) => n + f.path.length + (f.renamedTo ?? []).reduce((m, t) => m + t.length, 0), 0);
  assert.ok(chars <= REPORT_LIMITS.fileChars, `${chars} characters of names listed`);
  assert.equal(report.network.length, REPORT_LIMITS.network);
  assert.ok(report.analysis.omitted && report.analysis.omitted.files > 0, JSON.stringify(report.analysis.omitted));
  assert.equal(report.analysis.omitted?.network, CONNECTS - REPORT_LIMITS.network);
  assert.ok(report.analysis.warnings.some((x) => x.code === 'REPORT_LIMITED'));
  assert.equal(report.syscalls.counts['rename'], RENAMES, 'every event is still counted');
  assert.ok(report.findings.some((f) => f.rule === 'ST-EXE-005'), 'the dropped payload executed after the flood is found');
  const size = statSync(join(dir, 'out', 'report.json')).size;
  assert.ok(size < 40 << 20, `report.json is ${size} bytes`);
  assert.ok(readFileSync(join(dir, 'out', 'report.html'), 'utf8').includes('REPORT_LIMITED'));
});

const at = (port: number, address = '127.0.0.1') => ({ family: 'inet' as const, address, port });
const fmt = (n: number) => n.toLocaleString('en-US');

/** Records `events` (with the exec of /usr/bin/f first) and replays them as an analysis would. */
async function replayed(events: (seq: () => number) => TraceEvent[]) {
  const dir = scratchDir('sandtrace-limits-');
  const rec = join(dir, 'flood.jsonl.gz');
  const w = await RecordingWriter.create(rec, { backend: 'ebpf' });
  let n = 0;
  const all = events(() => ++n);
  for (let i = 0; i < all.length; i += 1000) w.write(all.slice(i, i + 1000));
  await w.close();
  return (await replay({ file: rec, outDir: join(dir, 'out') })).report;
}

const base = { ts: 1, pid: 7, tid: 7, comm: 'f', abi: 'x86_64' as const };
const openRead = (seq: number, path: string, ret = 3): TraceEvent => ({ ...base, type: 'syscall', seq, nr: 257, name: 'openat', args: [-100, 0, 0], ret, path });

test('20,000 junk reads (and failed opens) before the payload do not hide it: /etc/shadow read, /tmp/payload written and run, and the entries of another directory are listed; what was left out is counted exactly, with where', { timeout: 120_000 }, async () => {
  const JUNK = REPORT_LIMITS.files + 500;
  const report = await replayed((seq) => [
    { ...base, type: 'exec', seq: seq(), exe: '/usr/bin/f', argv: ['f'], uid: 0 },
    openRead(seq(), '/opt/app/a.conf'),
    openRead(seq(), '/opt/app/b.conf'),
    ...Array.from({ length: 1000 }, (_, i) => openRead(seq(), `/aaa/${i}`, -2)),
    ...Array.from({ length: JUNK }, (_, i) => openRead(seq(), `/junk/${i}`)),
    openRead(seq(), '/etc/shadow'),
    { ...base, type: 'syscall', seq: seq(), nr: 257, name: 'openat', args: [-100, 0, 0o1101, 0o755], ret: 4, path: '/tmp/payload' },
    { ...base, type: 'syscall', seq: seq(), nr: 3, name: 'close', args: [4], ret: 0 },
    { ...base, type: 'fork', seq: seq(), childPid: 9, childTid: 9, thread: false },
    { ...base, pid: 9, tid: 9, type: 'exec', seq: seq(), exe: '/tmp/payload', argv: ['/tmp/payload'], uid: 0 },
  ]);
  const ops = (p: string) => report.files.find((f) => f.path === p)?.ops;
  assert.deepEqual(ops('/etc/shadow'), ['read']);
  assert.deepEqual(ops('/tmp/payload'), ['exec', 'write']);
  assert.deepEqual(ops('/usr/bin/f'), ['exec']);
  assert.deepEqual([ops('/opt/app/a.conf'), ops('/opt/app/b.conf')], [['read'], ['read']], 'the junk directory gave way, not another one');
  assert.equal(report.files.length, REPORT_LIMITS.files);
  assert.ok(!report.files.some((f) => f.path.startsWith('/aaa/')), 'failed opens are not listed');
  // junk past the 3 entries listed before it, and the 2 junk entries the payload's files displaced
  const omitted = JUNK - (REPORT_LIMITS.files - 3) + 2;
  assert.equal(report.analysis.omitted?.files, omitted);
  const w = report.analysis.warnings.find((x) => x.code === 'REPORT_LIMITED');
  assert.match(w?.message ?? '', new RegExp(`${fmt(omitted)} file operations past 20,000 paths or 16 MiB of names \\(${fmt(omitted)} under /junk; `), w?.message);
  assert.deepEqual(report.files.map((f) => f.path), [...report.files.map((f) => f.path)].sort(), 'still in path order');
});

test('a flood spread over 20,000 credential directories leaves /etc/shadow out while it streams; the finding that names it puts it back', { timeout: 120_000 }, async () => {
  const report = await replayed((seq) => [
    { ...base, type: 'exec', seq: seq(), exe: '/usr/bin/f', argv: ['f'], uid: 0 },
    // each in its own directory, each ranked as sensitive: nothing of that rank gives way to /etc
    ...Array.from({ length: REPORT_LIMITS.files }, (_, i) => openRead(seq(), `/root/.ssh/${i}/k`)),
    openRead(seq(), '/etc/shadow'),
  ]);
  const shadow = report.findings.find((f) => f.evidence.some((e) => e.fields['fd.name'] === '/etc/shadow'));
  assert.ok(shadow, 'the rules saw the read');
  assert.deepEqual(report.files.find((f) => f.path === '/etc/shadow'), { path: '/etc/shadow', ops: ['read'], pids: [7] });
  assert.equal(report.files.length, REPORT_LIMITS.files);
  assert.ok(report.files.some((f) => f.path === '/usr/bin/f'), 'executed: above the read keys');
});

test('20,000 failed connects to one address before the real ones do not hide them: a refused C2 connect elsewhere and a successful one are listed, the junk counted with its peer', { timeout: 120_000 }, async () => {
  const JUNK = REPORT_LIMITS.network + 500;
  const report = await replayed((seq) => [
    { ...base, type: 'exec', seq: seq(), exe: '/usr/bin/f', argv: ['f'], uid: 0 },
    ...Array.from({ length: JUNK }, (_, i): TraceEvent => ({ ...base, type: 'syscall', seq: seq(), nr: 42, name: 'connect', args: [3, 0, 16], ret: -111, addr: at(1 + i) })),
    { ...base, type: 'syscall', seq: seq(), nr: 41, name: 'socket', args: [2, 1, 0], ret: 5 },
    { ...base, type: 'syscall', seq: seq(), nr: 42, name: 'connect', args: [5, 0, 16], ret: -101, addr: at(443, '192.0.2.10') },
    { ...base, type: 'syscall', seq: seq(), nr: 41, name: 'socket', args: [2, 1, 0], ret: 6 },
    { ...base, type: 'syscall', seq: seq(), nr: 42, name: 'connect', args: [6, 0, 16], ret: 0, addr: at(8443, '198.51.100.7') },
  ]);
  const net = (a: string) => report.network.filter((n) => n.address === a).map((n) => [n.op, n.port, n.result]);
  assert.deepEqual(net('192.0.2.10'), [['connect', 443, 'ENETUNREACH']]);
  assert.deepEqual(net('198.51.100.7'), [['connect', 8443, 'ok']]);
  assert.equal(report.network.length, REPORT_LIMITS.network);
  assert.equal(report.analysis.omitted?.network, JUNK - REPORT_LIMITS.network + 2);
  const w = report.analysis.warnings.find((x) => x.code === 'REPORT_LIMITED');
  assert.match(w?.message ?? '', /502 network operations past 20,000 entries \(502 to 127\.0\.0\.1; /, w?.message);
});

test('the lists never hold more than REPORT_LIMITS while a flood of ranks, long names and endpoints streams in', () => {
  const s = new SemanticState();
  const b = new ReportBuilder();
  const long = (d: string, i: number) => `/${d}/${String(i).padStart(8, '0')}${'x'.repeat(3990)}`;
  let seq = 0;
  let most = { files: 0, fileChars: 0, network: 0 };
  const add = (ev: TraceEvent) => {
    b.add(s.apply(ev));
    const l = b.listed();
    assert.ok(l.files <= REPORT_LIMITS.files && l.fileChars <= REPORT_LIMITS.fileChars && l.network <= REPORT_LIMITS.network, JSON.stringify(l));
    most = { files: Math.max(most.files, l.files), fileChars: Math.max(most.fileChars, l.fileChars), network: Math.max(most.network, l.network) };
  };
  add({ ...base, type: 'exec', seq: ++seq, exe: '/usr/bin/f', argv: ['f'], uid: 0 });
  for (let i = 0; i < 25_000; i++) add(openRead(++seq, `/r/${i}`));
  for (let i = 0; i < 2_000; i++) add(openRead(++seq, long('r', i)));
  for (let i = 0; i < 6_000; i++) add({ ...base, type: 'syscall', seq: ++seq, nr: 257, name: 'openat', args: [-100, 0, 0o1101, 0o644], ret: 3, path: long(`w${i % 7}`, i) });
  for (let i = 0; i < 3_000; i++) add({ ...base, type: 'syscall', seq: ++seq, nr: 82, name: 'rename', args: [0, 0], ret: 0, path: long('w1', i), path2: long('v', i) });
  for (let i = 0; i < 30_000; i++) {
    add({ ...base, type: 'syscall', seq: ++seq, nr: 42, name: 'connect', args: [3, 0, 16], ret: i % 5 ? -111 : 0, addr: at(1 + (i % 60_000), `10.0.${i % 4}.1`) });
  }
  assert.equal(most.fileChars > REPORT_LIMITS.fileChars - 8000, true, `the character bound was reached (${most.fileChars})`);
  assert.equal(most.files, REPORT_LIMITS.files);
  assert.equal(most.network, REPORT_LIMITS.network);
});
