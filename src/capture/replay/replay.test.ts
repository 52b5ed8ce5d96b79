import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { constants as zlibConstants, crc32 as gunzipCrc, deflateRawSync, gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TraceEvent } from '../events.js';
import { RecordingCollector, RecordingWriter, readTraces, detectFileFormat, expandPaths } from './index.js';
import { isSandtraceError } from '../../errors.js';
import { unblocking } from '../../../test/helpers.js';
import { fileLines, LongLine, MAX_LINE, type Line, type LinesState } from './recording.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/traces/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-replay-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function collect(c: RecordingCollector): Promise<TraceEvent[]> {
  await c.start();
  const out: TraceEvent[] = [];
  for await (const b of c.events()) out.push(...b);
  await c.stop();
  return out;
}

/** A real capture to record: strace -f of a small shell pipeline, imported through the strace parser. */
function straceLog(): string {
  const log = join(tmp, 'strace.log');
  const r = spawnSync('strace', ['-f', '-ttt', '-o', log, 'sh', '-c', 'cat /etc/hostname > /dev/null; ls / > /dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `strace failed: ${r.stderr}`);
  return log;
}

test('strace -f logs import through the ptrace parser: processes, execs and files', async () => {
  const log = straceLog();
  assert.equal(await detectFileFormat(log), 'strace');
  const r = await readTraces(log, { keepEvents: true });
  const exes = r.traces.map((t) => t.exe);
  assert.ok(exes.includes('/usr/bin/cat'), `cat exec seen: ${exes.join(',')}`);
  assert.ok(exes.includes('/usr/bin/ls'));
  const cat = r.traces.find((t) => t.exe === '/usr/bin/cat');
  assert.ok(cat?.events.some((e) => e.type === 'syscall' && e.path === '/etc/hostname' && (e.name === 'openat' || e.name === 'open')));
  assert.equal(r.issues.length, 0);

  // a garbled line in the middle is reported with its number; the rest still imports
  const lines = readFileSync(log, 'utf8').split('\n');
  lines.splice(5, 0, '@@@ garbage @@@');
  const bad = join(tmp, 'garbled.strace');
  writeFileSync(bad, lines.join('\n'));
  const g = await readTraces(bad);
  assert.deepEqual(g.issues.map((i) => i.line), [6]);
  assert.deepEqual(g.traces.map((t) => t.exe), r.traces.map((t) => t.exe));
});

test('a recording round-trips the event stream exactly, with header and trailer', async () => {
  const log = straceLog();
  const original = await collect(new RecordingCollector(log));
  assert.ok(original.length > 50);
  const path = join(tmp, 'rec.events.gz');
  const w = await RecordingWriter.create(path, { backend: 'ptrace', sample: 'sh -c ...' });
  w.write(original.slice(0, 10));
  w.write(original.slice(10));
  await w.close();
  const lines = gunzipSync(readFileSync(path)).toString('utf8').trim().split('\n');
  const header = JSON.parse(lines[0] as string);
  assert.equal(header.format, 'sandtrace.events');
  assert.equal(header.version, 1);
  assert.equal(header.backend, 'ptrace');
  assert.equal(JSON.parse(lines[lines.length - 1] as string).events, original.length);
  const c = new RecordingCollector(path);
  const replayed = await collect(c);
  assert.deepEqual(replayed, original);
  const st = c.stats();
  assert.equal(st.backend, 'replay');
  assert.equal(st.events, original.length);
  assert.equal(st.lost, 0);
  assert.deepEqual(st.notes, []);
});

test('a truncated recording replays up to the cut and says so; a corrupt line is reported by number', async () => {
  const events: TraceEvent[] = [];
  for (let i = 1; i <= 5000; i++) {
    events.push({ type: 'syscall', seq: i, ts: i * 1000, pid: 7, tid: 7, abi: 'x86_64', nr: 0, name: 'read', args: [3, 140000000 + i, 4096], ret: i % 97 });
  }
  const path = join(tmp, 'cut.events.gz');
  const w = new RecordingWriter(path, { backend: 'ebpf' });
  w.write(events);
  await w.close();
  truncateSync(path, Math.floor(statSync(path).size / 2));
  const c = new RecordingCollector(path);
  const got = await collect(c);
  assert.ok(got.length > 0 && got.length < events.length, `partial replay: ${got.length}`);
  assert.deepEqual(got, events.slice(0, got.length));
  assert.ok(c.stats().notes.some((n) => n.includes('truncated')), c.stats().notes.join('|'));

  // plain JSONL with a broken line in the middle
  const plain = join(tmp, 'broken.events');
  const text = [JSON.stringify({ format: 'sandtrace.events', version: 1, created: 'x' }),
    ...events.slice(0, 3).map((e) => JSON.stringify(e)), '{"type":"syscall","seq":4,', ...events.slice(4, 6).map((e) => JSON.stringify(e))].join('\n') + '\n';
  writeFileSync(plain, text);
  const c2 = new RecordingCollector(plain);
  const got2 = await collect(c2);
  assert.deepEqual(got2.map((e) => e.seq), [1, 2, 3, 5, 6]);
  assert.deepEqual(c2.issues().map((i) => i.line), [5]);
  assert.equal(c2.stats().lost, 1);
  assert.ok(c2.stats().notes.some((n) => n.startsWith('line 5:')));
  assert.ok(c2.stats().notes.some((n) => n.includes('no trailer')));
});

test('ADFA-LD numeric traces use the i386 table; bad tokens are reported with their line', async () => {
  const r = await readTraces(join(FIX, 'adfa-sample.txt'), { abi: 'i386' });
  assert.equal(r.format, 'adfa');
  assert.equal(r.traces.length, 1);
  assert.deepEqual(r.traces[0]?.calls.slice(0, 8), ['open', 'read', 'read', 'close', 'open', 'read', 'close', 'execve']);
  const x64 = await readTraces(join(FIX, 'adfa-sample.txt'));
  assert.deepEqual(x64.traces[0]?.calls.slice(0, 3), ['fstat', 'close', 'close']);

  const bad = await readTraces(join(FIX, 'adfa-corrupt.txt'), { abi: 'i386' });
  assert.equal(bad.format, 'adfa');
  assert.deepEqual(bad.issues.map((i) => i.line), [2]);
  assert.equal(bad.traces[0]?.calls.length, 10);
});

test('pid/syscall pairs give one trace per pid; sysdig lines give calls, forks, execs and exits', async () => {
  const p = await readTraces(join(FIX, 'pairs-sample.txt'));
  assert.equal(p.format, 'pairs');
  assert.deepEqual(p.traces.map((t) => [t.pid, t.calls]), [[100, ['open', 'read', 'close', 'exit']], [101, ['openat', 'read', 'close']]]);
  assert.deepEqual(p.issues.map((i) => i.line), [8]);

  const s = await readTraces(join(FIX, 'sysdig-sample.txt'), { keepEvents: true });
  assert.equal(s.format, 'sysdig');
  assert.deepEqual(s.issues.map((i) => i.line), [7]);
  const bash = s.traces.find((t) => t.pid === 4242);
  // the child's execve belongs to the program it ran before; after the exec it is a new trace of id
  const child = s.traces.filter((t) => t.pid === 4243);
  assert.deepEqual(child.map((t) => [t.exe, t.calls]), [['', ['execve']], ['/usr/bin/id', ['close']]]);
  const id = child[1];
  assert.deepEqual(bash?.calls, ['openat', 'read', 'clone']);
  const open = bash?.events.find((e) => e.type === 'syscall' && e.name === 'openat');
  assert.ok(open && open.type === 'syscall' && open.path === '/etc/passwd' && open.ret === 3);
  assert.ok(bash?.events.some((e) => e.type === 'fork' && e.childPid === 4243));
  assert.equal(id?.exe, '/usr/bin/id');
  assert.ok(id?.events.some((e) => e.type === 'exit' && e.code === 0));
});

test('unknown formats, missing and empty files fail with their codes', async () => {
  const junk = join(tmp, 'junk.txt');
  writeFileSync(junk, 'hello world\nthis is prose, not a trace\n');
  const empty = join(tmp, 'empty.txt');
  writeFileSync(empty, '');
  const code = async (p: string) => {
    try {
      await collect(new RecordingCollector(p));
      return 'ok';
    } catch (e) {
      return isSandtraceError(e) ? e.code : String(e);
    }
  };
  assert.equal(await code(junk), 'INPUT_FORMAT_UNKNOWN');
  assert.equal(await code(join(tmp, 'absent')), 'INPUT_MISSING');
  assert.equal(await code(empty), 'INPUT_EMPTY');
  assert.equal(await code(tmp), 'INPUT_IS_DIRECTORY');
});

test('threads are separate traces of the same process (they interleave arbitrarily)', async () => {
  const log = join(tmp, 'threads.strace');
  const py = 'import threading\nt = threading.Thread(target=lambda: open("/etc/hostname").read())\nt.start(); t.join()';
  const r = spawnSync('strace', ['-f', '-ttt', '-o', log, '/usr/bin/python3', '-c', py], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const traces = (await readTraces(log)).traces.filter((t) => t.calls.length > 0);
  const pids = new Set(traces.map((t) => t.pid));
  assert.equal(pids.size, 1, 'one process');
  assert.equal(traces.length, 2, `main thread and worker: ${traces.map((t) => `${t.pid}/${t.tid}`).join(' ')}`);
  const worker = traces.find((t) => t.tid !== t.pid);
  assert.equal(worker?.exe, '/usr/bin/python3', 'the worker runs the program its process exec\'d');
  assert.ok(worker?.calls.includes('openat'), 'the worker opened the file');
});

test('a process found mid-life is named by its `running` program (and terminal) in a recording; a malformed one is a bad line', async () => {
  const sc = (seq: number, pid: number, name: string, extra: Partial<TraceEvent> = {}): TraceEvent =>
    ({ type: 'syscall', seq, ts: seq * 1000, pid, tid: pid, abi: 'x86_64', nr: 0, name, args: [], ret: 0, ...extra }) as TraceEvent;
  const events: TraceEvent[] = [
    // a busybox applet running before the capture attached: named by exe and argv, as an exec would
    sc(1, 40, 'read', { comm: 'sleep', running: { exe: '/bin/busybox', argv: ['sleep', '30'] } }),
    sc(2, 40, 'nanosleep'),
    { type: 'fork', seq: 3, ts: 3000, pid: 40, tid: 40, childPid: 41, childTid: 41, thread: false },
    sc(4, 41, 'getpid'),
    // a process the capture could not name (gone before it looked): its calls stay unnamed
    sc(5, 50, 'read'),
  ];
  const path = join(tmp, 'running.events');
  const w = new RecordingWriter(path, { backend: 'ebpf' });
  w.write(events);
  await w.close();
  const traces = (await readTraces(path)).traces;
  assert.deepEqual(traces.map((t) => [t.pid, t.exe, t.calls.join(' ')]), [
    [40, '/bin/busybox:sleep', 'read nanosleep'],
    [41, '/bin/busybox:sleep', 'getpid'],
    [50, '', 'read'],
  ]);

  const bad = join(tmp, 'bad-running.events');
  writeFileSync(bad, [JSON.stringify({ format: 'sandtrace.events', version: 1, created: 'x' }),
    JSON.stringify(sc(1, 40, 'read', { running: { exe: '/bin/x' } as never })), JSON.stringify(sc(2, 40, 'read')),
    JSON.stringify(sc(3, 41, 'read', { running: { exe: '/bin/y', argv: [], tty: 'pts/0' } as never })),
    JSON.stringify(sc(4, 42, 'read', { running: { exe: '/bin/bash', argv: ['bash'], tty: 34816 } }))].join('\n') + '\n');
  const c = new RecordingCollector(bad);
  const read = await collect(c);
  assert.deepEqual(read.map((e) => e.seq), [2, 4]);
  assert.deepEqual(read[1]?.running, { exe: '/bin/bash', argv: ['bash'], tty: 34816 }, 'the terminal of a process found mid-life is kept');
  assert.deepEqual(c.issues().map((i) => [i.line, i.message]), [[2, 'syscall event: running is not an object {exe, argv, tty?}'], [4, 'syscall event: running is not an object {exe, argv, tty?}']]);
});

test('every field the engine reads is type-checked: a line with one wrong or missing is a bad line with its number, never a crash', async () => {
  const common = { ts: 5, pid: 7, tid: 7, comm: 'svc', running: { exe: '/usr/bin/svc', argv: ['svc'] } };
  // one event of each type with every field events.ts defines
  const full: Record<string, unknown>[] = [
    { type: 'syscall', seq: 1, ...common, abi: 'x86_64', nr: 42, name: 'connect', args: [3, 2 ** 60, 16], ret: -111, path: '/a', path2: '/b', argv: ['a'],
      addr: { family: 'inet', address: '10.0.0.1', port: 80 }, addrs: [null, { family: 'unix', path: '/s', abstract: false }, { family: 'other', raw: 3 }],
      via: 'socketcall', truncated: ['path'], readAtExit: true, unreadable: ['addr'], signal: 'interrupted' },
    { type: 'fork', seq: 2, ...common, childPid: 8, childTid: 8, thread: false },
    { type: 'exec', seq: 3, ...common, exe: '/bin/sh', argv: ['sh'], uid: 0, abi: 'i386', truncated: ['argv'], unreadable: ['exe'],
      file: { dev: 2049, ino: '1234', interpreter: true }, exeUnverified: true, byKernel: true },
    { type: 'exit', seq: 4, ...common, code: 0, signal: 9, thread: false },
  ];
  const kindOf = (v: unknown) => (Array.isArray(v) ? 'array' : typeof v);
  const pool: unknown[] = [5, 1.5, 'x', null, { a: 1 }, ['x'], [5], true];
  const bad: string[] = [];
  for (const e of full) {
    for (const [k, good] of Object.entries(e)) {
      if (k === 'type') continue;
      // absent: wrong for the fields every event of its type has
      if (['seq', 'ts', 'pid', 'tid', 'abi', 'nr', 'name', 'args', 'ret', 'childPid', 'childTid', 'thread', 'exe', 'argv', 'code'].includes(k)
        && !(e['type'] === 'syscall' && k === 'argv') && !(e['type'] === 'exec' && k === 'abi')) {
        const { [k]: _, ...rest } = e;
        bad.push(JSON.stringify(rest));
      }
      for (const v of pool) {
        const ok = (v === 5 && typeof good === 'number') || (v === 1.5 && (k === 'ts' || k === 'ret'))
          || (v === 'x' && typeof good === 'string' && !['abi', 'via', 'signal'].includes(k)) || (v === true && typeof good === 'boolean')
          || (v === null && k === 'ret') || (kindOf(v) === 'array' && JSON.stringify(v) === (k === 'argv' ? '["x"]' : k === 'args' ? '[5]' : ''));
        if (!ok) bad.push(JSON.stringify({ ...e, [k]: v }));
      }
    }
  }
  // values of the right JSON type that are still wrong
  bad.push(
    '{"type":"exec","seq":1,"ts":0,"pid":1,"tid":1,"exe":"/bin/sh","argv":5}',
    JSON.stringify(full[0]).replace('"seq":1', '"seq":1e400'),
    JSON.stringify({ ...full[0], abi: 'arm64' }), JSON.stringify({ ...full[0], truncated: ['bogus'] }),
    JSON.stringify({ ...full[0], addr: { family: 'inet', address: '10.0.0.1' } }), JSON.stringify({ ...full[0], readAtExit: false }),
    JSON.stringify({ ...full[2], file: { dev: 1, ino: 5 } }), JSON.stringify({ ...full[3], code: 1.5 }),
  );
  const file = join(tmp, 'fields.events');
  writeFileSync(file, [JSON.stringify({ format: 'sandtrace.events', version: 1, created: 'x' }), ...full.map((e) => JSON.stringify(e)), ...bad].join('\n') + '\n');
  const c = new RecordingCollector(file);
  const got = await collect(c);
  assert.deepEqual(got, full, 'the whole events pass, every field intact');
  const issues = c.issues();
  assert.deepEqual(issues.map((i) => i.line), bad.map((_, i) => i + 6), issues.length < bad.length ? `accepted: ${bad.filter((_, i) => !issues.some((x) => x.line === i + 6)).slice(0, 5).join('\n')}` : '');
  assert.equal(issues.find((i) => i.line === 6 + bad.indexOf('{"type":"exec","seq":1,"ts":0,"pid":1,"tid":1,"exe":"/bin/sh","argv":5}'))?.message, 'exec event: argv is not a list of strings');
  assert.equal(c.stats().lost, bad.length);
});

test('strace import: every unparsable line is counted, not only the ones listed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-strace-bad-'));
  const lines = ['1234  openat(AT_FDCWD, "/etc/hosts", O_RDONLY) = 3'];
  for (let i = 0; i < 500; i++) lines.push(`garbage line ${i} %%%`);
  lines.push('1234  close(3) = 0');
  const file = join(dir, 'st.log');
  writeFileSync(file, lines.join('\n') + '\n');
  const c = new RecordingCollector(file, { format: 'strace' });
  await c.start();
  for await (const _ of c.events()) { /* drain */ }
  assert.equal(c.stats().parseErrors, 500);
  assert.ok(c.stats().notes.some((n) => /480 more bad line\(s\)/.test(n)), c.stats().notes.join('\n'));
  rmSync(dir, { recursive: true, force: true });
});

test('strace import: lines out of order (resumed without a start, unfinished never resumed) are bad lines with their numbers; their calls are kept', async () => {
  const file = join(FIX, 'strace-out-of-order.log'); // the parser test's log
  const c = new RecordingCollector(file);
  const got = await collect(c);
  assert.equal(got.filter((e) => e.type === 'syscall').length, 9, 'every call the log shows');
  assert.deepEqual(c.issues().map((i) => i.line), [3, 5, 7, 8]);
  assert.ok(c.issues().every((i) => i.message.startsWith('strace line out of order: ')));
  assert.equal(c.stats().parseErrors, 4);
  assert.equal(c.stats().lost, 0, 'nothing lost: the calls are kept');
  assert.ok(c.stats().notes.includes(`line 7: strace line out of order: read(... <unfinished ...> is never resumed: task 100 goes on with read( (line 8); kept as a call that never returned (ret null)`), c.stats().notes.join('\n'));
});

/** A small gzip'd recording (an exec and 200 calls, with its trailer) and its uncompressed lines. */
async function smallRecording(name: string): Promise<{ path: string; events: TraceEvent[] }> {
  const events: TraceEvent[] = [{ type: 'exec', seq: 1, ts: 1000, pid: 7, tid: 7, exe: '/usr/bin/svc', argv: ['svc'] }];
  for (let i = 2; i <= 201; i++) events.push({ type: 'syscall', seq: i, ts: i * 1000, pid: 7, tid: 7, abi: 'x86_64', nr: 0, name: i % 3 ? 'read' : 'write', args: [3, i, 4096], ret: 0 });
  const path = join(tmp, name);
  const w = await RecordingWriter.create(path, { backend: 'ebpf', target: 'svc' });
  w.write(events);
  await w.close({ backend: 'ebpf', events: events.length, lost: 0, parseErrors: 0, duration: 1, notes: [] });
  return { path, events };
}

/** The fewest bytes of a gzip'd recording that hold the beginning of its header line, not all of it. */
function cutInHeader(gz: Buffer): number {
  const headerLength = gunzipSync(gz).indexOf('\n');
  for (let size = 11; size < gz.length; size++) {
    const got = gunzipSync(gz.subarray(0, size), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    if (got.length >= 30) {
      assert.ok(got.length < headerLength);
      return size;
    }
  }
  throw new Error('no cut inside the header');
}

test('a small gzip recording cut anywhere is still a recording: every event before the cut replays, the cut line is no bad line', async () => {
  const { path, events } = await smallRecording('small.events.gz');
  const whole = readFileSync(path);
  let seen = 0;
  // cut inside the header line, early, in the middle, late, and inside gzip's own trailer
  for (const size of [cutInHeader(whole), 300, Math.floor(whole.length / 2), whole.length - 30, whole.length - 4]) {
    const cut = join(tmp, `cut-${size}.events.gz`);
    writeFileSync(cut, whole.subarray(0, size));
    assert.equal(await detectFileFormat(cut), 'sandtrace', `cut at ${size} of ${whole.length}`);
    const c = new RecordingCollector(cut);
    const got = await collect(c);
    assert.deepEqual(got, events.slice(0, got.length), `cut at ${size}: a prefix of the events`);
    assert.deepEqual(c.issues(), [], `cut at ${size}: the incomplete last line is part of the cut, not a bad line`);
    assert.match(c.truncated ?? '', /unexpected end of file/, `cut at ${size}`);
    assert.ok(c.stats().notes.some((n) => n.startsWith('file is truncated')), c.stats().notes.join('|'));
    seen = Math.max(seen, got.length);
  }
  assert.equal(seen, events.length, 'cut inside gzip\'s trailer: every event is there, and the cut is still noticed');
  // so few bytes that not even the header's beginning is there: a cut file, not "not a format"
  const headerCut = join(tmp, 'header-cut.events.gz');
  writeFileSync(headerCut, whole.subarray(0, 12));
  await assert.rejects(detectFileFormat(headerCut), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_CORRUPT' && /ends before its first line \(unexpected end of file\)/.test(e.message));
});

test('a gzip recording with trailing garbage or a damaged checksum: every event decoded before the damage replays, and the damage is named with its byte', async () => {
  const { path, events } = await smallRecording('damaged.events.gz');
  const whole = readFileSync(path);
  assert.ok(gunzipSync(whole).length > 1 << 14, 'more than one zlib output chunk (16 KiB): zlib\'s gunzip dropped the last one');
  const replayed = async (name: string, bytes: Buffer) => {
    const file = join(tmp, name);
    writeFileSync(file, bytes);
    const c = new RecordingCollector(file);
    return { c, got: await collect(c) };
  };
  // `(cat good.gz; echo garbage) > x.gz`
  const garbage = await replayed('garbage.events.gz', Buffer.concat([whole, Buffer.from('garbage\n')]));
  assert.deepEqual(garbage.got, events, 'every event, trailer read');
  assert.deepEqual(garbage.c.issues(), []);
  assert.equal(garbage.c.corrupt, true);
  assert.equal(garbage.c.truncated, `trailing garbage at byte ${whole.length.toLocaleString('en-US')} of the gzip file: data after the end of the gzip stream that is not gzip`);
  assert.ok(garbage.c.stats().notes.some((n) => n.startsWith('file is corrupt (trailing garbage')), garbage.c.stats().notes.join('|'));
  // one byte of the CRC-32 in gzip's own trailer flipped
  const flipped = Buffer.from(whole);
  flipped.writeUInt8(flipped.readUInt8(whole.length - 6) ^ 0xff, whole.length - 6);
  const crc = await replayed('crc.events.gz', flipped);
  assert.deepEqual(crc.got, events);
  assert.equal(crc.c.corrupt, true);
  assert.match(crc.c.truncated ?? '', new RegExp(`^checksum mismatch at byte ${(whole.length - 8).toLocaleString('en-US')} of the gzip file: `));
  // damage inside the compressed data, past the first 16 KiB decoded: a corrupt file, not a cut one
  const inside = Buffer.from(whole);
  for (let i = whole.length - 200; i < whole.length - 160; i++) inside.writeUInt8(inside.readUInt8(i) ^ 0x55, i);
  const bad = await replayed('inside.events.gz', inside);
  assert.ok(bad.got.length > 50, `the events decoded before the damage (${bad.got.length})`);
  assert.deepEqual(bad.got, events.slice(0, bad.got.length));
  assert.equal(bad.c.corrupt, true);
  assert.match(bad.c.truncated ?? '', /of the gzip file/);
  // zero padding after the data (tape blocks) is no damage; nor is a second member
  const padded = await replayed('padded.events.gz', Buffer.concat([whole, Buffer.alloc(1000)]));
  assert.deepEqual(padded.got, events);
  assert.equal(padded.c.truncated, undefined);
  const lines: Line[] = [];
  const two = join(tmp, 'two-members.gz');
  writeFileSync(two, Buffer.concat([gzipSync('a\nb\n'), Buffer.alloc(3), gzipSync('c\n')]));
  const state: LinesState = {};
  for await (const l of fileLines(two, state)) lines.push(l);
  assert.deepEqual([lines, state.truncated], [['a', 'b', 'c'], undefined]);
});

test('a gzip header with a file name, comment, extra field and header CRC is read past; a header CRC that does not match is damage', async () => {
  const text = 'one\ntwo\n';
  const data = Buffer.from(text);
  // FHCRC 2, FEXTRA 4, FNAME 8, FCOMMENT 16 (RFC 1952), as other gzip writers may set them
  const header = Buffer.from([0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3]);
  const file = join(tmp, 'flags.gz');
  const size = Buffer.alloc(4);
  size.writeUInt32LE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(gunzipCrc(data));
  const fields = Buffer.concat([header, Buffer.from([3, 0, 1, 2, 3]), Buffer.from('name.txt\0a comment\0')]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(gunzipCrc(fields) & 0xffff);
  writeFileSync(file, Buffer.concat([fields, hcrc, deflateRawSync(data), crc, size]));
  const lines: Line[] = [];
  const state: LinesState = {};
  for await (const l of fileLines(file, state)) lines.push(l);
  assert.deepEqual([lines, state.truncated], [['one', 'two'], undefined]);
  // a header whose CRC-16 does not match is damage, named with its byte
  hcrc.writeUInt16LE(hcrc.readUInt16LE(0) ^ 1);
  writeFileSync(file, Buffer.concat([fields, hcrc, deflateRawSync(data), crc, size]));
  const bad: LinesState = {};
  for await (const _ of fileLines(file, bad)) { /* none */ }
  assert.equal(bad.truncated, `header checksum mismatch at byte ${fields.length} of the gzip file: the gzip header does not match its CRC-16`);
  assert.equal(bad.corrupt, true);
});

test('a trailer whose event count disagrees with the events read says so (not "no trailer")', async () => {
  const { path } = await smallRecording('count.events.gz');
  const lines = gunzipSync(readFileSync(path)).toString('utf8').trim().split('\n');
  const fewer = join(tmp, 'fewer.events');
  // five event lines gone from the middle, header and trailer kept
  writeFileSync(fewer, [...lines.slice(0, 50), ...lines.slice(55)].join('\n') + '\n');
  const c = new RecordingCollector(fewer);
  await collect(c);
  assert.deepEqual(c.stats().notes, ['event count mismatch: the trailer says 201 event(s), 196 were read']);
  assert.deepEqual(c.recording(), { trailer: JSON.parse(lines[lines.length - 1] as string), events: 196, badLines: 0 });
  // one of them corrupt rather than gone: counted as a bad line
  const corrupt = join(tmp, 'corrupt-count.events');
  writeFileSync(corrupt, [...lines.slice(0, 50), '{"type":"sysc', ...lines.slice(51)].join('\n') + '\n');
  const c2 = new RecordingCollector(corrupt);
  await collect(c2);
  assert.ok(c2.stats().notes.includes('event count mismatch: the trailer says 201 event(s), 200 were read (1 bad line(s))'), c2.stats().notes.join('|'));
  assert.ok(!c2.stats().notes.some((n) => n.includes('no trailer')));
});


test('a recording whose header line is damaged or missing is still told from its events and replayed whole: the header is a bad line, not a lost event', async () => {
  const { path } = await smallRecording('header.events.gz');
  const lines = gunzipSync(readFileSync(path)).toString('utf8').trim().split('\n');
  const trailer = JSON.parse(lines[lines.length - 1] as string);
  for (const [what, first, notes] of [
    ['a flipped byte', (lines[0] as string).replace('"format"', '"form\u00e1t"'), ['line 1: damaged sandtrace.events header (the events after it are read)']],
    ['not JSON any more', (lines[0] as string).slice(0, 20), ['line 1: damaged sandtrace.events header (the events after it are read)']],
  ] as const) {
    const file = join(tmp, `header-${what.replace(/ /g, '-')}.events.gz`);
    writeFileSync(file, gzipSync([first, ...lines.slice(1)].join('\n') + '\n'));
    assert.equal(await detectFileFormat(file), 'sandtrace', what);
    const c = new RecordingCollector(file);
    const events = await collect(c);
    assert.equal(events.length, 201, what);
    assert.equal(c.stats().lost, 0, what);
    assert.deepEqual(c.stats().notes, notes, what);
    assert.deepEqual(c.recording(), { trailer, events: 201, badLines: 0 }, what);
  }
  // no header at all: the first event is read, and the missing header said
  const headless = join(tmp, 'headless.events');
  writeFileSync(headless, lines.slice(1).join('\n') + '\n');
  const c = new RecordingCollector(headless);
  assert.equal((await collect(c)).length, 201);
  assert.equal(c.stats().lost, 0);
  assert.deepEqual(c.stats().notes, ['line 1: missing sandtrace.events header']);
  // lines that are not events are still not a recording
  const other = join(tmp, 'not-events.txt');
  writeFileSync(other, '{"hello":1}\n{"hello":2}\n{"hello":3}\n');
  await assert.rejects(detectFileFormat(other), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_FORMAT_UNKNOWN');
});

test('a FIFO or a device is refused by stat, never opened; one inside a trace folder is left out', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-fifo-'));
  try {
    const fifo = join(dir, 'trace.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const refused = (path: string, kind: string) => (e: unknown) =>
      isSandtraceError(e) && e.code === 'INPUT_UNREADABLE' && e.message === `${path} is ${kind}, not a regular file`;
    await assert.rejects(unblocking(collect(new RecordingCollector(fifo)), fifo), refused(fifo, 'a FIFO'));
    await assert.rejects(unblocking(collect(new RecordingCollector(fifo, { format: 'adfa' })), fifo), refused(fifo, 'a FIFO'));
    await assert.rejects(unblocking(readTraces(fifo), fifo), refused(fifo, 'a FIFO'));
    await assert.rejects(unblocking(expandPaths([fifo]), fifo), refused(fifo, 'a FIFO'));
    await assert.rejects(collect(new RecordingCollector('/dev/zero')), refused('/dev/zero', 'a character device'));
    // a folder of traces: the FIFO in it is not a trace and is never opened
    writeFileSync(join(dir, 'a.txt'), '5 3 3 6\n');
    assert.deepEqual(await unblocking(expandPaths([dir]), fifo), [join(dir, 'a.txt')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a trace folder with symbolic links: files are followed, a directory is read once (a loop, a link up or to / is not walked), a bad link is named for what it is', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-links-'));
  try {
    const d = join(dir, 'd');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'a.txt'), '5 3 3 6\n');
    writeFileSync(join(d, 'sub', 'b.txt'), '5 3 6\n');
    symlinkSync('..', join(d, 'sub', 'up'));
    symlinkSync('.', join(d, 'sub', 'self'));
    symlinkSync('/', join(d, 'sub', 'root'));
    symlinkSync('sub/b.txt', join(d, 'link.txt'));
    // `mkdir -p d/sub; ln -s .. d/sub/up`: each file once, and the walk ends
    assert.deepEqual(await expandPaths([d]), [join(d, 'a.txt'), join(d, 'link.txt'), join(d, 'sub', 'b.txt')]);
    // a folder given twice, or inside one given, is not read twice; one holding a folder given is read whole
    assert.deepEqual(await expandPaths([join(d, 'sub'), d]), [join(d, 'sub', 'b.txt'), join(d, 'a.txt'), join(d, 'link.txt')]);
    const loop = join(dir, 'loop');
    mkdirSync(loop);
    symlinkSync('me', join(loop, 'me'));
    await assert.rejects(expandPaths([loop]), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_UNREADABLE'
      && e.message === `cannot read ${join(loop, 'me')}: too many levels of symbolic links (a symbolic link loop)`);
    const dangling = join(dir, 'dangling');
    mkdirSync(dangling);
    symlinkSync('nowhere', join(dangling, 'x.txt'));
    await assert.rejects(expandPaths([dangling]), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_MISSING'
      && e.message === `${join(dangling, 'x.txt')} does not exist (a symbolic link to nothing?)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a line without an end is never held whole: given up as a LongLine at the limit, the rest skipped, the lines after it read', async () => {
  // 4 MB with no newline, then two lines
  const file = join(tmp, 'no-newline.txt');
  writeFileSync(file, Buffer.concat([Buffer.alloc(4_000_000, 0x61), Buffer.from('\nafter\nlast')]));
  const state: LinesState = {};
  const got: Line[] = [];
  for await (const l of fileLines(file, state, { maxLine: 65536 })) got.push(l);
  assert.equal(got.length, 3);
  const long = got[0];
  assert.ok(long instanceof LongLine, 'the 4 MB line is a LongLine, not a string');
  assert.equal(long.limit, 65536);
  assert.ok(long.length > 65536 && long.length < 65536 + (1 << 16) + 1, `given up within one chunk of the limit (${long.length})`);
  assert.equal(long.head, 'a'.repeat(4096));
  assert.deepEqual(got.slice(1), ['after', 'last']);
  assert.equal(state.bytes, 4_000_000 + 11);
  // gzip'd, the same lines; the default limit is 1 MiB
  const gz = join(tmp, 'no-newline.txt.gz');
  writeFileSync(gz, gzipSync(readFileSync(file)));
  const lines: Line[] = [];
  for await (const l of fileLines(gz)) lines.push(l);
  assert.ok(lines[0] instanceof LongLine && lines[0].limit === MAX_LINE && MAX_LINE === 1 << 20);
  assert.deepEqual(lines.slice(1), ['after', 'last']);
});

test('a recording with a line of megabytes: that line is a bad line with its number, the events around it replay', async () => {
  const { path, events } = await smallRecording('long-line.events.gz');
  const lines = gunzipSync(readFileSync(path)).toString('utf8').trim().split('\n');
  const file = join(tmp, 'long-line.events');
  // line 4 replaced by 3 MB of JSON-looking text without an end: the event it was is lost
  writeFileSync(file, [...lines.slice(0, 3), `{"type":"syscall","x":"${'y'.repeat(3_000_000)}`, ...lines.slice(4)].join('\n') + '\n');
  const c = new RecordingCollector(file);
  const got = await collect(c);
  assert.deepEqual(got.map((e) => e.seq), events.filter((_, i) => i !== 2).map((e) => e.seq));
  assert.deepEqual(c.issues().map((i) => [i.line, i.message]), [[4, 'more than 1,048,576 characters long (binary data, or a line that never ends?); skipped']]);
  assert.equal(c.stats().lost, 1, 'one event lost');
  assert.ok(c.stats().notes.includes('line 4: more than 1,048,576 characters long (binary data, or a line that never ends?); skipped'), c.stats().notes.join('|'));
});

test('the format is told from the first 64 KiB: a file of megabytes with no newline is INPUT_FORMAT_UNKNOWN, read no further', async () => {
  const file = join(tmp, 'random.bin');
  // random bytes, no newline anywhere, then strace lines after the first 2 MB
  const noise = Buffer.from(Array.from({ length: 2_000_000 }, (_, i) => (i * 7919 + 13) % 251 + 11).map((b) => (b === 10 ? 11 : b)));
  const strace = Array.from({ length: 60 }, (_, i) => `1234  close(${i + 3}) = 0`).join('\n');
  writeFileSync(file, Buffer.concat([noise, Buffer.from(`\n${strace}\n`)]));
  await assert.rejects(detectFileFormat(file), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_FORMAT_UNKNOWN');
  await assert.rejects(readTraces(file), (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_FORMAT_UNKNOWN');
  // the same strace lines at the start are a strace log
  const ok = join(tmp, 'strace-first.log');
  writeFileSync(ok, `${strace}\n`);
  assert.equal(await detectFileFormat(ok), 'strace');
});

test('a recorded exec the monitor could not verify (exeUnverified) trains no program: its trace is unattributed', async () => {
  const path = join(tmp, 'unverified.events.gz');
  const base = { ts: 1, comm: 'x', abi: 'x86_64' as const };
  const events: TraceEvent[] = [
    { ...base, type: 'exec', seq: 1, pid: 10, tid: 10, exe: '/usr/bin/true', argv: ['true'], uid: 0 },
    { ...base, type: 'syscall', seq: 2, pid: 10, tid: 10, name: 'read', nr: 0, args: [], ret: 0 },
    { ...base, type: 'exec', seq: 3, pid: 11, tid: 11, exe: '/usr/bin/sshd', argv: ['sshd'], uid: 0, exeUnverified: true },
    { ...base, type: 'syscall', seq: 4, pid: 11, tid: 11, name: 'connect', nr: 42, args: [], ret: 0 },
  ];
  const w = new RecordingWriter(path, { backend: 'ebpf' });
  w.write(events);
  await w.close();
  const r = await readTraces(path);
  assert.deepEqual(r.traces.map((t) => [t.pid, t.exe, t.calls]), [[10, '/usr/bin/true', ['read']], [11, '', ['connect']]]);
});
