// The recording format: the normalized TraceEvent stream as gzip'd JSON lines. Line 1 is a header
// ({"format":"sandtrace.events","version":1,...capture metadata}), then one event per line, then a
// trailer with the capture stats; a missing trailer means the recording was cut short.
import type { SandboxDns } from '../../sandbox/types.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { StringDecoder } from 'node:string_decoder';
import type { Abi, ArgName, TraceEvent } from '../events.js';
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
  /** What the sandbox's DNS sinkhole was asked (src/sandbox/dns.ts), so a replay names the same lookups. */
  dns?: SandboxDns;
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
  private readonly gz: zlib.Gzip;
  private readonly file: WriteStream;
  private readonly done: Promise<void>;
  private readonly opened: Promise<void>;
  private error: unknown;
  private count = 0;
  private closed = false;

  constructor(path: string, header: Omit<RecordingHeader, 'format' | 'version' | 'created'> & { created?: string } = {}) {
    this.header = { format: RECORDING_FORMAT, version: RECORDING_VERSION, created: header.created ?? new Date().toISOString(), ...stripUndefined(header) };
    this.gz = zlib.createGzip({ level: 6 });
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
  async close(stats?: CaptureStats, changes?: readonly RecordedChange[], dns?: SandboxDns): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const trailer: RecordingTrailer = {
        format: 'sandtrace.events.end', events: this.count, ...(stats ? { stats } : {}),
        ...(changes ? { changes: changes.map(({ path, change, size, sha256, truncated }) => ({ path, change, size, sha256, truncated })) } : {}),
        ...(dns ? { dns } : {}),
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
  /**
   * The gzip data is damaged, not only cut short (a checksum that does not match, trailing
   * garbage, corrupt compressed data): `truncated` says what and at which byte. Everything decoded
   * before the damage was handed out.
   */
  corrupt?: true;
  /** The incomplete last line of a file that ends early: part of the cut, not a line. */
  partial?: string;
  /** Bytes read so far (after gunzip): 0 at the end means the file or pipe held nothing. */
  bytes?: number;
}

/**
 * Why a gzip stream cannot be read on: a cut (`unexpected end of file`, zlib's words, kept for
 * the messages built on it) or damage, with the byte of the compressed file where it was found.
 */
class GzipProblem extends Error {
  constructor(message: string, readonly corrupt: boolean) {
    super(message);
  }
}

const crc32: (data: Uint8Array, value?: number) => number = zlib.crc32 ?? ((data, value = 0) => {
  // Node 20 before 20.15 has no zlib.crc32
  let c = ~value >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
});

/** Decoded output held before the inflater is paused until it is handed out. */
const INFLATE_QUEUE = 1 << 20;

/**
 * A raw inflater fed one chunk at a time: feed() hands out what the chunk decodes as it comes,
 * and says how much of the chunk the deflate data used (the rest follows its end).
 */
class Inflater {
  private readonly z = zlib.createInflateRaw();
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private wake: (() => void) | undefined;
  private fed = 0;
  error: Error | undefined;

  constructor() {
    this.z.on('data', (c: Buffer) => {
      this.queue.push(c);
      this.queued += c.length;
      if (this.queued >= INFLATE_QUEUE) this.z.pause();
      this.poke();
    });
    this.z.on('error', (e) => { this.error ??= e; this.poke(); });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Inflate `chunk`; afterwards `left` is how many of its bytes come after the end of the deflate data. */
  async *feed(chunk: Buffer): AsyncGenerator<Buffer> {
    let written = false;
    this.fed += chunk.length;
    this.z.write(chunk, () => { written = true; this.poke(); });
    for (;;) {
      while (this.queue.length > 0) {
        const c = this.queue.shift() as Buffer;
        this.queued -= c.length;
        yield c;
      }
      if (this.error || written) return;
      if (this.z.isPaused()) this.z.resume();
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
  }

  /** Bytes fed that the deflate data did not use: more than 0 once it has ended. */
  get left(): number {
    return this.fed - this.z.bytesWritten;
  }

  destroy(): void {
    this.z.destroy();
  }
}

/**
 * gunzip (RFC 1952: members one after another, zero padding after them allowed) that hands out
 * every byte decoded before it meets a cut or damage, then throws a GzipProblem saying what and
 * where. zlib's own gunzip throws away the output of the call that meets the problem, up to 16 KiB
 * of good lines, half of a small recording whose checksum is damaged or that has trailing garbage;
 * so the framing (header, checksum, length) is read here and zlib only inflates the deflate data.
 */
async function* gunzip(input: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  let buf: Buffer = Buffer.alloc(0); // read and not yet used
  let at = 0; // offset of buf[0] in the file
  const more = async (): Promise<boolean> => {
    const r = await input.next();
    if (r.done) return false;
    buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
    return true;
  };
  const need = async (n: number): Promise<void> => {
    while (buf.length < n) if (!(await more())) throw new GzipProblem('unexpected end of file', false);
  };
  let header: number | undefined; // CRC-32 of the header so far, while it is read (FHCRC)
  const take = (n: number) => {
    if (header !== undefined) header = crc32(buf.subarray(0, n), header);
    buf = buf.subarray(n);
    at += n;
  };
  const skipString = async () => { // a zero-terminated header field, skipped without holding it
    for (;;) {
      const z = buf.indexOf(0);
      if (z >= 0) { take(z + 1); return; }
      take(buf.length);
      await need(1);
    }
  };
  const damaged = (what: string, where: number, why: string, prep = 'at') =>
    new GzipProblem(`${what} ${prep} byte ${where.toLocaleString('en-US')} of the gzip file${why ? `: ${why}` : ''}`, true);
  for (let member = 0; ; member++) {
    if (member > 0) {
      // after a member: the end of the file, zero padding, or the next member
      for (;;) {
        if (buf.length === 0 && !(await more())) return;
        const nz = buf.findIndex((b) => b !== 0);
        if (nz >= 0) { take(nz); break; }
        take(buf.length);
      }
      if (buf.length < 2) await more();
      if (buf[0] !== 0x1f || buf[1] !== 0x8b) throw damaged('trailing garbage', at, 'data after the end of the gzip stream that is not gzip');
    }
    await need(10);
    const start = at;
    if (buf[2] !== 8) throw damaged(`unknown compression method ${buf[2]}`, start + 2, '');
    const flags = buf[3] as number;
    header = 0;
    take(10);
    if (flags & 4) { await need(2); const xlen = buf.readUInt16LE(0); take(2); await need(xlen); take(xlen); }
    if (flags & 8) await skipString();
    if (flags & 16) await skipString();
    const sum = header & 0xffff;
    header = undefined;
    if (flags & 2) {
      await need(2);
      if (buf.readUInt16LE(0) !== sum) throw damaged('header checksum mismatch', at, 'the gzip header does not match its CRC-16');
      take(2);
    }
    const inf = new Inflater();
    let crc = 0;
    let size = 0;
    try {
      for (;;) {
        if (buf.length === 0 && !(await more())) throw new GzipProblem('unexpected end of file', false);
        const chunk = buf;
        for await (const out of inf.feed(chunk)) {
          crc = crc32(out, crc);
          size += out.length;
          yield out;
        }
        // zlib read the chunk up to the byte it stopped at in an earlier call; the damage is past it.
        // What the failing call decoded (at most one 16 KiB output chunk) is lost with it: data
        // decoded just before damage in the deflate data is garbage more often than not anyway.
        if (inf.error) throw damaged('corrupt compressed data', at + Math.max(0, chunk.length - inf.left), inf.error.message, 'past');
        const left = Math.min(inf.left, chunk.length);
        take(chunk.length - left);
        if (left > 0) break;
      }
    } finally {
      inf.destroy();
    }
    await need(8);
    if (buf.readUInt32LE(0) !== crc) throw damaged('checksum mismatch', at, 'the data decoded does not match the CRC-32 its gzip member ends with');
    if (buf.readUInt32LE(4) !== size % 2 ** 32) throw damaged('length mismatch', at + 4, 'the data decoded is not as long as its gzip member says');
    take(8);
  }
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
  const input = (async function* () {
    yield first;
    yield* rest as AsyncIterable<Buffer>;
  })();
  try {
    yield* gunzip(input);
  } finally {
    await input.return(undefined);
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
      if (e instanceof GzipProblem && e.corrupt) state.corrupt = true;
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

/** A field of an event: its name, whether every event of its type has it, what it must be (for the message) and the test of it. */
interface Field { name: string; required: boolean; what: string; ok: (v: unknown) => boolean }

const record = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// a pointer or a return value may pass 2^53 (the value shown then loses precision; events.ts)
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const allFinite = (a: unknown[]) => {
  for (let i = 0; i < a.length; i++) if (!finite(a[i])) return false;
  return true;
};
const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const ARG_NAMES = new Set<unknown>(['path', 'path2', 'argv', 'addr', 'exe'] satisfies ArgName[]);
const sockAddr = (a: unknown): boolean => record(a) && (
  a['family'] === 'inet' || a['family'] === 'inet6' ? typeof a['address'] === 'string' && Number.isSafeInteger(a['port'])
    : a['family'] === 'unix' ? typeof a['path'] === 'string' && typeof a['abstract'] === 'boolean'
      : (a['family'] === 'netlink' || a['family'] === 'packet' || a['family'] === 'other') && finite(a['raw']));

type Check = readonly [what: string, ok: (v: unknown) => boolean];
const integer: Check = ['an integer', Number.isSafeInteger];
const text: Check = ['a string', (v) => typeof v === 'string'];
const flag: Check = ['true or false', (v) => typeof v === 'boolean'];
const yes: Check = ['true', (v) => v === true];
const texts: Check = ['a list of strings', strings];
const argNames: Check = ['a list of argument names', (v) => Array.isArray(v) && v.every((x) => ARG_NAMES.has(x))];
const oneOf = (...vs: string[]): Check => [vs.map((x) => `'${x}'`).join(' or '), (v) => vs.includes(v as string)];
const abi = oneOf('x86_64', 'i386');
const need = (name: string, [what, ok]: Check): Field => ({ name, required: true, what, ok });
const may = (name: string, [what, ok]: Check): Field => ({ name, required: false, what, ok });

/**
 * The fields of each event type (src/capture/events.ts), every one the engine reads: a hand-made
 * or damaged line with one of them wrong is a bad line with its number, never a crash deep in the
 * engine or a wrong value in the report. This runs per event: about 0.3 µs of the 11 µs a
 * recorded event takes to replay (485,000 events: 0.2 s of 5.5 s).
 */
const COMMON: readonly Field[] = [
  need('seq', integer), need('ts', ['a number', finite]), need('pid', integer), need('tid', integer), may('comm', text),
  may('running', ['an object {exe, argv, tty?}', (v) => record(v) && typeof v['exe'] === 'string' && strings(v['argv']) && (v['tty'] === undefined || (Number.isSafeInteger(v['tty']) && (v['tty'] as number) >= 0))]),
];
const TABLE: readonly (readonly [string, readonly Field[]])[] = [
  ['syscall', [...COMMON,
    need('abi', abi), need('nr', integer), need('name', text), need('args', ['a list of numbers', (v) => Array.isArray(v) && allFinite(v)]),
    need('ret', ['a number or null', (v) => v === null || finite(v)]),
    may('path', text), may('path2', text), may('argv', texts), may('addr', ['a socket address', sockAddr]),
    may('addrs', ['a list of socket addresses', (v) => Array.isArray(v) && v.every((a) => a === null || sockAddr(a))]),
    may('via', oneOf('socketcall')), may('truncated', argNames), may('readAtExit', yes), may('pathFromKernel', yes), may('addrFromKernel', yes), may('unreadable', argNames),
    may('signal', oneOf('interrupted', 'restarted'))]],
  ['fork', [...COMMON, need('childPid', integer), need('childTid', integer), need('thread', flag)]],
  ['exec', [...COMMON,
    need('exe', text), need('argv', texts), may('uid', integer), may('abi', abi), may('truncated', argNames), may('unreadable', argNames),
    may('file', ['an object {dev, ino}', (v) => record(v) && finite(v['dev']) && typeof v['ino'] === 'string' && (v['interpreter'] === undefined || v['interpreter'] === true)]),
    may('exeUnverified', yes), may('byKernel', yes)]],
  ['exit', [...COMMON, need('code', integer), may('signal', integer), need('thread', flag)]],
];
/** Per type: its fields by name, and how many every event of the type has. */
const FIELDS = new Map<unknown, { byName: Map<string, Field>; required: number; fields: readonly Field[] }>(TABLE.map(([type, fields]) =>
  [type, { byName: new Map(fields.map((f) => [f.name, f])), required: fields.filter((f) => f.required).length, fields }]));

/** Checks every field the engine reads; returns a reason when the line is not an event. */
export function eventProblem(o: unknown): string | undefined {
  if (!record(o)) return 'not a JSON object';
  const type = FIELDS.get(o['type']);
  if (!type) return `unknown event type ${JSON.stringify(o['type']) ?? 'undefined'}`;
  // the fields the line has (fewer than the type may have), then the count of those it must have
  let required = 0;
  for (const name in o) {
    const f = type.byName.get(name);
    if (f === undefined) continue; // 'type', or a field this sandtrace does not read
    if (!f.ok(o[name])) return `${o['type'] as string} event: ${name} is not ${f.what}`;
    if (f.required) required++;
  }
  if (required < type.required) return `${o['type'] as string} event: ${type.fields.find((f) => f.required && o[f.name] === undefined)?.name} missing`;
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
