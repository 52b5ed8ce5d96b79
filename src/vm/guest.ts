// Guest lifecycle: boots Debian's kernel under QEMU TCG with a throw-away busybox initramfs that
// holds the sample, no network device, serial console to a file, a timeout and power-off, and
// (unless disabled) the sandtrace TCG plugin streaming the guest's syscalls to a VmiCollector.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, symlinkSync, chmodSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { SandtraceError } from '../errors.js';
import { VmiCollector } from '../capture/vmi/collector.js';
import { loadProfile, defaultKernel, type KernelProfile } from '../vmi/profile.js';
import { ensureDiskImage, rootModules, installModules } from './rootfs.js';
import { makeOutDir } from '../outpath.js';
import { checkTimeout } from '../sandbox/types.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)).replace(/\/dist\/?$/, ''));
export const PLUGIN_PATH = join(ROOT, 'qemu-plugin', 'build', 'libsandtrace.so');
export const QEMU = 'qemu-system-x86_64';
const BUSYBOX = '/bin/busybox';
/** glibc from the container sandbox's base image, so dynamically linked samples run too. */
const GLIBC = ['ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'libresolv.so.2', 'librt.so.1'];
function baseImageLibDir(): string | null {
  const d = join(process.env['SANDTRACE_CACHE'] ?? '/var/cache/sandtrace', 'images', 'base', 'rootfs', 'usr', 'lib', 'x86_64-linux-gnu');
  return existsSync(join(d, 'libc.so.6')) ? d : null;
}
/** Guest path the sample is placed at: /sample/<its file name>. */
export const GUEST_SAMPLE_DIR = '/sample';

export interface VmRunOptions {
  /** Host path of the sample (a script for /bin/sh, or a static executable). */
  sample: string;
  args?: string[];
  /** Runs `interpreter... SAMPLE args...` (a script the kernel cannot start: sampleLaunch). */
  interpreter?: string[];
  /** Seconds the sample may run inside the guest (then it is killed and the guest powers off). */
  timeout?: number;
  /** Where console.log (the serial console) and qemu.log are kept; a temp dir when absent. */
  outDir?: string;
  /** The guest kernel (a vmlinuz); Debian's, fetched by the set-up, when absent. */
  kernel?: string;
  memoryMb?: number;
  /** Load the capture plugin (default true); false runs the same guest untraced. */
  capture?: boolean;
  /**
   * The guest's userland: 'initramfs' (busybox and glibc in RAM, the sample at /sample/NAME, boots
   * in ~3 s) or 'debian' (the container sandbox's base image as a snapshot-mode disk, the sample
   * at /tmp/NAME as in the container; same programs, same paths). Default 'initramfs'.
   */
  rootfs?: 'initramfs' | 'debian';
  /** Extra guest kernel command-line words (e.g. 'pti=on'). */
  kernelArgs?: string[];
  /** Capture every guest process, boot included (default: only the sample's process tree). */
  allProcesses?: boolean;
}

export interface VmResult {
  /** The sample's exit status inside the guest, when the guest reported it. */
  sampleExit: number | null;
  /** The sample ran into the timeout (inside the guest, or the host had to kill QEMU). */
  timedOut: boolean;
  /** Seconds the sample ran, measured by the guest's clock (/proc/uptime). */
  sampleSeconds: number | null;
  /** Seconds from QEMU start to its exit. */
  wallSeconds: number;
  /** CPU seconds QEMU used (user + system, sampled every 100 ms until it exited): the work, whatever else loads the host. */
  qemuCpuSeconds: number;
  consolePath: string;
  qemuExit: number | null;
  /** The sample's own output (stdout and stderr, from the serial console). */
  output: string;
  /**
   * Regular files the sample left (initramfs: under /work and /tmp, both empty tmpfs at the start;
   * debian: newer than the start, anywhere on the root disk), as the guest listed them within its
   * budgets (guestListingScript): see `listing` for what it left out.
   */
  files: GuestFile[];
  listing: GuestListing;
}

/** One regular file of the guest's listing. */
export interface GuestFile {
  path: string;
  size: number;
  /** Any execute bit set. */
  execBit: boolean;
  /** The first bytes look like an executable, script or archive (changes.ts looksExecutable, the guest's copy). */
  magic: boolean;
  /** null: not hashed (the guest's hashing budget or deadline ran out first, or larger than the budget). */
  sha256: string | null;
}

/** What the guest's listing left out, and whether it finished. */
export interface GuestListing {
  /** Regular files the guest found but did not print (past its caps), by directory. */
  notPrinted: { dir: string; count: number }[];
  /** The listing finished ('listed' and 'end' seen; the deadline may still have cut the hashing). */
  complete: boolean;
  /** The hashing pass finished (otherwise the deadline cut it: files not reached have sha256 null). */
  hashed: boolean;
  /** Why the listing is incomplete, when it is. */
  cut?: string;
}

/**
 * The guest's listing budgets. Seconds: the whole listing and hashing, after the sample ended
 * (a watchdog kills it there). printOthers: files without an exec bit or executable magic printed
 * at most (those with are always printed), at most perDirRun of them in a row from one directory;
 * the rest are counted by directory. hashBytes: bytes hashed at most (per file and all together).
 */
export const GUEST_LISTING = { seconds: 120, printOthers: 20_000, perDirRun: 2_000, hashBytes: 1 << 30 };
const SHA256_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface VmRun {
  /** start() boots the guest; events() streams the sample's syscalls; stop() powers it off. */
  collector: VmiCollector;
  profile: KernelProfile;
  /** Resolves once QEMU has exited and the temporary files are gone. */
  done: Promise<VmResult>;
  /** This run's temporary directory (initramfs, plugin socket): removed by the time done settles. */
  workDir: string;
}

/** QEMU >= 9.2 is needed for qemu_plugin_read_memory_vaddr. */
export function qemuVersion(): [number, number] | null {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
  const m = /version (\d+)\.(\d+)/.exec(r.stdout ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** TCG plugins only run under TCG: refuse KVM plainly rather than capture nothing. */
export function assertTcg(qemuArgs: string[]): void {
  const joined = qemuArgs.join(' ');
  if (/(^|\s)-enable-kvm(\s|$)|accel=kvm|-accel\s+kvm|(^|\s)-accel\s+hvf/.test(joined)) {
    throw new SandtraceError('VM_UNSUPPORTED', 'QEMU TCG plugins do not run under KVM (no instruction callbacks): run the guest with -accel tcg');
  }
}

export function checkVmEnvironment(capture: boolean): void {
  const v = qemuVersion();
  if (!v) throw new SandtraceError('DEPENDENCY_MISSING', `${QEMU} not found (run make setup)`);
  if (capture && (v[0] < 9 || (v[0] === 9 && v[1] < 2))) {
    throw new SandtraceError('DEPENDENCY_MISSING', `QEMU ${v.join('.')} is too old for guest memory reads from a plugin (need >= 9.2, run make setup)`);
  }
  if (capture && !existsSync(PLUGIN_PATH)) throw new SandtraceError('SETUP_INCOMPLETE', `the QEMU plugin is not built (${PLUGIN_PATH}; run make setup)`);
  if (!existsSync(BUSYBOX)) throw new SandtraceError('DEPENDENCY_MISSING', 'busybox-static is not installed (run make setup)');
}

/** The plugin's arguments: link-time addresses and struct offsets from the profile. */
export function pluginArgs(p: KernelProfile, sock: string): string {
  const o = p.offsets;
  const kv: Record<string, string | number> = {
    sock, entry: p.syscall.entry, dosys: p.syscall.doSyscall, after: p.syscall.afterCall, bytes: p.syscall.entryBytes, cur: p.currentTaskPercpu,
    pid: o['task_struct.pid'], tgid: o['task_struct.tgid'], comm: o['task_struct.comm'], parent: o['task_struct.real_parent'],
    mm: o['task_struct.mm'], exe: o['mm_struct.exe_file'], fdentry: o['file.f_path'] + o['path.dentry'],
    dname: o['dentry.d_name'] + o['qstr.name'], dparent: o['dentry.d_parent'],
    argstart: o['mm_struct.arg_start'], argend: o['mm_struct.arg_end'], envend: o['mm_struct.env_end'],
    tasks: o['task_struct.tasks'], cred: o['task_struct.cred'], uid: o['cred.uid'],
    ...(p.symbols.init_task ? { inittask: p.symbols.init_task } : {}),
  };
  // exe paths cross mount points (a program on the tmpfs /tmp is /tmp/x, not /x) when the BTF has struct mount
  const mounts = { fmnt: o['file.f_path'] + o['path.mnt'], mntvfs: o['mount.mnt'], mntparent: o['mount.mnt_parent'], mntpoint: o['mount.mnt_mountpoint'], mntroot: o['vfsmount.mnt_root'] };
  const known = (o: Record<string, number | undefined>) => Object.values(o).every((v) => typeof v === 'number' && v >= 0);
  if (known(mounts)) Object.assign(kv, mounts);
  // the working directory at exec, to place a relative path (./script.sh)
  const fs = o['fs_struct.pwd'] ?? -1;
  const cwd = { taskfs: o['task_struct.fs'], pwd: fs < 0 ? -1 : fs + o['path.dentry'], pwdmnt: fs < 0 ? -1 : fs + o['path.mnt'] };
  if (known(cwd)) Object.assign(kv, cwd);
  // a descriptor's file (task->files->fdt->fd[fd], below max_fds), for the two below
  const fdt = { files: o['task_struct.files'], fdt: o['files_struct.fdt'], fdtfd: o['fdtable.fd'], maxfds: o['fdtable.max_fds'] };
  // an open whose path could not be read at the call: named by the file of the descriptor it returned
  // (with the mount offsets above; without them, read again at the return)
  const root = o['fs_struct.root'] ?? -1;
  const fdpath = { taskfs: o['task_struct.fs'], dhash: o['dentry.d_hash.pprev'], root: root < 0 ? -1 : root + o['path.dentry'],
    rootmnt: root < 0 ? -1 : root + o['path.mnt'] };
  if (known(fdt) && known(mounts) && known(fdpath)) Object.assign(kv, fdt, fdpath);
  // a connect whose address could not be read at the call: the peer of the socket behind its descriptor
  // (sk->__sk_common; without these offsets, read again at the return)
  const skc = o['sock.__sk_common'] ?? -1;
  const at = (f: 'sock_common.skc_family' | 'sock_common.skc_dport' | 'sock_common.skc_daddr' | 'sock_common.skc_v6_daddr') =>
    skc < 0 || (o[f] ?? -1) < 0 ? -1 : skc + o[f];
  const peer = { finode: o['file.f_inode'], imode: o['inode.i_mode'], fpriv: o['file.private_data'], socksk: o['socket.sk'],
    skfamily: at('sock_common.skc_family'), skdport: at('sock_common.skc_dport'), skdaddr: at('sock_common.skc_daddr'), skv6daddr: at('sock_common.skc_v6_daddr') };
  if (known(fdt) && known(peer)) Object.assign(kv, fdt, peer);
  // signal frames: a call a handler interrupts returns into the handler, its result saved in the frame
  const frame = (s: string, fields: string[]) => {
    const v = fields.map((f) => (o as Record<string, number | undefined>)[`${s}.${f}`]);
    return v.every((x) => typeof x === 'number' && x >= 0) ? v.join(':') : undefined;
  };
  const regs = ['ax', 'ip', 'sp'].map((r) => `uc.uc_mcontext.${r}`);
  const frames = { sigrt: frame('rt_sigframe', ['info', 'uc', ...regs]), sigrt32: frame('rt_sigframe_ia32', ['info', 'uc', ...regs]),
    sig32: frame('sigframe_ia32', ['sc.ax', 'sc.ip', 'sc.sp']) };
  for (const [k, v] of Object.entries(frames)) if (v) kv[k] = v;
  // i386 calls (int $0x80, sysenter/syscall from 32-bit code) when the kernel has IA32_EMULATION
  const c = p.compat;
  if (c) {
    Object.assign(kv, { int80: c.int80.entry, int80ret: c.int80.afterCall });
    if (c.fast) {
      kv['fast32'] = c.fast.entry;
      if (c.fast.afterSyscall) kv['fast32ret'] = c.fast.afterSyscall;
      if (c.fast.afterSysenter) kv['sysenterret'] = c.fast.afterSysenter;
    }
  }
  return [PLUGIN_PATH, ...Object.entries(kv).map(([k, v]) => `${k}=${v}`)].join(',');
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function writeCpio(dir: string, root: string): string {
  const out = join(dir, 'initrd.cpio');
  const r = spawnSync('sh', ['-c', `cd ${shq(root)} && find . | cpio -o -H newc --quiet > ${shq(out)}`]);
  if (r.status !== 0) throw new SandtraceError('VM_BOOT_FAILED', `cannot build the initramfs: ${r.stderr.toString().trim()}`);
  return out;
}

/**
 * The Debian guest's mark of the moment before the sample starts: what the listing finds with
 * `-newer STAMP`. busybox find compares whole seconds (mtime > the stamp's), so a stamp of now would
 * hide every file a fast sample writes within the same second; the stamp is one second older, and
 * the only file written in that second, the sample's own copy, is left out by the host when it is
 * unchanged (createVmSandbox's changes()).
 */
export const guestStampCommand = (B: string, stamp: string): string => `${B} touch -d "@$(( $(${B} date +%s) - 1 ))" ${shq(stamp)}`;

/**
 * The guest's listing of what the sample left, run by init after the sample ended (busybox sh; `B`
 * the busybox binary, `T` the run's tag, `D` a scratch directory it mounts a tmpfs on). Cheap per
 * file (no process per file: stat per batch of 64, the first bytes by the shell's read), bounded
 * (a watchdog in init kills it after GUEST_LISTING.seconds and says so), in priority order:
 *  1. one find pass prints every file with an exec bit or executable magic, and the others up to
 *     printOthers (at most perDirRun in a row from one directory); the rest is counted by directory
 *     ("m" lines). Lines: `T: f SIZE MODE KIND PATH` (KIND 1 exec bit, 2 magic, 0 other); a path
 *     with a control character (a newline...) is printed hex, hashed at once: `T: u SIZE MODE KIND
 *     SHA|- HEX`, so no path can make a line of its own.
 *  2. hashing of what was printed: exec-bit and magic files smallest first, then the others
 *     smallest first, within GUEST_LISTING.hashBytes; empty files are not hashed (the host knows
 *     the empty hash). `T: h SHA  PATH` from sha256sum, one process per 64 files.
 */
export function guestListingScript(o: { B: string; T: string; D: string; roots: string[]; filter: string }): string {
  const { B, T, D } = o;
  const hb = GUEST_LISTING.hashBytes;
  const find = `$B find ${o.roots.map(shq).join(' ')} -xdev -type f ${o.filter}`;
  return String.raw`B=${B}; T=${T}; D=${D}
flushm() { [ $lc -gt 0 ] && printf '%s: m %s %s\n' "$T" "$lc" "$ld"; lc=0; }
one() {
  f=$1; s=$2; k=0
  [ $(( 0x$3 & 73 )) -ne 0 ] && k=1
  if [ $k = 0 ]; then
    case "$4" in 7f454c46*|2321*|4d5a*|504b0304*|504b0506*|1f8b*|fd377a585a00*|425a68[3][1-9]*|28b52ffd*|377abcaf271c*) k=2;; esac
  fi
  case "$f" in *[[:cntrl:]]*)
    x=-; [ "$s" -gt 0 ] && [ "$s" -le ${hb} ] && x=$($B sha256sum < "$f" | $B cut -d' ' -f1)
    printf '%s: u %s %s %s %s %s\n' "$T" "$s" "$3" "$k" "$x" "$(printf %s "$f" | $B xxd -p | $B tr -d '\n')"
    return;;
  esac
  if [ $k = 0 ]; then
    d=\${f%/*}
    if [ "$d" = "$ld" ]; then run=$((run+1)); else flushm; ld=$d; run=1; fi
    if [ $o -ge ${GUEST_LISTING.printOthers} ] || [ $run -gt ${GUEST_LISTING.perDirRun} ]; then lc=$((lc+1)); return; fi
    o=$((o+1))
  else
    printf '%s %s\n' "$s" "$f" >> $D/exec
    printf '%s: f %s %s %s %s\n' "$T" "$s" "$3" "$k" "$f"; return
  fi
  printf '%s %s\n' "$s" "$f" >&4
  printf '%s: f %s %s %s %s\n' "$T" "$s" "$3" "$k" "$f"
}
sts() { i=0; while [ $# -ge 2 ]; do i=$((i+1)); eval "s$i=\$1 m$i=\$2"; shift 2; done; ns=$i; }
wds() { i=0; for w; do i=$((i+1)); eval "w$i=\$w"; done; nw=$i; }
if [ "$1" = batch ]; then
  # a batch of paths from find -exec (names as arguments: the shell's read would take a system
  # call per byte), in chunks of 128: one stat and one head for each chunk, nothing per file
  shift
  read -r o run lc < $D/state; ld=; read -r ld < $D/ld
  exec 4>> $D/others
  while [ $# -gt 0 ]; do
    n=$#; [ $n -gt 128 ] && n=128
    i=1; a=; while [ $i -le $n ]; do eval "f$i=\"@DQ{$i}\""; a="$a \"@DQ{$i}\""; i=$((i+1)); done
    eval "st=\$($B stat -c '%s %f' $a 2>/dev/null)"
    eval "hd=\$($B head -q -c 6 $a 2>/dev/null | $B od -An -v -tx1)"
    shift $n
    sts $st; wds $hd
    want=0; i=1; while [ $i -le $ns ]; do eval "z=\$s$i"; [ $z -gt 6 ] && z=6; want=$((want+z)); i=$((i+1)); done
    i=1; j=1
    while [ $i -le $n ]; do
      eval "f=\"\$f$i\""
      if [ $ns = $n ] && [ $nw = $want ]; then
        eval "s=\$s$i m=\$m$i"
        z=$s; [ $z -gt 6 ] && z=6; h=; e=$((j+z))
        while [ $j -lt $e ]; do eval "h=\$h\$w$j"; j=$((j+1)); done
        one "$f" "$s" "$m" "$h"
      else
        # the chunk's files changed under the listing: one at a time (exec bit only)
        x=$($B stat -c '%s %f' "$f" 2>/dev/null) && one "$f" "\${x% *}" "\${x#* }" ""
      fi
      i=$((i+1))
    done
  done
  flushm
  printf '%s %s %s\n' "$o" "$run" "$lc" > $D/state; printf '%s\n' "$ld" > $D/ld
  exit 0
fi
$B mkdir -p $D && $B mount -t tmpfs -o size=64m st $D
echo "0 0 0" > $D/state; : > $D/ld; : > $D/exec; : > $D/others
${find} -exec $B sh $0 batch {} + 2>/dev/null
printf '%s: listed\n' "$T"
# hashing: what was printed, executables first, smaller first, within the byte budget; names as
# arguments (no read loop: a system call per byte), sha256sum once per chunk of 64
set -f; IFS='
'
set -- $({ $B sort -n $D/exec; $B sort -n $D/others; } | $B awk -v b=${hb} '$1 > 0 && $1 <= b { b -= $1; sub(/^[0-9]+ /, ""); print }')
IFS=' '
while [ $# -gt 0 ]; do
  n=$#; [ $n -gt 64 ] && n=64
  i=1; a=; while [ $i -le $n ]; do a="$a \"@DQ{$i}\""; i=$((i+1)); done
  eval "$B sha256sum $a" 2>/dev/null | $B sed "s/^/$T: h /"
  shift $n
done
printf '%s: hashed\n' "$T"
`.replace(/\\\$\{/g, '${').replace(/@DQ\{/g, '\\${'); // (String.raw keeps the backslash of \${: the shell's own expansions; @DQ{ is an escaped one)
}

/**
 * The guest's listing from the console (read as latin1: one char per byte, paths decoded as UTF-8
 * here) after the exit line. Only lines with this run's tag count; a path is taken whole from a
 * line (`f`) or decoded from hex (`u`); a hash line counts only for a path the listing printed.
 */
export function parseGuestListing(con: string, tag: string): { files: GuestFile[]; listing: GuestListing } {
  const files = new Map<string, GuestFile>();
  const notPrinted = new Map<string, number>();
  const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');
  let listed = false, hashed = false, end = false, deadline = false;
  const hashes: [string, string][] = [];
  const pre = `${tag}: `;
  for (const raw of con.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(pre)) continue;
    const rest = line.slice(pre.length);
    let m: RegExpExecArray | null;
    if ((m = /^f (\d+) ([0-9a-f]+) ([012]) (\/.*)$/.exec(rest))) {
      const [size, mode, kind, path] = [Number(m[1]), parseInt(m[2] as string, 16), m[3], utf8(m[4] as string)];
      files.set(path, { path, size, execBit: (mode & 0o111) !== 0 || kind === '1', magic: kind === '2', sha256: size === 0 ? SHA256_EMPTY : null });
    } else if ((m = /^u (\d+) ([0-9a-f]+) ([012]) ([0-9a-f]{64}|-) ((?:[0-9a-f]{2})+)$/.exec(rest))) {
      const size = Number(m[1]);
      const path = Buffer.from(m[5] as string, 'hex').toString('utf8');
      if (!path.startsWith('/')) continue;
      files.set(path, { path, size, execBit: (parseInt(m[2] as string, 16) & 0o111) !== 0, magic: m[3] === '2',
        sha256: size === 0 ? SHA256_EMPTY : m[4] === '-' ? null : (m[4] as string) });
    } else if ((m = /^h ([0-9a-f]{64}) {2}(\/.*)$/.exec(rest))) {
      hashes.push([utf8(m[2] as string), m[1] as string]);
    } else if ((m = /^m (\d+) (\/.*)$/.exec(rest))) {
      const dir = utf8(m[2] as string);
      notPrinted.set(dir, (notPrinted.get(dir) ?? 0) + Number(m[1]));
    } else if (rest === 'listed') listed = true;
    else if (rest === 'hashed') hashed = true;
    else if (rest === 'deadline') deadline = true;
    else if (rest === 'end') end = true;
  }
  for (const [path, sha] of hashes) {
    const f = files.get(path);
    if (f && f.sha256 === null) f.sha256 = sha;
  }
  const complete = listed && end;
  const listing: GuestListing = { notPrinted: [...notPrinted].map(([dir, count]) => ({ dir, count })), complete, hashed: hashed && !deadline };
  if (!complete) {
    listing.cut = deadline && !listed ? `the guest's listing ran into its ${GUEST_LISTING.seconds} s deadline after ${files.size} files: files it had not reached are missing`
      : !listed ? `the guest's listing was cut short (${end ? 'it stopped' : 'the guest ended'} before it finished) after ${files.size} files: files it had not reached are missing`
      : 'the guest ended before its listing said end: the list may be incomplete';
  }
  return { files: [...files.values()], listing };
}

/**
 * init's part after the sample ended: stop whatever the sample left running (so the files hold
 * still while listed and nothing can print lines of the listing), run the listing under a
 * watchdog, say when the watchdog cut it, then `end`.
 */
function listingStep(T: string, script: string): string {
  return `$B kill -9 -1 2>/dev/null
$B sh ${script} &
lp=$!
( $B sleep ${GUEST_LISTING.seconds}; echo "${T}: deadline"; $B kill -9 -1 ) &
wait $lp
$B kill -9 -1 2>/dev/null
echo "${T}: end"`;
}

/**
 * Stage 1 for the Debian root: load the disk modules, mount the base image (a snapshot-mode
 * disk), place the sample at /tmp/NAME, bring loopback up, switch_root to stage 2.
 */
export function buildDebianInitramfs(dir: string, kernel: string, sample: string, args: string[], timeout: number, tag = 'sandtrace', interpreter: readonly string[] = []): string {
  const root = join(dir, 'root');
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'proc', 'sys', 'dev', 'newroot', GUEST_SAMPLE_DIR.slice(1)]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'mount', 'umount', 'insmod', 'sleep', 'mkdir', 'cp', 'chmod', 'ip', 'switch_root', 'poweroff', 'echo', 'cut']) symlinkSync('busybox', join(root, 'bin', a));
  const mods = installModules(root, rootModules(kernel));
  const name = basename(sample);
  copyFileSync(sample, join(root, GUEST_SAMPLE_DIR.slice(1), name));
  const t = Math.max(1, Math.ceil(timeout));
  const stage2 = `#!/.sandtrace/busybox sh
B=/.sandtrace/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B mkdir -p /dev/pts /dev/shm /run
$B mount -t devpts devpts /dev/pts
$B mount -t tmpfs shm /dev/shm
$B mount -t tmpfs run /run
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 USER=root
${guestStampCommand('$B', '/.sandtrace/stamp')}
cd /root
echo "${tag}: start $($B cut -d' ' -f1 /proc/uptime)"
$B timeout -s KILL ${t} ${[...interpreter, `/tmp/${name}`, ...args].map(shq).join(' ')} </dev/null
rc=$?
echo "${tag}: exit $rc $($B cut -d' ' -f1 /proc/uptime)"
${listingStep(tag, '/.sandtrace/list.sh')}
$B poweroff -f
`;
  writeFileSync(join(root, 'list.sh'), guestListingScript({ B: '/.sandtrace/busybox', T: tag, D: '/.sandtrace/list', roots: ['/'], filter: "-newer /.sandtrace/stamp ! -path '/.sandtrace/*'" }));
  writeFileSync(join(root, 'stage2'), stage2, { mode: 0o755 });
  const init = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
${mods.map((m) => `insmod ${m} 2>/dev/null`).join('\n')}
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mount -t ext4 /dev/vda /newroot || { echo "sandtrace: cannot mount the root disk"; poweroff -f; }
ip link set lo up
mkdir -p /newroot/.sandtrace /newroot/tmp
cp /bin/busybox /newroot/.sandtrace/busybox
cp /stage2 /newroot/.sandtrace/stage2
cp /list.sh /newroot/.sandtrace/list.sh
cp ${shq(`${GUEST_SAMPLE_DIR}/${name}`)} ${shq(`/newroot/tmp/${name}`)}
chmod 755 ${shq(`/newroot/tmp/${name}`)}
umount /proc /sys /dev
exec switch_root /newroot /.sandtrace/busybox sh /.sandtrace/stage2
`;
  writeFileSync(join(root, 'init'), init, { mode: 0o755 });
  return writeCpio(dir, root);
}

/** A busybox initramfs (uncompressed newc cpio) with the sample and an init that runs it once. */
export function buildInitramfs(dir: string, sample: string, args: string[], timeout: number, tag = 'sandtrace', interpreter: readonly string[] = []): string {
  const root = join(dir, 'root');
  rmSync(root, { recursive: true, force: true }); // a rebuild in the same dir starts afresh
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'work', 'usr', GUEST_SAMPLE_DIR.slice(1)]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  const list = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of list) symlinkSync('busybox', join(root, 'bin', a));
  symlinkSync('bin', join(root, 'sbin'));
  const libs = baseImageLibDir();
  if (libs) {
    const dst = join(root, 'lib', 'x86_64-linux-gnu');
    mkdirSync(dst, { recursive: true });
    for (const l of GLIBC) if (existsSync(join(libs, l))) copyFileSync(join(libs, l), join(dst, l));
    mkdirSync(join(root, 'lib64'));
    symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(root, 'lib64', 'ld-linux-x86-64.so.2'));
    symlinkSync('../lib', join(root, 'usr', 'lib'));
  }
  symlinkSync('../bin', join(root, 'usr', 'bin'));
  symlinkSync('../bin', join(root, 'usr', 'sbin'));
  const guestSample = `${GUEST_SAMPLE_DIR}/${basename(sample)}`;
  copyFileSync(sample, join(root, guestSample.slice(1)));
  chmodSync(join(root, guestSample.slice(1)), 0o755);
  const init = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs work /work
cd /work
echo "${tag}: start $(cut -d' ' -f1 /proc/uptime)"
timeout -s KILL ${Math.max(1, Math.ceil(timeout))} ${[...interpreter, guestSample, ...args].map(shq).join(' ')} </dev/null
rc=$?
echo "${tag}: exit $rc $(cut -d' ' -f1 /proc/uptime)"
# what the sample left behind (it could only write to the tmpfs /work and /tmp)
B=/bin/busybox
${listingStep(tag, '/list.sh')}
poweroff -f
`;
  writeFileSync(join(root, 'list.sh'), guestListingScript({ B: '/bin/busybox', T: tag, D: '/.sandtrace-list', roots: ['/work', '/tmp'], filter: '' }));
  writeFileSync(join(root, 'init'), init, { mode: 0o755 });
  return writeCpio(dir, root);
}

/**
 * Boot a disposable guest that runs `sample` once. Nothing happens until collector.start();
 * then consume collector.events() and await done.
 */
export function runInVm(opts: VmRunOptions): VmRun {
  const capture = opts.capture !== false;
  checkVmEnvironment(capture);
  let st;
  try { st = statSync(opts.sample); } catch (e) {
    throw new SandtraceError('INPUT_MISSING', `sample not found: ${opts.sample}`, { cause: e });
  }
  if (!st.isFile()) throw new SandtraceError('INPUT_IS_DIRECTORY', `sample is not a file: ${opts.sample}`);
  const kernel = opts.kernel ?? defaultKernel();
  if (!kernel) throw new SandtraceError('VM_KERNEL_MISSING', 'no guest kernel: run make setup (fetches Debian\'s linux-image-amd64) or pass a vmlinuz');
  const profile = loadProfile(kernel);
  const timeout = checkTimeout(opts.timeout ?? 30);
  const debian = opts.rootfs === 'debian';
  // The guest's status lines carry a per-run tag so the sample's own output cannot pass for them
  // by accident (a root sample can still forge them: exit status and files are the guest's word).
  const tag = `sandtrace-${randomBytes(6).toString('hex')}`;

  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-vm-'));
  const outDir = opts.outDir ?? tmp;
  makeOutDir(outDir);
  const consolePath = join(outDir, 'console.log');
  const qemuLog = join(outDir, 'qemu.log');
  let qemu: ChildProcess | null = null;
  let server: Server | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let hostTimedOut = false;
  let resolveDone!: (r: VmResult) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<VmResult>((res, rej) => { resolveDone = res; rejectDone = rej; });
  done.catch(() => { /* surfaced to whoever awaits it */ });
  const cleanup = () => {
    if (killTimer) clearTimeout(killTimer);
    server?.close();
    rmSync(tmp, { recursive: true, force: true });
  };

  // stop() before the guest booted must not wait for a QEMU that never comes (and leaves no temp dir)
  let booting = false, stopRequested = false;
  const notBooted = () => {
    cleanup();
    const e = new SandtraceError('VM_BOOT_FAILED', 'the guest was stopped before it booted');
    rejectDone(e);
    return e;
  };
  const boot = async (): Promise<Readable> => {
    booting = true;
    if (stopRequested) throw notBooted();
    let initrd: string;
    const disk: string[] = [];
    try {
      if (debian) {
        initrd = buildDebianInitramfs(tmp, kernel, opts.sample, opts.args ?? [], timeout, tag, opts.interpreter);
        // snapshot=on: writes go to a temporary overlay QEMU deletes; the cached image never changes
        disk.push('-drive', `file=${ensureDiskImage()},if=virtio,format=raw,snapshot=on`);
      } else {
        initrd = buildInitramfs(tmp, opts.sample, opts.args ?? [], timeout, tag, opts.interpreter);
      }
    } catch (e) { cleanup(); rejectDone(e); throw e; }
    const sock = join(tmp, 'plugin.sock');
    const args = ['-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-m', String(opts.memoryMb ?? (debian ? 512 : 256)), ...disk,
      '-smp', '1', '-no-reboot', '-nic', 'none', '-kernel', kernel, '-initrd', initrd,
      '-append', ['console=ttyS0 panic=-1 quiet rdinit=/init', ...(opts.kernelArgs ?? [])].join(' '), '-serial', `file:${consolePath}`, '-D', qemuLog];
    let connected: Promise<Socket> | null = null;
    if (capture) {
      server = createServer();
      connected = new Promise<Socket>((res, rej) => {
        server!.once('connection', res);
        server!.once('error', rej);
      });
      await new Promise<void>((res, rej) => { server!.listen(sock, res); server!.once('error', rej); });
      args.push('-plugin', pluginArgs(profile, sock), '-d', 'plugin');
    }
    const t0 = performance.now();
    let stderr = '';
    if (stopRequested) throw notBooted();
    qemu = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    qemu.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000); });
    // boot, the sample, the guest's listing (its own watchdog) and power-off
    killTimer = setTimeout(() => { hostTimedOut = true; qemu?.kill('SIGKILL'); }, (timeout + 90 + GUEST_LISTING.seconds) * 1000);
    let cpu = 0;
    const tick = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    const sampler = setInterval(() => {
      try {
        const f = readFileSync(`/proc/${qemu?.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
        cpu = (Number(f[11]) + Number(f[12])) / tick; // utime, stime
      } catch { /* exited */ }
    }, 100);
    const exited = new Promise<number | null>((res) => {
      qemu!.once('exit', (code) => res(code));
      qemu!.once('error', () => res(null));
    });
    void exited.then((code) => {
      clearInterval(sampler);
      const wallSeconds = (performance.now() - t0) / 1000;
      let con = '', latin1 = '';
      try { const b = readFileSync(consolePath); con = b.toString('utf8'); latin1 = b.toString('latin1'); } catch { /* no console output */ }
      cleanup();
      const start = new RegExp(`^${tag}: start ([\\d.]+)`, 'm').exec(con);
      const end = new RegExp(`^${tag}: exit (\\d+) ([\\d.]+)`, 'm').exec(con);
      if (code !== 0 && !end) {
        rejectDone(new SandtraceError('VM_BOOT_FAILED', `QEMU exited (${code ?? 'signal'}) before the sample finished: ${(stderr.trim().split('\n').pop() ?? '') || 'see ' + consolePath}`,
          { details: { consolePath, stderr: stderr.trim() } }));
        return;
      }
      const sampleExit = end ? Number(end[1]) : null;
      // the listing, read byte for byte (latin1): paths are decoded as UTF-8 by the parser
      const { files, listing } = parseGuestListing(end ? latin1.slice(Math.max(0, latin1.indexOf(`${tag}: exit `))) : '', tag);
      const output = start && end ? con.slice((start.index ?? 0) + start[0].length, end.index).replace(/\r/g, '').replace(/^\n/, '') : '';
      resolveDone({
        sampleExit, timedOut: hostTimedOut || sampleExit === 137, wallSeconds, qemuCpuSeconds: cpu, consolePath, qemuExit: code, files, listing, output,
        sampleSeconds: start && end ? Number(end[2]) - Number(start[1]) : null,
      });
    });
    if (!connected) {
      // Untraced: an empty stream that ends when QEMU does.
      const { PassThrough } = await import('node:stream');
      const pt = new PassThrough();
      void exited.then(() => pt.end());
      return pt;
    }
    const sockOrExit = await Promise.race([connected, exited.then(() => null)]);
    if (!sockOrExit) {
      await done.catch((e: unknown) => { throw e instanceof SandtraceError ? e : new SandtraceError('VM_BOOT_FAILED', String(e)); });
      throw new SandtraceError('VM_BOOT_FAILED', `QEMU exited before the plugin connected: ${stderr.trim()}`);
    }
    return sockOrExit;
  };

  const collector = new VmiCollector({
    open: boot,
    stop: async () => {
      stopRequested = true;
      if (qemu && qemu.exitCode === null) qemu.kill('SIGKILL');
      else if (!qemu && !booting) notBooted();
      await done.catch(() => undefined);
    },
    // the sample's process is the first exec of the path the guest runs: the sample's, or its interpreter's
    ...(opts.allProcesses ? {} : { rootExe: opts.interpreter?.[0] ?? (debian ? `/tmp/${basename(opts.sample)}` : `${GUEST_SAMPLE_DIR}/${basename(opts.sample)}`) }),
  });
  return { collector, profile, done, workDir: tmp };
}
