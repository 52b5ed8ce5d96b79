// VmiCollector: turns the QEMU plugin's records (syscall entries and returns read from the
// guest's registers and memory) into the normalized TraceEvent stream, with guest pids.
// Entries and returns are paired per thread; fork/exec/exit events are derived from the calls.
import type { Readable } from 'node:stream';
import { posix } from 'node:path';
import type { Collector, CaptureStats } from '../collector.js';
import { MMSG_ADDR_MAX, type TraceEvent, type SyscallEvent, type SockAddr, type Abi } from '../events.js';
import { syscallName } from '../../semantics/syscalls.js';
import { EXE_ALIAS } from '../../semantics/program.js';
import { RecordReader, exePath, PATH_CUT, ENTER_FLAG, RET_REREAD, RET_OUT, RET_SIGNAL, MMSG_FLAG, type EnterRec, type RetRec, type PluginRecord, type ProcRec, type MmsgAddr } from './records.js';

export interface VmiCollectorOptions {
  /** Opens the plugin's record stream (e.g. the FIFO QEMU writes to); called by start(). */
  open: () => Promise<Readable>;
  /** Asks the producer to finish (power the guest off); the stream then ends. */
  stop?: () => Promise<void>;
  /**
   * Report only the process that execs this guest path and its descendants (keeps the guest's
   * boot out of the capture). Absent: every process of the guest.
   */
  rootExe?: string;
}

/** What introspection read about one guest process (memory, not syscall arguments). */
export interface VmProcess {
  pid: number;
  ppid: number;
  comm: string;
  /** Path of mm->exe_file, walked dentry by dentry (across mounts) after exec or at the process's first call. */
  exe?: string;
  argv?: string[];
  uid?: number;
}

/** A guest task from the process-list walk (init_task along task_struct.tasks). */
export interface GuestTask { pid: number; tid: number; ppid: number; comm: string; uid: number; kernelThread: boolean }

/** The calls the collector derives process events from, in each ABI's numbering (i386: int $0x80 and the compat fast path). */
const NRS = {
  x86_64: { clone: 56, fork: 57, vfork: 58, execve: 59, exit: 60, exit_group: 231, execveat: 322, clone3: 435, sigreturn: [15] },
  i386: { clone: 120, fork: 2, vfork: 190, execve: 11, exit: 1, exit_group: 252, execveat: 358, clone3: 435, sigreturn: [173, 119] },
} as const satisfies Record<Abi, unknown>;
const CLONE_THREAD = 0x10000;
const isClone = (abi: Abi, nr: number) => { const N = NRS[abi]; return nr === N.clone || nr === N.fork || nr === N.vfork || nr === N.clone3; };
const isExecNr = (abi: Abi, nr: number) => nr === NRS[abi].execve || nr === NRS[abi].execveat;
const AT_FDCWD = -100;
/** ENTER flag of execve/execveat records (qemu-plugin/sandtrace.c). */
const ARGV_INCOMPLETE = 0x80000000;
/** The calls whose ENTER flags say how their socket address was read (ENTER_FLAG), per ABI. */
const ADDR_CALLS: Record<Abi, ReadonlySet<number>> = {
  x86_64: new Set([42, 44, 46, 49]), // connect, sendto, sendmsg, bind
  i386: new Set([361, 362, 369, 370, 102]), // bind, connect, sendto, sendmsg, socketcall
};
const SOCKETCALL = 102;
/** sendmmsg and recvmmsg (i386: recvmmsg and recvmmsg_time64), per ABI, as direct calls (or unpacked from socketcall). */
const SENDMMSG: Record<Abi, number> = { x86_64: 307, i386: 345 };
const RECVMMSG: Record<Abi, ReadonlySet<number>> = { x86_64: new Set([299]), i386: new Set([337, 417]) };
const EINTR = 4;
const ADDR_FLAGS = ENTER_FLAG.ADDR_UNREAD | ENTER_FLAG.ADDR_CUT | ENTER_FLAG.SCARGS_UNREAD;
/**
 * i386 socketcall(call, args): the direct i386 call each call number stands for, as the eBPF
 * probe unpacks it (accept has no direct i386 call: accept4 with flags 0; send and recv are
 * sendto and recvfrom without an address).
 */
const SOCKETCALL_TARGET: readonly (number | undefined)[] = [
  undefined, 359, 361, 362, 363, 364, 367, 368, 360, 369, 371, 369, 371, 373, 366, 365, 370, 372, 364, 337, 345,
];

/** The direct i386 call a socketcall with this call number stands for; undefined when the kernel refuses it (EINVAL). */
function socketcallTarget(call: number): number | undefined {
  return Number.isInteger(call) && call >= 0 ? SOCKETCALL_TARGET[call] : undefined;
}

export class VmiCollector implements Collector {
  readonly backend = 'vmi' as const;
  private stream: Readable | null = null;
  private readonly reader = new RecordReader();
  private readonly pending = new Map<number, EnterRec>();
  private readonly inScope = new Set<number>();
  private readonly procs = new Map<number, VmProcess>();
  /** Each live process's threads (by tgid), from their clones and their calls: exit ends a process with its last one. */
  private readonly threads = new Map<number, Set<number>>();
  private seq = 0;
  private t0: bigint | null = null;
  private startedAt = 0;
  private endedAt = 0;
  private delivered = 0;
  private lost = 0;
  private stopping: Promise<void> | undefined;
  private readonly notes: string[] = [];
  /** KASLR slide the plugin derived at run time (null until the first syscall). */
  slide: bigint | null = null;
  /** Records seen, in scope or not. */
  records = 0;
  /** Processes (tgids) seen and not exited: a record of any other one is a new process. */
  private readonly live = new Set<number>();
  /** Children whose fork event was sent when they first ran, before the parent's fork returned. */
  private readonly earlyForks = new Set<number>();
  private kernelExecs = 0;
  private walk: GuestTask[] = [];
  private lastWalk: GuestTask[] = [];

  constructor(private readonly opts: VmiCollectorOptions) {
    if (opts.rootExe === undefined) this.notes.push('every guest process is captured');
  }

  async start(): Promise<void> {
    this.startedAt = performance.now();
    this.stream = await this.opts.open();
  }

  async *events(): AsyncIterable<TraceEvent[]> {
    if (!this.stream) throw new Error('VmiCollector.events() before start()');
    for await (const chunk of this.stream as AsyncIterable<Buffer>) {
      const batch: TraceEvent[] = [];
      for (const rec of this.reader.push(chunk)) this.handle(rec, batch);
      if (batch.length) {
        this.delivered += batch.length;
        yield batch;
      }
    }
    // Calls still open when the guest stopped never returned (killed, or the guest powered off).
    const tail: TraceEvent[] = [];
    for (const e of this.pending.values()) if (this.wanted(e.tgid)) tail.push(this.syscall(e, null));
    this.pending.clear();
    if (this.reader.leftover) { this.lost++; this.notes.push(`stream ended inside a record (${this.reader.leftover} bytes)`); }
    this.endedAt = performance.now();
    if (tail.length) { this.delivered += tail.length; yield tail; }
  }

  /** Shuts the guest's capture down. Idempotent: every call resolves once the first one has finished. */
  stop(): Promise<void> {
    this.stopping ??= (async () => { await this.opts.stop?.(); })();
    return this.stopping;
  }

  stats(): CaptureStats {
    const end = this.endedAt || performance.now();
    return {
      backend: 'vmi', events: this.delivered, lost: this.lost + this.reader.parseErrors, parseErrors: this.reader.parseErrors,
      duration: this.startedAt ? (end - this.startedAt) / 1000 : 0,
      notes: [...this.notes, ...(this.slide !== null ? [`guest KASLR slide 0x${this.slide.toString(16)}`] : []),
        ...(this.kernelExecs ? [`${this.kernelExecs} process(es) exec'd by the kernel (no execve call) named from mm->exe_file`] : [])],
    };
  }

  /** Processes seen (in scope), with what was read from guest memory. */
  processes(): VmProcess[] {
    return [...this.procs.values()].filter((p) => this.wanted(p.pid));
  }

  /** The guest's process list from the last walk of the kernel's task list. */
  taskList(): GuestTask[] {
    return this.lastWalk;
  }

  /** Ask the plugin for a fresh walk of the task list (served within ~1000 guest syscalls). */
  requestTaskList(): void {
    const s = this.stream as (Readable & { write?: (b: Buffer, cb: (e?: Error | null) => void) => boolean; writable?: boolean }) | null;
    // a guest that already stopped simply gets no request
    if (s && s.writable && !s.destroyed) s.write?.(Buffer.from('P'), () => undefined);
  }

  private onProc(r: ProcRec): void {
    // init_task (pid 0, the idle task) starts every walk; a walk's records arrive together.
    if (r.tid === 0) { this.walk = []; this.lastWalk = this.walk; }
    this.walk.push({ pid: r.tgid, tid: r.tid, ppid: r.ppid, comm: r.comm, uid: r.uid, kernelThread: r.mm === 0n });
  }

  private wanted(tgid: number): boolean {
    return this.opts.rootExe === undefined || this.inScope.has(tgid);
  }

  private ts(t: bigint): number {
    if (this.t0 === null) this.t0 = t;
    return Number(t - this.t0);
  }

  private note(r: EnterRec | RetRec, comm?: string): void {
    let p = this.procs.get(r.tgid);
    if (!p) { p = { pid: r.tgid, ppid: r.ppid, comm: comm ?? '' }; this.procs.set(r.tgid, p); }
    if (r.ppid) p.ppid = r.ppid;
    if (comm && r.tid === r.tgid) p.comm = comm;
  }

  private handle(rec: PluginRecord, out: TraceEvent[]): void {
    this.records++;
    if (rec.kind === 'info') { this.slide = rec.slide; return; }
    if (rec.kind === 'proc') { this.onProc(rec); return; }
    if (!this.live.has(rec.tgid)) this.firstSight(rec, out);
    let threads = this.threads.get(rec.tgid);
    if (!threads) this.threads.set(rec.tgid, threads = new Set());
    threads.add(rec.tid);
    const NR = NRS[rec.abi];
    if (rec.kind === 'enter') {
      this.note(rec, rec.comm);
      if (rec.nr === NR.exit || rec.nr === NR.exit_group) {
        // exit ends the calling thread only, the main one included: the process ends with its
        // last thread (or at exit_group)
        threads.delete(rec.tid);
        const thread = rec.nr === NR.exit && threads.size > 0;
        if (!thread) { this.live.delete(rec.tgid); this.threads.delete(rec.tgid); } // the pid may be reused
        if (!this.wanted(rec.tgid)) return;
        out.push(this.syscall(rec, null));
        out.push({ type: 'exit', seq: ++this.seq, ts: this.ts(rec.ts), pid: rec.tgid, tid: rec.tid, comm: rec.comm,
          code: Number(rec.args[0] ?? 0n) & 0xff, thread });
        return;
      }
      const prev = this.pending.get(rec.tid);
      // A call left open (its return never came: the task was killed mid-call) ends here.
      if (prev && this.wanted(prev.tgid)) out.push(this.syscall(prev, null));
      this.pending.set(rec.tid, rec);
      return;
    }
    this.note(rec, rec.comm);
    const enter = this.pending.get(rec.tid);
    // rt_sigreturn restores orig_ax (-1) with the interrupted context, so its return carries no number.
    // A successful exec returns with the new image's execve number, whatever the call was (the
    // kernel rewrites orig_ax: 59 for a 64-bit program, 11 for an i386 one), so an execveat reads
    // 59 and a 64-bit execve of an i386 program 11. An i386 call (int $0x80, also from a 64-bit
    // program) returns through its own hook, in i386 numbering.
    const sameCall = enter !== undefined && enter.abi === rec.abi && (enter.nr === rec.nr ||
      ((NR.sigreturn as readonly number[]).includes(enter.nr) && rec.nr === 0xffffffff) ||
      (isExecNr(enter.abi, enter.nr) && (rec.nr === NRS.x86_64.execve || rec.nr === NRS.i386.execve)));
    if (!enter || !sameCall) {
      // execve from a non-leader thread changes the tid; anything else is a return without entry
      // (the call started before capture began).
      return;
    }
    this.pending.delete(rec.tid);
    // what was unreadable at entry, read again at the return (another thread could have changed it in between)
    if (rec.path !== undefined) enter.path = rec.path;
    // an open that returned a descriptor: the name of the file it opened instead, which no thread can change
    const named = rec.fdPathParts && !rec.fdPathParts.includes(PATH_CUT) ? exePath(rec.fdPathParts) || '/' : undefined;
    if (named !== undefined) { enter.path = named; enter.pathFromKernel = true; }
    if (rec.path2 !== undefined) enter.path2 = rec.path2;
    // a connect that connected: the peer the kernel connected its socket to, which no thread can change
    // (read from the socket: neither unreadable nor cut, whatever the caller's sockaddr was)
    if (rec.peer && ADDR_CALLS[enter.abi].has(enter.nr)) {
      enter.sockaddr = rec.peer;
      enter.addrFromKernel = true;
      enter.flags &= ~(ENTER_FLAG.ADDR_UNREAD | ENTER_FLAG.ADDR_CUT);
    }
    if (rec.flags & RET_REREAD) {
      // sendmmsg's messages (direct or through socketcall): what was read at the call stands up to
      // the first message unreadable then; only from there on is the return's reading taken (a
      // thread could have repointed the others after the kernel sent them), and only when the call
      // got that far (toEvent)
      const rereadFrom = rec.mmsg && !(enter.flags & ENTER_FLAG.SCARGS_UNREAD) ? firstUnread(enter.mmsg) : undefined;
      if (rereadFrom === undefined) enter.readAtExit = true;
      if (ADDR_CALLS[enter.abi].has(enter.nr)) {
        if (rec.scArgs) enter.scArgs = rec.scArgs;
        if (rec.sockaddr) enter.sockaddr = rec.sockaddr;
        enter.flags = (enter.flags & ~ADDR_FLAGS) | (rec.flags & ADDR_FLAGS);
      }
      if (rec.mmsg) {
        const k = rereadFrom ?? 0;
        enter.mmsg = [...(enter.mmsg ?? []).slice(0, k), ...rec.mmsg.slice(k)];
        enter.mmsgRereadFrom = k;
      }
    }
    // recvmmsg's senders, written back by the kernel and read at the return
    if (rec.outMmsg) enter.outMmsg = rec.outMmsg;
    // the address the kernel wrote back (accept, recvfrom, recvmsg, getsockname, getpeername), read at the return
    if (rec.outAddr) enter.sockaddr = rec.outAddr;
    if (rec.flags & (RET_OUT.CUT | RET_OUT.UNREAD)) enter.outFlags = rec.flags & (RET_OUT.CUT | RET_OUT.UNREAD);
    // a signal at the return: a call the kernel makes again returned nothing (its next entry is the
    // same call again); one a handler cut short failed with EINTR (read from the handler's frame)
    const restarted = (rec.flags & RET_SIGNAL.RESTART) !== 0;
    if (restarted) enter.signal = 'restarted';
    else if ((rec.flags & RET_SIGNAL.FRAME) && rec.ret === -BigInt(EINTR)) enter.signal = 'interrupted';
    const ret = Number(rec.ret);
    const isExec = isExecNr(enter.abi, enter.nr) && ret === 0 && !restarted;
    if (isExec) {
      // What the kernel put on the new stack is authoritative (entry reads can miss untouched pages).
      // (only then: for a script the new stack holds the interpreter's argv, not the one passed)
      if (rec.newArgv && (enter.argv.length === 0 || (enter.flags & ARGV_INCOMPLETE) !== 0)) enter.argv = rec.newArgv;
      if (rec.execfn && (enter.path === undefined || enter.path === '')) enter.path = rec.execfn;
      const p = this.procs.get(rec.tgid);
      if (p) {
        p.exe = exePath(rec.exeParts);
        p.argv = rec.newArgv ?? enter.argv;
        if (rec.comm) p.comm = rec.comm;
        if (rec.uid !== undefined) p.uid = rec.uid;
      }
      if (this.opts.rootExe !== undefined && !this.inScope.size && enter.path === this.opts.rootExe) this.inScope.add(rec.tgid);
    }
    if (!this.wanted(rec.tgid)) return;
    const ev = this.syscall(enter, restarted ? null : ret, rec.ts);
    out.push(ev);
    if (isExec) {
      // a relative path is the process's working directory's (execveat: its dirfd's, not known here)
      const cwd = enter.nr === NR.execve || Number(BigInt.asIntN(32, enter.args[0] ?? 0n)) === AT_FDCWD ? (rec.cwdParts.length ? exePath(rec.cwdParts) || '/' : '') : '';
      const exe = execExe(enter.path, exePath(rec.exeParts), { cwd, newArgv: rec.newArgv });
      // The exec event carries the argv the kernel built (a script's interpreter first), read from
      // the new image's stack, as the other sources report it; the execve call keeps what was passed.
      // the new image's ABI: the kernel returns from a successful exec with that ABI's execve number
      // (set_personality_64bit: 59, set_personality_ia32: 11), whichever call and path it came by
      const abi: Abi | undefined = rec.nr === NRS.i386.execve ? 'i386' : rec.nr === NRS.x86_64.execve ? 'x86_64' : undefined;
      out.push({ type: 'exec', seq: ++this.seq, ts: this.ts(rec.ts), pid: rec.tgid, tid: rec.tid, comm: rec.comm ?? enter.comm,
        exe, argv: rec.newArgv ?? enter.argv, ...(rec.uid !== undefined ? { uid: rec.uid } : {}), ...(abi ? { abi } : {}) });
    }
    if (isClone(rec.abi, rec.nr) && ret > 0 && !restarted) {
      const flags = rec.nr === NR.clone ? Number((enter.args[0] ?? 0n) & 0xffffffffn) : rec.nr === NR.clone3 ? enter.flags : 0;
      const thread = (flags & CLONE_THREAD) !== 0;
      const childPid = thread ? rec.tgid : ret;
      if (!thread && this.earlyForks.delete(ret)) return; // announced when the child first ran
      if (thread) this.threads.get(rec.tgid)?.add(ret); // alive before its first call
      else {
        this.inScope.add(ret);
        this.live.add(ret);
        this.threads.delete(ret); // a reused pid: the threads of a process that died unseen (a signal) are gone
        this.procs.set(ret, { pid: ret, ppid: rec.tgid, comm: enter.comm });
      }
      out.push({ type: 'fork', seq: ++this.seq, ts: this.ts(rec.ts), pid: rec.tgid, tid: rec.tid, comm: enter.comm,
        childPid, childTid: ret, thread });
    }
  }

  /**
   * The first record of a process not seen before. A child that runs before its parent's fork
   * returns (a vfork child always does) gets its fork event now, so it inherits its parent's
   * program and scope before its own calls. A process nobody forked in front of us was exec'd by
   * the kernel (init, usermode helpers such as modprobe): no execve call to see, so its exec is
   * reported from what the plugin read on its first call (mm->exe_file, mm's argv).
   */
  private firstSight(rec: EnterRec | RetRec, out: TraceEvent[]): void {
    const parent = [...this.pending.values()].find((e) => e.tgid === rec.ppid && isClone(e.abi, e.nr) && !isThreadClone(e));
    // A return first: the process was inside a call when capture began; the plugin names it at its next call.
    if (!parent && rec.kind !== 'enter') return;
    this.live.add(rec.tgid);
    if (parent) {
      this.earlyForks.add(rec.tgid);
      this.procs.set(rec.tgid, { pid: rec.tgid, ppid: parent.tgid, comm: parent.comm });
      if (!this.wanted(parent.tgid)) return;
      this.inScope.add(rec.tgid);
      out.push({ type: 'fork', seq: ++this.seq, ts: this.ts(rec.ts), pid: parent.tgid, tid: parent.tid, comm: parent.comm,
        childPid: rec.tgid, childTid: rec.tid, thread: false });
      return;
    }
    const a = rec.kind === 'enter' ? rec.announce : undefined;
    const exe = a ? exePath(a.exeParts) : '';
    if (rec.kind !== 'enter' || !a || exe === '') return; // nothing to name it by (no mm: a kernel thread)
    this.kernelExecs++;
    // Started by the kernel only if its parent never ran in user space either (a kworker, or
    // pid 0 for init): a CLONE_PARENT child whose creator's clone has not returned yet also
    // arrives without a fork, but its parent is a process seen here, so it is not taken for one.
    // (A reused pid of a process seen earlier errs the same, safe way.)
    const byKernel = !this.procs.has(rec.ppid);
    this.procs.set(rec.tgid, { pid: rec.tgid, ppid: rec.ppid, comm: rec.comm, exe, argv: a.argv ?? [] });
    if (!this.wanted(rec.tgid)) return;
    out.push({ type: 'exec', seq: ++this.seq, ts: this.ts(rec.ts), pid: rec.tgid, tid: rec.tid, comm: rec.comm, exe, argv: a.argv ?? [],
      ...(byKernel ? { byKernel: true as const } : {}) });
  }

  /** A completed call is stamped at its return (so ts grows with seq), an unfinished one at entry. */
  private syscall(e: EnterRec, ret: number | null, at: bigint = e.ts): SyscallEvent {
    const ev: SyscallEvent = {
      type: 'syscall', seq: ++this.seq, ts: this.ts(at), pid: e.tgid, tid: e.tid, comm: e.comm, abi: e.abi,
      nr: e.nr, name: syscallName(e.nr, e.abi), args: e.args.map((a) => Number(BigInt.asIntN(64, a))), ret,
    };
    if (e.path !== undefined) ev.path = e.path;
    if (e.path2 !== undefined) ev.path2 = e.path2;
    if (isExecNr(e.abi, e.nr)) ev.argv = e.argv;
    if (e.readAtExit) ev.readAtExit = true;
    if (e.pathFromKernel) ev.pathFromKernel = true;
    if (e.addrFromKernel) ev.addrFromKernel = true;
    if (e.signal) ev.signal = e.signal;
    if (e.abi === 'i386' && e.nr === SOCKETCALL) {
      // unpacked into the direct call it stands for, with the words the kernel copied as its arguments
      const nr = socketcallTarget(Number(e.args[0] ?? -1n));
      if (nr !== undefined && e.scArgs) {
        ev.nr = nr;
        ev.name = syscallName(nr, 'i386');
        ev.args = [0, 1, 2, 3, 4, 5].map((i) => e.scArgs?.[i] ?? 0);
        ev.via = 'socketcall';
      }
    }
    // (under 2 bytes there is no family: no address, as the probe decodes it)
    if (e.sockaddr && e.sockaddr.length >= 2) ev.addr = decodeSockaddr(e.sockaddr);
    let cut = false, unread = false;
    if (ADDR_CALLS[e.abi].has(e.nr)) {
      // (as the probe marks them: an address over 128 bytes is cut, and may then fail to read too)
      cut = (e.flags & ENTER_FLAG.ADDR_CUT) !== 0;
      unread = (e.flags & (ENTER_FLAG.ADDR_UNREAD | ENTER_FLAG.SCARGS_UNREAD)) !== 0;
    }
    // a written-back address cut at the caller's buffer (what lies beyond is not the address), or unreadable
    if (e.outFlags) {
      cut ||= (e.outFlags & RET_OUT.CUT) !== 0;
      unread ||= (e.outFlags & RET_OUT.UNREAD) !== 0;
    }
    // sendmmsg/recvmmsg: an address per message handled (ev.nr and ev.args: the direct call's)
    const vlen = ev.via === 'socketcall' ? (e.scArgs?.[2] ?? 0) : Number((e.args[2] ?? 0n) & 0xffffffffn);
    const sending = ev.nr === SENDMMSG[e.abi];
    if (sending || RECVMMSG[e.abi].has(ev.nr)) {
      // sendmmsg: the messages it sent; the first only when it failed (the kernel reports an error
      // only when nothing was sent) or never returned (killed in the call); none when it is made
      // again. recvmmsg: the messages it received.
      const handled = sending
        ? (ret !== null && ret >= 0 ? ret : e.signal === 'restarted' ? 0 : Math.min(vlen, 1))
        : (ret !== null && ret > 0 ? ret : 0);
      const m = mmsgAddrs(sending ? e.mmsg : e.outMmsg, handled);
      // read again at the return from a message the call handled: what the kernel used may differ
      if (sending && e.mmsgRereadFrom !== undefined && e.mmsgRereadFrom < Math.min(handled, MMSG_ADDR_MAX)) ev.readAtExit = true;
      if (m.addrs) ev.addrs = m.addrs;
      cut ||= m.cut;
      unread ||= m.unread;
    }
    if (cut) ev.truncated = ['addr'];
    if (unread) ev.unreadable = ['addr'];
    return ev;
  }
}

/** The index of the first message whose header or address could not be read (its list's length when none). */
function firstUnread(list: readonly MmsgAddr[] | undefined): number {
  const k = (list ?? []).findIndex((m) => (m.flags & (MMSG_FLAG.END | MMSG_FLAG.UNREAD)) !== 0);
  return k < 0 ? (list ?? []).length : k;
}

/**
 * The addresses of the first `handled` messages of a sendmmsg/recvmmsg (at most MMSG_ADDR_MAX:
 * more is cut) from the plugin's per-message blobs: null for a message that names none; a header
 * or an address that could not be read (or a message the plugin has no blob for) ends the list,
 * unread. None when no message was handled, or the first could not be read.
 */
export function mmsgAddrs(list: readonly MmsgAddr[] | undefined, handled: number): { addrs?: (SockAddr | null)[]; cut: boolean; unread: boolean } {
  if (!(handled > 0)) return { cut: false, unread: false };
  const addrs: (SockAddr | null)[] = [];
  let cut = handled > MMSG_ADDR_MAX;
  for (let i = 0; i < Math.min(handled, MMSG_ADDR_MAX); i++) {
    const m = list?.[i];
    // a header or an address that could not be read ends the list, as the other sources end it
    if (!m || (m.flags & (MMSG_FLAG.END | MMSG_FLAG.UNREAD))) return { ...(addrs.length ? { addrs } : {}), cut, unread: true };
    cut ||= (m.flags & MMSG_FLAG.CUT) !== 0;
    // (under 2 bytes there is no family: no address, as for a single address)
    addrs.push(m.addr && m.addr.length >= 2 ? decodeSockaddr(m.addr) : null);
  }
  return { addrs, cut, unread: false };
}

function isThreadClone(e: EnterRec): boolean {
  const NR = NRS[e.abi];
  const flags = e.nr === NR.clone ? Number((e.args[0] ?? 0n) & 0xffffffffn) : e.nr === NR.clone3 ? e.flags : 0;
  return (flags & CLONE_THREAD) !== 0;
}

/**
 * The program an exec runs, as /proc/PID/exe would name it: the path as passed when it is an
 * absolute file name (a script stays the script, as every source reports it), else the file the
 * kernel mapped (mm->exe_file): /proc/self/exe (busybox re-executing itself), /dev/fd/N (fexecve;
 * a memfd is /memfd:NAME), a relative path, or a path that could not be read. A script run by a
 * relative path maps its interpreter: it is named by the working directory and the path instead.
 */
export function execExe(passed: string | undefined, mapped: string, at: { cwd?: string; newArgv?: string[] | undefined } = {}): string {
  // a memfd has no path anyone can pass: whatever name led to it (/proc//self/fd/3, a link to
  // /dev/fd/3), the program is the memfd
  if (mapped.startsWith('/memfd:')) return mapped;
  if (passed !== undefined && passed.startsWith('/') && !EXE_ALIAS.test(posix.normalize(passed))) return passed;
  if (passed && !passed.startsWith('/') && at.cwd) {
    // binfmt_script puts the interpreter first and the script, as passed, after it (and its one argument)
    const a = at.newArgv ?? [];
    const script = a[0] !== passed && (a[1] === passed || a[2] === passed);
    if (script || !mapped) return posix.normalize(`${at.cwd}/${passed}`);
  }
  return mapped || passed || '';
}

export function decodeSockaddr(b: Buffer): SockAddr {
  const fam = b.length >= 2 ? b.readUInt16LE(0) : -1;
  if (fam === 2 && b.length >= 8) return { family: 'inet', address: [...b.subarray(4, 8)].join('.'), port: b.readUInt16BE(2) };
  if (fam === 10 && b.length >= 24) {
    const parts: string[] = [];
    for (let i = 8; i < 24; i += 2) parts.push(b.readUInt16BE(i).toString(16));
    return { family: 'inet6', address: compressV6(parts.join(':')), port: b.readUInt16BE(2) };
  }
  if (fam === 1) {
    const p = b.subarray(2);
    const abstract = p.length > 0 && p[0] === 0;
    const body = abstract ? p.subarray(1) : p;
    const z = body.indexOf(0);
    return { family: 'unix', path: body.toString('utf8', 0, abstract || z < 0 ? body.length : z), abstract };
  }
  if (fam === 16) return { family: 'netlink', raw: fam };
  if (fam === 17) return { family: 'packet', raw: fam };
  return { family: 'other', raw: fam };
}

function compressV6(full: string): string {
  // the longest run of zero groups becomes '::'
  const groups = full.split(':');
  let best = -1, bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
