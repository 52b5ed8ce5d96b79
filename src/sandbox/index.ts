// The runc container sandbox: one OCI bundle per analysis over an overlay of the cached image,
// created and started in two steps (so capture can attach in between), killed by cgroup at the
// timeout, and removed without a trace by destroy().
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { SandtraceError } from '../errors.js';
import { containerCgroups, killAll, pidsIn, removeCgroups, setFrozen, CGROUP_PARENT, type ContainerCgroups } from './cgroups.js';
import { buildConfig, CONTAINER_INIT_PID, DEFAULT_LIMITS, ID_SHIFT } from './config.js';
import { execFile } from './exec.js';
import { baseImageDir, baseRootfs, cacheDir, initPath } from './image.js';
import { USER } from './decoys.js';
import { sandboxCa } from './tls.js';
import { trustAuthority } from './trust.js';
import { DENIED_SYSCALLS } from './seccomp.js';
import { importArchive } from './import.js';
import { listChanges, mountOverlay, overlayDirs, unmountOverlay, isMountPoint, type OverlayDirs } from './overlay.js';
import type { ChangeList, Sandbox, SandboxDns, SandboxLimits, SandboxOptions, SandboxResult, SandboxStartInfo } from './types.js';
import { DNS_SERVER, SandboxSinkhole } from './dns.js';
import { makeOutDir } from '../outpath.js';

export type { Sandbox, SandboxOptions, SandboxResult, SandboxStartInfo, FileChange, ChangeList, SandboxLimits } from './types.js';
export { DENIED_SYSCALLS } from './seccomp.js';
export { DECOY_PATHS } from './image.js';

/** Console bytes kept per analysis (stdout+stderr). */
export const CONSOLE_CAP = 256 * 1024;
/** Size of the tmpfs holding everything the sample writes. */
export const DEFAULT_DISK_MIB = 256;
const MAX_SAMPLE_BYTES = 256 << 20;

export function runDir(): string {
  return process.env['SANDTRACE_RUN'] || '/run/sandtrace';
}
export function runcRoot(): string {
  return join(runDir(), 'runc');
}
export function shimPath(): string {
  return join(cacheDir(), 'bin', 'sandtrace-shim');
}

function newId(): string {
  return `st-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

function safeName(sample: string): string {
  const n = basename(sample).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return n === '' ? 'sample' : n.slice(0, 64);
}

/** p, or `fallback` after ms; the timer never outlives the race. */
function raceTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((r) => { t = setTimeout(() => r(fallback), ms); })]).finally(() => clearTimeout(t));
}

type State = 'new' | 'created' | 'started' | 'ended' | 'destroyed';

class RuncSandbox implements Sandbox {
  readonly id = newId();
  private state: State = 'new';
  private readonly workDir: string;
  private readonly bundle: string;
  private readonly limits: SandboxLimits;
  private readonly cg: ContainerCgroups;
  private overlay: OverlayDirs | undefined;
  private shim: ChildProcess | undefined;
  private shimClosed: Promise<void> = Promise.resolve();
  private exitInfo: Promise<{ code: number | null; signal: number | null }> | undefined;
  private console = '';
  private consoleTruncated = false;
  private startedAt = 0;
  private result: SandboxResult | undefined;
  private destroying: Promise<void> | undefined;
  private samplePath = '';
  private sampleSha = '';
  private sampleSize = 0;
  /** Files sandtrace put in the container before the sample ran (its resolver configuration), no change of the sample's while they are the same. */
  private readonly seeded = new Map<string, { sha256: string; size: number }>();
  /** The DNS sinkhole and the catcher of connections in the sample's namespace (started in create(), awaited before the sample runs). */
  private readonly sinkhole: SandboxSinkhole;

  constructor(private readonly opts: SandboxOptions) {
    this.workDir = opts.workDir ?? join(runDir(), this.id);
    this.bundle = join(this.workDir, 'bundle');
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.cg = containerCgroups(this.id);
    this.sinkhole = new SandboxSinkhole(opts.dns);
  }

  async create(): Promise<SandboxStartInfo> {
    if (this.state !== 'new') throw new SandtraceError('INTERNAL', `sandbox ${this.id} already created`);
    this.state = 'created';
    try {
      return await this.doCreate();
    } catch (e) {
      await this.destroy().catch(() => undefined);
      throw e;
    }
  }

  private checkSample(): { size: number } {
    let st;
    try { st = statSync(this.opts.sample); } catch (e) {
      throw new SandtraceError('INPUT_MISSING', `sample not found: ${this.opts.sample}`, { cause: e });
    }
    if (st.isDirectory()) throw new SandtraceError('INPUT_IS_DIRECTORY', `sample is a directory: ${this.opts.sample}`);
    if (!st.isFile()) throw new SandtraceError('INPUT_UNREADABLE', `sample is not a regular file: ${this.opts.sample}`);
    if (st.size > MAX_SAMPLE_BYTES) throw new SandtraceError('INPUT_TOO_LARGE', `sample is larger than ${MAX_SAMPLE_BYTES >> 20} MiB`);
    return { size: st.size };
  }

  private async doCreate(): Promise<SandboxStartInfo> {
    if (process.getuid?.() !== 0) throw new SandtraceError('NOT_ROOT', 'the container sandbox needs root (runc, mounts, cgroups)');
    for (const needed of [shimPath(), initPath()]) {
      if (!existsSync(needed)) throw new SandtraceError('SETUP_INCOMPLETE', `missing ${needed}: run make setup`);
    }
    this.checkSample();
    await reapStale();
    // the run dir holds every container's work dir: runc's init runs as the mapped uid and must be
    // able to traverse it (its owners/ and runc/ stay private). Made first, before anything below
    // creates it as a parent with their 0700, and corrected if an earlier run did.
    mkdirSync(runDir(), { recursive: true, mode: 0o711 });
    // adds the search bits only: a run dir set to a shared place (/tmp) keeps its own mode
    const mode = statSync(runDir()).mode & 0o7777;
    if ((mode & 0o011) !== 0o011) chmodSync(runDir(), mode | 0o011);
    recordOwner(this.id, this.workDir);
    const lower = this.opts.image !== undefined ? (await importArchive(this.opts.image)).rootfs : baseRootfs().rootfs;

    // runc's init runs as the mapped uid: it must be able to traverse down to the rootfs
    mkdirSync(this.workDir, { recursive: true, mode: 0o711 });
    chmodSync(this.workDir, 0o711);
    mkdirSync(this.bundle, { recursive: true, mode: 0o700 });
    mkdirSync(runcRoot(), { recursive: true, mode: 0o700 });
    const lroot = lstatSync(lower);
    this.overlay = overlayDirs(this.workDir, lower);
    await mountOverlay(this.overlay, this.limits.diskMiB ?? DEFAULT_DISK_MIB, { uid: lroot.uid, gid: lroot.gid, mode: lroot.mode });

    // copy the sample in (into the upper layer through the merged view), owned by container root
    const name = safeName(this.opts.sample);
    this.samplePath = `/tmp/${name}`;
    const tmpDir = join(this.overlay.merged, 'tmp');
    if (!lstatSync(tmpDir).isDirectory()) throw new SandtraceError('SANDBOX_IMAGE_INVALID', 'image has no /tmp directory');
    const dst = join(tmpDir, name);
    rmSync(dst, { force: true, recursive: true });
    copyFileSync(this.opts.sample, dst);
    chownSync(dst, ID_SHIFT, ID_SHIFT);
    chmodSync(dst, 0o755);
    const copied = readFileSync(dst);
    this.sampleSha = createHash('sha256').update(copied).digest('hex');
    this.sampleSize = copied.length;
    this.seedResolver();
    // the container trusts the authority whose certificates the catcher answers TLS with
    for (const [path, content] of trustAuthority(this.overlay.merged, sandboxCa().certPem)) this.seeded.set(path, content);

    const config = buildConfig({
      rootfs: this.overlay.merged,
      args: [...(this.opts.interpreter ?? []), this.samplePath, ...this.opts.args],
      cgroupsPath: `/${CGROUP_PARENT}/${this.id}`,
      limits: this.limits,
      init: initPath(),
    });
    writeFileSync(join(this.bundle, 'config.json'), JSON.stringify(config, null, 2));

    const pidFile = join(this.workDir, 'init.pid');
    const runcLog = join(this.workDir, 'runc.log');
    const shim = spawn(shimPath(), ['3', pidFile, '--', 'runc', '--root', runcRoot(), '--log', runcLog, 'create',
      '--bundle', this.bundle, '--pid-file', pidFile, this.id], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    this.shim = shim;
    // one decoder per stream, so a UTF-8 character split across reads stays whole
    const collect = (stream: NodeJS.ReadableStream | null): void => {
      const dec = new StringDecoder('utf8');
      stream?.on('data', (b: Buffer) => {
        if (this.console.length >= CONSOLE_CAP) { this.consoleTruncated = true; return; }
        const text = dec.write(b);
        if (this.console.length + text.length > CONSOLE_CAP) this.consoleTruncated = true;
        this.console += text.slice(0, CONSOLE_CAP - this.console.length);
      });
    };
    collect(shim.stdout);
    collect(shim.stderr);
    this.shimClosed = new Promise((r) => shim.on('close', () => r()));

    // status lines from the shim
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    let ended = false;
    const status = shim.stdio[3] as NodeJS.ReadableStream | null;
    let pending = '';
    status?.on('data', (b: Buffer) => {
      pending += b.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      lines.push(...parts);
      for (const w of waiters.splice(0)) w();
    });
    const onEnd = (): void => { ended = true; for (const w of waiters.splice(0)) w(); };
    status?.on('end', onEnd);
    shim.on('close', onEnd);
    shim.on('error', onEnd);
    const nextLine = async (prefix: string, ms: number): Promise<string | undefined> => {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = lines.findIndex((l) => l.startsWith(prefix + ' ') || l.startsWith('error '));
        if (i >= 0) return lines[i];
        if (ended || Date.now() > deadline) return undefined;
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.max(1, deadline - Date.now()));
          waiters.push(() => { clearTimeout(t); r(); });
        });
      }
    };
    this.exitInfo = (async () => {
      const l = await nextLine('exit', 2 ** 31 - 1);
      const m = /^exit (-?\d+) (\d+)$/.exec(l ?? '');
      if (!m) return { code: null, signal: null };
      const code = Number(m[1]);
      return { code: code < 0 ? null : code, signal: Number(m[2]) || null };
    })();

    const created = await nextLine('created', 60000);
    if (created !== 'created 0') {
      let log = '';
      try { log = readFileSync(runcLog, 'utf8').trim().split('\n').slice(-3).map((l) => { try { return String((JSON.parse(l) as { msg?: string }).msg); } catch { return l; } }).join('; '); } catch { /* none */ }
      throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `runc create failed: ${log || this.console.trim().split('\n').pop() || created || 'no status'}`, { details: { id: this.id } });
    }
    const pidLine = await nextLine('pid', 5000);
    const hostPid = Number(/^pid (\d+)$/.exec(pidLine ?? '')?.[1] ?? NaN);
    if (!Number.isInteger(hostPid)) throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `runc create gave no init pid (${pidLine ?? 'none'})`);
    if (!this.cg.unified || !existsSync(this.cg.unified)) {
      throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `container cgroup v2 dir missing (${this.cg.unified ?? 'no cgroup2 on this host'})`);
    }
    // the DNS sinkhole starts while the capture attaches; the sample waits for both
    this.sinkhole.start(hostPid);
    const info: SandboxStartInfo = { id: this.id, cgroupPath: this.cg.unified, hostPid, samplePath: this.samplePath, hiddenPid: CONTAINER_INIT_PID };
    if (this.cg.freezer) info.freezerPath = this.cg.freezer;
    return info;
  }

  /**
   * An image without /etc/resolv.conf (most container images: their runtime mounts one) gets one
   * naming the DNS sinkhole, as the base image has; without it, resolvers ask 127.0.0.1, where
   * nothing answers. Written only into a real /etc directory and only as a new file (O_EXCL: never
   * through a link the image holds); an image's own resolv.conf is left as it is.
   */
  private seedResolver(): void {
    if (!this.overlay) return;
    const etc = join(this.overlay.merged, 'etc');
    if (!lstatSync(etc, { throwIfNoEntry: false })?.isDirectory() || lstatSync(join(etc, 'resolv.conf'), { throwIfNoEntry: false })) return;
    const content = `nameserver ${DNS_SERVER}\n`;
    try {
      writeFileSync(join(etc, 'resolv.conf'), content, { flag: 'wx', mode: 0o644 });
      chownSync(join(etc, 'resolv.conf'), ID_SHIFT, ID_SHIFT);
    } catch { return; /* a read-only or odd /etc: the sample's lookups fail as they would have */ }
    this.seeded.set('/etc/resolv.conf', { sha256: createHash('sha256').update(content).digest('hex'), size: content.length });
  }

  async start(): Promise<void> {
    if (this.state !== 'created' || !this.exitInfo) throw new SandtraceError('INTERNAL', `sandbox ${this.id} is not created`);
    this.state = 'started';
    await this.sinkhole.ready();
    this.startedAt = Date.now();
    const r = await execFile('runc', ['--root', runcRoot(), 'start', this.id]);
    if (r.code !== 0) {
      await this.destroy().catch(() => undefined);
      throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `runc start failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
    }
  }

  async wait(opts: { paused?: () => number } = {}): Promise<SandboxResult> {
    if (this.result) return this.result;
    if (this.state !== 'started' || !this.exitInfo) throw new SandtraceError('INTERNAL', `sandbox ${this.id} is not started`);
    const budgetMs = (this.opts.timeout > 0 ? this.opts.timeout : 60) * 1000;
    const exited = this.exitInfo.then(() => false);
    let deadline = this.startedAt + budgetMs;
    let timedOut = false;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      timedOut = await Promise.race([
        exited,
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now())); }),
      ]);
      if (timer) clearTimeout(timer);
      if (!timedOut) break;
      // time the sample spent frozen for the capture is given back, at most the timeout again
      const owed = this.startedAt + budgetMs + Math.min(budgetMs, (opts.paused?.() ?? 0) * 1000);
      if (owed - deadline < 50) break;
      deadline = owed;
    }
    const endedAt = timedOut ? Date.now() : Date.now();
    if (timedOut) await killAll(this.cg);
    const exit = await raceTimeout(this.exitInfo, 10000, { code: null, signal: null });
    // the console pipes close once every container process is gone
    await raceTimeout(this.shimClosed, timedOut ? 2000 : 5000, undefined);
    this.state = 'ended';
    this.result = {
      exitCode: exit.code,
      signal: exit.signal,
      timedOut,
      duration: (endedAt - this.startedAt) / 1000,
      console: this.console + (this.consoleTruncated ? '\n[sandtrace: console truncated]\n' : ''),
    };
    return this.result;
  }

  async freeze(): Promise<void> {
    if (!(await setFrozen(this.cg, true))) throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `cannot freeze ${this.id}`);
  }

  async thaw(): Promise<void> {
    if (!(await setFrozen(this.cg, false))) throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `cannot thaw ${this.id}`);
  }

  async changes(outDir: string): Promise<ChangeList> {
    if (!this.overlay || !isMountPoint(this.overlay.tmpfs)) throw new SandtraceError('INTERNAL', `sandbox ${this.id} has no overlay (destroyed?)`);
    // nothing may run (and race the walk) while the upper layer is read
    if (pidsIn(this.cg).length > 0) await killAll(this.cg);
    makeOutDir(outDir);
    // the sample we copied in is no change while it is the same (compared only when its size is)
    const inp = { upper: this.overlay.upper, lower: this.overlay.lower, unchanged: new Map([[this.samplePath, { sha256: this.sampleSha, size: this.sampleSize }], ...this.seeded]) };
    return listChanges(isMountPoint(this.overlay.merged) ? { ...inp, merged: this.overlay.merged } : inp, outDir);
  }

  dnsName(address: string): string | undefined {
    return this.sinkhole.nameOf(address);
  }

  dns(): SandboxDns {
    return this.sinkhole.log();
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    await this.sinkhole.close();
    try {
      await teardown(this.id, this.workDir, async () => {
        if (this.shim && this.shim.exitCode === null && this.shim.signalCode === null) {
          await raceTimeout(this.shimClosed, 3000, undefined);
          if (this.shim.exitCode === null && this.shim.signalCode === null) this.shim.kill('SIGKILL');
        }
      });
    } finally {
      this.state = 'destroyed';
    }
  }
}

function ownersDir(): string {
  return join(runDir(), 'owners');
}

function procStart(pid: number): string | undefined {
  try {
    // field 22 (starttime), counted after the parenthesised comm
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Records which process owns a container, so that a crashed owner's leftovers can be reaped. */
function recordOwner(id: string, workDir: string): void {
  mkdirSync(ownersDir(), { recursive: true, mode: 0o700 });
  writeFileSync(join(ownersDir(), `${id}.json`), JSON.stringify({ pid: process.pid, start: procStart(process.pid), workDir }));
}

/** Kills and removes everything of container `id`: processes, runc state, mounts, cgroups, work dir. */
async function teardown(id: string, workDir: string, beforeUnmount?: () => Promise<void>): Promise<void> {
  const problems: string[] = [];
  const cg = containerCgroups(id);
  await killAll(cg).catch((e: unknown) => problems.push(`kill: ${String(e)}`));
  if (existsSync(join(runcRoot(), id))) {
    const r = await execFile('runc', ['--root', runcRoot(), 'delete', '-f', id]);
    if (r.code !== 0 && existsSync(join(runcRoot(), id))) problems.push(`runc delete: ${r.stderr.trim()}`);
  }
  await beforeUnmount?.();
  const ov = overlayDirs(workDir, '');
  const mounted = await unmountOverlay(ov);
  problems.push(...mounted.map((m) => `still mounted: ${m}`));
  problems.push(...(await removeCgroups(cg)).map((d) => `cgroup left: ${d}`));
  // never rm -rf through a live mount
  if (mounted.length === 0) {
    try { rmSync(workDir, { recursive: true, force: true }); } catch (e) { problems.push(`rm ${workDir}: ${String(e)}`); }
  }
  rmSync(join(ownersDir(), `${id}.json`), { force: true });
  if (problems.length > 0) {
    throw new SandtraceError('SANDBOX_CLEANUP_FAILED', `cleanup of ${id} incomplete: ${problems.join('; ')}`, { details: { id, problems } });
  }
}

/** Removes the containers of sandtrace processes that died without destroying them. Returns their ids. */
export async function reapStale(): Promise<string[]> {
  const reaped: string[] = [];
  let names: string[] = [];
  try { names = readdirSync(ownersDir()); } catch { return reaped; }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const id = name.slice(0, -5);
    let owner: { pid?: number; start?: string; workDir?: string };
    try { owner = JSON.parse(readFileSync(join(ownersDir(), name), 'utf8')) as typeof owner; } catch { continue; }
    if (typeof owner.pid !== 'number' || typeof owner.workDir !== 'string') continue;
    const alive = procStart(owner.pid);
    if (alive !== undefined && alive === owner.start) continue;
    try {
      await teardown(id, owner.workDir);
      reaped.push(id);
    } catch { /* left for the next attempt */ }
  }
  return reaped;
}

/** A container sandbox for one analysis. Needs root and `make setup` (image, shim). */
export function createSandbox(opts: SandboxOptions): Sandbox & { readonly id: string } {
  return new RuncSandbox(opts);
}

export interface SandboxFacts {
  isolation: { guarantees: string[]; weaker: string[] };
  deniedSyscalls: readonly string[];
  /** uid -> user name inside the image. */
  users: ReadonlyMap<number, string>;
  /** Working directory the sample starts in. */
  cwd: string;
}

/** What the container sandbox guarantees, for the report; the image's users for the process view. */
export function sandboxFacts(): SandboxFacts {
  const users = new Map<number, string>([[0, 'root'], [USER.uid, USER.name]]);
  try {
    for (const line of readFileSync(join(baseImageDir(), 'rootfs', 'etc', 'passwd'), 'utf8').split('\n')) {
      const [name, , uid] = line.split(':');
      if (name && uid && /^\d+$/.test(uid)) users.set(Number(uid), name);
    }
  } catch { /* image missing: the defaults above */ }
  return {
    isolation: {
      guarantees: [
        'runc container: pid, mount, network, ipc, uts, cgroup and user namespaces',
        `container root is host uid ${ID_SHIFT} (user namespace), not host root`,
        'network namespace with loopback only: no route off the machine, host loopback unreachable',
        'DNS answered inside that namespace by sandtrace\'s sinkhole (192.0.2.53, and any resolver the sample names): addresses from 198.18.0.0/15; every TCP connection off loopback is caught by sandtrace inside the namespace (nothing leaves it)',
        'TLS caught there is answered with a certificate for the name asked, issued by a certificate authority that sandtrace made in memory and added to the image\'s CA bundles (its key is never on disk or in the container): HTTPS is read in the clear unless the sample pins a key or brings its own CAs',
        'overlay root filesystem over a read-only image; host files invisible',
        `writes capped by a ${DEFAULT_DISK_MIB} MiB tmpfs; memory, pids and CPU limited by cgroups`,
        'capabilities below Docker\'s default set; no-new-privileges; /proc and /sys masked or read-only; no cgroupfs',
        `seccomp: ${DENIED_SYSCALLS.length} system calls (mount, bpf, module loading, ptrace, namespaces, ...) fail with EPERM`,
        'every process killed by cgroup at the timeout; container, mounts and cgroups removed afterwards',
      ],
      weaker: [
        'shares the host kernel: a kernel exploit escapes any container',
      ],
    },
    deniedSyscalls: DENIED_SYSCALLS,
    users,
    cwd: '/root',
  };
}
