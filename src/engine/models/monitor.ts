// Live monitoring of a running workload (a cgroup) with the eBPF probe, outside the sandbox:
// either learn per-program models for a while, or report anomaly and rule findings as they happen.
import { execFile as execFileCb } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import type { CaptureStats, Collector } from '../../capture/collector.js';
import { SemanticState } from '../../semantics/state.js';
import type { EnrichedEvent } from '../../semantics/types.js';
import { runPipeline, type EventSink } from '../../pipeline.js';
import type { ExecEvent, TraceEvent } from '../../capture/events.js';
import { SandtraceError } from '../../errors.js';
import type { Detector, Finding } from '../types.js';
import { createAnomalyDetector, UnverifiedPrograms } from './detector.js';
import { EXE_ALIAS, programKey } from '../../semantics/program.js';
import { trainModelFile, type AnomalyModel, type ModelFileData, type TrainOptions } from './model.js';
import { hierarchies } from '../../sandbox/cgroups.js';
import { statDev } from '../../capture/ebpf/decode.js';

const execFile = promisify(execFileCb);

/**
 * Target false-alarm rate of models learned live (per process, or per DEFAULTS.chunk calls of a
 * long-running one): a watched service runs many processes a minute, so 1% would page an
 * operator every few minutes; at 0.1% the thresholds sit at the top of the held-out normal scores.
 */
export const LIVE_FAR = 0.001;
/** How often the monitor checks that the watched cgroup still exists. */
const CGROUP_POLL_MS = 500;

/**
 * Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a pure v2 host, .../unified on a
 * hybrid one (v1 controllers beside it). The probe filters by cgroup v2 ids, so only this
 * hierarchy can be watched.
 */
export function cgroup2Root(): string {
  const v2 = hierarchies().find((h) => h.version === 2);
  if (!v2) throw new SandtraceError('DEPENDENCY_MISSING', 'no cgroup v2 hierarchy is mounted: the probe needs cgroup2 to tell the workload apart');
  return v2.mount;
}

/** cgroup v2 directory of a host pid (the `0::` line of /proc/PID/cgroup). */
export function cgroupOfPid(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (e) {
    throw new SandtraceError('INPUT_MISSING', `no process ${pid}`, { cause: e, details: { pid } });
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new SandtraceError('INPUT_MISSING', `process ${pid} has no cgroup v2 membership`, { details: { pid } });
  const path = join(cgroup2Root(), line.slice(3));
  if (!existsSync(join(path, 'cgroup.procs'))) throw new SandtraceError('INPUT_MISSING', `cgroup ${path} of process ${pid} is not a cgroup v2 directory`);
  return path;
}

/** runc's own one-line error (its log line is `time=... level=error msg="..."`), or the message. */
function runcReason(e: unknown): string {
  const text = ((e as { stderr?: string }).stderr || (e as Error).message || '').trim();
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(text)?.[1];
  return (msg ?? text.split('\n')[0] ?? '').replace(/\\"/g, '"');
}

/**
 * Refuses a cgroup the monitor must not watch: the root (the whole host), or one that holds
 * sandtrace itself, whose own work would feed the capture it is reading (and which back-pressure
 * would freeze along with the workload).
 */
export function checkWatchable(path: string, self = process.pid): void {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    throw new SandtraceError('INPUT_MISSING', `no cgroup ${path}`, { cause: e, details: { path } });
  }
  const root = realpathSync(cgroup2Root());
  // a v1 hierarchy's directories have cgroup.procs too, but the probe cannot filter by them
  if (real !== root && !real.startsWith(root + '/')) {
    throw new SandtraceError('INPUT_MISSING', `${path} is not in the cgroup v2 hierarchy (mounted at ${root}): the probe can only watch cgroup v2 directories`, { details: { path } });
  }
  if (!existsSync(join(real, 'cgroup.procs'))) throw new SandtraceError('INPUT_MISSING', `${path} is not a cgroup v2 directory`, { details: { path } });
  if (real === root) {
    throw new SandtraceError('USAGE', `${path} is the root cgroup: watching it would watch the whole host, sandtrace included; put the workload in a cgroup of its own`);
  }
  let own: string | undefined;
  try {
    own = realpathSync(cgroupOfPid(self));
  } catch {
    own = undefined; // not in the unified hierarchy: cannot be inside the watched cgroup
  }
  if (own !== undefined && (own === real || own.startsWith(real + '/'))) {
    throw new SandtraceError('USAGE', `sandtrace itself runs in ${path}: it would watch its own work; run it outside the watched cgroup`);
  }
}

/**
 * cgroup v2 directory of a runc container, via `runc state ID` under the default root, then under
 * `roots` (sandtrace's own). The directory is read from the init's /proc membership, so every
 * cgroupsPath form (absolute, relative to runc's own cgroup, or none: /ID) resolves alike.
 */
export async function cgroupOfContainer(id: string, roots: readonly string[]): Promise<string> {
  const missing: string[] = [];
  for (const root of [undefined, ...roots]) {
    const where = root ?? 'the default runc root';
    let st: { pid?: number; status?: string };
    try {
      // `--` so that an id such as `-x` is not taken for a runc flag
      const { stdout } = await execFile('runc', [...(root ? ['--root', root] : []), 'state', '--', id]);
      st = JSON.parse(stdout) as typeof st;
    } catch (e) {
      const reason = runcReason(e);
      if ((e as { code?: unknown }).code === 'ENOENT') throw new SandtraceError('DEPENDENCY_MISSING', 'runc is not installed (it finds the container\'s cgroup)', { cause: e });
      missing.push(/does not exist/.test(reason) ? where : `${where}: ${reason}`);
      continue;
    }
    // created (init waiting to start), running and paused containers have an init to follow
    if (!st.pid || st.status === 'stopped') {
      throw new SandtraceError('INPUT_MISSING', `runc container '${id}' (${where}) is ${st.status ?? 'not running'}: nothing to monitor`, { details: { id, status: st.status } });
    }
    const path = cgroupOfPid(st.pid);
    // runc did not put it in the unified hierarchy: watching the root would watch the whole host
    if (realpathSync(path) === realpathSync(cgroup2Root())) {
      throw new SandtraceError('INPUT_MISSING', `runc container '${id}' is in the root cgroup v2 (runc did not give it a cgroup of its own there); give its cgroup with --cgroup`, { details: { id } });
    }
    return path;
  }
  throw new SandtraceError('INPUT_MISSING', `no runc container '${id}' (looked in ${missing.join(', ')})`, { details: { id } });
}

/**
 * Names exec'd programs on the events themselves (so a recording, the models and the alerts agree):
 * an exec path is resolved to the file it runs (/usr/bin/sh and /usr/bin/dash are one program); a
 * re-exec through /proc/self/exe (busybox) names the file the process ran before, which resolving
 * the alias in sandtrace's own process would get wrong (it names node).
 *
 * The path is looked up after the exec, so the workload could have pointed it at another file
 * since (a symlink swapped right after the exec) and picked the model it is judged by. When the
 * event says which file the kernel loaded (ExecEvent.file), the name is checked against it (see
 * verify); a name that leads to another file is not used (ExecEvent.exeUnverified).
 */
export class ExecNamer {
  /** Each process's program as last named. */
  private readonly exeOf = new Map<number, string>();
  /** Processes seen (an event of theirs, or their fork). */
  private readonly seen = new Set<number>();
  /** Each process's pid namespace, read when it is first seen (it may be gone by its exec's naming). */
  private readonly nsOf = new Map<number, string>();
  /** Each process's parent, from its fork: a process gone before its exec is named has its parent's root. */
  private readonly parentOf = new Map<number, number>();
  /** runc exec's own init (runc:[2:INIT]) until it execs the command: the runtime, not the workload. */
  private readonly runtime = new Set<number>();
  private readonly runtimeEvents = new WeakSet<TraceEvent>();
  /** The watched cgroup's processes when the probe attached (attached()). */
  private atAttach: Set<number> | undefined;

  /**
   * `cgroup`: the watched cgroup v2 directory. A short-lived process is often gone by the time its
   * exec is named; the processes of one cgroup (a container) share a root, so a live one stands in.
   */
  constructor(private readonly cgroup?: string) {}

  apply(ev: TraceEvent): void {
    if (!this.seen.has(ev.pid)) this.first(ev);
    // marked on the event: the detectors see it after the whole batch has been named
    if (ev.type !== 'exec' && this.runtime.has(ev.pid)) this.runtimeEvents.add(ev);
    if (ev.type === 'fork' && !ev.thread) {
      this.seen.add(ev.childPid);
      this.noteNamespace(ev.childPid);
      this.parentOf.set(ev.childPid, ev.pid);
      const parent = this.exeOf.get(ev.pid);
      if (parent) this.exeOf.set(ev.childPid, parent);
    } else if (ev.type === 'exit' && !ev.thread) {
      this.exeOf.delete(ev.pid);
      this.seen.delete(ev.pid);
      this.nsOf.delete(ev.pid);
      this.parentOf.delete(ev.pid);
      this.runtime.delete(ev.pid);
    } else if (ev.type === 'exec') {
      this.runtime.delete(ev.pid);
      let name: string | undefined;
      try {
        name = this.verify(ev, this.resolve(ev.exe, ev.pid));
      } catch {
        // the workload's files changed under the lookup: nothing was confirmed
        name = ev.file ? undefined : ev.exe;
      }
      if (name === undefined) ev.exeUnverified = true;
      else ev.exe = name;
      this.exeOf.set(ev.pid, ev.exe);
    }
  }

  /**
   * `name` when it is the file the kernel loaded (ev.file), else the process's own name for that
   * file (/proc/PID/exe, while it runs it), else undefined: the path led to another file (swapped
   * after the exec). Without ev.file (another source, an older recording) or when the name leads
   * to no file at all (gone already: nothing another program's name could be taken from), `name`.
   *
   * The same file: stat() of both agrees, when the process still runs the image (its
   * /proc/PID/exe is the loaded file); else the inode number and the device of the mount the name
   * is on (an overlayfs's own device: stat() of a file of a lower layer reports a per-layer pseudo
   * device, the kernel the overlay's). Left open by the latter: two layers of one overlay can hold
   * different files with the same inode number. A #! script (ev.file.interpreter) is checked by
   * its #! line: the name must be a script whose interpreter (nested ones included) is the file,
   * or a file a binfmt_misc entry hands to it; which script or file it is cannot be checked (the
   * kernel keeps no trace of it), so a swap to another with the same interpreter passes.
   */
  private verify(ev: ExecEvent, name: string): string | undefined {
    const k = ev.file;
    if (!k) return name;
    const pid = ev.pid;
    const found = this.locate(name, pid);
    if (!found) return name;
    // the process's image, while it still runs the file loaded: the exact identity to compare with
    const own = identify(`/proc/${pid}/exe`, () => this.mountTables(pid, pid), k, true);
    const image = own?.isK ? own : undefined;
    const same = (id: Identity | undefined): boolean =>
      id !== undefined && (image ? id.dev === image.dev && id.ino === image.ino : id.isK);
    if (k.interpreter) return runsAs(found, ev.exe, k, same, 0) ? name : undefined;
    let id = identify(found.at, found.mountinfo, k);
    if (id === undefined && found.root === `/proc/${pid}/root`) {
      // the process exited between its root being found and the file being opened there: its
      // ancestors' root, or its cgroup's, as for a process gone before
      const again = this.locate(name, pid);
      if (again && again.root !== found.root) id = identify(again.at, again.mountinfo, k);
    }
    if (same(id)) return name;
    // the name it was exec'd by now leads elsewhere: the process's own link names the file
    return image ? procExeInRoot(pid) : undefined;
  }

  /** Where `name` (a path in the process's root, or the host's) is from here, with its mounts. */
  private locate(name: string, pid: number): Located | undefined {
    if (!name.startsWith('/')) return undefined;
    const r = this.inRoots(name, pid);
    if (r) return { at: r.root + r.inRoot, root: r.root, mountinfo: () => this.mountTables(r.owner, pid) };
    try {
      return { at: realpathSync(name), mountinfo: '/proc/self/mountinfo' };
    } catch {
      return undefined;
    }
  }

  /**
   * Called once the probe is attached: the processes then in the watched cgroup tree were running
   * before; any other process seen without its fork joined from outside since (runc exec's init,
   * or one an administrator moved in), which a process inside cannot fake.
   */
  attached(): void {
    if (!this.cgroup) return;
    const pids = new Set<number>();
    const walk = (dir: string, depth: number): void => {
      try {
        for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
        if (depth < 32) for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) walk(join(dir, d.name), depth + 1);
      } catch { /* gone meanwhile */ }
    };
    walk(this.cgroup, 0);
    this.atAttach = pids;
  }

  /** Whether the event is runc exec's own init's, before it execs the command. */
  isRuntime(ev: TraceEvent): boolean {
    return this.runtimeEvents.has(ev);
  }

  /**
   * A process whose fork was not seen was running before attach: its program is named from /proc
   * on its first event (`running`), so that the models, the alerts and a recording of the events
   * all name it alike. runc's init (runc exec) joins from outside too, but runs the runtime until
   * it execs the command: it is left unnamed, and its exec names it.
   */
  private first(ev: TraceEvent): void {
    this.seen.add(ev.pid);
    this.noteNamespace(ev.pid);
    if (ev.type === 'exec') return;
    // runc exec's init joins from outside after attach; a process that was there at attach and
    // calls itself runc:[...] (prctl can) is the workload, and named like any other
    if (/^runc:\[/.test(ev.comm ?? '') && this.atAttach !== undefined && !this.atAttach.has(ev.pid)) { this.runtime.add(ev.pid); return; }
    const exe = procExe(ev.pid);
    if (!exe) return; // gone already, or a kernel thread
    const tty = procTty(ev.pid);
    ev.running = { exe, argv: procArgv(ev.pid), ...(tty ? { tty } : {}) };
    this.exeOf.set(ev.pid, exe);
  }

  private resolve(path: string, pid: number): string {
    const alias = EXE_ALIAS.exec(path);
    if (alias) {
      // /proc/N/exe names pid N of the process's own pid namespace (a container's), not the host's
      const owner = alias[1] === 'self' || alias[1] === 'thread-self' ? pid : this.hostPid(Number(alias[1]), pid);
      const was = alias[2] === 'exe' && owner !== undefined ? this.exeOf.get(owner) ?? (owner !== pid ? procExe(owner) : undefined) : undefined;
      if (was) return was;
      // the process's own link, unless it is gone (or has exec'd again meanwhile)
      return procExe(pid) ?? path;
    }
    // A relative path is the process's working directory's (not sandtrace's): gone already, it
    // stays as the process gave it
    if (!path.startsWith('/')) {
      let cwd: string | undefined;
      try { cwd = readlinkSync(`/proc/${pid}/cwd`); } catch { /* gone */ }
      if (!cwd?.startsWith('/')) return path;
      path = posix.join(cwd, path);
    }
    // Inside the process's own root (a container's image, not the host's files): /bin/sh is
    // busybox in an Alpine image whatever it is on the host. Gone already: the host's view.
    if (path.startsWith('/')) {
      const r = this.inRoots(path, pid);
      if (r) return r.inRoot;
    }
    try {
      return realpathSync(path);
    } catch {
      return path; // gone already, or not a host path
    }
  }

  private noteNamespace(pid: number): void {
    const ns = pidNamespace(pid);
    if (ns !== undefined) this.nsOf.set(pid, ns);
  }

  /**
   * The host pid of the process `viewer` calls `n`: the same number when the viewer sees the
   * host's pids, else the process of the viewer's pid namespace whose innermost pid is n (those
   * seen and those of the watched cgroup first). Undefined when the viewer's namespace is not
   * known (it was gone before it was first seen): host pid n would be a guess a workload could
   * steer towards any host program.
   */
  private hostPid(n: number, viewer: number): number | undefined {
    const ns = pidNamespace(viewer) ?? this.nsOf.get(viewer);
    if (ns === undefined) return undefined;
    if (ns === pidNamespace('self')) return n;
    const candidates = new Set([...this.exeOf.keys(), ...this.cgroupProcs()]);
    for (const q of candidates) if (pidNamespace(q) === ns && innermostPid(q) === n) return q;
    // rare (an exec through another process's /proc link): worth a look at every process
    for (const d of readdirSync('/proc')) {
      const q = Number(d);
      if (Number.isInteger(q) && !candidates.has(q) && pidNamespace(q) === ns && innermostPid(q) === n) return q;
    }
    return undefined;
  }

  /**
   * `path` resolved in the process's root (see roots): the path there, the root and its process.
   * The next root is tried only when the one walked vanished meanwhile: a path missing from a root
   * that is still there is in no other.
   */
  private inRoots(path: string, pid: number): { inRoot: string; root: string; owner: number } | undefined {
    for (const { root, owner } of this.roots(pid)) {
      const inRoot = resolveInRoot(root, path);
      if (inRoot !== undefined) return { inRoot, root, owner };
      if (existsSync(`${root}/`)) break;
    }
    return undefined;
  }

  /**
   * The process's root, else its nearest live ancestor's (what it inherited), else that of a live
   * process of the watched cgroup, with the process it belongs to. The ancestor comes first: a cgroup's process
   * need not be in its mount namespace yet (runc exec's init joins the cgroup before it enters the
   * container's root), and a file looked up in another root can be another program.
   */
  private *roots(pid: number): Generator<{ root: string; owner: number }> {
    // in turn: the caller asks for the next one only when a process exited while its root was
    // being walked (a short-lived one often does)
    for (const p of this.ancestry(pid)) if (existsSync(`/proc/${p}/root/`)) yield { root: `/proc/${p}/root`, owner: p };
    for (const p of this.cgroupProcs()) if (existsSync(`/proc/${p}/root/`)) yield { root: `/proc/${p}/root`, owner: p };
  }

  /** The process and its ancestors (an ancestor whose exit was seen is left out: its pid may be another process's by now). */
  private *ancestry(pid: number): Generator<number> {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && (p === pid || this.seen.has(p)) && hops < 16; p = this.parentOf.get(p), hops++) yield p;
  }

  private cgroupProcs(): number[] {
    if (!this.cgroup) return [];
    try {
      return readFileSync(join(this.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /**
   * Mount tables to find a mount of `owner`'s namespace in: owner's own, then those of the
   * process's ancestors and of the cgroup's processes, should owner exit while it is looked at
   * (mount ids are unique across namespaces, so any table that lists the id describes that mount).
   */
  private *mountTables(owner: number, pid: number): Generator<string> {
    yield `/proc/${owner}/mountinfo`;
    for (const p of this.ancestry(pid)) if (p !== owner) yield `/proc/${p}/mountinfo`;
    for (const p of this.cgroupProcs().slice(0, 8)) yield `/proc/${p}/mountinfo`;
  }
}

/**
 * `path` with every symlink followed as the kernel would for a process whose root is `root`:
 * absolute link targets restart from that root, not from ours (realpath on /proc/PID/root/...
 * would resolve them against the host's files). Undefined when the root or a component is gone.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const todo = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '..') { done.pop(); continue; }
    const here = `${root}/${[...done, c].join('/')}`;
    let st;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) { done.push(c); continue; }
    if (++links > 40) return undefined; // ELOOP
    let target: string;
    try {
      target = readlinkSync(here);
    } catch {
      return undefined; // swapped for a non-link meanwhile, or a link only its own namespace can read (/proc/self)
    }
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return '/' + done.join('/');
}

/** A file found for a name: where it is from here, the root it was found in, and that root's mounts. */
/** Mount tables (/proc/PID/mountinfo files) to look a mount id up in, tried in turn; made afresh on each use. */
type MountTables = string | (() => Iterable<string>);

interface Located { at: string; root?: string; mountinfo: MountTables }

/** A file as stat() reports it, and whether it is the file a kernel exec event names (ExecEvent.file). */
interface Identity { dev: bigint; ino: bigint; isK: boolean }

type KernelFile = NonNullable<ExecEvent['file']>;

/** Linux O_PATH: opens the name itself, never blocks (a FIFO swapped in) and needs no read access. */
const O_PATH = 0o10000000;

/**
 * `path` as stat() reports it (its last component not followed, unless `follow`: /proc/PID/exe),
 * and whether it is the file `k`: the same inode number, and the same device, or (an overlayfs,
 * whose files stat() gives a pseudo device per layer) the device of the mount it is on
 * (`mountinfo`: the mount tables of the namespace it was reached through). Undefined when it
 * cannot be opened.
 */
export function identify(path: string, mountinfo: MountTables, k: KernelFile, follow = false): Identity | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | (follow ? 0 : constants.O_NOFOLLOW));
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    let isK = st.ino === BigInt(k.ino);
    if (isK && st.dev !== BigInt(k.dev)) isK = mountDevice(fd, mountinfo) === k.dev;
    return { dev: st.dev, ino: st.ino, isK };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The device (stat()'s encoding) of the overlay mount an open file is on: its mnt_id looked up in
 * the first of `tables` that lists it (the fd pins the mount, so the id cannot be reused meanwhile).
 * Undefined on any other filesystem, or when no table lists it.
 */
function mountDevice(fd: number, tables: MountTables): number | undefined {
  let id: string | undefined;
  try {
    id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  } catch { /* cannot happen while the fd is open */ }
  if (id === undefined) return undefined;
  for (const table of typeof tables === 'string' ? [tables] : tables()) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // its process is gone: the next table
    }
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      if (f[0] !== id) continue;
      // only an overlay reports per-layer devices; elsewhere (btrfs subvolumes: inode numbers start
      // again in each) a device that differs is another file
      if (line.split(' - ')[1]?.split(' ')[0] !== 'overlay') return undefined;
      const m = /^(\d+):(\d+)$/.exec(f[2] ?? '');
      return m ? statDev(Number(m[1]), Number(m[2])) : undefined;
    }
  }
  return undefined;
}

/**
 * Whether `script` is a file the kernel runs with the file `same` recognises as its interpreter: a
 * #! script whose interpreter (or, nested as the kernel allows, its interpreter's) it is, or a
 * file a binfmt_misc entry hands to it. `execName`: the path the file was exec'd by (binfmt_misc
 * matches extensions on it).
 */
function runsAs(script: Located, execName: string, k: KernelFile, same: (id: Identity | undefined) => boolean, depth: number): boolean {
  const head = fileHead(script.at);
  if (head === undefined || depth > 4) return false;
  const interp = shebang(head);
  const inRootOf = (path: string): string | undefined => {
    if (!path.startsWith('/')) return undefined;
    if (script.root !== undefined) {
      const inRoot = resolveInRoot(script.root, path);
      return inRoot === undefined ? undefined : script.root + inRoot;
    }
    try { return realpathSync(path); } catch { return undefined; }
  };
  if (interp !== undefined) {
    const at = inRootOf(interp);
    if (at !== undefined && (same(identify(at, script.mountinfo, k)) || runsAs({ ...script, at }, interp, k, same, depth + 1))) return true;
  }
  for (const e of binfmtMisc()) {
    if (!e.matches(head, execName)) continue;
    // the interpreter as the exec looked it up (in the process's root), or as opened when the entry
    // was registered (flag F: the host's file)
    for (const at of [inRootOf(e.interpreter), e.fixed ? e.interpreter : undefined]) {
      if (at !== undefined && same(identify(at, script.mountinfo, k))) return true;
    }
  }
  return false;
}

/** The interpreter a #! line names (as the kernel parses it: the first word after #!), if any. */
function shebang(head: Buffer): string | undefined {
  if (head.length < 2 || head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  return /^[ \t]*([^ \t\n\0]+)/.exec(head.toString('latin1', 2))?.[1];
}

/** A binfmt_misc entry: which files it runs (magic bytes at an offset, under a mask; or an extension) and with what. */
interface BinfmtEntry { interpreter: string; fixed: boolean; matches(head: Buffer, execName: string): boolean }

/**
 * The enabled binfmt_misc entries (/proc/sys/fs/binfmt_misc, when mounted): the kernel hands a
 * file one of them matches to its interpreter (qemu-user for foreign binaries, Wine), as it does a
 * #! script to the interpreter its first line names.
 */
export function binfmtMisc(dir = '/proc/sys/fs/binfmt_misc'): BinfmtEntry[] {
  let names: string[];
  try {
    if (readFileSync(join(dir, 'status'), 'utf8').trim() !== 'enabled') return [];
    names = readdirSync(dir).filter((n) => n !== 'status' && n !== 'register');
  } catch {
    return []; // not mounted: no entries
  }
  const out: BinfmtEntry[] = [];
  for (const n of names) {
    let text: string;
    try { text = readFileSync(join(dir, n), 'utf8'); } catch { continue; }
    const f = new Map(text.split('\n').map((l) => { const i = l.search(/[ :]/); return [i < 0 ? l : l.slice(0, i), i < 0 ? '' : l.slice(i + 1).trim()] as const; }));
    const interpreter = f.get('interpreter');
    if (!f.has('enabled') || !interpreter) continue;
    const fixed = (f.get('flags') ?? '').includes('F');
    const ext = f.get('extension');
    if (ext !== undefined) {
      const want = ext.startsWith('.') ? ext.slice(1) : ext;
      out.push({ interpreter, fixed, matches: (_h, name) => { const b = posix.basename(name); const i = b.lastIndexOf('.'); return i >= 0 && b.slice(i + 1) === want; } });
      continue;
    }
    const magic = Buffer.from(f.get('magic') ?? '', 'hex');
    const mask = f.has('mask') ? Buffer.from(f.get('mask') ?? '', 'hex') : undefined;
    const offset = Number(f.get('offset') ?? 0);
    if (magic.length === 0 || !Number.isInteger(offset) || offset < 0) continue;
    out.push({
      interpreter, fixed,
      matches: (head) => {
        if (head.length < offset + magic.length) return false;
        for (let i = 0; i < magic.length; i++) {
          const m = mask ? (mask[i] ?? 0xff) : 0xff;
          if (((head[offset + i] ?? 0) & m) !== ((magic[i] ?? 0) & m)) return false;
        }
        return true;
      },
    });
  }
  return out;
}

/** The first 256 bytes of a regular file (BINPRM_BUF_SIZE: what the kernel reads to pick a handler), if it is one. */
function fileHead(path: string): Buffer | undefined {
  let fd: number;
  try {
    // O_PATH first: opening a device node or FIFO the workload put there for reading could act on it
    const at = openSync(path, O_PATH | constants.O_NOFOLLOW);
    try {
      if (!fstatSync(at).isFile()) return undefined;
      fd = openSync(`/proc/self/fd/${at}`, constants.O_RDONLY | constants.O_NONBLOCK);
    } finally {
      closeSync(at);
    }
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(256);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** The process's /proc/PID/exe as a path in its own root (a chroot's prefix taken off). */
function procExeInRoot(pid: number): string | undefined {
  const exe = procExe(pid);
  let root: string | undefined;
  try { root = readlinkSync(`/proc/${pid}/root`); } catch { /* gone */ }
  if (exe === undefined || root === undefined) return undefined;
  return root !== '/' && exe.startsWith(root + '/') ? exe.slice(root.length) : exe;
}

function procExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

/** A directory's inode number (a cgroup v2 directory's is the cgroup's id), or undefined when it is gone. */
function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** The pid namespace a process is in (`pid:[4026531836]`), or undefined when it is gone. */
function pidNamespace(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** The process's pid in its own (innermost) pid namespace: the last field of NSpid. */
function innermostPid(pid: number): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
    const last = line?.trim().split(/\s+/).pop();
    return last === undefined ? undefined : Number(last);
  } catch {
    return undefined;
  }
}

/**
 * A process's controlling terminal as the kernel encodes it (tty_nr, the 7th field of
 * /proc/PID/stat; 0: none), read after the last ')' since the name before it may hold any byte;
 * undefined when the process is gone.
 */
export function procTty(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const n = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function procArgv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/** Collects each thread's calls, per program (a process that execs starts new traces). */
export class TraceLearner implements Detector {
  readonly name = 'learner';
  private readonly open = new Map<number, { pid: number; exe: string; calls: string[] }>();
  readonly byExe = new Map<string, string[][]>();
  /** Traces of processes whose program could not be named: normal behaviour all the same (global model). */
  readonly unattributed: string[][] = [];
  calls = 0;
  /** Processes whose program is unverified: their calls teach no program's model. */
  private readonly unverified = new UnverifiedPrograms();

  onEvent(e: EnrichedEvent): void {
    const ev = e.ev;
    this.unverified.note(ev);
    if (ev.type === 'exec' || (ev.type === 'exit' && !ev.thread)) {
      for (const [tid, t] of [...this.open]) if (t.pid === e.proc.pid) this.close(tid);
      return;
    }
    if (ev.type === 'exit') { this.close(ev.tid); return; }
    if (ev.type !== 'syscall') return;
    let t = this.open.get(ev.tid);
    const program = this.unverified.has(e.proc.pid) ? '' : programKey(e.proc);
    if (t && (t.exe !== program || t.pid !== e.proc.pid)) { this.close(ev.tid); t = undefined; }
    if (!t) {
      t = { pid: e.proc.pid, exe: program, calls: [] };
      this.open.set(ev.tid, t);
    }
    t.calls.push(ev.name);
    this.calls++;
  }

  private close(tid: number): void {
    const t = this.open.get(tid);
    if (!t) return;
    this.open.delete(tid);
    if (t.calls.length === 0) return;
    if (t.exe === '') { this.unattributed.push(t.calls); return; }
    const l = this.byExe.get(t.exe) ?? [];
    l.push(t.calls);
    this.byExe.set(t.exe, l);
  }

  drain(): Finding[] { return []; }
  finish(): Finding[] {
    for (const tid of [...this.open.keys()]) this.close(tid);
    return [];
  }
}

export interface MonitorOptions {
  collector: Collector;
  /** Whether pids are host pids (then /proc names programs that were running before attach). */
  hostPids?: boolean;
  /** Anomaly model (alert mode). */
  model?: AnomalyModel;
  /** Extra detectors (the rule engine). */
  detectors?: Detector[];
  /** Learn mode: stop after this many ms and train a model. */
  learnMs?: number;
  train?: TrainOptions;
  /** Every finding, as soon as it is drained. */
  onFinding?: (f: Finding, proc: EnrichedEvent['proc'] | undefined) => void;
  /** Stops monitoring (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Called once the probe is attached: from then on nothing the workload does is missed. */
  onAttached?: () => void;
  /** The cgroup watched (host pids): names exec'd programs inside its processes' root. */
  cgroupPath?: string;
  /** The runc container watched (`monitor --container`): its id is the processes' container.id. */
  containerId?: string;
  /** Writes every event (exec'd programs named as the models name them) for replay or training. */
  record?: EventSink & { close(stats?: CaptureStats): Promise<void> };
}

export interface MonitorResult {
  /** Why monitoring ended: a signal (or the caller's abort), the learning time, or the watched cgroup was removed. */
  ended: 'stopped' | 'learned' | 'cgroup-removed';
  events: number;
  findings: number;
  stats: CaptureStats;
  model?: ModelFileData;
  learned?: { programs: number; traces: number; calls: number };
}

/** Attach, run until the signal (or the learning time), detach; the collector is always stopped. */
export async function monitor(o: MonitorOptions): Promise<MonitorResult> {
  const semantics = new SemanticState(o.containerId ? { containerId: o.containerId } : {});
  const learner = o.learnMs !== undefined ? new TraceLearner() : undefined;
  const detectors: Detector[] = [];
  if (learner) detectors.push(learner);
  if (o.model) detectors.push(createAnomalyDetector(o.model, { live: true }));
  detectors.push(...(o.detectors ?? []));
  const hostPids = o.hostPids ?? true;
  // runc's init (runc exec) joins the cgroup from outside (no fork seen) as runc:[2:INIT] and
  // runs the runtime's Go code there until it execs the command: not the workload's behaviour.
  // The namer tells it apart (ExecNamer.first); the detectors do not see it until its exec.
  let skip = false;
  const namer = new ExecNamer(o.cgroupPath);
  const naming: Detector = {
    name: 'naming',
    onEvent: (e) => { skip = namer.isRuntime(e.ev); },
    drain: () => [], finish: () => [],
  };
  const gated = detectors.map((d): Detector => ({
    name: d.name, onEvent: (e) => { if (!skip) d.onEvent(e); }, drain: () => d.drain(), finish: () => d.finish(),
  }));
  let findings = 0;
  const emit = (fs: Finding[]) => {
    for (const f of fs) {
      findings++;
      o.onFinding?.(f, semantics.process(f.pid));
    }
  };

  await o.collector.start();
  namer.attached();
  o.onAttached?.();
  let timer: NodeJS.Timeout | undefined;
  let ended: MonitorResult['ended'] | undefined;
  const stop = (why: MonitorResult['ended'] = 'stopped') => { ended ??= why; void o.collector.stop(); };
  const onAbort = () => stop('stopped');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) stop();
  if (o.learnMs !== undefined) timer = setTimeout(() => stop('learned'), o.learnMs);
  // a removed cgroup can hold nothing any more: watching it would wait forever on nothing. One
  // made again under the same name (a service restarted) is another cgroup, with another id (its
  // directory's inode), which the probe does not watch: that ends the watch too
  const cgroupId = o.cgroupPath ? inodeOf(o.cgroupPath) : undefined;
  const gone = o.cgroupPath
    ? setInterval(() => { if (inodeOf(o.cgroupPath as string) !== cgroupId) stop('cgroup-removed'); }, CGROUP_POLL_MS)
    : undefined;
  let events = 0;
  try {
    const r = await runPipeline({
      collector: o.collector, semantics, detectors: [naming, ...gated],
      ...(hostPids ? { normalize: (ev: TraceEvent) => namer.apply(ev) } : {}),
      ...(o.record ? { sink: o.record } : {}),
      onFindings: emit,
    });
    events = r.events;
  } finally {
    if (timer) clearTimeout(timer);
    if (gone) clearInterval(gone);
    o.signal?.removeEventListener('abort', onAbort);
    await o.collector.stop();
    await o.record?.close(o.collector.stats());
  }
  for (const d of detectors) emit(d.finish());
  const result: MonitorResult = { ended: ended ?? 'stopped', events, findings, stats: o.collector.stats() };
  if (learner) {
    const traces = [...learner.byExe.values()].reduce((a, l) => a + l.length, learner.unattributed.length);
    result.learned = { programs: learner.byExe.size, traces, calls: learner.calls };
    if (learner.calls === 0) {
      throw new SandtraceError('INPUT_EMPTY', result.ended === 'cgroup-removed'
        ? 'no system calls seen while learning: the cgroup was removed (or replaced) before anything ran in it'
        : 'no system calls seen while learning: is the workload running in that cgroup?');
    }
    result.model = trainModelFile({ traces: learner.unattributed, byExe: learner.byExe, source: 'monitor --learn' }, { far: LIVE_FAR, ...o.train });
  }
  return result;
}
