// Decoding of the QEMU plugin's binary records (qemu-plugin/sandtrace.c): little-endian, each
// record starts with {u16 type, u16 len, u32 tid, u32 tgid, u32 ppid, u64 ts_ns}.
// ENTER32/RET32 are i386 (compat: int $0x80, sysenter/syscall from 32-bit code) calls, laid out as
// ENTER/RET, in i386 numbering, with 32-bit arguments. An i386 socketcall (102) entry carries the
// words of its argument array (SCARGS), as the kernel copies them, and the address they point to.
// A RET record's second word holds flags: RET_REREAD when arguments unreadable at entry were read
// again at the return (their blobs follow), except for an open, creat, openat or openat2 that
// returned a descriptor: its path, unreadable at entry, is then the name of the file opened (FDPATH
// blobs, leaf first after a '/' one, walked from the descriptor up to the task's root), without
// RET_REREAD; and except for a connect (x86_64, i386 direct or through a socketcall whose argument
// array was read at entry) that connected (0, or -EINPROGRESS): its address, unreadable at entry,
// is then the peer the kernel connected its socket to (one PEER blob: a sockaddr_in or sockaddr_in6
// built from the socket's sk_common, as getpeername() gives it), without RET_REREAD; RET_OUT_* for
// an address the kernel wrote back (accept,
// accept4, recvfrom, recvmsg, getsockname, getpeername, direct or through socketcall: OUTADDR blob),
// read at the return of a call that completed, no longer than the caller's buffer was at the call;
// RET_SIGNAL_* when a signal was delivered at the return (the result from the handler's frame, or
// the call made again).
// sendmmsg and recvmmsg (x86_64, direct i386, i386 socketcall) carry one blob per message, in
// order, for at most the first 16 (MMSG_ADDR_MAX) of them: MMSG (ENTER; RET when read again)
// for sendmmsg's msg_name read at the call, OUTMMSG (RET, only for a result > 0 of a call that
// completed) for the sender the kernel wrote to recvmmsg's msg_name (the pointer and room,
// msg_namelen, as they were at the call). Each is a flags byte (MMSG_FLAG) and the address's bytes;
// none: the message names no address. An END blob (no address) stands for a header that could not
// be read: the list ends there.
import type { Abi } from '../events.js';

export const REC = { ENTER: 1, RET: 2, INFO: 3, PROC: 4, ENTER32: 5, RET32: 6 } as const;
export const BLOB = { PATH: 1, PATH2: 2, ARGV: 3, SOCKADDR: 4, EXE: 5, COMM: 6, NEWARGV: 7, EXECFN: 8, UID: 9, CWD: 10, SCARGS: 11, OUTADDR: 12, MMSG: 13, OUTMMSG: 14, FDPATH: 15, PEER: 16 } as const;
/**
 * ENTER flags of the calls that carry a socket address (bind, connect, sendto, sendmsg, and the
 * i386 socketcall); execve's flags hold ARGV_INCOMPLETE, clone3's its clone flags.
 */
export const ENTER_FLAG = {
  /** The socket address (or sendmsg's msghdr) could not be read. */
  ADDR_UNREAD: 0x40000000,
  /** The socket address was longer than 128 bytes (sockaddr_storage): cut there. */
  ADDR_CUT: 0x20000000,
  /** The i386 socketcall's argument array could not be read (the kernel fails it with EFAULT). */
  SCARGS_UNREAD: 0x10000000,
  /**
   * sendmmsg (direct or through socketcall): a message header or address could not be read (its
   * MMSG blobs say which); the plugin read them again at the return.
   */
  MMSG_UNREAD: 0x08000000,
} as const;
/**
 * The flags byte of one message's MMSG/OUTMMSG blob. CUT: the address was longer than the room
 * (recvmmsg: msg_namelen at the call) or 128 bytes, what follows is a prefix. UNREAD: the address
 * could not be read (none follows). END: the message header could not be read; the list ends here.
 */
export const MMSG_FLAG = { CUT: 0x1, UNREAD: 0x2, END: 0x4 } as const;
/** One message of a sendmmsg/recvmmsg: its MMSG_FLAG bits and its address's bytes (none: no address). */
export interface MmsgAddr { flags: number; addr?: Buffer }
/** RET flag: the call's arguments were unreadable at entry and were read again at its return. */
export const RET_REREAD = 0x1;
/**
 * RET flags of the address the kernel wrote back: cut (the kernel's length was more than the
 * caller's buffer held at the call, or than 128 bytes: what was read is a prefix), or unreadable
 * (addrlen or the buffer).
 */
export const RET_OUT = { CUT: 0x2, UNREAD: 0x4 } as const;
/**
 * RET flags of a signal delivered at the return. FRAME: the call returned into a handler, and ret
 * is the result the kernel saved for it in the handler's signal frame (-EINTR: the signal cut it
 * short; the registers hold the handler's arguments). RESTART: the kernel makes the call again
 * (SA_RESTART, or no handler: a stop and continue): ret is the call's number, no result.
 */
export const RET_SIGNAL = { FRAME: 0x8, RESTART: 0x10 } as const;
const HDR = 24;

export interface RecHeader { tid: number; tgid: number; ppid: number; ts: bigint }
export interface EnterRec extends RecHeader {
  kind: 'enter'; abi: Abi; nr: number; flags: number; args: bigint[]; comm: string;
  path?: string; path2?: string; argv: string[]; sockaddr?: Buffer;
  /** i386 socketcall: the u32 words of its argument array (as many as the call takes). */
  scArgs?: number[];
  /** Set by the collector: arguments unreadable at entry were read at the return (RetRec.flags RET_REREAD). */
  readAtExit?: boolean;
  /** Set by the collector: the path, unreadable at entry, is the name of the file the open returned (RetRec.fdPathParts). */
  pathFromKernel?: boolean;
  /** Set by the collector: the address (sockaddr), unreadable at entry, is the peer the connect connected its socket to (RetRec.peer). */
  addrFromKernel?: boolean;
  /** Set by the collector: the RET_OUT flags of the address the kernel wrote back (its bytes, RetRec.outAddr, go to sockaddr). */
  outFlags?: number;
  /** Set by the collector: a signal at the return (RetRec.flags RET_SIGNAL) cut the call short, or has it made again. */
  signal?: 'interrupted' | 'restarted';
  /** sendmmsg: each message's msg_name, read at the call (MMSG blobs; the return's when read again). */
  mmsg?: MmsgAddr[];
  /** Set by the collector: recvmmsg's senders, read at the return (RetRec.outMmsg). */
  outMmsg?: MmsgAddr[];
  /** Set by the collector: sendmmsg's messages from this index on were read again at the return. */
  mmsgRereadFrom?: number;
  /**
   * On the first call of a process the plugin had not seen (a fork child, or a program the kernel
   * itself exec'd: init, modprobe): what it runs, mm->exe_file leaf first and mm's argv.
   */
  announce?: { exeParts: string[]; argv?: string[] };
}
export interface RetRec extends RecHeader {
  kind: 'ret'; abi: Abi; nr: number; ret: bigint; exeParts: string[]; comm?: string;
  /** RET_REREAD, and the ENTER_FLAG address bits of what was re-read. */
  flags: number;
  /**
   * Arguments unreadable at entry, read again at the return (flags RET_REREAD): paths, a socket
   * address, an i386 socketcall's argument words.
   */
  path?: string; path2?: string; sockaddr?: Buffer; scArgs?: number[];
  /**
   * An open (open, creat, openat, openat2) whose path was unreadable at entry and that returned a
   * descriptor: the name of the file it refers to, '/' then its components leaf first, up to the
   * task's root (FDPATH blobs), instead of the path read again (no RET_REREAD then).
   */
  fdPathParts?: string[];
  /**
   * A connect whose address was unreadable at entry and that connected (0, or -EINPROGRESS): the
   * peer of its socket (PEER blob: a sockaddr_in or sockaddr_in6, from sk->__sk_common), instead of
   * the address read again (no RET_REREAD then).
   */
  peer?: Buffer;
  /**
   * The address the kernel wrote back (accept, accept4, recvfrom, recvmsg's msg_name, getsockname,
   * getpeername), at most as many bytes as the caller's buffer held at the call (flags RET_OUT).
   */
  outAddr?: Buffer;
  /** sendmmsg's messages read again at the return (flags RET_REREAD; MMSG blobs). */
  mmsg?: MmsgAddr[];
  /** recvmmsg: the sender the kernel wrote to each received message (OUTMMSG blobs). */
  outMmsg?: MmsgAddr[];
  /** After a successful exec: argv and the file name as passed, from the new image's stack. */
  newArgv?: string[]; execfn?: string; uid?: number;
  /** After a successful exec: the working directory (task->fs->pwd), '/' then its components leaf first; empty when not read. */
  cwdParts: string[];
}
/** One task of the guest's process list (walked from init_task); mm is 0 for kernel threads. */
export interface ProcRec extends RecHeader { kind: 'proc'; comm: string; mm: bigint; uid: number }
export interface InfoRec extends RecHeader { kind: 'info'; slide: bigint }
export type PluginRecord = EnterRec | RetRec | InfoRec | ProcRec;

const cstr = (b: Buffer) => {
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
};

/** Splits a byte stream into records; keeps the unfinished tail for the next chunk. */
export class RecordReader {
  private pending: Buffer = Buffer.alloc(0);
  parseErrors = 0;

  push(chunk: Buffer): PluginRecord[] {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: PluginRecord[] = [];
    let o = 0;
    while (o + HDR <= buf.length) {
      const type = buf.readUInt16LE(o), len = buf.readUInt16LE(o + 2);
      if (len < HDR || type < 1 || type > 6) {
        // A corrupt stream cannot be resynchronised reliably: count it and drop the rest.
        this.parseErrors++;
        this.pending = Buffer.alloc(0);
        return out;
      }
      if (o + len > buf.length) break;
      const rec = decode(buf.subarray(o, o + len), type);
      if (rec) out.push(rec); else this.parseErrors++;
      o += len;
    }
    this.pending = Buffer.from(buf.subarray(o));
    return out;
  }

  /** Bytes left over when the stream ended (a truncated last record). */
  get leftover(): number { return this.pending.length; }
}

function decode(r: Buffer, type: number): PluginRecord | null {
  const h: RecHeader = { tid: r.readUInt32LE(4), tgid: r.readUInt32LE(8), ppid: r.readUInt32LE(12), ts: r.readBigUInt64LE(16) };
  if (type === REC.PROC) {
    return r.length >= HDR + 28 ? { kind: 'proc', ...h, comm: cstr(r.subarray(HDR, HDR + 16)), mm: r.readBigUInt64LE(HDR + 16), uid: r.readUInt32LE(HDR + 24) } : null;
  }
  if (type === REC.INFO) return r.length >= HDR + 8 ? { kind: 'info', ...h, slide: r.readBigInt64LE(HDR) } : null;
  const abi: Abi = type === REC.ENTER32 || type === REC.RET32 ? 'i386' : 'x86_64';
  if (type === REC.ENTER || type === REC.ENTER32) {
    if (r.length < HDR + 8 + 48 + 16) return null;
    const args: bigint[] = [];
    for (let i = 0; i < 6; i++) args.push(r.readBigUInt64LE(HDR + 8 + 8 * i));
    const rec: EnterRec = {
      kind: 'enter', ...h, abi, nr: r.readUInt32LE(HDR), flags: r.readUInt32LE(HDR + 4), args,
      comm: cstr(r.subarray(HDR + 56, HDR + 72)), argv: [],
    };
    for (const [kind, data] of blobs(r, HDR + 72)) {
      if (kind === BLOB.PATH) rec.path = data.toString('utf8');
      else if (kind === BLOB.PATH2) rec.path2 = data.toString('utf8');
      else if (kind === BLOB.ARGV) rec.argv.push(data.toString('utf8'));
      else if (kind === BLOB.SOCKADDR) rec.sockaddr = Buffer.from(data);
      else if (kind === BLOB.SCARGS) rec.scArgs = words(data);
      else if (kind === BLOB.MMSG && data.length >= 1) (rec.mmsg ??= []).push(mmsgAddr(data));
      else if (kind === BLOB.EXE) (rec.announce ??= { exeParts: [] }).exeParts.push(data.toString('utf8'));
      else if (kind === BLOB.NEWARGV) (rec.announce ??= { exeParts: [] }).argv = splitArgs(data);
    }
    return rec;
  }
  if (r.length < HDR + 16) return null;
  const rec: RetRec = { kind: 'ret', ...h, abi, nr: r.readUInt32LE(HDR), flags: r.readUInt32LE(HDR + 4), ret: r.readBigInt64LE(HDR + 8), exeParts: [], cwdParts: [] };
  for (const [kind, data] of blobs(r, HDR + 16)) {
    if (kind === BLOB.EXE) rec.exeParts.push(data.toString('utf8'));
    else if (kind === BLOB.COMM) rec.comm = data.toString('utf8');
    else if (kind === BLOB.PATH) rec.path = data.toString('utf8');
    else if (kind === BLOB.PATH2) rec.path2 = data.toString('utf8');
    else if (kind === BLOB.SOCKADDR) rec.sockaddr = Buffer.from(data);
    else if (kind === BLOB.SCARGS) rec.scArgs = words(data);
    else if (kind === BLOB.OUTADDR) rec.outAddr = Buffer.from(data);
    else if (kind === BLOB.MMSG && data.length >= 1) (rec.mmsg ??= []).push(mmsgAddr(data));
    else if (kind === BLOB.OUTMMSG && data.length >= 1) (rec.outMmsg ??= []).push(mmsgAddr(data));
    else if (kind === BLOB.EXECFN) rec.execfn = data.toString('utf8');
    else if (kind === BLOB.CWD) rec.cwdParts.push(data.toString('utf8'));
    else if (kind === BLOB.FDPATH) (rec.fdPathParts ??= []).push(data.toString('utf8'));
    else if (kind === BLOB.PEER) rec.peer = Buffer.from(data);
    else if (kind === BLOB.UID && data.length === 4) rec.uid = data.readUInt32LE(0);
    else if (kind === BLOB.NEWARGV) rec.newArgv = splitArgs(data);
  }
  return rec;
}

const mmsgAddr = (b: Buffer): MmsgAddr => (b.length > 1 ? { flags: b[0] ?? 0, addr: Buffer.from(b.subarray(1)) } : { flags: b[0] ?? 0 });
const words = (b: Buffer) => Array.from({ length: b.length >>> 2 }, (_, i) => b.readUInt32LE(4 * i));
const splitArgs = (b: Buffer) => b.toString('utf8').replace(/\0$/, '').split('\0');

/** A path from its components as the plugin walks them (leaf first); '' when none. */
/** The component the plugin puts where it cut a path (no file name holds '/'). */
export const PATH_CUT = '//';

export function exePath(partsLeafFirst: string[]): string {
  // the plugin cut the path (record full, or too deep): its upper part is missing, so it names nothing
  if (partsLeafFirst.includes(PATH_CUT)) return '';
  const parts = partsLeafFirst.filter((p) => p !== '/' && p !== '');
  return parts.length ? '/' + parts.reverse().join('/') : '';
}

function* blobs(r: Buffer, start: number): Generator<[number, Buffer]> {
  let o = start;
  while (o + 4 <= r.length) {
    const kind = r[o] ?? 0, len = r.readUInt16LE(o + 2);
    if (o + 4 + len > r.length) return;
    yield [kind, r.subarray(o + 4, o + 4 + len)];
    o += 4 + len;
  }
}
