// The ptrace capture backend: runs `strace -f` on a command or attaches it to a running process
// tree, streams its output through a FIFO into the parser, and delivers normalized TraceEvents.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, openSync, closeSync, fstatSync, readSync, constants as fsc } from 'node:fs';
import { constants as osc, tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import type { CaptureStats, Collector } from '../collector.js';
import type { TraceEvent } from '../events.js';
import { SandtraceError } from '../../errors.js';
import { StraceParser } from './parser.js';

export interface StraceCollectorOptions {
  /** Trace this command (argv[0] resolved through PATH by strace). Exactly one of command and attachPid. */
  command?: string[];
  /**
   * Attach to this host pid (all its threads, and every task it creates from then on); pids are
   * reported in its pid namespace.
   */
  attachPid?: number;
  /**
   * Attach mode: drop events until the attached process execs. Default true: a sandbox's waiting
   * init (runc init, bwrap's child) is attached before it execs the sample, and the runtime's own
   * set-up is not the sample's behaviour. Set false to trace a running process from now on.
   */
  skipUntilExec?: boolean;
  /**
   * Trace only these syscalls (plus the process lifecycle ones, which the tree needs, and the
   * signal ones a call a signal cut into is settled from). For commands this enables
   * --seccomp-bpf: the tracee then stops only for them, not for every call.
   */
  syscalls?: string[];
  /**
   * strace -s: bytes printed of each data string and argv element, and argv elements printed.
   * Paths ignore it (strace prints them whole up to PATH_MAX - 1). What is cut is marked on the
   * event (`truncated`). Default 256, the eBPF probe's argv element cap. Not 4096: -s also sizes
   * every read/write buffer strace prints, and 4 KiB binary I/O then ran 4.4x slower (measured).
   */
  stringLimit?: number;
  /** Command mode: the command's environment and working directory. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Command mode: the command's stdout/stderr are captured into console() (default), discarded, or passed to our stderr. */
  output?: 'capture' | 'ignore' | 'stderr';
  /** Bytes of console output kept. Default 64 KiB. */
  consoleCap?: number;
  /**
   * After the traced command's first process exits, wait this long for the rest of its tree, then
   * stop (and with killLeftovers, SIGKILL what still runs). Default: wait for every task.
   */
  rootExitGraceMs?: number;
  killLeftovers?: boolean;
  /** strace binary. Default `strace` from PATH. */
  strace?: string;
  /** Fork count above which a note calls the sample a fork storm. Default 500. */
  forkStormThreshold?: number;
}

type Waiter = (r: IteratorResult<TraceEvent[]>) => void;

/**
 * What the parser settles a call a signal cut into from (sigaction, signal, sigreturn: i386 too).
 * i386's signal() as a regex: a bare `signal` is strace's class of every signal call.
 */
const SIGNAL_CALLS = ['rt_sigaction', 'sigaction', '/^signal$', 'rt_sigreturn', 'sigreturn', 'restart_syscall'];

/** Version line of the strace on PATH, or undefined when it is missing. */
export function straceVersion(bin = 'strace'): string | undefined {
  const r = spawnSync(bin, ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split('\n')[0];
}

function nsPidFromProc(hostTid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${hostTid}/status`, 'utf8');
    const m = /^NSpid:\s+([\d\s]+)$/m.exec(s);
    if (!m) return undefined;
    const ids = (m[1] as string).trim().split(/\s+/);
    return Number(ids[ids.length - 1]);
  } catch {
    return undefined;
  }
}

function tgidFromProc(hostTid: number): number | undefined {
  try {
    const m = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${hostTid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** First 256 bytes (BINPRM_BUF_SIZE) of a file as the task sees it; regular files only, never blocking. */
function readHead(path: string, hostTid: number, rootPrefix: string): string | undefined {
  const candidates = path.startsWith('/')
    ? [`/proc/${hostTid}/root${path}`, `${rootPrefix}${path}`]
    : [`/proc/${hostTid}/cwd/${path}`];
  for (const c of candidates) {
    let fd: number;
    try { fd = openSync(c, fsc.O_RDONLY | fsc.O_NONBLOCK); } catch { continue; }
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      const buf = Buffer.alloc(256);
      const n = readSync(fd, buf, 0, 256, 0);
      return buf.subarray(0, n).toString('latin1');
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }
  return undefined;
}

export class StraceCollector implements Collector {
  readonly backend = 'ptrace' as const;
  private readonly opts: StraceCollectorOptions;
  private parser: StraceParser | undefined;
  private proc: ChildProcess | undefined;
  /** Resolves the reader's wait when the consumer has taken batches off a full queue. */
  private drained: (() => void) | undefined;
  private dir: string | undefined;
  private fifo = '';
  private readonly queue: TraceEvent[][] = [];
  private waiter: Waiter | undefined;
  private ended = false;
  private started = 0;
  private endedAt = 0;
  private delivered = 0;
  private readonly extraNotes: string[] = [];
  private consoleText = '';
  private consoleDropped = 0;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Command mode: how the traced command's first process ended, from its exit event. */
  private rootExit: { code: number; signal?: number } | undefined;
  private exitPromise: Promise<void> | undefined;
  private endPromise: Promise<void> | undefined;
  private stopping = false;
  private forks = 0;
  private rootHost: number | undefined;
  private readonly liveHost = new Set<number>();
  private graceTimer: NodeJS.Timeout | undefined;
  private ptraceCalls = 0;

  constructor(opts: StraceCollectorOptions) {
    if ((opts.command === undefined) === (opts.attachPid === undefined)) {
      throw new SandtraceError('USAGE', 'StraceCollector needs exactly one of command or attachPid');
    }
    if (opts.command !== undefined && opts.command.length === 0) throw new SandtraceError('USAGE', 'empty command to trace');
    this.opts = opts;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    const bin = this.opts.strace ?? 'strace';
    if (!straceVersion(bin)) {
      throw new SandtraceError('DEPENDENCY_MISSING', `strace not found (${bin}); install the Debian package strace (make setup)`);
    }
    if (this.opts.attachPid !== undefined && !existsSync(`/proc/${this.opts.attachPid}/task`)) {
      throw new SandtraceError('TRACER_FAILED', `no process ${this.opts.attachPid} to attach to`, { details: { pid: this.opts.attachPid } });
    }
    this.dir = mkdtempSync(join(tmpdir(), 'sandtrace-strace-'));
    this.fifo = join(this.dir, 'trace');
    const mk = spawnSync('mkfifo', ['-m', '0600', this.fifo]);
    if (mk.status !== 0) {
      this.cleanup();
      throw new SandtraceError('TRACER_FAILED', `mkfifo failed: ${mk.stderr?.toString().trim()}`);
    }

    const args = ['-f', '-ttt', '-yy', '-s', String(this.opts.stringLimit ?? 256), '-o', this.fifo];
    if (this.opts.syscalls && this.opts.syscalls.length > 0) {
      // The process tree needs the lifecycle calls whatever the caller asked for, and a call a
      // signal cut into is settled from the signal calls (dispositions, handler returns).
      const set = new Set([...this.opts.syscalls, 'clone', 'clone3', 'fork', 'vfork', 'execve', 'execveat', ...SIGNAL_CALLS]);
      args.push('-e', `trace=${[...set].join(',')}`);
      // Only for commands: strace cannot install a seccomp filter in a process it attaches to.
      if (this.opts.command) args.push('--seccomp-bpf');
    }
    const parserOpts: ConstructorParameters<typeof StraceParser>[0] = {};
    if (this.opts.attachPid !== undefined) {
      const pid = this.opts.attachPid;
      let tids: number[];
      try {
        tids = readdirSync(`/proc/${pid}/task`).map(Number);
      } catch {
        this.cleanup();
        throw new SandtraceError('TRACER_FAILED', `no process ${pid} to attach to`, { details: { pid } });
      }
      const tg = new Map<number, number>();
      for (const t of tids) tg.set(t, tgidFromProc(t) ?? pid);
      parserOpts.knownTids = tids;
      parserOpts.knownTgids = tg;
      // Namespace ids of the tasks that exist now, read while they surely live. Tasks created later
      // are translated from strace's --pidns-translation comment on the clone's return (exact, even
      // for a child that is gone before we parse); /proc is only the fallback.
      const nsCache = new Map<number, number>();
      for (const t of tids) { const v = nsPidFromProc(t); if (v !== undefined) nsCache.set(t, v); }
      parserOpts.nsPidOf = (t) => nsCache.get(t) ?? nsPidFromProc(t);
      try {
        const root = readlinkSync(`/proc/${pid}/root`);
        if (root !== '/') parserOpts.rootPrefix = root;
      } catch { /* not ours to read: script heads are then read through /proc/<tid>/root only */ }
      if (this.opts.skipUntilExec ?? true) parserOpts.skipUntilExecOf = pid;
      args.push('--pidns-translation', '-p', String(pid));
    } else {
      args.push('--', ...(this.opts.command as string[]));
    }
    const rootPrefix = parserOpts.rootPrefix ?? '';
    parserOpts.readHead = (path, hostTid) => readHead(path, hostTid, rootPrefix);
    this.parser = new StraceParser(parserOpts);

    this.started = Date.now();
    const output = this.opts.output ?? 'capture';
    const proc = spawn(bin, args, {
      stdio: ['ignore', output === 'capture' ? 'pipe' : output === 'stderr' ? 2 : 'ignore', 'pipe'],
      env: this.opts.env ?? process.env,
      ...(this.opts.cwd !== undefined ? { cwd: this.opts.cwd } : {}),
    });
    this.proc = proc;
    this.exitPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(); });
      proc.on('error', (e) => {
        this.extraNotes.push(`strace failed to run: ${e.message}`);
        this.exit = { code: null, signal: null };
        resolve();
      });
    });
    proc.stdout?.on('data', (d: Buffer) => this.addConsole(d.toString('utf8')));

    let attachedResolve: (() => void) | undefined;
    const attached = new Promise<void>((r) => { attachedResolve = r; });
    let errBuf = '';
    proc.stderr?.on('data', (d: Buffer) => {
      errBuf += d.toString('utf8');
      let nl: number;
      while ((nl = errBuf.indexOf('\n')) >= 0) {
        const line = errBuf.slice(0, nl);
        errBuf = errBuf.slice(nl + 1);
        if (line.startsWith('strace: ')) {
          if (this.opts.attachPid !== undefined && line.startsWith(`strace: Process ${this.opts.attachPid} attached`)) attachedResolve?.();
          this.parser?.message(line);
        } else if (output === 'stderr') process.stderr.write(line + '\n');
        else if (output === 'capture') this.addConsole(line + '\n');
      }
    });

    // The FIFO's open() blocks until strace opens it; if strace dies first, unblock it ourselves.
    void this.exitPromise.then(() => {
      attachedResolve?.();
      try { const fd = openSync(this.fifo, fsc.O_WRONLY | fsc.O_NONBLOCK); closeSync(fd); } catch { /* already open or gone */ }
    });
    this.endPromise = this.readLoop();

    if (this.opts.attachPid !== undefined) {
      // strace prints "Process N attached" once the tracee is stopped under ptrace: from then on nothing is missed.
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref());
      const r = await Promise.race([attached.then(() => 'ok' as const), timeout]);
      if (r === 'timeout' || this.exit) {
        await this.stop();
        throw new SandtraceError('TRACER_FAILED', `strace could not attach to pid ${this.opts.attachPid}: ${this.parser.notes.join('; ') || 'no reason given'}`);
      }
    }
  }

  /**
   * Reads the FIFO into the parser. strace writes one line per write(): reading each as it comes
   * costs a wake-up per syscall (measured: 80k reads for 100k events, 3x slower than strace alone),
   * so a short read is followed by a 2 ms pause that lets the pipe fill. A consumer that falls
   * behind stops the reads, which blocks strace and with it the sample: nothing is dropped.
   */
  private async readLoop(): Promise<void> {
    const parser = this.parser as StraceParser;
    const buf = Buffer.alloc(1 << 20);
    let fh: import('node:fs/promises').FileHandle | undefined;
    try {
      fh = await open(this.fifo, 'r');
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        this.deliver(parser.push(buf.toString('latin1', 0, bytesRead)));
        while (this.queue.length > 256 && !this.stopping) await new Promise<void>((r) => { this.drained = r; });
        if (bytesRead < 65536 && !this.stopping) await new Promise((r) => setTimeout(r, 2));
      }
    } catch (e) {
      this.extraNotes.push(`trace stream error: ${(e as Error).message}`);
    } finally {
      await fh?.close().catch(() => undefined);
    }
    // strace closes the FIFO as it exits: wait for its status (briefly) so exitStatus() is set at the end.
    await Promise.race([this.exitPromise, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    this.deliver(parser.end());
    this.finishNotes();
    this.ended = true;
    this.endedAt = Date.now();
    this.wake();
    this.cleanup();
  }

  /** The command's stdout and stderr (command mode), capped. */
  console(): string {
    return this.consoleDropped > 0 ? `${this.consoleText}\n[... ${this.consoleDropped} bytes not kept]` : this.consoleText;
  }

  /**
   * strace's exit: for a traced command, the command's own exit status. A command killed by a
   * signal makes strace kill itself with the same signal (code null, signal set): commandExit()
   * tells that apart from strace itself being killed.
   */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exit;
  }

  /**
   * Command mode, once the stream has ended: how the traced command ended (its exit status, or the
   * signal that killed it), or undefined when strace did not report it (strace could not start the
   * command, failed or was killed, or the collector was stopped before the command ended).
   */
  commandExit(): { code: number } | { signal: NodeJS.Signals } | undefined {
    // no exit event of the command: it never ran under the trace (strace could not start it)
    if (!this.opts.command || !this.exit || !this.rootExit) return undefined;
    if (this.exit.code !== null) return { code: this.exit.code };
    return this.exitMirrorsCommand() ? { signal: this.exit.signal as NodeJS.Signals } : undefined;
  }

  /** strace died of the signal that killed the traced command: it re-raises it to pass the status on. */
  private exitMirrorsCommand(): boolean {
    const sig = this.exit?.signal;
    if (!this.opts.command || !sig || this.rootExit?.signal === undefined) return false;
    return osc.signals[sig] === this.rootExit.signal;
  }

  private addConsole(s: string): void {
    const cap = this.opts.consoleCap ?? 65536;
    const room = cap - this.consoleText.length;
    if (room >= s.length) this.consoleText += s;
    else {
      if (room > 0) this.consoleText += s.slice(0, room);
      this.consoleDropped += s.length - Math.max(room, 0);
    }
  }

  private deliver(evs: TraceEvent[]): void {
    if (evs.length === 0) return;
    for (const e of evs) this.observe(e);
    this.delivered += evs.length;
    this.queue.push(evs);
    this.wake();
  }

  /** Facts the notes need: fork storms, tasks alive, the root's exit, anti-debugging. */
  private observe(e: TraceEvent): void {
    if (this.rootHost === undefined) this.rootHost = e.pid;
    if (e.type === 'fork') {
      this.forks++;
      this.liveHost.add(e.childTid);
    } else if (e.type === 'exit') {
      this.liveHost.delete(e.tid);
      const rootEnded = !e.thread && e.pid === this.rootHost;
      if (rootEnded) this.rootExit = { code: e.code, ...(e.signal !== undefined ? { signal: e.signal } : {}) };
      if (rootEnded && this.opts.command && this.opts.rootExitGraceMs !== undefined && !this.graceTimer) {
        this.graceTimer = setTimeout(() => { void this.leftovers(); }, this.opts.rootExitGraceMs);
        this.graceTimer.unref();
      }
    } else if (e.type === 'syscall' && e.name === 'ptrace') {
      this.ptraceCalls++;
      if (this.ptraceCalls <= 3) {
        const req = e.args[0] === 0 ? 'PTRACE_TRACEME' : `request ${e.args[0]}`;
        this.extraNotes.push(`process ${e.pid} called ptrace(${req}) = ${e.ret}: anti-debugging or self-tracing attempt (it is already traced by strace)`);
      }
    }
  }

  private async leftovers(): Promise<void> {
    if (this.ended || this.stopping) return;
    const alive = [...this.liveHost].filter((t) => { try { readFileSync(`/proc/${t}/stat`); return true; } catch { return false; } });
    if (alive.length > 0) {
      this.extraNotes.push(`${alive.length} task(s) still ran ${this.opts.rootExitGraceMs} ms after the traced command exited: ${this.opts.killLeftovers ? 'killed' : 'detached and left running'}`);
      if (this.opts.killLeftovers) for (const t of alive) { try { process.kill(t, 'SIGKILL'); } catch { /* gone */ } }
    }
    await this.stop();
  }

  private finishNotes(): void {
    if (this.forks > (this.opts.forkStormThreshold ?? 500)) {
      this.extraNotes.push(`fork storm: the sample created ${this.forks} tasks`);
    }
    // a command killed by a signal is the command's outcome, not a tracer failure
    if (this.exit?.signal && !this.stopping && !this.exitMirrorsCommand()) this.extraNotes.push(`strace was killed by ${this.exit.signal}`);
    if (this.exit && this.exit.code !== null && this.exit.code !== 0 && this.opts.attachPid !== undefined && !this.stopping) {
      this.extraNotes.push(`strace exited with status ${this.exit.code}`);
    }
  }

  private release(): void {
    const d = this.drained;
    this.drained = undefined;
    d?.();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const batch = this.queue.shift();
    if (batch) { this.waiter = undefined; w({ value: batch, done: false }); }
    else if (this.ended) { this.waiter = undefined; w({ value: undefined, done: true }); }
  }

  async *events(): AsyncIterable<TraceEvent[]> {
    for (;;) {
      const batch = this.queue.shift();
      if (batch) {
        if (this.queue.length < 16) this.release();
        yield batch;
        continue;
      }
      if (this.ended) return;
      this.release();
      const r = await new Promise<IteratorResult<TraceEvent[]>>((resolve) => { this.waiter = resolve; this.wake(); });
      if (r.done) return;
      yield r.value;
    }
  }

  /** Detach (strace on SIGTERM detaches every tracee and flushes), drain, end the stream. Idempotent. */
  async stop(): Promise<void> {
    if (!this.proc) return;
    this.stopping = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (!this.exit) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => { if (!this.exit) this.proc?.kill('SIGKILL'); }, 5000);
      await this.exitPromise;
      clearTimeout(t);
    }
    // Events still flow to the consumer; the stream ends once the FIFO is drained.
    this.release();
    await this.endPromise;
  }

  /** Resolves when the traced command (and every task strace followed) has ended and all output is parsed. */
  async done(): Promise<void> {
    await this.exitPromise;
    await this.endPromise;
  }

  stats(): CaptureStats {
    const p = this.parser;
    const parseErrors = p?.parseErrors ?? 0;
    const end = this.ended ? this.endedAt : Date.now();
    return {
      backend: 'ptrace',
      events: this.delivered,
      // An unparsable line is a call (or exit) the stream does not carry.
      lost: parseErrors,
      parseErrors,
      duration: this.started ? (end - this.started) / 1000 : 0,
      notes: [...(p?.notes ?? []), ...this.extraNotes],
    };
  }

  private cleanup(): void {
    if (this.dir) { rmSync(this.dir, { recursive: true, force: true }); this.dir = undefined; }
  }
}
