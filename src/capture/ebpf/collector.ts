// The eBPF capture backend: runs the probe loader (probe/build/sandtrace-probe) on one cgroup v2
// subtree and turns its binary stream into TraceEvent batches, with back-pressure down to the
// cgroup freezer so that a slow consumer pauses the sample instead of losing events.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaptureStats, Collector } from '../collector.js';
import type { TraceEvent } from '../events.js';
import { SandtraceError } from '../../errors.js';
import { ProbeDecoder } from './decode.js';

export interface EbpfCollectorOptions {
  /** cgroup v2 directory (under the unified hierarchy) whose tasks, and descendants', are traced. */
  cgroupPath: string;
  /** Host pid whose pid namespace pids are reported in (default: sandtrace's own). */
  pidNamespaceOf?: number;
  /**
   * Freezer used for back-pressure: a cgroup v1 freezer directory or its freezer.state, or a cgroup v2
   * directory or its cgroup.freeze (default: cgroupPath/cgroup.freeze).
   */
  freezerPath?: string;
  /** Ring buffer size in bytes, a power of two (default 64 MiB). */
  ringBytes?: number;
  /** The loader binary (default: probe/build/sandtrace-probe of this checkout, or $SANDTRACE_PROBE). */
  loaderPath?: string;
  /** Decoded events held for a slow consumer before reading stops and back-pressure starts. */
  queueEvents?: number;
  /** Sees every raw chunk of the probe's stream (benchmarks, recordings). */
  rawSink?: (chunk: Buffer) => void;
}

/** The file to write to freeze: freezer.state (v1) or cgroup.freeze (v2), from a file or directory path. */
export function freezerFile(path: string): string {
  if (path.endsWith('/freezer.state') || path.endsWith('/cgroup.freeze')) return path;
  for (const f of ['freezer.state', 'cgroup.freeze']) if (existsSync(join(path, f))) return join(path, f);
  throw new SandtraceError('INPUT_MISSING', `no cgroup freezer at ${path}`, { details: { path } });
}

/** Finds probe/build/sandtrace-probe above this module (works from src/ and from dist/). */
export function defaultLoaderPath(): string {
  const env = process.env['SANDTRACE_PROBE'];
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'probe', 'Makefile'))) return join(dir, 'probe', 'build', 'sandtrace-probe');
    dir = dirname(dir);
  }
  return join(process.cwd(), 'probe', 'build', 'sandtrace-probe');
}

/** Level and inode of the pid namespace of a host pid, for the probe's pid translation. */
export function pidNamespace(hostPid: number): { level: number; inum: number } {
  try {
    const status = readFileSync(`/proc/${hostPid}/status`, 'utf8');
    const line = /^NSpid:\s*(.*)$/m.exec(status)?.[1] ?? '';
    const level = Math.max(0, line.trim().split(/\s+/).length - 1);
    return { level, inum: statSync(`/proc/${hostPid}/ns/pid`).ino };
  } catch (e) {
    throw new SandtraceError('INPUT_MISSING', `no process ${hostPid} to take the pid namespace from`, { cause: e });
  }
}

function checkLoader(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new SandtraceError('PROBE_BUILD_MISSING', `the eBPF probe is not built (${path}); run make setup`, { details: { path } });
  }
}

function checkRoot(): void {
  if (process.getuid?.() !== 0) throw new SandtraceError('NOT_ROOT', 'eBPF capture needs root');
}

let availability: Promise<{ ok: boolean; reason: string }> | null = null;

/** Whether the eBPF backend can run here (built, root, and the kernel accepts the program); cached. */
export function ebpfAvailable(loaderPath = defaultLoaderPath()): Promise<{ ok: boolean; reason: string }> {
  availability ??= (async (): Promise<{ ok: boolean; reason: string }> => {
    try {
      checkRoot();
      checkLoader(loaderPath);
    } catch (e) {
      return { ok: false, reason: (e as Error).message };
    }
    return new Promise<{ ok: boolean; reason: string }>((resolve) => {
      const child = spawn(loaderPath, ['--check'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.on('error', (e) => resolve({ ok: false, reason: e.message }));
      child.on('close', (code) => resolve(code === 0
        ? { ok: true, reason: 'eBPF probe loads' }
        : { ok: false, reason: lastLine(err) || `probe check exited with ${code}` }));
    });
  })();
  return availability;
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.replace(/^sandtrace-probe: /, '') ?? '';
}

export class EbpfCollector implements Collector {
  readonly backend = 'ebpf' as const;
  private readonly opts: EbpfCollectorOptions;
  private readonly loaderPath: string;
  private readonly freezerPath: string | undefined;
  private readonly queueMax: number;
  private child: ChildProcess | null = null;
  private readonly decoder = new ProbeDecoder();
  private readonly queue: TraceEvent[][] = [];
  private queued = 0;
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: SandtraceError | null = null;
  private draining = false;
  private stderr = '';
  /** Nanoseconds the target was frozen before its last freeze or thaw, and when (performance.now()) it was frozen again, if it is now. */
  private pausedNs = 0;
  private frozenSince: number | undefined;
  private delivered = 0;
  private startedAt = 0;
  private endedAt = 0;
  private exited: Promise<void> = Promise.resolve();
  private iterating = false;

  constructor(opts: EbpfCollectorOptions) {
    this.opts = opts;
    this.loaderPath = opts.loaderPath ?? defaultLoaderPath();
    const v2 = join(opts.cgroupPath, 'cgroup.freeze');
    this.freezerPath = opts.freezerPath !== undefined ? freezerFile(opts.freezerPath) : existsSync(v2) ? v2 : undefined;
    this.queueMax = opts.queueEvents ?? 65536;
  }

  async start(): Promise<void> {
    if (this.child) throw new SandtraceError('USAGE', 'EbpfCollector.start() called twice');
    checkRoot();
    checkLoader(this.loaderPath);
    if (!existsSync(join(this.opts.cgroupPath, 'cgroup.procs'))) {
      throw new SandtraceError('INPUT_MISSING', `not a cgroup directory: ${this.opts.cgroupPath}`, { details: { path: this.opts.cgroupPath } });
    }
    const ns = pidNamespace(this.opts.pidNamespaceOf ?? process.pid);
    const args = ['--cgroup', this.opts.cgroupPath, '--ns-level', String(ns.level), '--ns-inum', String(ns.inum),
      '--ring', String(this.opts.ringBytes ?? 64 << 20)];
    if (this.freezerPath) args.push('--freeze', this.freezerPath);

    const child = spawn(this.loaderPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = performance.now();
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        // the loader's time frozen so far, at each freeze (1) and thaw (0) (pausedSeconds())
        const m = /^sandtrace-probe-paused (\d+) ([01])$/.exec(l);
        if (m) {
          this.pausedNs = Number(m[1]);
          this.frozenSince = m[2] === '1' ? performance.now() : undefined;
        } else if (this.stderr.length < 65536) this.stderr += `${l}\n`;
      }
    });
    child.stderr!.on('end', () => { if (partial && this.stderr.length < 65536) this.stderr += partial; });
    child.stdin!.on('error', () => { /* the loader is gone; its exit is handled below */ });
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));

    await new Promise<void>((resolve, reject) => {
      let ready = false;
      const stdout = child.stdout!;
      const sink = this.opts.rawSink;
      stdout.on('data', (chunk: Buffer) => {
        sink?.(chunk);
        const events = this.decoder.push(chunk);
        if (!ready && this.decoder.baseNs !== null) {
          ready = true;
          resolve();
        }
        if (events.length) this.enqueue(events);
      });
      // Loading takes well under a second; a probe that never gets ready must not hang the caller.
      let late = false;
      const timer = setTimeout(() => { if (!ready) { late = true; child.kill('SIGKILL'); } }, 30_000);
      child.on('error', (e) => reject(new SandtraceError('PROBE_LOAD_FAILED', `cannot run the probe: ${e.message}`, { cause: e })));
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.endedAt = performance.now();
        if (!ready) {
          this.ended = true;
          reject(new SandtraceError('PROBE_LOAD_FAILED', late ? 'the probe was not ready after 30 s' : lastLine(this.stderr) || `probe exited with ${code ?? signal}`,
            { details: { code, signal } }));
          return;
        }
        // Calls still held for a signal's outcome (released by the STATS record when the stream ended cleanly).
        const held = this.decoder.flush();
        if (held.length) this.enqueue(held);
        if (!this.decoder.stats) {
          this.thawAfterCrash();
          this.failure = new SandtraceError('CAPTURE_FAILED',
            `the probe ended without its final record (${code ?? signal}): ${lastLine(this.stderr) || 'no message'}`);
        }
        this.ended = true;
        this.notify();
      });
    });
  }

  /** Read side of the back-pressure: stop reading the pipe while the consumer is behind. */
  private enqueue(events: TraceEvent[]): void {
    this.queue.push(events);
    this.queued += events.length;
    if (!this.draining && this.queued > this.queueMax) this.child?.stdout?.pause();
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private thawAfterCrash(): void {
    if (!this.freezerPath) return;
    try {
      writeFileSync(this.freezerPath, this.freezerPath.endsWith('freezer.state') ? 'THAWED' : '0');
    } catch { /* the cgroup may be gone already */ }
  }

  async *events(): AsyncIterable<TraceEvent[]> {
    if (!this.child) throw new SandtraceError('USAGE', 'EbpfCollector.events() before start()');
    if (this.iterating) throw new SandtraceError('USAGE', 'EbpfCollector.events() can be iterated once');
    this.iterating = true;
    for (;;) {
      const batch = this.queue.shift();
      if (batch) {
        this.queued -= batch.length;
        if (this.queued <= this.queueMax / 2) this.child.stdout?.resume();
        this.delivered += batch.length;
        yield batch;
        continue;
      }
      if (this.ended) break;
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
    if (this.failure) throw this.failure;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    // From here on nothing more is produced by the workload: read everything, whatever the consumer does.
    this.draining = true;
    child.stdout?.resume();
    if (child.exitCode === null && child.signalCode === null) child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Seconds the target has been frozen so far, live (a freeze still going on included); the whole at the end. */
  pausedSeconds(): number {
    const now = this.frozenSince === undefined ? 0 : (performance.now() - this.frozenSince) * 1e6;
    return Math.max(this.decoder.stats?.frozenNs ?? 0, this.pausedNs + now) / 1e9;
  }

  stats(): CaptureStats {
    const s = this.decoder.stats;
    const notes: string[] = [];
    if (s && s.freezes > 0) {
      notes.push(`froze the target ${s.freezes} time${s.freezes === 1 ? '' : 's'} to drain the ring (${(s.frozenNs / 1e6).toFixed(1)} ms frozen)`);
    }
    if (!this.freezerPath) notes.push('no freezer: a consumer that falls behind can make the ring overflow (counted in lost)');
    if (this.decoder.leftover) notes.push(`stream ended inside a record (${this.decoder.leftover} bytes)`);
    if (this.failure) notes.push(this.failure.message);
    // The loader's own complaints (e.g. a freezer it could not write), once each.
    for (const l of new Set(this.stderr.split('\n').filter((x) => x.startsWith('sandtrace-probe: ')).slice(0, 5))) {
      notes.push(l.replace(/^sandtrace-probe: /, 'probe: '));
    }
    const end = this.endedAt || performance.now();
    return {
      backend: 'ebpf',
      events: this.delivered,
      lost: (s?.lost ?? 0) + this.decoder.parseErrors,
      parseErrors: this.decoder.parseErrors,
      duration: this.startedAt ? (end - this.startedAt) / 1000 : 0,
      notes,
      ...(s && s.frozenNs > 0 ? { paused: s.frozenNs / 1e9 } : {}),
    };
  }
}
