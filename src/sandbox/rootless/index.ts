// The rootless sandbox: for an analyst without root, runs the sample with unprivileged user
// namespaces through Debian's bubblewrap (bwrap) over the same base image, captured with ptrace.
// Where it is weaker than the runc sandbox, rootlessGuarantees() says so for the report.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, copyFileSync, chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync,
  openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Writable, Readable } from 'node:stream';
import { SandtraceError } from '../../errors.js';
import { baseRootfs, initPath } from '../image.js';
import { DENIED_SYSCALLS, seccompFilter } from '../seccomp.js';
import { homeDecoys } from '../decoys.js';
import { CONTAINER_INIT_PID, DEFAULT_LIMITS, INIT_PATH } from '../config.js';
import type { ChangeList, Sandbox, SandboxDns, SandboxOptions, SandboxResult, SandboxStartInfo } from '../types.js';
import { SandboxSinkhole } from '../dns.js';
import { sandboxCa } from '../tls.js';
import { trustAuthority } from '../trust.js';
import { ChangeWalk, DEFAULT_CHANGE_LIMITS, type KnownContent, type LayerRules } from '../changes.js';

/** The sample runs as this user of the image (uid 1000 'user', as in the runc sandbox's image). */
const SAMPLE_UID = 1000;
const HOME = '/home/user';
/** Working directory the sample starts in (the image's /root is not accessible without root). */
export const ROOTLESS_CWD = HOME;
const HOSTNAME = 'devbox';
/** Largest file the sample may write (RLIMIT_FSIZE): bounds disk filling per file. */
export const ROOTLESS_FILE_CAP = 256 << 20;
const CONSOLE_CAP = 256 * 1024;
/** Default cap on the sandbox's tasks (the runc sandbox's default pids limit). */
export const ROOTLESS_PIDS = 256;

/** Writable places inside the sandbox -> their directory under the work dir. Everything else is the read-only image. */
const WRITABLE: readonly (readonly [string, string])[] = [['/tmp', 'tmp'], ['/var/tmp', 'vartmp'], [HOME, 'home'], ['/etc', 'etc']];
/** Writable places that start as a copy of the image's (small) directory, so samples can modify image files there. */
const SEEDED = new Set(['/etc']);

export function rootlessGuarantees(): { guarantees: string[]; weaker: string[] } {
  return {
    guarantees: [
      'bubblewrap sandbox in unprivileged user, pid, mount, network, ipc, uts and cgroup namespaces; nothing runs as root on the host',
      'network namespace with loopback only: no route off the machine, host loopback unreachable',
      'DNS answered by sandtrace\'s sinkhole inside that namespace (names listed; every TCP connection off loopback caught there, nothing leaves it)',
      'TLS caught there is answered with a certificate for the name asked, issued by a certificate authority that sandtrace made in memory and added to the CA bundles of the sandbox\'s copy of /etc (its key is never on disk or in the sandbox)',
      'root filesystem is the cached base image, read-only; host files invisible',
      'no new user namespaces inside (bwrap --disable-userns); no capabilities on the host',
      `seccomp: the root sandbox's policy (${DENIED_SYSCALLS.length} system calls such as mount, bpf, module loading, ptrace, keyrings and io_uring fail with EPERM; namespace clones and x32 calls refused)`,
      'every process killed at the timeout (SIGKILL to the pid namespace\'s init); work directory removed afterwards',
    ],
    weaker: [
      `no cgroup limits: CPU is not capped; memory is capped per process (RLIMIT_DATA, default ${DEFAULT_LIMITS.memoryMiB} MiB), not in total; tasks are capped by RLIMIT_NPROC in the sandbox's user namespace (default ${ROOTLESS_PIDS}) instead of a pids cgroup`,
      `disk use capped per file (RLIMIT_FSIZE ${ROOTLESS_FILE_CAP >> 20} MiB), not in total`,
      'no eBPF: captured with ptrace (strace), which is slower and detectable by the sample (TracerPid, PTRACE_TRACEME fails)',
      `only /etc (a copy of the image's, without the files the user cannot read, e.g. /etc/shadow), /tmp, /var/tmp and ${HOME} are writable; the rest of the image is read-only (not an overlay), and file changes are detected in those places only`,
      'no freezer: freeze() stops processes with SIGSTOP one by one',
      'shares the host kernel: a kernel exploit escapes any container',
    ],
  };
}

/** Whether the rootless sandbox can run here: bwrap present and unprivileged user namespaces allowed. */
export function rootlessAvailable(): { ok: boolean; reason: string } {
  const v = spawnSync('bwrap', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return { ok: false, reason: 'bubblewrap (bwrap) is not installed (Debian package bubblewrap; make setup)' };
  const t = spawnSync('bwrap', ['--unshare-user', '--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--', '/bin/true'], { encoding: 'utf8' });
  if (t.status !== 0) return { ok: false, reason: `unprivileged user namespaces unavailable: ${(t.stderr || '').trim().split('\n')[0]}` };
  return { ok: true, reason: v.stdout.trim() };
}

type State = 'new' | 'created' | 'started' | 'ended' | 'destroyed';

function safeName(sample: string): string {
  const n = basename(sample).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return n === '' ? 'sample' : n.slice(0, 64);
}

function readlinkOr(path: string): string | null {
  try { return readlinkSync(path); } catch { return null; }
}

function sha256File(path: string): string | null {
  try { return createHash('sha256').update(readFileSync(path)).digest('hex'); } catch { return null; }
}

/**
 * Copy an image directory the user may read into a writable place: regular files and symlinks
 * (never followed), recording each container path with its sha256 (symlinks as `->target`).
 * Files the user cannot read are left out (the user namespace cannot map the image's owners).
 */
function seedCopy(src: string, dst: string, rel: string, seeded: Map<string, string | KnownContent>, inside = '/etc'): void {
  let names: string[];
  try { names = readdirSync(src); } catch { return; }
  for (const n of names) {
    const s = join(src, n);
    const d = join(dst, n);
    const c = `${inside}${rel}/${n}`;
    let st;
    try { st = lstatSync(s); } catch { continue; }
    try {
      if (st.isDirectory()) {
        mkdirSync(d, { mode: (st.mode & 0o777) | 0o700 });
        seedCopy(s, d, `${rel}/${n}`, seeded, inside);
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(s);
        symlinkSync(target, d);
        seeded.set(c, `->${target}`);
      } else if (st.isFile()) {
        copyFileSync(s, d);
        chmodSync(d, (st.mode & 0o777) | 0o600);
        seeded.set(c, { sha256: sha256File(d) ?? '', size: statSync(d).size });
      }
    } catch { /* unreadable in the image: not available to the sample either */ }
  }
}

class RootlessSandbox implements Sandbox {
  readonly id = `rl-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  private state: State = 'new';
  private readonly opts: SandboxOptions;
  private workDir = '';
  private ownWorkDir = false;
  private proc: ChildProcess | undefined;
  private childPid = 0;
  private samplePath = '';
  private sampleHost = '';
  private sampleSha = '';
  private sampleSize = 0;
  private console = '';
  private consoleDropped = 0;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private startedAt = 0;
  private timedOut = false;
  private result: SandboxResult | undefined;
  /** Container paths copied from the image into seeded writable places: files' sha256 and size, symlinks' `->target`. */
  private readonly seeded = new Map<string, string | KnownContent>();
  /** The DNS sinkhole and the catcher of connections in the sample's namespace (started in create(), awaited before the sample runs). */
  private readonly sinkhole: SandboxSinkhole;

  constructor(opts: SandboxOptions) {
    this.opts = opts;
    this.sinkhole = new SandboxSinkhole(opts.dns);
  }

  /**
   * The image's decoy credentials for the sample's user, written fresh into the writable home (the
   * image's own copies are unreadable without root): a sample hunting for keys finds them, reads
   * of them are flagged as in the root sandbox, and they count as pre-existing files.
   */
  private plantDecoys(): void {
    for (const f of homeDecoys(HOME, SAMPLE_UID, 'user')) {
      const host = join(this.workDir, 'home', f.path.slice(HOME.length + 1));
      mkdirSync(dirname(host), { recursive: true, mode: 0o700 });
      writeFileSync(host, f.content, { mode: f.mode });
      this.seeded.set(f.path, { sha256: createHash('sha256').update(f.content).digest('hex'), size: Buffer.byteLength(f.content) });
    }
  }

  async create(): Promise<SandboxStartInfo> {
    if (this.state !== 'new') throw new SandtraceError('INTERNAL', `create() in state ${this.state}`);
    let st;
    try { st = statSync(this.opts.sample); } catch { throw new SandtraceError('INPUT_MISSING', `no sample at ${this.opts.sample}`); }
    if (st.isDirectory()) throw new SandtraceError('INPUT_IS_DIRECTORY', `${this.opts.sample} is a directory`);
    if (this.opts.image) {
      throw new SandtraceError('SANDBOX_IMAGE_INVALID', 'the rootless sandbox runs only the built-in base image (--image needs root to unpack)');
    }
    const { rootfs } = baseRootfs();
    const avail = rootlessAvailable();
    if (!avail.ok) throw new SandtraceError('DEPENDENCY_MISSING', avail.reason);
    if (!existsSync(initPath())) throw new SandtraceError('SETUP_INCOMPLETE', `missing ${initPath()}: run make setup`);

    if (this.opts.workDir) { this.workDir = this.opts.workDir; mkdirSync(this.workDir, { recursive: true, mode: 0o700 }); }
    else { this.workDir = mkdtempSync(join(tmpdir(), 'sandtrace-rootless-')); this.ownWorkDir = true; }
    for (const [inside, dir] of WRITABLE) {
      const d = join(this.workDir, dir);
      mkdirSync(d, { recursive: true, mode: 0o755 });
      if (SEEDED.has(inside)) seedCopy(join(rootfs, inside), d, '', this.seeded);
    }
    this.plantDecoys();
    // the sinkhole's TLS authority, trusted in the writable copy of /etc (at <workDir>/etc, so the
    // work dir stands for the root of every CA bundle path, all under /etc)
    for (const [path, content] of trustAuthority(this.workDir, sandboxCa().certPem)) this.seeded.set(path, content);
    chmodSync(join(this.workDir, 'tmp'), 0o1777);
    const name = safeName(this.opts.sample);
    this.samplePath = `/tmp/${name}`;
    this.sampleHost = join(this.workDir, 'tmp', name);
    copyFileSync(this.opts.sample, this.sampleHost);
    chmodSync(this.sampleHost, 0o755);
    this.sampleSha = sha256File(this.sampleHost) ?? '';
    this.sampleSize = statSync(this.sampleHost).size;

    const args = [
      // RLIMIT_NPROC is counted per user namespace (Linux >= 5.14): it caps the sandbox's own tasks.
      // RLIMIT_DATA (heap and private writable mappings, Linux >= 4.7): the memory limit, per process.
      `--fsize=${ROOTLESS_FILE_CAP}`, `--nproc=${this.opts.limits?.pids ?? ROOTLESS_PIDS}`,
      `--data=${Math.max(16, Math.floor(this.opts.limits?.memoryMiB ?? DEFAULT_LIMITS.memoryMiB)) * 1024 * 1024}`, '--', 'bwrap',
      '--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
      '--disable-userns', '--uid', String(SAMPLE_UID), '--gid', String(SAMPLE_UID), '--hostname', HOSTNAME,
      '--die-with-parent', '--as-pid-1', '--new-session',
      '--ro-bind', rootfs, '/',
      '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run',
      // the sample runs under the init (init.c), pid 1, so that its own exit kills nothing it left running
      '--ro-bind', initPath(), INIT_PATH,
      ...WRITABLE.flatMap(([inside, dir]) => ['--bind', join(this.workDir, dir), inside]),
      '--chdir', ROOTLESS_CWD, '--clearenv',
      '--setenv', 'PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--setenv', 'HOME', HOME, '--setenv', 'USER', 'user', '--setenv', 'LOGNAME', 'user', '--setenv', 'LANG', 'C.UTF-8',
      '--info-fd', '3', '--block-fd', '4',
      // the root sandbox's seccomp policy, loaded by bwrap just before it execs the init (and so the sample)
      '--seccomp', '5',
      '--', INIT_PATH, '--', ...(this.opts.interpreter ?? []), this.samplePath, ...this.opts.args,
    ];
    const filterPath = join(this.workDir, 'seccomp.bpf');
    writeFileSync(filterPath, seccompFilter(), { mode: 0o600 });
    const filterFd = openSync(filterPath, 'r');
    let proc: ChildProcess;
    try {
      proc = spawn('prlimit', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', filterFd] });
    } finally {
      closeSync(filterFd);
    }
    this.proc = proc;
    const onOut = (d: Buffer) => {
      const s = d.toString('utf8');
      const room = CONSOLE_CAP - this.console.length;
      if (room >= s.length) this.console += s;
      else { this.console += s.slice(0, Math.max(room, 0)); this.consoleDropped += s.length - Math.max(room, 0); }
    };
    proc.stdout?.on('data', onOut);
    proc.stderr?.on('data', onOut);
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => resolve({ code, signal }));
      proc.on('error', () => resolve({ code: null, signal: null }));
    });
    // bwrap reports the host pid of the sandboxed process (which waits on the block fd) as JSON.
    const info = proc.stdio[3] as Readable;
    const childPid = await new Promise<number>((resolve) => {
      let buf = '';
      const done = (v: number) => { info.removeAllListeners('data'); resolve(v); };
      info.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const m = /"child-pid"\s*:\s*(\d+)/.exec(buf);
        if (m) done(Number(m[1]));
      });
      info.on('end', () => done(0));
      void this.exited?.then(() => done(0));
    });
    if (!childPid) {
      await this.destroy();
      throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `bwrap did not start: ${this.console.trim().split('\n').slice(-2).join('; ') || 'no reason given'}`);
    }
    this.childPid = childPid;
    // the DNS sinkhole starts while the capture attaches; the sample waits for both
    this.sinkhole.start(childPid, { viaOwner: true });
    this.state = 'created';
    return { id: this.id, cgroupPath: '', hostPid: childPid, samplePath: this.samplePath, hiddenPid: CONTAINER_INIT_PID };
  }

  async start(): Promise<void> {
    if (this.state !== 'created') throw new SandtraceError('INTERNAL', `start() in state ${this.state}`);
    await this.sinkhole.ready();
    const block = this.proc?.stdio[4] as Writable;
    block.end('x');
    this.startedAt = Date.now();
    this.state = 'started';
  }

  async wait(): Promise<SandboxResult> { // (strace never pauses the sample: nothing to give back)
    if (this.result) return this.result;
    if (this.state !== 'started') throw new SandtraceError('INTERNAL', `wait() in state ${this.state}`);
    const timer = setTimeout(() => {
      this.timedOut = true;
      // SIGKILL to the init of a pid namespace kills every process in it.
      try { process.kill(this.childPid, 'SIGKILL'); } catch { /* already gone */ }
    }, this.opts.timeout * 1000);
    const ex = await (this.exited as Promise<{ code: number | null; signal: NodeJS.Signals | null }>);
    clearTimeout(timer);
    this.state = 'ended';
    // bwrap exits with the sample's status, or 128+N when the sample died of signal N.
    const code = ex.code;
    const signal = this.timedOut ? 9 : code !== null && code > 128 && code < 160 ? code - 128 : null;
    this.result = {
      exitCode: signal === null ? code : null,
      signal,
      timedOut: this.timedOut,
      duration: (Date.now() - this.startedAt) / 1000,
      console: this.consoleDropped > 0 ? `${this.console}\n[... ${this.consoleDropped} bytes not kept]` : this.console,
    };
    return this.result;
  }

  /** Host pids in the sandbox's pid namespace. */
  private pids(): number[] {
    let ns: string;
    try { ns = readlinkSync(`/proc/${this.childPid}/ns/pid`); } catch { return []; }
    const out: number[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try { if (readlinkSync(`/proc/${p}/ns/pid`) === ns) out.push(Number(p)); } catch { /* gone or not ours */ }
    }
    return out;
  }

  async freeze(): Promise<void> {
    for (const p of this.pids()) { try { process.kill(p, 'SIGSTOP'); } catch { /* gone */ } }
  }

  async thaw(): Promise<void> {
    for (const p of this.pids()) { try { process.kill(p, 'SIGCONT'); } catch { /* gone */ } }
  }

  async changes(outDir: string): Promise<ChangeList> {
    // the root sandbox's walk, limits and priorities (changes.ts) over the writable places:
    // copies capped per file and in total, hashing within a budget (a sample writes as many
    // sparse files of the size cap as it likes), all spent by priority, not in path order
    const walk = new ChangeWalk(DEFAULT_CHANGE_LIMITS);
    const seeded = this.seeded;
    const sample: KnownContent = { sha256: this.sampleSha, size: this.sampleSize };
    const rules: LayerRules<null> = {
      enter: () => null,
      entry: (c, _name, h, st) => {
        const was = c === this.samplePath ? sample : seeded.get(c);
        if (!st.isFile()) {
          // symlinks, FIFOs, sockets: listed, never followed or copied (a seeded symlink still as in the image is no change)
          if (typeof was === 'string' && st.isSymbolicLink() && was === `->${readlinkOr(h)}`) return null;
          return { change: was === undefined ? 'created' : 'modified' };
        }
        // unchanged copies are not changes: compared (same size, same sha256) before anything is copied out
        if (was === undefined) return { change: 'created' };
        return { change: 'modified', known: typeof was === 'string' ? undefined : was };
      },
    };
    for (const [inside, dir] of WRITABLE) walk.walk(join(this.workDir, dir), inside, rules);
    for (const c of seeded.keys()) {
      const dir = WRITABLE.find(([inside]) => c.startsWith(inside + '/'));
      if (!dir) continue;
      const h = join(this.workDir, dir[1], c.slice(dir[0].length));
      if (!lstatSync(h, { throwIfNoEntry: false })) walk.add({ path: c, change: 'deleted' });
    }
    if (this.sampleHost && !lstatSync(this.sampleHost, { throwIfNoEntry: false })) walk.add({ path: this.samplePath, change: 'deleted' });
    return walk.finish(outDir);
  }

  dnsName(address: string): string | undefined {
    return this.sinkhole.nameOf(address);
  }

  dns(): SandboxDns {
    return this.sinkhole.log();
  }

  async destroy(): Promise<void> {
    if (this.state === 'destroyed') return;
    this.state = 'destroyed';
    await this.sinkhole.close();
    if (this.childPid) { try { process.kill(this.childPid, 'SIGKILL'); } catch { /* gone */ } }
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    if (this.workDir && (this.ownWorkDir || this.opts.workDir)) rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** A rootless sandbox for one analysis: no root needed, only bubblewrap and the base image. */
export function createRootlessSandbox(opts: SandboxOptions): Sandbox & { readonly id: string; dns(): SandboxDns } {
  return new RootlessSandbox(opts);
}
