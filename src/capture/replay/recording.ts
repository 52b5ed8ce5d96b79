// The recording format: the normalized TraceEvent stream as gzip'd JSON lines. Line 1 is a header
// ({"format":"sandtrace.events","version":1,...capture metadata}), then one event per line, then a
// trailer with the capture stats; a missing trailer means the recording was cut short.
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { constants as zconstants, createGunzip, createGzip, type Gzip } from 'node:zlib';
import { StringDecoder } from 'node:string_decoder';
import { Readable } from 'node:stream';
import type { Abi, TraceEvent } from '../events.js';
import type { CaptureStats } from '../collector.js';
import { SandtraceError } from '../../errors.js';

export const RECORDING_FORMAT = 'sandtrace.events';
export const RECORDING_VERSION = 1;

export interface RecordingHeader {
  format: typeof RECORDING_FORMAT;
  version: typeof RECORDING_VERSION;
  /** ISO time the recording started. */
  created: string;
  /** Backend that captured the events (ebpf, ptrace, vmi, ...). */
  backend?: string;
  /** What was captured: a sample, a command line, a cgroup, a VM. */
  target?: string;
  /** Anything else the capture wants to keep (container id, kernel, sandtrace version). */
  meta?: Record<string, unknown>;
  /**
   * ABI the capture's calls are named in. Absent: x86_64, what every live backend captures here;
   * a call of the other ABI (int 0x80 from a 64-bit program) carries its own `abi` either way.
   */
  abi?: Abi;
}

export interface RecordingTrailer {
  format: 'sandtrace.events.end';
  events: number;
  stats?: CaptureStats;
  /**
   * What the run left changed in the container's filesystem (not events: the overlay's diff at the
   * end), so a replay reports the same dropped and deleted files. Copies stay in the live run's
   * output directory and are not named here.
   */
  changes?: RecordedChange[];
}

/** A file change as recorded: FileChange without the host path of the copy. */
export interface RecordedChange {
  path: string;
  change: 'created' | 'modified' | 'deleted';
  size: number;
  sha256: string | null;
  truncated: boolean;
}

/** Writes a recording; write() buffers (errors surface at close()), close() flushes the file. */
export class RecordingWriter {
  readonly header: RecordingHeader;
  private readonly gz: Gzip;
  private readonly file: WriteStream;
  private readonly done: Promise<void>;
  private readonly opened: Promise<void>;
  private error: unknown;
  private count = 0;
  private closed = false;

  constructor(path: string, header: Omit<RecordingHeader, 'format' | 'version' | 'created'> & { created?: string } = {}) {
    this.header = { format: RECORDING_FORMAT, version: RECORDING_VERSION, created: header.created ?? new Date().toISOString(), ...stripUndefined(header) };
    this.gz = createGzip({ level: 6 });
    this.file = createWriteStream(path);
    this.gz.pipe(this.file);
    this.opened = new Promise((resolve) => {
      this.file.once('open', () => resolve());
      this.file.once('error', () => resolve());
    });
    this.done = new Promise((resolve) => {
      this.file.on('close', () => resolve());
      this.file.on('error', (e) => { this.error ??= e; resolve(); });
      this.gz.on('error', (e) => { this.error ??= e; resolve(); });
    });
    this.gz.write(JSON.stringify(this.header) + '\n');
  }

  /**
   * Open a recording and wait until the file exists, so a bad path fails before the capture
   * starts. `meta.backend` and `meta.sample`/`meta.target` become header fields; all of it is kept.
   */
  static async create(path: string, meta: Record<string, unknown> = {}): Promise<RecordingWriter> {
    const target = meta['target'] ?? meta['sample'];
    const w = new RecordingWriter(path, {
      ...(typeof meta['backend'] === 'string' ? { backend: meta['backend'] } : {}),
      ...(typeof target === 'string' ? { target } : {}),
      meta,
    });
    await w.opened;
    if (w.error) {
      throw new SandtraceError('INPUT_UNREADABLE', `cannot create recording ${path}: ${(w.error as Error).message}`, { cause: w.error, details: { path } });
    }
    return w;
  }

  get events(): number {
    return this.count;
  }

  write(events: readonly TraceEvent[]): void {
    if (this.closed) throw new SandtraceError('INTERNAL', 'RecordingWriter.write after close');
    if (events.length === 0) return;
    let s = '';
    for (const e of events) s += JSON.stringify(e) + '\n';
    this.count += events.length;
    this.gz.write(s);
  }

  /** Write the trailer and flush. Rejects with CAPTURE_FAILED when the file could not be written. */
  async close(stats?: CaptureStats, changes?: readonly RecordedChange[]): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const trailer: RecordingTrailer = {
        format: 'sandtrace.events.end', events: this.count, ...(stats ? { stats } : {}),
        ...(changes ? { changes: changes.map(({ path, change, size, sha256, truncated }) => ({ path, change, size, sha256, truncated })) } : {}),
      };
      this.gz.end(JSON.stringify(trailer) + '\n');
    }
    await this.done;
    if (this.error) {
      throw new SandtraceError('CAPTURE_FAILED', `cannot write recording ${this.file.path}: ${String((this.error as Error).message ?? this.error)}`, { cause: this.error });
    }
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The longest line a trace file may have, in characters. A longer one (a binary file, a line that
 * never ends) is given up as a LongLine once it passes the limit and the rest of it is skipped, so
 * that no file, whatever it holds, makes the reader hold more than this of one line.
 */
export const MAX_LINE = 1 << 20;
/** How much of a LongLine is kept (for format detection and messages). */
const LONG_HEAD = 4096;

/** A line longer than the limit: its first characters, how long it had got when given up, the limit. */
export class LongLine {
  constructor(readonly head: string, readonly length: number, readonly limit: number) {}

  /** The bad-line message for it. */
  get message(): string {
    return `more than ${this.limit.toLocaleString('en-US')} characters long (binary data, or a line that never ends?); skipped`;
  }
}

export type Line = string | LongLine;

/** What fileLines found out about a file besides its lines. */
export interface LinesState {
  /** Why the file ends early: a gzip stream cut short (or corrupt), a read error. */
  truncated?: string;
  /** The incomplete last line of a file that ends early: part of the cut, not a line. */
  partial?: string;
  /** Bytes read so far (after gunzip): 0 at the end means the file or pipe held nothing. */
  bytes?: number;
}

/**
 * gunzip that hands out everything decodable from a stream cut short before it fails: at the end of
 * the input it first flushes what zlib holds (Z_SYNC_FLUSH), and only once that has all been read
 * ends the stream, when zlib reports the missing end ("unexpected end of file"). Ending at once
 * would let that error destroy the stream with decoded lines still unread in its buffer.
 */
function gunzipAll(raw: Readable): { out: Readable; read(): void } {
  const gun = createGunzip();
  let flushed = false;
  let ended = false;
  const endIfRead = () => {
    if (flushed && !ended && gun.readableLength === 0) { ended = true; gun.end(); }
  };
  raw.on('error', (e) => gun.destroy(e));
  raw.on('end', () => gun.flush(zconstants.Z_SYNC_FLUSH, () => { flushed = true; endIfRead(); }));
  raw.pipe(gun, { end: false });
  return { out: gun, read: endIfRead };
}

/**
 * The content of an open file, gunzipped when it is gzip, read once from where it stands: the
 * first chunk tells gzip apart and is then handed on, so a pipe (read only once) works as a file.
 */
async function* contentOf(fh: FileHandle): AsyncGenerator<Buffer> {
  const buf = Buffer.alloc(1 << 16);
  let got = 0;
  // a pipe may hand out fewer than the two bytes of the gzip magic at first
  while (got < 2) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const first = buf.subarray(0, got);
  if (got === 0) return;
  const rest = fh.createReadStream({ autoClose: false, highWaterMark: 1 << 16 });
  if (!(got >= 2 && first[0] === 0x1f && first[1] === 0x8b)) {
    try {
      yield first;
      yield* rest as AsyncIterable<Buffer>;
    } finally {
      rest.destroy();
    }
    return;
  }
  const raw = Readable.from((async function* () {
    yield first;
    yield* rest as AsyncIterable<Buffer>;
  })(), { objectMode: false });
  const src = gunzipAll(raw);
  try {
    for await (const c of src.out as AsyncIterable<Buffer>) {
      src.read();
      yield c;
    }
  } finally {
    raw.destroy();
    src.out.destroy();
    rest.destroy();
  }
}

/**
 * Lines of a file, gunzipped when it is gzip, read once (so a pipe works too). A gzip stream cut
 * short (or a read error) ends the lines after the last complete one and sets `state.truncated`;
 * the incomplete line at the cut goes to `state.partial`. Lines end at \n (a \r before it is
 * dropped). A line longer than `maxLine` characters (default MAX_LINE) is handed out as a LongLine
 * as soon as it passes the limit, and the rest of it is skipped unread into memory.
 */
export async function* fileLines(path: string, state: LinesState = {}, opts: { maxLine?: number } = {}): AsyncGenerator<Line> {
  const max = opts.maxLine ?? MAX_LINE;
  const fh = await open(path, 'r');
  const decoder = new StringDecoder('utf8');
  let parts: string[] = [];
  let pending = 0; // characters in parts
  let skipping = false; // inside a line already given up
  const line = (s: string) => (s.endsWith('\r') ? s.slice(0, -1) : s);
  state.bytes = 0;
  try {
    try {
      for await (const chunk of contentOf(fh)) {
        state.bytes += chunk.length;
        const piece = decoder.write(chunk);
        let start = 0;
        while (start < piece.length) {
          const nl = piece.indexOf('\n', start);
          const end = nl < 0 ? piece.length : nl;
          if (skipping) {
            if (nl < 0) break;
            skipping = false;
            start = nl + 1;
            continue;
          }
          if (pending + (end - start) > max) {
            const head = (parts.join('').slice(0, LONG_HEAD) + piece.slice(start, start + LONG_HEAD)).slice(0, LONG_HEAD);
            const length = pending + (end - start);
            parts = [];
            pending = 0;
            skipping = nl < 0;
            start = end + 1;
            yield new LongLine(head, length, max);
            continue;
          }
          if (nl < 0) {
            parts.push(piece.slice(start));
            pending += piece.length - start;
            break;
          }
          const text = parts.length > 0 ? parts.join('') + piece.slice(start, nl) : piece.slice(start, nl);
          parts = [];
          pending = 0;
          start = nl + 1;
          yield line(text);
        }
      }
    } catch (e) {
      state.truncated = (e as Error).message;
    }
    const rest = skipping ? '' : parts.join('') + decoder.end();
    if (state.truncated !== undefined) {
      if (rest !== '') state.partial = rest;
    } else if (rest !== '') {
      yield line(rest);
    }
  } finally {
    await fh.close();
  }
}

const EVENT_TYPES = new Set(['syscall', 'fork', 'exec', 'exit']);

/** Checks the fields every consumer relies on; returns a reason when the line is not an event. */
export function eventProblem(o: unknown): string | undefined {
  if (!o || typeof o !== 'object') return 'not a JSON object';
  const e = o as Record<string, unknown>;
  if (!EVENT_TYPES.has(e['type'] as string)) return `unknown event type ${JSON.stringify(e['type'])}`;
  for (const f of ['seq', 'ts', 'pid', 'tid']) if (typeof e[f] !== 'number') return `field ${f} missing or not a number`;
  if (e['type'] === 'syscall' && (typeof e['name'] !== 'string' || typeof e['nr'] !== 'number' || !Array.isArray(e['args']))) {
    return 'syscall event without name, nr or args';
  }
  if (e['type'] === 'exec' && typeof e['exe'] !== 'string') return 'exec event without exe';
  const running = e['running'] as { exe?: unknown; argv?: unknown } | undefined;
  if (running !== undefined && (typeof running !== 'object' || running === null || typeof running.exe !== 'string'
    || !Array.isArray(running.argv) || !running.argv.every((a) => typeof a === 'string'))) return 'running without exe or argv';
  return undefined;
}

export function parseHeader(line: string): RecordingHeader | undefined {
  try {
    const h = JSON.parse(line) as Partial<RecordingHeader>;
    if (h && h.format === RECORDING_FORMAT) return h as RecordingHeader;
  } catch {
    // not JSON
  }
  return undefined;
}
