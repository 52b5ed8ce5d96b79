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
import { REPORT_LIMITS } from './build.js';
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
