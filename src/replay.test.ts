// replay() over hand-made recordings: a live monitor's recording is judged as the monitor judged it
// (lives seen only in part get no whole-life verdict), and a corrupt trailer is reported, not trusted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from './capture/events.js';
import { RecordingWriter } from './capture/replay/index.js';
import { ProgramModel, saveModel, trainModelFile } from './engine/models/model.js';
import { replay } from './replay.js';
import { isSandtraceError } from './errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-replay-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const EXE = '/usr/sbin/svc';
const NORMAL = ['brk', 'mmap', 'openat', 'fstat', 'close', ...Array.from({ length: 40 }, (_, i) => ['read', 'write', 'read', 'poll'][i % 4] as string)];
const ODD = ['socket', 'connect', 'dup2', 'setuid', 'ptrace', 'kill', 'mprotect', 'socket', 'connect', 'dup2', 'setuid', 'kill'];

async function model(): Promise<string> {
  const data = trainModelFile({ traces: [], byExe: new Map([[EXE, Array.from({ length: 12 }, () => NORMAL)]]), source: 'test' }, { kind: 'vmm' });
  const cal = data.programs[EXE]?.calibration;
  assert.ok(cal);
  // whole-life verdicts are what is checked: no window alert (no window scores above the most a call can)
  cal.windowThreshold = new ProgramModel(data.programs[EXE]!).scorer.maxValue;
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

test('replay: the DNS lookups of a trailer are listed as recorded; a malformed DNS log is left out whole and reported', async () => {
  const stats = { backend: 'ebpf', events: 1, lost: 0, parseErrors: 0, duration: 1, notes: [] };
  const write = (name: string, dns: unknown) => {
    const file = join(tmp, name);
    writeFileSync(file, [{ format: 'sandtrace.events', version: 1, created: 'x', meta: {} }, events()[0],
      { format: 'sandtrace.events.end', events: 1, stats, dns }].map((o) => JSON.stringify(o)).join('\n') + '\n');
    return file;
  };
  const dns = { queries: [{ name: 'c2.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR', count: 2 }, { name: 'shop.example.test', type: 'MX', answer: 'shop.example.test', rcode: 'NOERROR', count: 1 }], omitted: 0, malformed: 1 };
  const ok = await replay({ file: write('dns.events', dns), outDir: join(tmp, 'dns') });
  assert.deepEqual(ok.report.dns, dns.queries);
  assert.ok(ok.report.analysis.warnings.some((w) => w.code === 'DNS_MALFORMED'), 'the recorded counts are reported as live');
  for (const [i, bad] of [{ ...dns, queries: [{ name: 'x', type: 'A', answer: '<script>', rcode: 'NOERROR', count: 1 }] }, { ...dns, queries: [{ ...dns.queries[0], rcode: 'SERVFAIL' }] }, { ...dns, omitted: -1 }, { queries: 'many' }, { ...dns, queries: [{ ...dns.queries[1], answer: 'elsewhere.example' }] }].entries()) {
    const r = await replay({ file: write(`bad-dns-${i}.events`, bad), outDir: join(tmp, `bad-dns-${i}`) });
    assert.equal(r.report.dns, undefined);
    assert.ok(r.report.analysis.warnings.some((w) => w.code === 'INPUT_CORRUPT' && /DNS lookups/.test(w.message)), JSON.stringify(r.report.analysis.warnings));
  }
  // the caught sessions travel with the log; a session that is not one (hand-made: markup for an
  // address, a preview that is no string, a port past 65535) leaves the log out whole, as above
  const session = { address: '198.18.0.1', port: 80, domain: 'c2.example.test', protocol: 'http', http: { method: 'GET', path: '/gate.php', host: 'c2.example.test' }, bytes: 60, preview: 'GET /gate.php HTTP/1.1' };
  const https = { address: '198.18.0.2', port: 443, protocol: 'tls', sni: 'c2.example.test', http: { method: 'POST', path: '/up' }, bytes: 517, preview: '\\x16\\x03\\x01', decrypted: { bytes: 40, preview: 'POST /up HTTP/1.1' } };
  const datagrams = { address: '203.0.113.9', port: 7000, transport: 'udp', protocol: 'other', bytes: 11, preview: 'HELLO bot-7' };
  const mail = { address: '198.18.0.3', port: 25, protocol: 'smtp', bytes: 90, preview: 'EHLO bot', smtp: { helo: 'bot', from: 'a@b.test', to: ['c@d.test'], recipients: 1, subject: 'hi' } };
  const stealer = { ...mail, port: 587, smtp: { ...mail.smtp, auth: { mechanism: 'LOGIN', user: 'logs@mail.example.test', password: 'Hunter2!' }, starttls: true, messages: 3 }, decrypted: { bytes: 400, preview: 'EHLO bot' } };
  const upload = { address: '198.18.0.5', port: 21, protocol: 'ftp', bytes: 80, preview: 'USER ops', ftp: { user: 'ops', password: 'pw', files: [{ command: 'STOR', path: 'loot.zip' }], uploads: 1, downloads: 0 } };
  const mailbox = { address: '198.18.0.6', port: 143, protocol: 'imap', bytes: 40, preview: 'a1 LOGIN', login: { mechanism: 'LOGIN', user: 'ops', password: 'pw' } };
  const post = { ...session, http: { method: 'POST', path: '/gate.php', body: { bytes: 300, sha256: 'ab'.repeat(32), preview: 'PK\\x03\\x04', incomplete: true } } };
  const six = { address: '2001:db8:1::7', port: 8443, protocol: 'other', bytes: 8, preview: 'HELLO6' };
  const bot = { address: '198.18.0.7', port: 6667, protocol: 'irc', bytes: 50, preview: 'NICK a1', irc: { nick: 'a1', user: 'a1', password: 'pw', channels: [{ name: '#cmd', key: 'k' }, { name: '#x' }], messages: [{ command: 'PRIVMSG', target: '#cmd', text: 'up' }], lines: 4 } };
  const withSessions = await replay({ file: write('sessions.events', { ...dns, sessions: [session, https, datagrams, mail, stealer, upload, mailbox, post, bot, six], sessionsOmitted: 3 }), outDir: join(tmp, 'sessions') });
  assert.deepEqual(withSessions.report.sessions, [session, https, datagrams, mail, stealer, upload, mailbox, post, bot, six]);
  assert.ok(withSessions.report.analysis.warnings.some((w) => w.code === 'REPORT_LIMITED' && /3 caught connections are not listed/.test(w.message)), JSON.stringify(withSessions.report.analysis.warnings));
  const uncaught = await replay({ file: write('uncaught.events', { ...dns, sessionsUnavailable: 'nft: not found' }), outDir: join(tmp, 'uncaught') });
  assert.equal(uncaught.report.sessions, undefined);
  assert.ok(uncaught.report.analysis.warnings.some((w) => w.code === 'SESSIONS_UNAVAILABLE' && /nft: not found/.test(w.message)), JSON.stringify(uncaught.report.analysis.warnings));
  // IPv4 caught, IPv6 not (a namespace without IPv6): the sessions are kept and the warning says which
  const no6 = await replay({ file: write('no6.events', { ...dns, sessions: [session], ipv6Unavailable: 'setup: RTNETLINK answers: Permission denied' }), outDir: join(tmp, 'no6') });
  assert.deepEqual(no6.report.sessions, [session]);
  assert.ok(no6.report.analysis.warnings.some((w) => w.code === 'SESSIONS_UNAVAILABLE' && /IPv6 connections were not caught \(setup: RTNETLINK answers: Permission denied\).*IPv4 ones were caught/.test(w.message)), JSON.stringify(no6.report.analysis.warnings));
  for (const [i, bad] of [{ ...session, address: '<b>' }, { ...session, preview: 7 }, { ...session, port: 70000 }, { ...session, http: { method: 'GET' } }, { ...https, decrypted: { bytes: -1, preview: '' } }, { ...https, decrypted: { bytes: 1 } }, { ...datagrams, transport: 'sctp' }, { ...mail, smtp: { ...mail.smtp, recipients: 0 } }, { ...mail, smtp: { ...mail.smtp, to: 'c@d.test' } },
    { ...stealer, smtp: { ...stealer.smtp, auth: { ...stealer.smtp.auth, mechanism: 'XOAUTH2' } } }, { ...stealer, smtp: { ...stealer.smtp, auth: { mechanism: 'LOGIN', user: 'u' } } },
    { ...stealer, smtp: { ...stealer.smtp, starttls: 'yes' } }, { ...stealer, smtp: { ...stealer.smtp, messages: 1 } },
    { ...upload, ftp: { ...upload.ftp, files: [{ command: 'DELE', path: 'x' }] } }, { ...upload, ftp: { ...upload.ftp, uploads: 0 } }, { ...upload, ftp: { ...upload.ftp, password: 7 } },
    { ...mailbox, login: { ...mailbox.login, mechanism: 'GSSAPI' } }, { ...mailbox, login: { mechanism: 'LOGIN', user: 'ops' } },
    { ...post, http: { ...post.http, body: { ...post.http.body, sha256: 'not a hash' } } }, { ...post, http: { ...post.http, body: { ...post.http.body, bytes: -1 } } },
    { ...bot, protocol: 'gopher' }, { ...bot, irc: { ...bot.irc, channels: '#cmd' } }, { ...bot, irc: { ...bot.irc, messages: [{ command: 'KICK', target: '#cmd', text: '' }] } },
    { ...bot, irc: { ...bot.irc, lines: -1 } }, { ...bot, irc: { ...bot.irc, nick: 7 } }, { ...session, address: '2001:db8::1::2' }].entries()) {
    const r = await replay({ file: write(`bad-session-${i}.events`, { ...dns, sessions: [bad] }), outDir: join(tmp, `bad-session-${i}`) });
    assert.deepEqual([r.report.dns, r.report.sessions], [undefined, undefined]);
    assert.ok(r.report.analysis.warnings.some((w) => w.code === 'INPUT_CORRUPT' && /DNS lookups/.test(w.message)), JSON.stringify(r.report.analysis.warnings));
  }
});

test('replay: fd.sip.name is known from the first event, from the trailer the recording ends with (a gzip\'d recording, and a plain one)', async () => {
  const ev: TraceEvent[] = [
    { type: 'exec', seq: 1, ts: 1000, pid: 7, tid: 7, exe: '/usr/bin/python3', argv: ['python3', '-'] },
    { type: 'syscall', seq: 2, ts: 2000, pid: 7, tid: 7, abi: 'x86_64', nr: 41, name: 'socket', args: [2, 1, 0], ret: 3 },
    { type: 'syscall', seq: 3, ts: 3000, pid: 7, tid: 7, abi: 'x86_64', nr: 42, name: 'connect', args: [3, 0, 16], ret: -101, addr: { family: 'inet', address: '198.18.0.2', port: 443 } },
  ];
  const dns = { queries: [{ name: 'gulf.moneroocean.stream', type: 'A', answer: '198.18.0.2', rcode: 'NOERROR' as const, count: 1 }], omitted: 0, malformed: 0 };
  const stats = { backend: 'ebpf' as const, events: ev.length, lost: 0, parseErrors: 0, duration: 1, notes: [] };
  const gz = join(tmp, 'pool.events.gz');
  const w = await RecordingWriter.create(gz, { target: 'test', backend: 'ebpf' });
  w.write(ev);
  await w.close(stats, [], dns);
  const plain = join(tmp, 'pool.events');
  writeFileSync(plain, gunzipSync(readFileSync(gz)));
  for (const file of [gz, plain]) {
    const r = await replay({ file, outDir: join(tmp, `pool-${file === gz ? 'gz' : 'plain'}`) });
    assert.match(r.report.findings.find((f) => f.rule === 'ST-C2-010')?.output ?? '', /domain=gulf\.moneroocean\.stream/, file);
    assert.equal(r.report.network.find((n) => n.op === 'connect')?.domain, 'gulf.moneroocean.stream');
  }
  // the same events without the sinkhole's log: no name, no finding by name
  const bare = join(tmp, 'bare.events.gz');
  const b = await RecordingWriter.create(bare, { target: 'test', backend: 'ebpf' });
  b.write(ev);
  await b.close(stats, []);
  const r = await replay({ file: bare, outDir: join(tmp, 'bare') });
  assert.ok(!r.report.findings.some((f) => f.rule === 'ST-C2-010'));
});

test('replay: a model of the other ABI than the trace is refused naming both, before anything is written', async () => {
  const i386 = trainModelFile({ traces: Array.from({ length: 12 }, () => ['brk', 'mmap2', 'open', 'read', 'fstat64', 'close', 'socketcall', 'write', 'exit']), source: 'adfa-like' }, { kind: 'vmm', abi: 'i386' });
  const m = join(tmp, 'i386.model.json');
  await saveModel(m, i386);
  const out = join(tmp, 'abi-out');
  // a recording of a live capture (x86_64) judged by an i386 model
  await assert.rejects(replay({ file: await record('abi.events.gz', {}), outDir: out, model: m }),
    (e: unknown) => isSandtraceError(e) && e.code === 'MODEL_INVALID' && /trained on i386 system calls/.test(e.message) && /holds x86_64 calls/.test(e.message));
  assert.equal(existsSync(out), false, 'no output directory');
  // a numeric (ADFA-LD) trace is numbered as the model's calls are: i386, and judged
  const adfa = join(tmp, 'adfa.txt');
  writeFileSync(adfa, '45 192 5 3 197 6 102 4 1\n');
  const ok = await replay({ file: adfa, outDir: join(tmp, 'adfa-out'), model: m });
  assert.equal(ok.report.syscalls.total, 9);
  assert.ok(ok.report.analysis.errors.length === 0, JSON.stringify(ok.report.analysis.errors));
  // ... unless --abi says it is numbered otherwise: then the flag and the model disagree
  await assert.rejects(replay({ file: adfa, outDir: join(tmp, 'adfa-out2'), model: m, abi: 'x86_64' }),
    (e: unknown) => isSandtraceError(e) && e.code === 'USAGE' && /--abi x86_64/.test(e.message) && /i386/.test(e.message));
});

test('replay: --abi numbers imported traces only; for a recording, which names its calls, it is refused rather than ignored', async () => {
  const out = join(tmp, 'abi-rec-out');
  await assert.rejects(replay({ file: await record('abi-rec.events.gz', {}), outDir: out, abi: 'i386' }),
    (e: unknown) => isSandtraceError(e) && e.code === 'USAGE' && /--abi i386 does not apply to .*: it is a sandtrace recording whose calls are named as x86_64 calls/.test(e.message));
  assert.equal(existsSync(out), false, 'no output directory');
  // the ABI it already has is no contradiction
  const same = await replay({ file: await record('abi-rec2.events.gz', {}), outDir: join(tmp, 'abi-rec-same'), abi: 'x86_64' });
  assert.ok(same.report.syscalls.total > 0);
});

test('replay: a recording cut short says so in the result and the report; a trailer that miscounts is not "no trailer"', async () => {
  const whole = readFileSync(await record('whole.events.gz', {}));
  const cut = join(tmp, 'cut.events.gz');
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const r = await replay({ file: cut, outDir: join(tmp, 'cut') });
  assert.match(r.cutShort ?? '', /^recording cut short: the file ends unexpectedly \(unexpected end of file\)$/);
  const w = r.report.analysis.warnings.filter((x) => x.code === 'RECORDING_TRUNCATED');
  assert.equal(w.length, 1, JSON.stringify(r.report.analysis.warnings));
  assert.match(w[0]!.message, /cut short: the file ends unexpectedly/);
  assert.ok(r.report.syscalls.total > 0, 'the events before the cut were analysed');

  // the same recording, whole but for three event lines: the count is what is wrong
  const lines = gunzipSync(whole).toString('utf8').trim().split('\n');
  const fewer = join(tmp, 'fewer.events');
  writeFileSync(fewer, [...lines.slice(0, 4), ...lines.slice(7)].join('\n') + '\n');
  const f = await replay({ file: fewer, outDir: join(tmp, 'fewer') });
  assert.equal(f.cutShort, undefined);
  assert.deepEqual(f.report.analysis.warnings.filter((x) => x.code !== 'EVENTS_LOST').map((x) => [x.code, x.message]),
    [['INPUT_CORRUPT', `event count mismatch: the trailer says ${events().length} event(s), ${events().length - 3} were read`]]);
  assert.equal(f.report.capture.lost, 3, 'the events the trailer counts and the file lacks are lost');

  // a trailer without capture statistics is still a trailer
  const bare = join(tmp, 'bare.events');
  writeFileSync(bare, [lines[0], ...lines.slice(1, -1), JSON.stringify({ format: 'sandtrace.events.end', events: events().length })].join('\n') + '\n');
  const b = await replay({ file: bare, outDir: join(tmp, 'bare') });
  assert.equal(b.cutShort, undefined);
  assert.deepEqual(b.report.analysis.warnings, []);

  // no trailer at all: cut short
  const none = join(tmp, 'none.events');
  writeFileSync(none, lines.slice(0, -1).join('\n') + '\n');
  assert.equal((await replay({ file: none, outDir: join(tmp, 'none') })).cutShort, 'recording cut short: it has no trailer');
});

test('replay: a trailer whose event count is not a count (1e400, "many", none) is reported as corrupt, and nothing is counted lost from it', async () => {
  const lines = gunzipSync(readFileSync(await record('trailer-count.events.gz', {}))).toString('utf8').trim().split('\n');
  for (const [name, events, shown] of [['huge', '1e400', 'Infinity'], ['many', '"many"', '"many"'], ['none', undefined, undefined]] as const) {
    const file = join(tmp, `trailer-${name}.events`);
    const trailer = events === undefined ? '{"format":"sandtrace.events.end"}' : `{"format":"sandtrace.events.end","events":${events}}`;
    writeFileSync(file, [...lines.slice(0, -1), trailer].join('\n') + '\n');
    const r = await replay({ file, outDir: join(tmp, `trailer-${name}`) });
    assert.equal(r.report.capture.lost, 0, name);
    assert.equal(r.cutShort, undefined, name);
    const expected = shown === undefined ? 'no event count' : `a malformed event count (${shown})`;
    assert.deepEqual(r.report.analysis.warnings.map((w) => [w.code, w.message]),
      [['INPUT_CORRUPT', `the recording's trailer has ${expected}; the events read could not be checked against it`]], name);
  }
});

test('replay: a header whose version is not the number 1 is refused naming the file and the version as written', async () => {
  const lines = gunzipSync(readFileSync(await record('version.events.gz', {}))).toString('utf8').trim().split('\n');
  for (const [version, said] of [['"1"', 'is version "1" (string, not a number)'], ['2', 'is version 2'], [undefined, 'has no version']] as const) {
    const header = JSON.parse(lines[0] as string) as Record<string, unknown>;
    if (version === undefined) delete header['version'];
    else header['version'] = JSON.parse(version);
    const file = join(tmp, `version-${version ?? 'none'}.events`);
    writeFileSync(file, [JSON.stringify(header), ...lines.slice(1)].join('\n') + '\n');
    const out = join(tmp, `version-${version ?? 'none'}`);
    await assert.rejects(replay({ file, outDir: out }),
      (e: unknown) => isSandtraceError(e) && e.code === 'INPUT_CORRUPT' && e.message === `${file}: the recording ${said}; this sandtrace reads version 1`);
    assert.equal(existsSync(out), false, 'refused before anything is written');
  }
});

test('replay: event lines with fields of the wrong type are bad lines reported with their numbers; the report holds none of their values', async () => {
  const lines = gunzipSync(readFileSync(await record('types.events.gz', {}))).toString('utf8').trim().split('\n');
  const bad = [
    '{"type":"exec","seq":1,"ts":0,"pid":1,"tid":1,"exe":"/bin/sh","argv":5}',
    '{"type":"syscall","seq":2,"ts":0,"pid":1,"tid":1,"abi":"x86_64","nr":2,"name":"open","args":[],"ret":3,"path":{"a":1}}',
    '{"type":"syscall","seq":3,"ts":0,"pid":1,"tid":1,"abi":"x86_64","nr":2,"name":"open","args":[],"ret":3,"path":null}',
    '{"type":"fork","seq":4,"ts":0,"pid":1,"tid":1,"childPid":"x","childTid":2,"thread":false}',
    '{"type":"exit","seq":5,"ts":0,"pid":1,"tid":1,"code":{"a":1},"thread":false}',
  ];
  const file = join(tmp, 'types.events');
  // after the header; the trailer counts the events written, so the bad lines are also a count mismatch
  writeFileSync(file, [lines[0], ...bad, ...lines.slice(1)].join('\n') + '\n');
  const r = await replay({ file, outDir: join(tmp, 'types') });
  assert.deepEqual(r.report.analysis.warnings.filter((w) => w.message.startsWith('line ')).map((w) => w.message), [
    'line 2: exec event: argv is not a list of strings', 'line 3: syscall event: path is not a string', 'line 4: syscall event: path is not a string',
    'line 5: fork event: childPid is not an integer', 'line 6: exit event: code is not an integer',
  ]);
  assert.equal(r.report.capture.parseErrors, 5);
  assert.equal(r.report.syscalls.total, events().filter((e) => e.type === 'syscall').length, 'the good events were all analysed');
  const json = readFileSync(r.reportPath, 'utf8');
  assert.ok(!json.includes('"x"') && !json.includes('{"a":1}') && !json.includes('"a": 1'), 'no bad value reached report.json');
});

test('replay: a gzip recording with trailing garbage or a flipped checksum byte analyses every event and says what is wrong where', async () => {
  const whole = readFileSync(await record('garbage.events.gz', {}));
  const garbage = join(tmp, 'garbage2.events.gz');
  writeFileSync(garbage, Buffer.concat([whole, Buffer.from('garbage\n')]));
  const r = await replay({ file: garbage, outDir: join(tmp, 'garbage') });
  assert.equal(r.report.syscalls.total, events().filter((e) => e.type === 'syscall').length, 'every event analysed');
  const where = `byte ${whole.length.toLocaleString('en-US')} of the gzip file`;
  assert.equal(r.cutShort, `recording corrupt: trailing garbage at ${where}: data after the end of the gzip stream that is not gzip`);
  assert.deepEqual(r.report.analysis.warnings.map((w) => [w.code, w.message]),
    [['INPUT_CORRUPT', `the recording is corrupt (trailing garbage at ${where}: data after the end of the gzip stream that is not gzip); events before the damage were analysed`]]);
});

test('replay: a hand-made header with a malformed sample, users or isolation falls back to what the trace says', async () => {
  const file = join(tmp, 'odd-meta.events');
  writeFileSync(file, [{ format: 'sandtrace.events', version: 1, created: 'x', meta: { sample: 'x', users: [1, 2], isolation: 'none' } }, ...events(),
    { format: 'sandtrace.events.end', events: events().length, stats: { backend: 'ebpf', notes: 'n' } }].map((o) => JSON.stringify(o)).join('\n') + '\n');
  const r = await replay({ file, outDir: join(tmp, 'odd-meta') });
  assert.deepEqual(r.report.analysis.errors, []);
  assert.equal(r.report.sample.name, 'odd-meta.events');
  assert.deepEqual(r.report.analysis.warnings.map((w) => w.message), ['the capture statistics in the recording\'s trailer are malformed and were left out']);
});
