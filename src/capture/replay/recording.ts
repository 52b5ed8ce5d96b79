// The recording format: the normalized TraceEvent stream as gzip'd JSON lines. Line 1 is a header
// ({"format":"sandtrace.events","version":1,...capture metadata}), then one event per line, then a
// trailer with the capture stats; a missing trailer means the recording was cut short.
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { TraceEvent } from '../events.js';
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

export async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Lines of a file, gunzipped when it is gzip; a truncated gzip stream ends the lines and sets `truncated`. */
export async function* fileLines(path: string, state: { truncated?: string } = {}): AsyncGenerator<string> {
  const raw = createReadStream(path);
  let src: Readable = raw;
  if (await isGzip(path)) {
    const gun = createGunzip();
    raw.pipe(gun);
    src = gun;
  }
  const failed = new Promise<never>((_, reject) => src.on('error', reject));
  failed.catch(() => undefined);
  const rl = createInterface({ input: src, crlfDelay: Infinity });
  const it = rl[Symbol.asyncIterator]();
  try {
    for (;;) {
      let r: IteratorResult<string>;
      try {
        r = await Promise.race([it.next(), failed]);
      } catch (e) {
        state.truncated = (e as Error).message;
        return;
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    rl.close();
    raw.destroy();
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
