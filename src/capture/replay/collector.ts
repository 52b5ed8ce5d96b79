// RecordingCollector: replays a recording (or an imported trace file) as a Collector, so the
// same pipeline runs over it as over a live capture. Also reads files into per-process traces
// for model training and scoring.
import { stat } from 'node:fs/promises';
import type { TraceEvent } from '../events.js';
import type { CaptureStats, Collector } from '../collector.js';
import { SandtraceError } from '../../errors.js';
import { programKey } from '../../semantics/program.js';
import type { Abi } from '../events.js';
import { checkInputFile } from '../../sample.js';
import { fileLines, parseHeader, type Line, type LinesState, type RecordingHeader } from './recording.js';
import { countMismatch, createImporter, detectFormat, trailerProblem, unknownFormat, versionProblem, SandtraceImporter, type ImportIssue, type ImportOptions, type LineImporter, type RecordingTally, type TraceFormat } from './importers.js';

export interface ReplayOptions extends ImportOptions {
  /** Events per delivered batch. */
  batch?: number;
}

/**
 * A trace file is a regular file with something in it (stat'ed first: a named FIFO is never
 * opened), or a pipe handed over as /dev/stdin or /dev/fd/N (whether it holds anything shows once
 * it is read).
 */
async function checkFile(path: string): Promise<void> {
  const st = await checkInputFile(path);
  if (st.isFile() && st.size === 0) throw empty(path);
}

function empty(path: string): SandtraceError {
  return new SandtraceError('INPUT_EMPTY', `${path} is empty`, { details: { path } });
}

const HEADER_START = /^\s*\{\s*"format"\s*:\s*"sandtrace\.events"/;
/** The format is told from at most this many non-empty lines ... */
const SNIFF_LINES = 50;
/** ... and from about this much of the file (64 KiB; a line counts whole, up to MAX_LINE). */
const SNIFF_CHARS = 1 << 16;

/** A trace file opened for reading once: its format, and its lines from the first. */
interface OpenTrace {
  format: TraceFormat;
  header?: RecordingHeader;
  /** Lines read ahead to tell the format, handed out first. */
  ahead: Line[];
  /** The lines after them. */
  rest: AsyncGenerator<Line>;
  state: LinesState;
}

/**
 * Open a trace file and tell its format from its first lines (or take `forced`); the lines read to
 * tell it are kept, so the file (or pipe) is read only once.
 */
async function openTrace(path: string, forced?: TraceFormat): Promise<OpenTrace> {
  await checkFile(path);
  const state: LinesState = {};
  const rest = fileLines(path, state);
  const ahead: Line[] = [];
  const head: string[] = [];
  let chars = 0;
  try {
    while (head.length < SNIFF_LINES && chars < SNIFF_CHARS) {
      const r = await rest.next();
      if (r.done) break;
      const l = r.value;
      ahead.push(l);
      const text = typeof l === 'string' ? l : l.head;
      chars += l.length + 1;
      if (text.trim() !== '') head.push(text.length > 4096 ? text.slice(0, 4096) : text);
    }
    if (state.bytes === 0 && state.truncated === undefined) throw empty(path);
    // a recording cut short inside its header line is still a recording (of no events)
    const f = forced ?? detectFormat(head) ?? (head.length === 0 && state.partial !== undefined && HEADER_START.test(state.partial) ? 'sandtrace' : undefined);
    if (!f) {
      if (state.corrupt && head.length === 0) {
        throw new SandtraceError('INPUT_CORRUPT', `${path}: the file is corrupt before its first line (${state.truncated})`, { details: { path } });
      }
      if (state.truncated !== undefined && head.length === 0) {
        throw new SandtraceError('INPUT_CORRUPT', `${path}: the file ends before its first line (${state.truncated}); a recording or trace cut short?`, { details: { path } });
      }
      throw unknownFormat(path);
    }
    const header = f === 'sandtrace' && head[0] !== undefined ? parseHeader(head[0]) : undefined;
    // a version this sandtrace cannot read is refused before any event flows
    const version = header ? versionProblem(header, path) : undefined;
    if (version) throw new SandtraceError('INPUT_CORRUPT', version, { details: { path } });
    return { format: f, ...(header ? { header } : {}), ahead, rest, state };
  } catch (e) {
    await rest.return(undefined);
    throw e;
  }
}

/** Detect the format of a file from its first lines (gzip is looked through). */
export async function detectFileFormat(path: string): Promise<TraceFormat> {
  const t = await openTrace(path);
  await t.rest.return(undefined);
  return t.format;
}

/**
 * The ABI a file's calls are named in: a recording's header says (absent: x86_64, every live
 * backend); strace logs and sysdig text are the x86_64 host's (a 32-bit call carries its own abi)
 * unless `abi` says otherwise; numeric traces (adfa, pairs) are what they are read as.
 */
function declaredAbi(format: TraceFormat, header: RecordingHeader | undefined, opts: ImportOptions): Abi {
  if (format === 'sandtrace') return header?.abi === 'i386' ? 'i386' : 'x86_64';
  if (format === 'strace') return 'x86_64';
  if (format === 'sysdig') return opts.abi ?? 'x86_64';
  return opts.abi ?? opts.defaultAbi ?? 'x86_64';
}

export class RecordingCollector implements Collector {
  readonly backend = 'replay' as const;
  private readonly path: string;
  private readonly opts: ReplayOptions;
  private format: TraceFormat | undefined;
  private fileHeader: RecordingHeader | undefined;
  private importer: LineImporter | undefined;
  /** The file as opened by start(), until events() reads it. */
  private opened: OpenTrace | undefined;
  private stopped = false;
  private started = 0;
  private cut: string | undefined;
  private damaged = false;
  private readonly st: CaptureStats = { backend: 'replay', events: 0, lost: 0, parseErrors: 0, duration: 0, notes: [] };

  constructor(path: string, opts: ReplayOptions = {}) {
    this.path = path;
    this.opts = opts;
  }

  /** Checks the file and detects its format; throws INPUT_* errors before any event flows. */
  async start(): Promise<void> {
    this.started = performance.now();
    await this.opened?.rest.return(undefined);
    const t = await openTrace(this.path, this.opts.format);
    this.opened = t;
    this.format = t.format;
    this.fileHeader = t.header;
    this.importer = createImporter(this.format, this.opts);
    if (this.format !== 'sandtrace') this.st.notes.push(`imported ${this.path} as ${this.format}`);
  }

  get detectedFormat(): TraceFormat | undefined {
    return this.format;
  }

  /** A recording's header (after start()). */
  get header(): RecordingHeader | undefined {
    return this.fileHeader;
  }

  /** The ABI the file's calls are named in (after start(); see declaredAbi). */
  get abi(): Abi {
    return declaredAbi(this.format ?? 'sandtrace', this.fileHeader, this.opts);
  }

  /** Why the file ended early (a gzip stream cut short), after events(); undefined when it did not. */
  get truncated(): string | undefined {
    return this.cut;
  }

  /** After events(): the gzip data is damaged, not only cut (`truncated` says what and where). */
  get corrupt(): boolean {
    return this.damaged;
  }

  /** A recording's trailer as read, and the events read (after events()); undefined for other formats. */
  recording(): RecordingTally | undefined {
    return this.importer instanceof SandtraceImporter ? this.importer.tally() : undefined;
  }

  /** Lines that could not be read, with their line numbers. */
  issues(): readonly ImportIssue[] {
    return this.importer?.issues ?? [];
  }

  async *events(): AsyncIterable<TraceEvent[]> {
    if (!this.importer) await this.start();
    const imp = this.importer as LineImporter;
    const size = this.opts.batch ?? 1024;
    let batch: TraceEvent[] = [];
    // the file as start() opened it (read once: it may be a pipe), or opened again
    const t = this.opened ?? await openTrace(this.path, this.format);
    this.opened = undefined;
    const { state } = t;
    const lines = async function* (): AsyncGenerator<Line> {
      yield* t.ahead;
      yield* t.rest;
    };
    let lineNo = 0;
    for await (const line of lines()) {
      if (this.stopped) break;
      lineNo++;
      if (typeof line !== 'string') {
        imp.issues.push({ line: lineNo, message: line.message });
        continue;
      }
      const evs = imp.line(line, lineNo);
      for (const e of evs) batch.push(e);
      if (batch.length >= size) {
        this.st.events += batch.length;
        yield batch;
        batch = [];
      }
    }
    for (const e of imp.end()) batch.push(e);
    if (batch.length > 0) {
      this.st.events += batch.length;
      yield batch;
    }
    this.cut = state.truncated;
    this.damaged = state.corrupt === true;
    this.finish(imp, state);
  }

  private finish(imp: LineImporter, { truncated, corrupt }: LinesState): void {
    this.st.parseErrors = imp.issues.reduce((n, i) => n + (i.lines ?? 1), 0);
    // a bad line of a recording is one lost event; other formats' bad lines may hold several
    if (imp.format === 'sandtrace') this.st.lost = imp.issues.filter((i) => !i.noEvent).length;
    const listed = imp.issues.filter((i) => i.lines === undefined).slice(0, 20);
    for (const i of listed) this.st.notes.push(`line ${i.line}: ${i.message}`);
    if (this.st.parseErrors > listed.length) this.st.notes.push(`${this.st.parseErrors - listed.length} more bad line(s)`);
    if (truncated) this.st.notes.push(corrupt ? `file is corrupt (${truncated}); events before the damage were replayed` : `file is truncated (${truncated}); events up to the cut were replayed`);
    this.st.notes.push(...imp.notes());
    this.st.duration = (performance.now() - this.started) / 1000;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // opened by start() and never read: let the file go
    const t = this.opened;
    this.opened = undefined;
    await t?.rest.return(undefined);
  }

  stats(): CaptureStats {
    return { ...this.st, notes: [...this.st.notes] };
  }
}

export interface ProcessTrace {
  /** file path, plus `#pid.tid.n` when a file holds several traces */
  id: string;
  pid: number;
  tid: number;
  /** Program of the process (last exec, as programKey names it), '' when the file never says. */
  exe: string;
  calls: string[];
  /** The events of the trace, in order (syscalls, execs, forks, exits). */
  events: TraceEvent[];
}

export interface FileTraces {
  path: string;
  format: TraceFormat;
  /** The ABI the file's calls are named in (a model judges only traces of its own). */
  abi: Abi;
  traces: ProcessTrace[];
  issues: ImportIssue[];
  notes: string[];
  /**
   * Why the file holds less than it was meant to, when it does: cut short (a truncated gzip, a
   * recording without its trailer), corrupt (damaged gzip data: read up to the damage), or a
   * trailer whose count disagrees with the events read or is malformed. Bad lines are in issues.
   */
  shortfall?: string;
}

/**
 * Read a file into one trace per thread and program: a process that execs starts a new trace
 * under its new program (the calls before belong to the program it was running, inherited from
 * its parent at fork), and pid reuse after an exit starts a new trace. The anomaly detector and
 * live learning segment processes the same way.
 */
export async function readTraces(path: string, opts: ImportOptions & { keepEvents?: boolean } = {}): Promise<FileTraces> {
  const c = new RecordingCollector(path, opts);
  await c.start();
  const live = new Map<number, ProcessTrace>(); // by tid
  const exeOf = new Map<number, string>(); // by pid
  const all: ProcessTrace[] = [];
  const open = (pid: number, tid: number): ProcessTrace => {
    const t: ProcessTrace = { id: path, pid, tid, exe: exeOf.get(pid) ?? '', calls: [], events: [] };
    live.set(tid, t);
    all.push(t);
    return t;
  };
  const closeProcess = (pid: number) => {
    for (const [tid, t] of [...live]) if (t.pid === pid) live.delete(tid);
  };
  for await (const batch of c.events()) {
    for (const e of batch) {
      if (e.running && !exeOf.get(e.pid)) {
        // a process found mid-life, named by the capture: its trace so far (none, or unnamed calls) is that program's
        const program = programKey({ exe: e.running.exe, argv: e.running.argv, name: e.comm ?? '' });
        exeOf.set(e.pid, program);
        for (const t of live.values()) if (t.pid === e.pid && t.exe === '') t.exe = program;
      }
      if (e.type === 'exec') {
        // a name the live monitor could not confirm (ExecEvent.exeUnverified) trains no program's model
        const program = e.exeUnverified ? '' : programKey({ exe: e.exe, argv: e.argv, name: e.comm ?? '' });
        exeOf.set(e.pid, program);
        const cur = live.get(e.tid);
        closeProcess(e.pid);
        if (cur && cur.calls.length === 0) { cur.exe = program; live.set(e.tid, cur); } else open(e.pid, e.tid);
      }
      let t = live.get(e.tid);
      if (t && t.pid !== e.pid) t = undefined; // tid reused by another process
      t ??= open(e.pid, e.tid);
      if (opts.keepEvents) t.events.push(e);
      if (e.type === 'syscall') t.calls.push(e.name);
      else if (e.type === 'fork' && !e.thread) {
        // the child runs its parent's program until it execs
        if (!exeOf.has(e.childPid)) exeOf.set(e.childPid, exeOf.get(e.pid) ?? '');
      } else if (e.type === 'exit') {
        if (e.thread) live.delete(e.tid);
        else { closeProcess(e.pid); exeOf.delete(e.pid); }
      }
    }
  }
  const traces = all.filter((t) => t.calls.length > 0 || t.events.length > 0);
  if (traces.length > 1) traces.forEach((t, i) => { t.id = `${path}#${t.pid}.${t.tid}.${i}`; });
  const st = c.stats();
  const tally = c.recording();
  const short = [
    c.truncated !== undefined ? (c.corrupt ? `corrupt (${c.truncated})` : `cut short: the file ends unexpectedly (${c.truncated})`)
      : c.detectedFormat === 'sandtrace' && !tally?.trailer ? 'cut short: the recording has no trailer' : '',
    tally?.trailer ? trailerProblem(tally.trailer) ?? countMismatch(tally) ?? '' : '',
  ].filter(Boolean).join('; ');
  return { path, format: c.detectedFormat as TraceFormat, abi: c.abi, traces, issues: [...c.issues()], notes: st.notes, ...(short ? { shortfall: short } : {}) };
}

/** A file met inside a trace directory that cannot be looked at: why, in words, with its code. */
function unreadableEntry(p: string, e: unknown): SandtraceError {
  const code = (e as NodeJS.ErrnoException).code;
  const details = { path: p, errno: code };
  if (code === 'ENOENT') return new SandtraceError('INPUT_MISSING', `${p} does not exist (a symbolic link to nothing?)`, { cause: e, details });
  if (code === 'ELOOP') return new SandtraceError('INPUT_UNREADABLE', `cannot read ${p}: too many levels of symbolic links (a symbolic link loop)`, { cause: e, details });
  if (code === 'EACCES' || code === 'EPERM') return new SandtraceError('INPUT_UNREADABLE', `cannot read ${p}: permission denied`, { cause: e, details });
  return new SandtraceError('INPUT_UNREADABLE', `cannot read ${p}: ${code ?? (e as Error).message}`, { cause: e, details });
}

/**
 * Resolve files and directories (recursively, sorted) into the list of files to read. A path given
 * that is a FIFO, socket or device is refused; one met inside a directory is left out (never opened).
 * Symbolic links are followed, but each directory is read once (known by device and inode): a link
 * back up the tree (a loop), to a directory read already or to one that holds the one given (`/`)
 * is not walked again, so no link makes the walk endless or the whole file system.
 */
export async function expandPaths(paths: readonly string[]): Promise<string[]> {
  const { readdir, realpath } = await import('node:fs/promises');
  const { dirname, join } = await import('node:path');
  const out: string[] = [];
  const seen = new Set<string>();
  const above = new Set<string>();
  // as bigints: an overlayfs inode number (xino sets the top bits) is past what a double tells apart
  const id = async (d: string) => { const b = await stat(d, { bigint: true }); return `${b.dev}:${b.ino}`; };
  const walk = async (p: string, top: boolean): Promise<void> => {
    let st;
    if (top) st = await checkInputFile(p, '', { directory: true });
    else {
      try {
        st = await stat(p);
      } catch (e) {
        throw unreadableEntry(p, e);
      }
    }
    if (st.isDirectory()) {
      let dir: string;
      try {
        dir = await id(p);
      } catch (e) {
        throw unreadableEntry(p, e);
      }
      if (seen.has(dir) || (!top && above.has(dir))) return;
      seen.add(dir);
      if (top) {
        // the directories above one given: a link inside it up to one of them leads back into it
        try {
          for (let d = await realpath(p), up = dirname(d); up !== d; d = up, up = dirname(up)) above.add(await id(up));
        } catch {
          // an ancestor that cannot be looked at: only the directories read are known then
        }
      }
      let names: string[];
      try {
        names = await readdir(p);
      } catch (e) {
        throw unreadableEntry(p, e);
      }
      for (const n of names.sort()) if (!n.startsWith('.')) await walk(join(p, n), false);
    } else if (st.isFile() ? top || st.size > 0 : top) out.push(p); // top: checkInputFile let only a handed-over pipe through
  };
  for (const p of paths) await walk(p, true);
  return out;
}


