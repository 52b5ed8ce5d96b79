// Builds report.json from the enriched event stream: an accumulator that sees each event once
// (memory bounded by distinct files, endpoints and syscall names, not by event count).
import type { Backend, CaptureStats } from '../capture/collector.js';
import type { SockAddr, SyscallEvent } from '../capture/events.js';
import type { Finding, Verdict } from '../engine/types.js';
import type { FileChange } from '../sandbox/types.js';
import { isOpenRead, isOpenWrite, O_CREAT, O_EXCL } from '../semantics/flags.js';
import { errnoName } from '../semantics/syscalls.js';
import type { EnrichedEvent, ProcessInfo } from '../semantics/types.js';
import {
  REPORT_SCHEMA, REPORT_VERSION, type FileOp, type Report, type ReportDiagnostic, type ReportDropped,
  type ReportFile, type ReportNetwork, type ReportProcess,
} from './schema.js';

export const TOOL_VERSION = '0.1.0';

const EPERM = -1;
const NETWORK_OPS = new Set(['connect', 'bind', 'listen', 'accept', 'accept4', 'sendto', 'sendmsg', 'recvfrom', 'recvmsg', 'sendmmsg', 'recvmmsg', 'recvmmsg_time64']);

interface FileAcc { ops: Set<FileOp>; pids: Set<number>; renamedTo: Set<string> }

/**
 * What one report lists at most. A sample controls how many distinct names it touches (a loop of
 * renames through 4,000-byte paths made a report of gigabytes and ran node out of memory): past
 * these, operations are counted (analysis.omitted, a REPORT_LIMITED warning) and not listed. The
 * syscall counts, findings and verdict still see every event.
 */
export const REPORT_LIMITS = {
  /** distinct file paths, and the characters of all listed names (paths and rename targets) */
  files: 20_000, fileChars: 16 << 20,
  /** rename targets and pids listed per file */
  renamedTo: 8, pidsPerFile: 64,
  /** distinct network entries (operation, endpoint, result, pid) */
  network: 20_000,
  /** processes, the first ones started */
  processes: 10_000,
} as const;

export interface SampleInfo { name: string; size: number; sha256: string; sha1: string; md5: string; type: string; args: string[] }

export interface ReportContext {
  id: string;
  started: Date;
  ended: Date;
  timeout: number;
  timedOut: boolean;
  isolation: Report['analysis']['isolation'];
  sample: SampleInfo;
  capture: CaptureStats;
  captureReason: string;
  backend: Backend;
  processes: readonly ProcessInfo[];
  changes: readonly FileChange[];
  /** Maps a host copy path to the path recorded in the report (relative to the analysis dir). */
  copyPath?: (hostPath: string) => string;
  findings: Finding[];
  verdict: Verdict;
  errors: ReportDiagnostic[];
  warnings: ReportDiagnostic[];
}

export class ReportBuilder {
  private total = 0;
  private readonly counts = new Map<string, number>();
  private readonly perPid = new Map<number, number>();
  private readonly files = new Map<string, FileAcc>();
  private readonly network = new Map<string, ReportNetwork>();
  private readonly denied = new Map<string, { name: string; pid: number; count: number }>();
  /** Events whose path/argv/address the capture read only in part, or not at all. */
  private argsTruncated = 0;
  /** Events whose arguments were read at the call's return (unreadable when it was made). */
  private argsReadAtExit = 0;
  private argsUnreadable = 0;
  /** Characters of the names in `files`, and operations past REPORT_LIMITS, counted and not listed. */
  private fileChars = 0;
  private filesOmitted = 0;
  private networkOmitted = 0;
  /** Syscalls the sandbox's seccomp profile denies: an EPERM from them is a blocked attempt. */
  private readonly deniedSet: ReadonlySet<string>;

  constructor(deniedSyscalls: Iterable<string> = []) {
    this.deniedSet = new Set(deniedSyscalls);
  }

  add(e: EnrichedEvent): void {
    const ev = e.ev;
    if (ev.type === 'syscall' || ev.type === 'exec') {
      if (ev.truncated?.length) this.argsTruncated++;
      if (ev.unreadable?.length) this.argsUnreadable++;
      if (ev.type === 'syscall' && ev.readAtExit) this.argsReadAtExit++;
    }
    if (ev.type === 'exec') {
      this.file(ev.exe, 'exec', ev.pid);
      return;
    }
    if (ev.type !== 'syscall') return;
    this.total++;
    this.counts.set(ev.name, (this.counts.get(ev.name) ?? 0) + 1);
    this.perPid.set(ev.pid, (this.perPid.get(ev.pid) ?? 0) + 1);
    const ret = ev.ret;
    if (ret === EPERM && this.deniedSet.has(ev.name)) {
      const k = `${ev.name}\0${ev.pid}`;
      const d = this.denied.get(k);
      if (d) d.count++;
      else this.denied.set(k, { name: ev.name, pid: ev.pid, count: 1 });
    }
    // a call the kernel makes again after a signal is one operation: the repeat carries its result
    if (NETWORK_OPS.has(ev.name) && ev.signal !== 'restarted') this.net(e);
    const ok = ret !== null && ret >= 0;
    const path = e.path;
    switch (ev.name) {
      case 'open': case 'openat': case 'openat2': case 'creat': {
        if (!ok || !path) return;
        const flags = ev.name === 'creat' ? 0o1101 : ev.name === 'open' ? (ev.args[1] ?? 0) : ev.name === 'openat' ? (ev.args[2] ?? 0) : 0;
        if (isOpenRead(flags)) this.file(path, 'read', ev.pid);
        if (isOpenWrite(flags)) this.file(path, 'write', ev.pid);
        // O_CREAT alone does not say the file was new; O_EXCL does (the overlay diff says the rest).
        if ((flags & O_CREAT) && (flags & O_EXCL)) this.file(path, 'create', ev.pid);
        return;
      }
      case 'unlink': case 'unlinkat': case 'rmdir':
        if (ok && path) this.file(path, 'delete', ev.pid);
        return;
      case 'rename': case 'renameat': case 'renameat2':
        if (ok && path) {
          this.file(path, 'rename', ev.pid);
          if (e.path2) {
            const f = this.files.get(path);
            if (f && !f.renamedTo.has(e.path2)) {
              if (f.renamedTo.size < REPORT_LIMITS.renamedTo && this.fileChars + e.path2.length <= REPORT_LIMITS.fileChars) {
                f.renamedTo.add(e.path2);
                this.fileChars += e.path2.length;
              } else this.filesOmitted++;
            }
            this.file(e.path2, 'create', ev.pid);
          }
        }
        return;
      case 'chmod': case 'fchmodat': case 'fchmodat2':
        if (ok && path) this.file(path, 'chmod', ev.pid);
        return;
      case 'fchmod':
        if (ok && e.fd?.path) this.file(e.fd.path, 'chmod', ev.pid);
        return;
      case 'chown': case 'lchown': case 'fchownat':
        if (ok && path) this.file(path, 'chown', ev.pid);
        return;
      case 'mkdir': case 'mkdirat':
        if (ok && path) this.file(path, 'mkdir', ev.pid);
        return;
      case 'link': case 'linkat': case 'symlink': case 'symlinkat':
        if (ok && e.path2) this.file(e.path2, 'link', ev.pid);
        return;
      case 'truncate':
        if (ok && path) this.file(path, 'truncate', ev.pid);
        return;
      case 'ftruncate':
        if (ok && e.fd?.path) this.file(e.fd.path, 'truncate', ev.pid);
        return;
      case 'write': case 'pwrite64': case 'writev': case 'pwritev': case 'pwritev2':
        if (ok && e.fd?.type === 'file' && e.fd.path) this.file(e.fd.path, 'write', ev.pid);
        return;
      case 'execve': case 'execveat':
        if (ok && path) this.file(path, 'exec', ev.pid);
        return;
      default:
        return;
    }
  }

  private file(path: string, op: FileOp, pid: number): void {
    let f = this.files.get(path);
    if (!f) {
      if (this.files.size >= REPORT_LIMITS.files || this.fileChars + path.length > REPORT_LIMITS.fileChars) {
        this.filesOmitted++;
        return;
      }
      f = { ops: new Set(), pids: new Set(), renamedTo: new Set() };
      this.files.set(path, f);
      this.fileChars += path.length;
    }
    f.ops.add(op);
    if (f.pids.size < REPORT_LIMITS.pidsPerFile) f.pids.add(pid);
  }

  private net(e: EnrichedEvent): void {
    const ev = e.ev;
    if (ev.type !== 'syscall') return;
    const op = (ev.name === 'accept4' ? 'accept' : ev.name === 'recvmmsg_time64' ? 'recvmmsg' : ev.name) as ReportNetwork['op'];
    // a batch: each message's address (none: a connected socket's, or no sender asked for)
    if (ev.addrs) {
      for (const a of ev.addrs) if (a) this.netEntry(op, a, e);
      return;
    }
    const fd = e.fd;
    let addr: SockAddr | undefined = ev.addr;
    if (op === 'listen' && fd?.lip !== undefined) {
      addr = fd.type === 'unix' ? { family: 'unix', path: fd.lip, abstract: false } : { family: fd.type === 'ipv6' ? 'inet6' : 'inet', address: fd.lip, port: fd.lport ?? 0 };
    }
    // sendto/sendmsg/recvfrom/recvmsg without an address are ordinary traffic on a connected socket.
    if (!addr) return;
    this.netEntry(op, addr, e);
  }

  private netEntry(op: ReportNetwork['op'], addr: SockAddr, e: EnrichedEvent): void {
    const ev = e.ev as SyscallEvent;
    const fd = e.fd;
    const family = addr.family;
    const address = family === 'inet' || family === 'inet6' ? addr.address : family === 'unix' ? (addr.abstract ? `@${addr.path}` : addr.path) : '';
    const port = family === 'inet' || family === 'inet6' ? addr.port : null;
    const proto: ReportNetwork['proto'] = family === 'unix' ? 'unix' : fd?.l4proto === 'tcp' || fd?.l4proto === 'udp' || fd?.l4proto === 'raw' ? fd.l4proto
      : op === 'sendto' || op === 'recvfrom' || op === 'recvmsg' || op === 'sendmmsg' || op === 'recvmmsg' ? 'udp' : family === 'inet' || family === 'inet6' ? 'tcp' : 'other';
    const ret = ev.ret;
    const result = ret === null ? 'unfinished' : ret >= 0 ? 'ok' : errnoName(ret);
    const key = `${op}\0${proto}\0${address}\0${port}\0${result}\0${ev.pid}`;
    const n = this.network.get(key);
    if (n) n.count++;
    else if (this.network.size >= REPORT_LIMITS.network) this.networkOmitted++;
    else this.network.set(key, { op, proto, family, address, port, result, pid: ev.pid, count: 1 });
  }

  build(ctx: ReportContext): Report {
    const t0 = 0;
    const secs = (ns: number) => Math.round((ns - t0) / 1e6) / 1e3;
    for (const c of ctx.changes) {
      if (c.change === 'created') this.file(c.path, 'create', 0);
      if (c.change === 'deleted' && !this.files.get(c.path)?.ops.has('delete')) this.file(c.path, 'delete', 0);
    }
    const processesOmitted = Math.max(0, ctx.processes.length - REPORT_LIMITS.processes);
    const processes: ReportProcess[] = ctx.processes.slice(0, REPORT_LIMITS.processes).map((p) => ({
      pid: p.pid, ppid: p.ppid, exe: p.exe, argv: p.argv, uid: p.uid, start: secs(p.start),
      end: p.end === null ? null : secs(p.end), exit: p.exit, signal: p.signal, syscalls: this.perPid.get(p.pid) ?? 0,
      ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
      ...(p.exeCopiedFrom !== undefined ? { copiedFrom: p.exeCopiedFrom } : {}),
    }));
    const files: ReportFile[] = [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, f]) => {
      const out: ReportFile = { path, ops: [...f.ops].sort(), pids: [...f.pids].filter((p) => p !== 0).sort((a, b) => a - b) };
      if (f.renamedTo.size) out.renamedTo = [...f.renamedTo];
      return out;
    });
    const dropped: ReportDropped[] = ctx.changes.filter((c) => c.change !== 'deleted' && (c.sha256 !== null || c.unhashed)).map((c) => {
      const d: ReportDropped = { path: c.path, sha256: c.sha256, size: c.size, change: c.change as 'created' | 'modified', truncated: c.truncated };
      if (c.copy) d.copy = ctx.copyPath ? ctx.copyPath(c.copy) : c.copy;
      return d;
    });
    const deleted = ctx.changes.filter((c) => c.change === 'deleted').map((c) => c.path).sort();
    const counts = Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
    const warnings = [...ctx.warnings];
    const unhashed = ctx.changes.filter((c) => c.unhashed);
    if (unhashed.length) {
      warnings.push({ code: 'FILES_UNHASHED', message: `${unhashed.length} dropped file(s) too large to hash (sparse, or past the analysis's hashing budget), listed with their size and first bytes: ${unhashed.slice(0, 3).map((c) => c.path).join(', ')}${unhashed.length > 3 ? ', ...' : ''}` });
    }
    const omitted = { files: this.filesOmitted, network: this.networkOmitted, processes: processesOmitted };
    if (omitted.files || omitted.network || omitted.processes) {
      warnings.push({
        code: 'REPORT_LIMITED',
        message: `the sample touched more than one report lists (counted in syscalls, seen by the rules, not listed): ${[
          omitted.files ? `${omitted.files} file operations past ${REPORT_LIMITS.files} paths or ${REPORT_LIMITS.fileChars >> 20} MiB of names` : '',
          omitted.network ? `${omitted.network} network operations past ${REPORT_LIMITS.network} entries` : '',
          omitted.processes ? `${omitted.processes} processes past the first ${REPORT_LIMITS.processes}` : '',
        ].filter(Boolean).join('; ')}`,
      });
    }
    if (this.argsReadAtExit) {
      warnings.push({
        code: 'ARGS_READ_AT_EXIT',
        message: `${this.argsReadAtExit} events carry an argument the capture could read only at the call's return (memory not paged in at the call): another thread of the sample could have changed it in between, so the path or address shown may not be the one the kernel used`,
      });
    }
    if (this.argsTruncated || this.argsUnreadable) {
      warnings.push({
        code: 'ARGS_INCOMPLETE',
        message: [
          this.argsTruncated ? `${this.argsTruncated} events carry an argument cut at the capture's buffer (the path or argv shown is a prefix)` : '',
          this.argsUnreadable ? `${this.argsUnreadable} events carry an argument the capture could not read (a bad pointer, or memory not paged in)` : '',
        ].filter(Boolean).join('; '),
      });
    }
    return {
      schema: REPORT_SCHEMA,
      version: REPORT_VERSION,
      tool: { name: 'sandtrace', version: TOOL_VERSION },
      analysis: {
        id: ctx.id, started: ctx.started.toISOString(), ended: ctx.ended.toISOString(),
        duration: Math.round((ctx.ended.getTime() - ctx.started.getTime()) / 10) / 100,
        timeout: ctx.timeout, timedOut: ctx.timedOut,
        status: ctx.errors.length ? 'partial' : 'completed',
        isolation: ctx.isolation, errors: ctx.errors, warnings,
        ...(omitted.files || omitted.network || omitted.processes ? { omitted } : {}),
      },
      sample: ctx.sample,
      processes,
      files,
      dropped,
      deleted,
      network: [...this.network.values()],
      syscalls: { total: this.total, counts, denied: [...this.denied.values()] },
      capture: {
        backend: ctx.backend, reason: ctx.captureReason, events: ctx.capture.events, lost: ctx.capture.lost,
        parseErrors: ctx.capture.parseErrors, duration: Math.round(ctx.capture.duration * 1000) / 1000, notes: ctx.capture.notes,
        argsTruncated: this.argsTruncated, argsUnreadable: this.argsUnreadable, argsReadAtExit: this.argsReadAtExit,
        ...(ctx.capture.paused ? { paused: Math.round(ctx.capture.paused * 1000) / 1000 } : {}),
      },
      findings: ctx.findings,
      verdict: ctx.verdict,
    };
  }
}
