// Decoder for the probe's binary stream ([u32 length][record], layout in probe/sandtrace.h) into
// TraceEvents. Built for throughput: plain Buffer reads, no per-record allocations beyond the event.
import { MMSG_ADDR_MAX, type Abi, type ArgName, type ExecEvent, type ExitEvent, type SockAddr, type SyscallEvent, type TraceEvent } from '../events.js';
import { syscallName } from '../../semantics/syscalls.js';
import { isRestartCode, noHandler, onDelivery, SA_RESTART, settle, type Disposition } from '../signals.js';

export const REC_SYSCALL = 1;
export const REC_FORK = 2;
export const REC_EXEC = 3;
export const REC_EXIT = 4;
export const REC_SIGNAL = 5;
export const REC_READY = 100;
export const REC_STATS = 101;

const F_COMPAT = 1;
const F_NORET = 2;
const F_THREAD = 4;
export const F_TRUNC = 8;
const F_SOCKETCALL = 32;
const F_REREAD = 64;
const F_INTERP = 128;

// A signal record's disposition (a[1]).
const SIG_DISP_DEFAULT = 0;
const SIG_DISP_IGNORE = 1;

// rec.cut / rec.bad bits (byte 106 / 107): the argument was cut at its buffer / could not be read.
const A_PATH = 1;
const A_PATH2 = 2;
const A_ARGV = 4;
const A_ADDR = 8;
const A_ALL = A_PATH | A_PATH2 | A_ARGV | A_ADDR;
// rec.bad only (sandtrace.h): taken from the kernel at exit, not re-read from the caller's memory:
// the path, the name of the file an open returned; the address, the peer a connect connected to
const K_PATH = 16;
const K_ADDR = 32;

// sendmmsg/recvmmsg records: the addr region is a list of entries [u16 word][word & MM_LEN bytes
// of sockaddr], one per message read, in order (probe/sandtrace.h). MM_LEN 0: a null entry (the
// message names no address); MM_CUT: that address is a prefix; MM_BAD: that message's header (or
// its address) could not be read, and the list ends there. sendmmsg's list holds every message the
// probe read at entry (min(vlen, MMSG_ADDR_MAX)): the decoder keeps those the call handled (the
// first ret; the first one when it failed). recvmmsg's holds the first min(ret, MMSG_ADDR_MAX). The
// record's A_ADDR cut/bad bits are replaced by what the kept entries say (and by a call that
// handled more than MMSG_ADDR_MAX messages: cut).
const MM_LEN = 0x0fff;
const MM_BAD = 0x4000;
const MM_CUT = 0x8000;

/** 'send' for sendmmsg, 'recv' for recvmmsg (i386: recvmmsg_time64 too), else undefined. */
function mmsgKind(abi: Abi, nr: number): 'send' | 'recv' | undefined {
  if (abi === 'x86_64') return nr === 307 ? 'send' : nr === 299 ? 'recv' : undefined;
  return nr === 345 ? 'send' : nr === 337 || nr === 417 ? 'recv' : undefined;
}

/**
 * How many messages a sendmmsg/recvmmsg handled. sendmmsg: ret; when it failed, the first message
 * (the kernel stops at the first error and reports it only when nothing was sent), and the same
 * for a call that never returned (what it did is unknown: its first message was attempted).
 * recvmmsg: ret (none when it failed or never returned).
 */
export function mmsgHandled(kind: 'send' | 'recv', ret: number | null, vlen: number): number {
  if (ret !== null && ret >= 0) return ret;
  return kind === 'send' && vlen > 0 ? 1 : 0;
}

function argNames(bits: number, exec: boolean): ArgName[] {
  const out: ArgName[] = [];
  if (bits & A_PATH) out.push(exec ? 'exe' : 'path');
  if (bits & A_PATH2) out.push('path2');
  if (bits & A_ARGV) out.push('argv');
  if (bits & A_ADDR) out.push('addr');
  return out;
}

/** Size of the fixed part of a kernel record (struct rec). */
export const REC_FIXED = 112;

export interface ProbeStats {
  lost: number;
  freezes: number;
  frozenNs: number;
  records: number;
}

const U32 = 4294967296;

// 64-bit fields are read as two 32-bit words: lo + hi * 2^32, with a signed hi for arguments and
// return values (exact up to 2^53; e.g. -1 stays -1).

function cstr(b: Buffer, start: number, len: number): string {
  let end = start;
  const max = start + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString('utf8', start, end);
}

function splitNul(b: Buffer, start: number, len: number): string[] {
  const out: string[] = [];
  let s = start;
  const end = start + len;
  for (let i = start; i < end; i++) {
    if (b[i] === 0) {
      out.push(b.toString('utf8', s, i));
      s = i + 1;
    }
  }
  if (s < end) out.push(b.toString('utf8', s, end));
  return out;
}

function ipv6(b: Buffer, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(o + i * 2));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
  }
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::'.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * A kernel-internal dev_t (major << 20 | minor: a superblock's s_dev) as stat() reports it
 * (new_encode_dev: minor's low byte, major, then minor's upper bits from bit 20).
 */
export function userDev(kdev: number): number {
  return statDev(kdev >>> 20, kdev & 0xfffff);
}

/** A device number as stat() reports it, from its major and minor (as /proc/PID/mountinfo gives them). */
export function statDev(major: number, minor: number): number {
  return (minor & 0xff) + major * 0x100 + (minor >>> 8) * 0x100000;
}

/** Decodes a struct sockaddr of `len` bytes. */
export function decodeSockaddr(b: Buffer, o: number, len: number): SockAddr | undefined {
  if (len < 2) return undefined;
  const family = b.readUInt16LE(o);
  switch (family) {
    case 1: { // AF_UNIX
      if (len <= 2) return { family: 'unix', path: '', abstract: false };
      if (b[o + 2] === 0) return { family: 'unix', path: b.toString('utf8', o + 3, o + len), abstract: true };
      return { family: 'unix', path: cstr(b, o + 2, len - 2), abstract: false };
    }
    case 2: // AF_INET
      if (len < 8) break;
      return { family: 'inet', address: `${b[o + 4]}.${b[o + 5]}.${b[o + 6]}.${b[o + 7]}`, port: b.readUInt16BE(o + 2) };
    case 10: // AF_INET6
      if (len < 24) break;
      return { family: 'inet6', address: ipv6(b, o + 8), port: b.readUInt16BE(o + 2) };
    case 16:
      return { family: 'netlink', raw: family };
    case 17:
      return { family: 'packet', raw: family };
  }
  return { family: 'other', raw: family };
}

/**
 * Incremental decoder: push() stream chunks, get events in stream order with seq numbers.
 * The READY record sets the time base; the STATS record ends the stream. Chunks are copied into
 * one aligned working buffer so that fields are read with typed-array loads.
 *
 * A call that exited with a kernel-internal restart code (a signal is pending) is held back until
 * its thread's next record says what the program saw (src/capture/signals.ts): a signal record
 * (the probe's REC_SIGNAL: the signal and its disposition) settles it when a handler runs or the
 * signal kills; any other record of the thread (its next call, the same one made again, a fork,
 * an exec) means no handler ran and the kernel made the call again, and its exit means the task
 * died inside it. Events get their seq when released, so the stream stays in seq order; other
 * threads' events are not held. What is still held when the stream ends is released as the probe
 * reported it (the STATS record, or flush() when the stream broke off).
 */
export class ProbeDecoder {
  seq = 0;
  parseErrors = 0;
  /** bpf_ktime_get_ns at READY (the loader's CLOCK_MONOTONIC). */
  baseNs: number | null = null;
  ringBytes = 0;
  stats: ProbeStats | null = null;
  private buf: Buffer = Buffer.allocUnsafeSlow(1 << 20);
  private u32 = new Uint32Array(this.buf.buffer, 0, this.buf.length >>> 2);
  private i32 = new Int32Array(this.buf.buffer, 0, this.buf.length >>> 2);
  /** Bytes at the start of buf that belong to an incomplete record. */
  private kept = 0;
  private readonly comms = new Map<number, { a: number; b: number; c: number; d: number; s: string }>();
  private lastTid = -1;
  private lastComm: { a: number; b: number; c: number; d: number; s: string } | null = null;
  private readonly names64: string[] = [];
  private readonly names32: string[] = [];
  /** Per tid: its call that exited with a restart code, not settled yet. */
  private readonly held = new Map<number, SyscallEvent>();

  push(chunk: Buffer): TraceEvent[] {
    const need = this.kept + chunk.length;
    if (need > this.buf.length) {
      let cap = this.buf.length;
      while (cap < need) cap *= 2;
      const nb = Buffer.allocUnsafeSlow(cap);
      this.buf.copy(nb, 0, 0, this.kept);
      this.buf = nb;
      this.u32 = new Uint32Array(nb.buffer, 0, cap >>> 2);
      this.i32 = new Int32Array(nb.buffer, 0, cap >>> 2);
    }
    chunk.copy(this.buf, this.kept);
    const n = need;
    const out: TraceEvent[] = [];
    const u32 = this.u32;
    let o = 0;
    while (o + 4 <= n) {
      const len = u32[o >>> 2]!;
      const next = o + 4 + ((len + 3) & ~3);
      if (next > n) break;
      this.record(o + 4, len, out);
      o = next;
    }
    this.kept = n - o;
    if (this.kept > 0 && o > 0) this.buf.copy(this.buf, 0, o, n);
    return out;
  }

  /** Bytes of an incomplete record left at the end of the stream (0 when it ended cleanly). */
  get leftover(): number {
    return this.kept;
  }

  private name(nr: number, abi: Abi): string {
    const cache = abi === 'x86_64' ? this.names64 : this.names32;
    let s = cache[nr];
    if (s === undefined) {
      s = syscallName(nr, abi);
      if (nr >= 0 && nr < 4096) cache[nr] = s;
    }
    return s;
  }

  /** comm at word index w for tid; the same task's name is decoded once. */
  private comm(w: number, tid: number): string {
    const u32 = this.u32;
    const a = u32[w]!, b = u32[w + 1]!, c = u32[w + 2]!, d = u32[w + 3]!;
    let hit = tid === this.lastTid ? this.lastComm : this.comms.get(tid);
    if (!hit || hit.a !== a || hit.b !== b || hit.c !== c || hit.d !== d) {
      hit = { a, b, c, d, s: cstr(this.buf, w << 2, 16) };
      this.comms.set(tid, hit);
    }
    this.lastTid = tid;
    this.lastComm = hit;
    return hit.s;
  }

  private record(o: number, len: number, out: TraceEvent[]): void {
    const b = this.buf;
    const u32 = this.u32;
    const i32 = this.i32;
    const w = o >>> 2;
    const type = b[o];
    if (type === REC_READY) {
      if (len < 24) { this.parseErrors++; return; }
      this.baseNs = u32[w + 2]! + u32[w + 3]! * U32;
      this.ringBytes = u32[w + 4]! + u32[w + 5]! * U32;
      return;
    }
    if (type === REC_STATS) {
      if (len < 40) { this.parseErrors++; return; }
      this.stats = {
        lost: u32[w + 2]! + u32[w + 3]! * U32, freezes: u32[w + 4]! + u32[w + 5]! * U32,
        frozenNs: u32[w + 6]! + u32[w + 7]! * U32, records: u32[w + 8]! + u32[w + 9]! * U32,
      };
      this.releaseHeld(out);
      return;
    }
    const head = u32[w]!;
    const flags = (head >>> 8) & 0xff;
    const dataLen = head >>> 16;
    if (len < REC_FIXED || len !== REC_FIXED + dataLen) { this.parseErrors++; return; }
    const pid = u32[w + 2]!;
    const tid = u32[w + 3]!;
    let ts = u32[w + 4]! + u32[w + 5]! * U32 - (this.baseNs ?? 0);
    if (ts < 0) ts = 0;
    const comm = this.comm(w + 6, tid);
    switch (type) {
      case REC_SYSCALL: {
        const abi: Abi = flags & F_COMPAT ? 'i386' : 'x86_64';
        const nr = i32[w + 1]!;
        const ev: SyscallEvent = {
          type: 'syscall', seq: 0, ts, pid, tid, comm, abi, nr, name: this.name(nr, abi),
          args: [
            u32[w + 10]! + i32[w + 11]! * U32, u32[w + 12]! + i32[w + 13]! * U32, u32[w + 14]! + i32[w + 15]! * U32,
            u32[w + 16]! + i32[w + 17]! * U32, u32[w + 18]! + i32[w + 19]! * U32, u32[w + 20]! + i32[w + 21]! * U32,
          ],
          ret: flags & F_NORET ? null : u32[w + 22]! + i32[w + 23]! * U32,
        };
        if (flags & F_SOCKETCALL) ev.via = 'socketcall';
        if (flags & F_REREAD) ev.readAtExit = true;
        let cb = u32[w + 26]! >>> 16;
        if (dataLen) cb = this.syscallData(ev, o, dataLen, cb);
        else {
          // a batch whose record holds no list (not read): none of its addresses is known
          const mm = mmsgKind(ev.abi, ev.nr);
          if (mm) cb = this.mmsgAddrs(ev, mm, o + REC_FIXED, 0, cb);
        }
        if (cb) this.marks(ev, cb, false);
        // the common case, kept lean: nothing held, and no restart code to hold
        if (this.held.size === 0 && (ev.ret === null || ev.ret > -512)) {
          ev.seq = ++this.seq;
          out.push(ev);
        } else {
          this.emit(ev, out);
        }
        return;
      }
      case REC_FORK:
        this.emit({
          type: 'fork', seq: 0, ts, pid, tid, comm,
          childPid: u32[w + 10]!, childTid: u32[w + 12]!, thread: (flags & F_THREAD) !== 0,
        }, out);
        return;
      case REC_EXEC: {
        const l = this.lens(w);
        if (l === null || l[0] + l[2] > dataLen) { this.parseErrors++; return; }
        const d = o + REC_FIXED;
        const ev: ExecEvent = {
          type: 'exec', seq: 0, ts, pid, tid, comm,
          exe: cstr(b, d, l[0]), argv: splitNul(b, d + l[0], l[2]), uid: u32[w + 27]!, abi: flags & F_COMPAT ? 'i386' : 'x86_64',
        };
        // a[0]: the loaded file's s_dev, a[1]: its inode (0: the kernel gave none)
        const ino = u32[w + 12]! + u32[w + 13]! * U32;
        if (ino !== 0) {
          ev.file = { dev: userDev(u32[w + 10]!), ino: (BigInt(u32[w + 13]!) << 32n | BigInt(u32[w + 12]!)).toString() };
          if (flags & F_INTERP) ev.file.interpreter = true;
        }
        const cb = u32[w + 26]! >>> 16;
        if (cb) this.marks(ev, cb, true);
        this.emit(ev, out);
        return;
      }
      case REC_EXIT: {
        const raw = u32[w + 22]!;
        const sig = raw & 0x7f;
        const ev: ExitEvent = {
          type: 'exit', seq: 0, ts, pid, tid, comm,
          code: sig ? 128 + sig : (raw >>> 8) & 0xff, thread: (flags & F_THREAD) !== 0,
        };
        if (sig) ev.signal = sig;
        this.emit(ev, out);
        return;
      }
      case REC_SIGNAL: {
        // a[0] signal, a[1] disposition, a[2] sa_flags; ret: the restart code the kernel acts on
        const ev = this.held.get(tid);
        if (!ev) return; // its call was not reported (lost), or it was settled already
        const disp = u32[w + 12]!;
        const d: Disposition = disp === SIG_DISP_DEFAULT ? { kind: 'default' } : disp === SIG_DISP_IGNORE ? { kind: 'ignore' }
          : { kind: 'handler', restart: (u32[w + 14]! & SA_RESTART) !== 0 };
        const outcome = onDelivery(u32[w + 22]! + i32[w + 23]! * U32, u32[w + 10]!, d);
        if (outcome === undefined) return; // ignored, a stop or a continue: the call stays pending
        this.held.delete(tid);
        settle(ev, outcome);
        this.release(ev, out);
        return;
      }
      default:
        this.parseErrors++;
    }
  }

  /**
   * Puts ev out, after the held call of its thread, settled: that call did not return to a
   * handler (the thread went on, so the kernel made it again), or, when ev is the thread's exit,
   * never returned. A call exiting with a restart code is held in turn.
   */
  private emit(ev: TraceEvent, out: TraceEvent[]): void {
    if (this.held.size !== 0) {
      const prev = this.held.get(ev.tid);
      if (prev) {
        this.held.delete(ev.tid);
        settle(prev, ev.type === 'exit' ? 'killed' : noHandler());
        this.release(prev, out);
      }
    }
    if (ev.type === 'syscall' && ev.ret !== null && ev.ret <= -512 && isRestartCode(ev.ret)) {
      this.held.set(ev.tid, ev);
      return;
    }
    this.release(ev, out);
  }

  private release(ev: TraceEvent, out: TraceEvent[]): void {
    ev.seq = ++this.seq;
    out.push(ev);
  }

  private releaseHeld(out: TraceEvent[]): void {
    for (const ev of this.held.values()) this.release(ev, out);
    this.held.clear();
  }

  /**
   * The calls still held (exited with a restart code, outcome unknown), as the probe reported
   * them: for a stream that ended without its STATS record, which releases them itself.
   */
  flush(): TraceEvent[] {
    const out: TraceEvent[] = [];
    this.releaseHeld(out);
    return out;
  }

  /** cb: the cut byte, then the bad byte (word 26 above argc). */
  private marks(ev: SyscallEvent | ExecEvent, cb: number, exec: boolean): void {
    if (cb & A_ALL) ev.truncated = argNames(cb & A_ALL, exec);
    const bad = cb >>> 8;
    if (bad & A_ALL) ev.unreadable = argNames(bad & A_ALL, exec);
    if (!exec && bad & K_PATH) (ev as SyscallEvent).pathFromKernel = true;
    if (!exec && bad & K_ADDR) (ev as SyscallEvent).addrFromKernel = true;
  }

  /** len_path, len_path2, len_argv, len_addr. */
  private lens(w: number): [number, number, number, number] | null {
    const x = this.u32[w + 24]!, y = this.u32[w + 25]!;
    return [x & 0xffff, x >>> 16, y & 0xffff, y >>> 16];
  }

  /** Reads the record's data into ev; returns the cut and bad bits (cb) to mark it with. */
  private syscallData(ev: SyscallEvent, o: number, dataLen: number, cb: number): number {
    const b = this.buf;
    const l = this.lens(o >>> 2)!;
    if (l[0] + l[1] + l[2] + l[3] > dataLen) { this.parseErrors++; return cb; }
    let p = o + REC_FIXED;
    if (l[0]) ev.path = cstr(b, p, l[0]);
    p += l[0];
    if (l[1]) ev.path2 = cstr(b, p, l[1]);
    p += l[1];
    if (l[2]) ev.argv = splitNul(b, p, l[2]);
    p += l[2];
    const mm = mmsgKind(ev.abi, ev.nr);
    if (mm) return this.mmsgAddrs(ev, mm, p, l[3], cb);
    if (l[3]) {
      const addr = decodeSockaddr(b, p, l[3]);
      if (addr) ev.addr = addr;
    }
    return cb;
  }

  /**
   * A sendmmsg/recvmmsg's address list (len bytes at p): ev.addrs for the messages the call
   * handled; cb's A_ADDR bits replaced by what those entries say.
   */
  private mmsgAddrs(ev: SyscallEvent, kind: 'send' | 'recv', p: number, len: number, cb: number): number {
    const b = this.buf;
    const handled = mmsgHandled(kind, ev.ret, ev.args[2]! >>> 0);
    const keep = Math.min(handled, MMSG_ADDR_MAX);
    const addrs: (SockAddr | null)[] = [];
    let cut = handled > MMSG_ADDR_MAX;
    let bad = false;
    const end = p + len;
    while (addrs.length < keep) {
      if (p + 2 > end) { bad = true; break; } // fewer entries than messages handled: not read
      const word = b.readUInt16LE(p);
      const n = word & MM_LEN;
      if (word & MM_BAD) { bad = true; break; }
      if (p + 2 + n > end) { this.parseErrors++; break; }
      addrs.push(n ? decodeSockaddr(b, p + 2, n) ?? null : null);
      if (word & MM_CUT) cut = true;
      p += 2 + n;
    }
    if (addrs.length) ev.addrs = addrs;
    cb &= ~(A_ADDR | (A_ADDR << 8));
    if (cut) cb |= A_ADDR;
    if (bad) cb |= A_ADDR << 8;
    return cb;
  }
}
