// Importers for traces made elsewhere, each a line-at-a-time parser producing TraceEvents:
// ADFA-LD style numeric traces, `pid syscall` pairs, sysdig/Falco text event lines and strace -f
// logs (through the ptrace engineer's StraceParser). A bad line becomes an issue with its line
// number and the rest is processed; a file in no known format is INPUT_FORMAT_UNKNOWN.
import type { Abi, SyscallEvent, TraceEvent } from '../events.js';
import { syscallName, syscallNumber } from '../../semantics/syscalls.js';
import { StraceParser } from '../ptrace/parser.js';
import { SandtraceError } from '../../errors.js';
import { eventProblem, parseHeader, RECORDING_VERSION, type RecordingHeader, type RecordingTrailer } from './recording.js';

export type TraceFormat = 'sandtrace' | 'adfa' | 'pairs' | 'sysdig' | 'strace';
export const TRACE_FORMATS: readonly TraceFormat[] = ['sandtrace', 'adfa', 'pairs', 'sysdig', 'strace'];

export interface ImportIssue {
  line: number;
  message: string;
  /** Bad lines this issue stands for, when more than one (a summary of the ones not listed). */
  lines?: number;
  /** The line held no event (a recording's damaged or missing header): a bad line, not a lost event. */
  noEvent?: true;
}

export interface ImportOptions {
  /** Numbering of numeric syscall ids (ADFA-LD: i386), and the ABI of sysdig text. Default x86_64. */
  abi?: Abi;
  /** Numbering of numeric traces (adfa, pairs) when `abi` is not given: a model's, when scoring. */
  defaultAbi?: Abi;
  /** Skip auto-detection. */
  format?: TraceFormat;
  /** Pid given to a single-trace file (ADFA-LD has none). Default 1. */
  pid?: number;
}

/** One line-oriented parser. */
export interface LineImporter {
  readonly format: TraceFormat;
  readonly issues: ImportIssue[];
  line(text: string, lineNo: number): TraceEvent[];
  end(): TraceEvent[];
  /** Facts worth a capture note (e.g. calls that never returned). */
  notes(): string[];
}

const NUMERIC_LINE = /^[\s\d]+$/;
const PAIR_LINE = /^\s*\d+\s+(\d+|[A-Za-z_][A-Za-z0-9_]*)\s*$/;
const SYSDIG_LINE = /^\s*(\d+)\s+(\S+)\s+(\d+)\s+(.+?)\s+\((\d+)(?::(\d+))?\)\s+([<>])\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(.*))?$/;
const FD_RETURNING = /^(open|openat|openat2|creat|socket|accept|accept4|dup|dup2|dup3|eventfd|eventfd2|memfd_create|signalfd|signalfd4|timerfd_create|inotify_init|inotify_init1|epoll_create|epoll_create1|userfaultfd|pidfd_open)$/;
const STRACE_LINE = /^(?:\[pid\s+\d+\]\s+|\d+\s+)?(?:\d+\.\d+\s+|\d\d:\d\d:\d\d(?:\.\d+)?\s+)?(?:[A-Za-z_][A-Za-z0-9_]*\(|<\.\.\. |\+\+\+ |--- )/;

/** Guess the format from the first non-empty lines (at most 50). */
export function detectFormat(lines: readonly string[]): TraceFormat | undefined {
  const ls = lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).slice(0, 50);
  if (ls.length === 0) return undefined;
  if (parseHeader(ls[0] as string)) return 'sandtrace';
  // a recording whose header line was damaged (a flipped byte): its events still say what it is
  if (ls.filter(isRecordedEvent).length / ls.length >= 0.6) return 'sandtrace';
  const share = (re: RegExp) => ls.filter((l) => re.test(l)).length / ls.length;
  // a pairs file has two columns on every line; a numeric trace has one or many numbers
  if (share(PAIR_LINE) >= 0.8 && ls.length >= 2) return 'pairs';
  if (share(NUMERIC_LINE) >= 0.6) return 'adfa';
  if (share(SYSDIG_LINE) >= 0.6) return 'sysdig';
  if (share(STRACE_LINE) >= 0.6) return 'strace';
  return undefined;
}

/** A line that is one valid recorded event (not a header or trailer). */
function isRecordedEvent(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try { return eventProblem(JSON.parse(line)) === undefined; } catch { return false; }
}

export function createImporter(format: TraceFormat, opts: ImportOptions = {}): LineImporter {
  switch (format) {
    case 'sandtrace': return new SandtraceImporter();
    case 'adfa': return new NumericImporter(opts.abi ?? opts.defaultAbi ?? 'x86_64', opts.pid ?? 1);
    case 'pairs': return new PairsImporter(opts.abi ?? opts.defaultAbi ?? 'x86_64');
    case 'sysdig': return new SysdigImporter(opts.abi ?? 'x86_64');
    case 'strace': return new StraceImporter();
  }
}

export function unknownFormat(what: string): SandtraceError {
  return new SandtraceError('INPUT_FORMAT_UNKNOWN',
    `${what}: not a format sandtrace can import (${TRACE_FORMATS.join(', ')})`);
}

function syscallEvent(seq: number, pid: number, tid: number, abi: Abi, nr: number, name: string, ret: number | null, comm?: string): SyscallEvent {
  const e: SyscallEvent = { type: 'syscall', seq, ts: 0, pid, tid, abi, nr, name, args: [], ret };
  if (comm !== undefined) e.comm = comm;
  return e;
}

/** What a recording held: its trailer (the last one read, as written) and the events read. */
export interface RecordingTally {
  trailer?: Partial<RecordingTrailer>;
  /** Events read (bad lines not counted). */
  events: number;
  /** Lines that were not events (each a lost event). */
  badLines: number;
}

/** Our own recordings: header, event lines, trailer. */
export class SandtraceImporter implements LineImporter {
  readonly format = 'sandtrace' as const;
  readonly issues: ImportIssue[] = [];
  private trailer: Partial<RecordingTrailer> | undefined;
  private header = false;
  private events = 0;

  line(text: string, lineNo: number): TraceEvent[] {
    if (text.trim() === '') return [];
    if (!this.header) {
      this.header = true;
      const h = parseHeader(text);
      if (h) {
        const bad = versionProblem(h);
        if (bad) throw new SandtraceError('INPUT_CORRUPT', bad);
        return [];
      }
      // no header: a damaged one is a bad line but no lost event; a first event is still read
      if (!isRecordedEvent(text)) {
        this.issues.push({ line: lineNo, message: 'damaged sandtrace.events header (the events after it are read)', noEvent: true });
        return [];
      }
      this.issues.push({ line: lineNo, message: 'missing sandtrace.events header', noEvent: true });
    }
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      this.issues.push({ line: lineNo, message: 'not valid JSON (truncated line?)' });
      return [];
    }
    if ((o as { format?: string } | null)?.format === 'sandtrace.events.end') { this.trailer = o as Partial<RecordingTrailer>; return []; }
    const bad = eventProblem(o);
    if (bad) { this.issues.push({ line: lineNo, message: bad }); return []; }
    this.events++;
    return [o as TraceEvent];
  }

  end(): TraceEvent[] { return []; }

  tally(): RecordingTally {
    return { ...(this.trailer ? { trailer: this.trailer } : {}), events: this.events, badLines: this.issues.filter((i) => !i.noEvent).length };
  }

  notes(): string[] {
    if (!this.trailer) return ['recording has no trailer: the capture was cut short'];
    const m = trailerProblem(this.trailer) ?? countMismatch(this.tally());
    return m ? [m] : [];
  }
}

/** Why a recording header's version is not the one this sandtrace reads (1, the number). */
export function versionProblem(h: RecordingHeader, path?: string): string | undefined {
  if (h.version === RECORDING_VERSION) return undefined;
  const v = (h as { version?: unknown }).version;
  const said = v === undefined ? 'has no version' : `is version ${typeof v === 'number' ? String(v) : `${JSON.stringify(v)} (${v === null ? 'null' : typeof v}, not a number)`}`;
  return `${path ? `${path}: ` : ''}the recording ${said}; this sandtrace reads version ${RECORDING_VERSION}`;
}

/** A trailer's event count when it is one (a whole number of events); undefined when it is absent or malformed. */
export function trailerCount(t: Partial<RecordingTrailer> | undefined): number | undefined {
  const n = t?.events;
  return Number.isSafeInteger(n) && (n as number) >= 0 ? n : undefined;
}

/** A trailer whose event count is missing or not a count: a damaged recording, said so. */
export function trailerProblem(t: Partial<RecordingTrailer>): string | undefined {
  if (trailerCount(t) !== undefined) return undefined;
  const n = (t as { events?: unknown }).events;
  const what = n === undefined ? 'no event count' : `a malformed event count (${typeof n === 'number' ? String(n) : JSON.stringify(n)})`;
  return `the recording's trailer has ${what}; the events read could not be checked against it`;
}

/** When a recording's trailer counts other events than were read: what it says and what was read. */
export function countMismatch(t: RecordingTally): string | undefined {
  const said = trailerCount(t.trailer);
  if (said === undefined || said === t.events) return undefined;
  return `event count mismatch: the trailer says ${said} event(s), ${t.events} were read${t.badLines > 0 ? ` (${t.badLines} bad line(s))` : ''}`;
}

/** ADFA-LD: one trace per file, syscall numbers separated by spaces or newlines. */
class NumericImporter implements LineImporter {
  readonly format = 'adfa' as const;
  readonly issues: ImportIssue[] = [];
  private seq = 0;
  constructor(private readonly abi: Abi, private readonly pid: number) {}

  line(text: string, lineNo: number): TraceEvent[] {
    const out: TraceEvent[] = [];
    let bad = 0;
    for (const tok of text.split(/\s+/)) {
      if (tok === '') continue;
      const nr = /^\d+$/.test(tok) ? Number(tok) : NaN;
      if (!Number.isSafeInteger(nr) || nr > 4096) { bad++; continue; }
      out.push(syscallEvent(++this.seq, this.pid, this.pid, this.abi, nr, syscallName(nr, this.abi), null));
    }
    if (bad > 0) this.issues.push({ line: lineNo, message: `${bad} token(s) that are not syscall numbers skipped` });
    return out;
  }

  end(): TraceEvent[] { return []; }
  notes(): string[] { return []; }
}

/** `pid syscall` per line (syscall as a number in the chosen abi, or a name): one trace per pid. */
class PairsImporter implements LineImporter {
  readonly format = 'pairs' as const;
  readonly issues: ImportIssue[] = [];
  private seq = 0;
  constructor(private readonly abi: Abi) {}

  line(text: string, lineNo: number): TraceEvent[] {
    if (text.trim() === '' || text.trimStart().startsWith('#')) return [];
    const m = PAIR_LINE.exec(text);
    if (!m) { this.issues.push({ line: lineNo, message: 'expected "pid syscall"' }); return []; }
    const pid = Number(text.trim().split(/\s+/)[0]);
    const call = m[1] as string;
    const numeric = /^\d+$/.test(call);
    const nr = numeric ? Number(call) : syscallNumber(call, this.abi);
    const name = numeric ? syscallName(nr, this.abi) : call;
    return [syscallEvent(++this.seq, pid, pid, this.abi, nr, name, null)];
  }

  end(): TraceEvent[] { return []; }
  notes(): string[] { return []; }
}

/** `key=value` pairs of a sysdig evt.info, values possibly parenthesised or bracketed. */
function sysdigInfo(info: string): Map<string, string> {
  const m = new Map<string, string>();
  const re = /([A-Za-z_][A-Za-z0-9_.]*)=(\S*)/g;
  let r: RegExpExecArray | null;
  while ((r = re.exec(info)) !== null) if (!m.has(r[1] as string)) m.set(r[1] as string, r[2] as string);
  return m;
}

/** The leading number of a sysdig value such as `3(<f>/etc/passwd)` or `-2(ENOENT)`. */
function sysdigNumber(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(-?\d+)/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/**
 * sysdig's default text output (`%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir
 * %evt.type %evt.info`), also what Falco-style tooling prints. A call is emitted at its exit line
 * (`<`); an enter line with no exit is emitted at the end with ret null.
 */
class SysdigImporter implements LineImporter {
  readonly format = 'sysdig' as const;
  readonly issues: ImportIssue[] = [];
  private seq = 0;
  private t0: number | undefined;
  private readonly pending = new Map<number, { name: string; comm: string; info: string; ts: number }>();
  private unfinished = 0;
  constructor(private readonly abi: Abi) {}

  private ts(t: string): number {
    const parts = t.split(':');
    let secs: number;
    if (parts.length === 3) secs = Number(parts[0]) * 3600 + Number(parts[1]) * 60 + Number(parts[2]);
    else secs = Number(t);
    if (!Number.isFinite(secs)) return 0;
    this.t0 ??= secs;
    return Math.max(0, Math.round((secs - this.t0) * 1e9));
  }

  line(text: string, lineNo: number): TraceEvent[] {
    if (text.trim() === '') return [];
    const m = SYSDIG_LINE.exec(text);
    if (!m) { this.issues.push({ line: lineNo, message: 'not a sysdig event line' }); return []; }
    const [, , time, , comm, tidText, vtid, dir, type, info = ''] = m as unknown as string[];
    const tid = Number(vtid ?? tidText);
    const ts = this.ts(time as string);
    const out: TraceEvent[] = [];
    if (dir === '>') {
      const prev = this.pending.get(tid);
      if (prev) { this.unfinished++; out.push(...this.emit(tid, prev.name, prev.comm, prev.info, null, prev.ts)); }
      if (type === 'procexit') {
        this.pending.delete(tid);
        const status = sysdigNumber(sysdigInfo(info).get('status')) ?? 0;
        out.push({ type: 'exit', seq: ++this.seq, ts, pid: tid, tid, comm: comm as string, code: status, thread: false });
        return out;
      }
      this.pending.set(tid, { name: type as string, comm: comm as string, info, ts });
      return out;
    }
    const p = this.pending.get(tid);
    this.pending.delete(tid);
    // the return value is `res=`, or `fd=` on the exit line of calls that return a descriptor
    const exitInfo = sysdigInfo(info);
    const res = sysdigNumber(exitInfo.get('res')) ?? (FD_RETURNING.test(type as string) ? sysdigNumber(exitInfo.get('fd')) : undefined);
    out.push(...this.emit(tid, type as string, comm as string, `${p && p.name === type ? p.info + ' ' : ''}${info}`, res ?? null, p?.ts ?? ts));
    return out;
  }

  private emit(tid: number, name: string, comm: string, info: string, ret: number | null, ts: number): TraceEvent[] {
    const kv = sysdigInfo(info);
    const nr = syscallNumber(name, this.abi);
    const ev = syscallEvent(++this.seq, tid, tid, this.abi, nr, name, ret, comm);
    ev.ts = ts;
    const path = kv.get('name') ?? kv.get('path') ?? kv.get('filename') ?? kv.get('exe');
    if (path !== undefined && path.startsWith('/')) ev.path = path.replace(/\(.*$/, '');
    const out: TraceEvent[] = [ev];
    if ((name === 'clone' || name === 'fork' || name === 'vfork' || name === 'clone3') && ret !== null && ret > 0) {
      out.push({ type: 'fork', seq: ++this.seq, ts, pid: tid, tid, comm, childPid: ret, childTid: ret, thread: false });
    }
    if ((name === 'execve' || name === 'execveat') && ret === 0) {
      const exe = kv.get('exe') ?? path ?? '';
      out.push({ type: 'exec', seq: ++this.seq, ts, pid: tid, tid, comm, exe, argv: [exe] });
    }
    return out;
  }

  end(): TraceEvent[] {
    const out: TraceEvent[] = [];
    for (const [tid, p] of this.pending) { this.unfinished++; out.push(...this.emit(tid, p.name, p.comm, p.info, null, p.ts)); }
    this.pending.clear();
    return out;
  }

  notes(): string[] {
    return this.unfinished > 0 ? [`${this.unfinished} sysdig call(s) had no exit line (reported with ret null)`] : [];
  }
}

/** strace -f logs, through the streaming parser of src/capture/ptrace. */
class StraceImporter implements LineImporter {
  readonly format = 'strace' as const;
  readonly issues: ImportIssue[] = [];
  private readonly parser = new StraceParser();
  private reported = 0;
  private reportedOutOfOrder = 0;

  line(text: string): TraceEvent[] {
    const out = this.parser.push(text + '\n');
    this.collect();
    return out;
  }

  private collect(): void {
    const samples = this.parser.errorSamples;
    for (; this.reported < samples.length; this.reported++) {
      const s = samples[this.reported] as string;
      const m = /^line (\d+): (.*)$/s.exec(s);
      this.issues.push({ line: m ? Number(m[1]) : 0, message: `not an strace line: ${m ? m[2] : s}` });
    }
    // lines that parse but are out of order: their calls are kept, yet the log is damaged there
    const ooo = this.parser.outOfOrderSamples;
    for (; this.reportedOutOfOrder < ooo.length; this.reportedOutOfOrder++) {
      const o = ooo[this.reportedOutOfOrder] as { line: number; message: string };
      this.issues.push({ line: o.line, message: `strace line out of order: ${o.message}` });
    }
  }

  end(): TraceEvent[] {
    const out = this.parser.end();
    this.collect();
    const extra = this.parser.parseErrors - this.parser.errorSamples.length;
    if (extra > 0) this.issues.push({ line: 0, message: `${extra} more unparsable strace line(s)`, lines: extra });
    const more = this.parser.outOfOrder - this.parser.outOfOrderSamples.length;
    if (more > 0) this.issues.push({ line: 0, message: `${more} more strace line(s) out of order`, lines: more });
    return out;
  }

  notes(): string[] {
    // the parser's summaries of these lines: each is an issue with its line number already
    return this.parser.notes.filter((n) => !n.includes('could not be parsed') && !n.includes('line(s) out of order'));
  }
}
