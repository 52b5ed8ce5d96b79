// replay(): the analysis pipeline over a recorded or imported trace instead of a live sandbox.
// A sandtrace recording carries the sample's description and the live capture's statistics, so
// the report equals the live run's (its dropped and deleted files too, from the recording's
// trailer; the copies themselves stay in the live run's analysis directory).
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { isIPv4, isIPv6 } from 'node:net';
import { namesByAddress, type DnsRecord } from './sandbox/dns.js';
import type { SinkholeSession } from './sandbox/sessions.js';
import type { SandboxDns } from './sandbox/types.js';
import { basename, resolve } from 'node:path';
import type { CaptureStats } from './capture/collector.js';
import { RecordingCollector } from './capture/replay/index.js';
import { countMismatch, trailerCount, trailerProblem } from './capture/replay/importers.js';
import type { RecordedChange, RecordingTrailer } from './capture/replay/recording.js';
import type { Abi } from './capture/events.js';
import { buildDetectors, finishReport, type AnalyzeResult } from './analyze.js';
import { SandtraceError } from './errors.js';
import { runPipeline } from './pipeline.js';
import { ReportBuilder, type SampleInfo } from './report/build.js';
import type { Report, ReportDiagnostic } from './report/schema.js';
import { DENIED_SYSCALLS } from './sandbox/seccomp.js';
import { SemanticState } from './semantics/state.js';
import { clearAnalysis, makeOutDir } from './outpath.js';
import { checkInputFile } from './sample.js';

export interface ReplayOptions {
  file: string;
  outDir: string;
  rules?: string[];
  model?: string;
  /** Numbering of a numeric trace (adfa, pairs); default the model's, else x86_64. */
  abi?: Abi;
}

export interface ReplayResult extends AnalyzeResult {
  /** Why the recording or trace ends early ("recording cut short: ..."); absent when it does not. */
  cutShort?: string;
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  // INPUT_* errors before anything is written: the trace first, then the model and rule files
  await checkInputFile(opts.file);
  const models = opts.model ? await import('./engine/models/index.js') : undefined;
  const model = opts.model && models ? await models.loadModel(opts.model) : undefined;
  if (model && opts.abi && opts.abi !== model.abi) {
    throw new SandtraceError('USAGE', `--abi ${opts.abi} does not match the model: ${opts.model} was trained on ${model.abi} system calls, so the trace must be ${model.abi} too`);
  }
  // the rules next (as analyze loads them): a missing or wrong user file refuses the replay
  const errors: ReportDiagnostic[] = [];
  const warnings: ReportDiagnostic[] = [];
  // fd.sip.name as live: the names the sandbox's DNS sinkhole gave, from the recording's trailer
  let names: Map<string, string> | undefined;
  const detectors = await buildDetectors({ ...(opts.rules ? { rules: opts.rules } : {}), dnsName: (a) => names?.get(a) }, errors, warnings);
  // a numeric trace is numbered as the model's calls are, unless --abi says otherwise
  const collector = new RecordingCollector(opts.file, { ...(opts.abi ? { abi: opts.abi } : {}), ...(model ? { defaultAbi: model.abi } : {}) });
  await collector.start();
  // --abi says how to number a numeric or sysdig trace; a recording or strace log names its calls
  if (opts.abi && opts.abi !== collector.abi) {
    await collector.stop();
    throw new SandtraceError('USAGE', `--abi ${opts.abi} does not apply to ${opts.file}: it is a ${collector.detectedFormat === 'strace' ? 'strace log' : 'sandtrace recording'} whose calls are named as ${collector.abi} calls already`);
  }
  if (model) models?.checkModelAbi(model, collector.abi, `the trace ${opts.file}`);
  if (collector.detectedFormat === 'sandtrace' && (await stat(opts.file)).isFile()) {
    const dns = await trailerDns(opts.file);
    if (dns) names = namesByAddress(dns.queries);
  }
  const header = collector.header;
  const meta = (header?.meta ?? {}) as Record<string, unknown>;
  const outDir = resolve(opts.outDir);
  makeOutDir(outDir);
  // a live monitor's recording: judged as the monitor judged it (partial lives included)
  const live = meta['live'] === true;
  if (model && models) detectors.push(models.createAnomalyDetector(model, { live, abi: collector.abi }));
  const users = recordedUsers(meta['users']);
  const semantics = new SemanticState({
    ...(users ? { users } : {}), ...(typeof meta['cwd'] === 'string' ? { initialCwd: meta['cwd'] } : {}),
    // a sandbox recording: the processes ran in the analysis's container, as live
    ...(typeof meta['containerId'] === 'string' ? { containerId: meta['containerId'] } : {}),
    ...(typeof meta['containerName'] === 'string' ? { containerName: meta['containerName'] } : {}),
  });
  const builder = new ReportBuilder(DENIED_SYSCALLS);
  const started = new Date();
  await runPipeline({ collector, semantics, report: builder, detectors });
  const replayed = collector.stats();
  const recording = collector.detectedFormat === 'sandtrace';
  // The live capture's own statistics (events lost in the kernel, say) stay true of a replay.
  const tally = collector.recording();
  const trailer = tally?.trailer ? checkTrailer(tally.trailer) : undefined;
  const recorded = trailer?.stats;
  // events the trailer counts that are in the file neither as events nor as bad lines: lost too
  const said = trailerCount(tally?.trailer);
  const missing = tally && said !== undefined ? Math.max(0, said - tally.events - tally.badLines) : 0;
  const capture: CaptureStats = recorded
    ? { ...recorded, notes: [...recorded.notes, ...replayed.notes, `replayed from ${basename(opts.file)}`], parseErrors: recorded.parseErrors + replayed.parseErrors, lost: recorded.lost + replayed.lost + missing }
    : { ...replayed, lost: replayed.lost + missing };
  if (trailer?.badChanges) warnings.push({ code: 'INPUT_CORRUPT', message: `${trailer.badChanges} file change(s) in the recording's trailer are malformed and were left out`, where: opts.file });
  if (trailer?.badDns) warnings.push({ code: 'INPUT_CORRUPT', message: 'the DNS lookups (and caught connections) in the recording\'s trailer are malformed and were left out', where: opts.file });
  if (trailer?.badStats) warnings.push({ code: 'INPUT_CORRUPT', message: 'the capture statistics in the recording\'s trailer are malformed and were left out', where: opts.file });
  let cutShort: string | undefined;
  const what = recording ? 'recording' : 'trace';
  if (collector.truncated !== undefined && collector.corrupt) {
    // damaged gzip data (a checksum, trailing garbage): every event decoded before the damage was read
    cutShort = `${what} corrupt: ${collector.truncated}`;
    warnings.push({ code: 'INPUT_CORRUPT', message: `the ${what} is corrupt (${collector.truncated}); events before the damage were analysed`, where: opts.file });
  } else if (collector.truncated !== undefined) {
    cutShort = `${what} cut short: the file ends unexpectedly (${collector.truncated})`;
    warnings.push({ code: 'RECORDING_TRUNCATED', message: `the ${what} was cut short: the file ends unexpectedly (${collector.truncated}); events up to the cut were analysed`, where: opts.file });
  } else if (recording && !tally?.trailer) {
    cutShort = 'recording cut short: it has no trailer';
    warnings.push({ code: 'RECORDING_TRUNCATED', message: 'the recording has no trailer: it was cut short; events up to the cut were analysed', where: opts.file });
  }
  const mismatch = tally?.trailer ? trailerProblem(tally.trailer) ?? countMismatch(tally) : undefined;
  if (mismatch) warnings.push({ code: 'INPUT_CORRUPT', message: mismatch, where: opts.file });
  for (const n of replayed.notes.filter((x) => x.startsWith('line '))) warnings.push({ code: 'INPUT_CORRUPT', message: n, where: opts.file });
  const sample = recordedSample(meta['sample']) ?? await traceAsSample(opts.file);
  await clearAnalysis(outDir); // what an analysis replaced by --force wrote (its dropped files above all)
  const result = await finishReport({
    builder, detectors, semantics, errors, warnings, outDir,
    context: {
      id: typeof meta['id'] === 'string' ? meta['id'] : `replay-${started.getTime()}`, started,
      timeout: typeof meta['timeout'] === 'number' ? meta['timeout'] : 0, timedOut: false,
      isolation: recordedIsolation(meta['isolation']) ?? { kind: 'none', guarantees: [], weaker: ['replayed trace: no sandbox ran'] },
      sample, capture, captureReason: typeof meta['reason'] === 'string' ? meta['reason'] : `replay of ${collector.detectedFormat ?? 'a trace'}`,
      backend: recorded?.backend ?? 'replay', changes: trailer?.changes ?? [], ...(trailer?.dns ? { dns: trailer.dns } : {}),
    },
  });
  return { ...result, ...(cutShort ? { cutShort } : {}) };
}

/** A trailer's parts, checked: a malformed part is left out (and counted) rather than trusted. */
function checkTrailer(t: Partial<RecordingTrailer>): { stats?: CaptureStats; changes?: RecordedChange[]; dns?: SandboxDns; badChanges: number; badStats: boolean; badDns: boolean } {
  const changes = Array.isArray(t.changes) ? t.changes.filter(isRecordedChange).map(recordedChange) : undefined;
  const badChanges = Array.isArray(t.changes) ? t.changes.length - (changes?.length ?? 0) : 0;
  const stats = t.stats === undefined ? undefined : isCaptureStats(t.stats) ? t.stats : null;
  const dns = t.dns === undefined ? undefined : recordedDns(t.dns) ?? null;
  return { ...(stats ? { stats } : {}), ...(changes ? { changes } : {}), ...(dns ? { dns } : {}), badChanges, badStats: stats === null, badDns: dns === null };
}

/** Characters of a line kept while looking for the trailer (a trailer of 10,000 names is about 1 MB). */
const TRAILER_MAX = 64 << 20;

/**
 * The DNS log of a recording's trailer, read before the events are (a first pass over a regular
 * file: the trailer is its last line), so that fd.sip.name is known from the first event as it was
 * live. Undefined when there is none or it cannot be read; the replay itself reports damage.
 */
async function trailerDns(file: string): Promise<SandboxDns | undefined> {
  try {
    const fh = await open(file, 'r');
    const magic = Buffer.alloc(2);
    try { await fh.read(magic, 0, 2, 0); } finally { await fh.close(); }
    const raw = createReadStream(file);
    const stream: AsyncIterable<Buffer> = magic[0] === 0x1f && magic[1] === 0x8b ? raw.pipe(createGunzip()) : raw;
    const dec = new StringDecoder('utf8');
    let pending = '';
    let last = '';
    try {
      for await (const chunk of stream) {
        const s = pending + dec.write(chunk);
        const end = s.lastIndexOf('\n');
        if (end < 0) { pending = s.length > TRAILER_MAX ? '' : s; continue; }
        const line = s.slice(s.lastIndexOf('\n', end - 1) + 1, end);
        if (line.trim() !== '') last = line;
        pending = s.length - end > TRAILER_MAX ? '' : s.slice(end + 1);
      }
    } catch { /* damaged data: the trailer as far as it was read, if any */ } finally { raw.destroy(); }
    const t = JSON.parse((pending + dec.end()).trim() || last) as Partial<RecordingTrailer> | null;
    return t?.format === 'sandtrace.events.end' && t.dns !== undefined ? recordedDns(t.dns) : undefined;
  } catch {
    return undefined;
  }
}

/** The trailer's DNS log, checked whole (a hand-made recording may hold anything), rebuilt from its checked fields. */
function recordedDns(d: unknown): SandboxDns | undefined {
  const o = d as Partial<SandboxDns> | null;
  const count = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.queries) || !count(o.omitted) || !count(o.malformed)) return undefined;
  if (o.unavailable !== undefined && typeof o.unavailable !== 'string') return undefined;
  const ok = o.queries.every((q: Partial<DnsRecord> | null) => typeof q === 'object' && q !== null && typeof q.name === 'string' && typeof q.type === 'string'
    && (q.answer === null || (typeof q.answer === 'string' && (q.type === 'MX' ? q.answer === q.name : isIPv4(q.answer)))) && (q.rcode === 'NOERROR' || q.rcode === 'NXDOMAIN') && count(q.count));
  if (!ok) return undefined;
  if (o.sessionsUnavailable !== undefined && typeof o.sessionsUnavailable !== 'string') return undefined;
  if (o.ipv6Unavailable !== undefined && typeof o.ipv6Unavailable !== 'string') return undefined;
  if (o.sessionsOmitted !== undefined && !count(o.sessionsOmitted)) return undefined;
  const sessions = o.sessions === undefined ? undefined : Array.isArray(o.sessions) ? recordedSessions(o.sessions) : undefined;
  if (o.sessions !== undefined && sessions === undefined) return undefined;
  return {
    queries: o.queries.map(({ name, type, answer, rcode, count: n }) => ({ name, type, answer, rcode, count: n })), omitted: o.omitted as number, malformed: o.malformed as number,
    ...(o.unavailable !== undefined ? { unavailable: o.unavailable } : {}),
    ...(sessions ? { sessions } : {}), ...(o.sessionsOmitted !== undefined ? { sessionsOmitted: o.sessionsOmitted } : {}),
    ...(o.sessionsUnavailable !== undefined ? { sessionsUnavailable: o.sessionsUnavailable } : {}),
    ...(o.ipv6Unavailable !== undefined ? { ipv6Unavailable: o.ipv6Unavailable } : {}),
  };
}

/** The trailer's caught sessions, each checked and rebuilt from its known fields; undefined if any is not one. */
function recordedSessions(list: unknown[]): SinkholeSession[] | undefined {
  const str = (x: unknown, max: number) => typeof x === 'string' && x.length <= max;
  const opt = (x: unknown, max: number) => x === undefined || str(x, max);
  const out: SinkholeSession[] = [];
  for (const item of list) {
    const s = item as Partial<SinkholeSession> | null;
    if (typeof s !== 'object' || s === null || typeof s.address !== 'string' || !(isIPv4(s.address) || isIPv6(s.address))) return undefined;
    if (!(s.port === null || (Number.isInteger(s.port) && (s.port as number) >= 0 && (s.port as number) <= 65535))) return undefined;
    if (!['http', 'tls', 'smtp', 'ftp', 'pop3', 'imap', 'irc', 'other', 'none'].includes(s.protocol as string) || !Number.isInteger(s.bytes) || (s.bytes as number) < 0) return undefined;
    if (!opt(s.domain, 1024) || !opt(s.sni, 2048) || !str(s.preview, 4096) || !(s.transport === undefined || s.transport === 'udp')) return undefined;
    const h = s.http;
    if (h !== undefined && (typeof h !== 'object' || h === null || !str(h.method, 16) || !str(h.path, 16384) || !opt(h.host, 4096) || !opt(h.userAgent, 4096))) return undefined;
    const b = h?.body;
    if (b !== undefined && (typeof b !== 'object' || b === null || !Number.isInteger(b.bytes) || b.bytes < 0 || typeof b.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(b.sha256)
      || !str(b.preview, 4096) || !(b.incomplete === undefined || b.incomplete === true))) return undefined;
    const d = s.decrypted;
    if (d !== undefined && (typeof d !== 'object' || d === null || !Number.isInteger(d.bytes) || d.bytes < 0 || !str(d.preview, 4096))) return undefined;
    const m = s.smtp;
    if (m !== undefined && (typeof m !== 'object' || m === null || !opt(m.helo, 2048) || !opt(m.from, 2048) || !opt(m.subject, 2048)
      || !Array.isArray(m.to) || m.to.length > 16 || !m.to.every((t) => str(t, 2048)) || !Number.isInteger(m.recipients) || m.recipients < m.to.length
      || !(m.starttls === undefined || m.starttls === true) || !(m.messages === undefined || (Number.isInteger(m.messages) && m.messages >= 2))
      || !(m.auth === undefined || (typeof m.auth === 'object' && m.auth !== null && ['PLAIN', 'LOGIN'].includes(m.auth.mechanism) && str(m.auth.user, 2048) && str(m.auth.password, 2048))))) return undefined;
    const f = s.ftp;
    if (f !== undefined && (typeof f !== 'object' || f === null || !opt(f.user, 2048) || !opt(f.password, 2048) || !Array.isArray(f.files) || f.files.length > 16
      || !f.files.every((x) => typeof x === 'object' && x !== null && ['STOR', 'APPE', 'RETR'].includes(x.command) && str(x.path, 2048))
      || !Number.isInteger(f.uploads) || f.uploads < 0 || !Number.isInteger(f.downloads) || f.downloads < 0 || f.files.length > f.uploads + f.downloads)) return undefined;
    const l = s.login;
    if (l !== undefined && (typeof l !== 'object' || l === null || !['USER', 'APOP', 'LOGIN', 'PLAIN'].includes(l.mechanism) || !str(l.user, 2048) || !str(l.password, 2048))) return undefined;
    const i = s.irc;
    if (i !== undefined && (typeof i !== 'object' || i === null || !opt(i.nick, 2048) || !opt(i.user, 2048) || !opt(i.realname, 2048) || !opt(i.password, 2048)
      || !Array.isArray(i.channels) || i.channels.length > 16 || !i.channels.every((c) => typeof c === 'object' && c !== null && str(c.name, 2048) && opt(c.key, 2048))
      || !Array.isArray(i.messages) || i.messages.length > 16
      || !i.messages.every((m) => typeof m === 'object' && m !== null && ['PRIVMSG', 'NOTICE'].includes(m.command) && str(m.target, 2048) && str(m.text, 2048))
      || !Number.isInteger(i.lines) || i.lines < 0)) return undefined;
    out.push({
      address: s.address, port: s.port as number | null, ...(s.transport ? { transport: s.transport } : {}), ...(s.domain !== undefined ? { domain: s.domain } : {}), protocol: s.protocol as SinkholeSession['protocol'],
      ...(h ? {
        http: {
          method: h.method, path: h.path, ...(h.host !== undefined ? { host: h.host } : {}), ...(h.userAgent !== undefined ? { userAgent: h.userAgent } : {}),
          ...(b ? { body: { bytes: b.bytes, sha256: b.sha256, preview: b.preview, ...(b.incomplete ? { incomplete: true as const } : {}) } } : {}),
        },
      } : {}),
      ...(s.sni !== undefined ? { sni: s.sni } : {}), bytes: s.bytes as number, preview: s.preview as string,
      ...(d ? { decrypted: { bytes: d.bytes, preview: d.preview } } : {}),
      ...(m ? { smtp: { ...(m.helo !== undefined ? { helo: m.helo } : {}), ...(m.from !== undefined ? { from: m.from } : {}), to: [...m.to], recipients: m.recipients, ...(m.subject !== undefined ? { subject: m.subject } : {}),
        ...(m.auth ? { auth: { mechanism: m.auth.mechanism, user: m.auth.user, password: m.auth.password } } : {}), ...(m.starttls ? { starttls: true as const } : {}),
        ...(m.messages !== undefined ? { messages: m.messages } : {}) } } : {}),
      ...(l ? { login: { mechanism: l.mechanism, user: l.user, password: l.password } } : {}),
      ...(i ? { irc: {
        ...(i.nick !== undefined ? { nick: i.nick } : {}), ...(i.user !== undefined ? { user: i.user } : {}), ...(i.realname !== undefined ? { realname: i.realname } : {}),
        ...(i.password !== undefined ? { password: i.password } : {}),
        channels: i.channels.map((c) => ({ name: c.name, ...(c.key !== undefined ? { key: c.key } : {}) })),
        messages: i.messages.map((m) => ({ command: m.command, target: m.target, text: m.text })), lines: i.lines,
      } } : {}),
      ...(f ? { ftp: { ...(f.user !== undefined ? { user: f.user } : {}), ...(f.password !== undefined ? { password: f.password } : {}), files: f.files.map((x) => ({ command: x.command, path: x.path })), uploads: f.uploads, downloads: f.downloads } } : {}),
    });
  }
  return out;
}

const BACKENDS = ['ebpf', 'ptrace', 'vmi', 'replay', 'import'];

function isCaptureStats(s: unknown): s is CaptureStats {
  const o = s as Partial<CaptureStats> | null;
  return typeof o === 'object' && o !== null && BACKENDS.includes(o.backend as string)
    && [o.events, o.lost, o.parseErrors, o.duration].every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
    && Array.isArray(o.notes) && o.notes.every((n) => typeof n === 'string');
}

/** The recorded sample description, when it is one (a hand-made recording may hold anything). */
function recordedSample(s: unknown): SampleInfo | undefined {
  const o = s as Partial<SampleInfo> | null;
  if (typeof o !== 'object' || o === null) return undefined;
  const ok = typeof o.name === 'string' && typeof o.size === 'number' && typeof o.type === 'string'
    && [o.sha256, o.sha1, o.md5].every((h) => typeof h === 'string') && Array.isArray(o.args) && o.args.every((a) => typeof a === 'string')
    && (o.interpreter === undefined || (Array.isArray(o.interpreter) && o.interpreter.every((a) => typeof a === 'string')));
  return ok ? o as SampleInfo : undefined;
}

function recordedIsolation(s: unknown): Report['analysis']['isolation'] | undefined {
  const o = s as Partial<Report['analysis']['isolation']> | null;
  if (typeof o !== 'object' || o === null) return undefined;
  const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === 'string');
  return typeof o.kind === 'string' && strings(o.guarantees) && strings(o.weaker) ? o as Report['analysis']['isolation'] : undefined;
}

/** The recorded uid → user name pairs; malformed entries are left out. */
function recordedUsers(u: unknown): Map<number, string> | undefined {
  if (!Array.isArray(u)) return undefined;
  return new Map(u.filter((e): e is [number, string] => Array.isArray(e) && typeof e[0] === 'number' && typeof e[1] === 'string'));
}

async function traceAsSample(file: string): Promise<SampleInfo> {
  const st = await stat(file);
  return { name: basename(file), size: st.size, sha256: '', sha1: '', md5: '', type: 'trace', args: [] };
}

/** A trailer's file change, checked: a corrupt or hostile one is left out rather than trusted. */
function isRecordedChange(c: unknown): c is RecordedChange {
  const o = c as Partial<RecordedChange> | null;
  return typeof o === 'object' && o !== null && typeof o.path === 'string' && ['created', 'modified', 'deleted'].includes(o.change as string)
    && typeof o.size === 'number' && (o.sha256 === null || typeof o.sha256 === 'string') && typeof o.truncated === 'boolean';
}

/** Only the recorded fields: a copy's path, say, names a file of the live run's host, never the replay's. */
function recordedChange(c: RecordedChange): RecordedChange {
  return { path: c.path, change: c.change, size: c.size, sha256: c.sha256, truncated: c.truncated };
}
