// A guest kernel profile derived from the kernel image alone (no debug packages): struct
// offsets from .BTF, symbols from kallsyms and __ksymtab, the syscall entry and return points.
// Profiles are cached by the kernel's GNU build id.
import { readFileSync, mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { specialFileKind } from '../sample.js';
import { decompressKernel, parseElf, section, vaddrToOffset, type KernelElf } from './image.js';
import { Btf } from './btf.js';
import { parseKallsyms, type KSym } from './kallsyms.js';

export const PROFILE_VERSION = 10;

const SIGFRAME_FIELDS = [
  'rt_sigframe.info', 'rt_sigframe.uc', 'rt_sigframe.uc.uc_mcontext.ax', 'rt_sigframe.uc.uc_mcontext.ip', 'rt_sigframe.uc.uc_mcontext.sp',
  'rt_sigframe_ia32.info', 'rt_sigframe_ia32.uc', 'rt_sigframe_ia32.uc.uc_mcontext.ax', 'rt_sigframe_ia32.uc.uc_mcontext.ip',
  'rt_sigframe_ia32.uc.uc_mcontext.sp', 'sigframe_ia32.sc.ax', 'sigframe_ia32.sc.ip', 'sigframe_ia32.sc.sp',
] as const;

const FDPATH_FIELDS = [
  'task_struct.files', 'files_struct.fdt', 'fdtable.fd', 'fdtable.max_fds', 'fs_struct.root', 'dentry.d_hash.pprev',
] as const;

const PEER_FIELDS = [
  'file.f_inode', 'inode.i_mode', 'file.private_data', 'socket.sk', 'sock.__sk_common', 'sock_common.skc_family', 'sock_common.skc_dport',
  'sock_common.skc_daddr', 'sock_common.skc_v6_daddr',
] as const;

/** Struct fields the introspection reads, as 'struct.field' (or 'struct.field.field...') -> byte offset. */
export const FIELDS = [
  'task_struct.pid', 'task_struct.tgid', 'task_struct.comm', 'task_struct.tasks', 'task_struct.real_parent',
  'task_struct.mm', 'task_struct.cred', 'task_struct.thread_pid', 'mm_struct.pgd', 'mm_struct.exe_file',
  'mm_struct.arg_start', 'mm_struct.arg_end', 'mm_struct.env_end',
  'file.f_path', 'path.dentry', 'path.mnt', 'dentry.d_name', 'dentry.d_parent', 'qstr.name', 'cred.uid', 'cred.euid',
  // exe paths across mount points, and the working directory at exec (optional: -1 when absent)
  'mount.mnt', 'mount.mnt_parent', 'mount.mnt_mountpoint', 'vfsmount.mnt_root', 'task_struct.fs', 'fs_struct.pwd',
  // an open's path named from the descriptor it returned (task->files->fdt->fd[fd], below max_fds),
  // walked up to the task's root (task->fs->root); d_hash.pprev NULL: an unhashed (unlinked) dentry
  // (optional: -1 when absent; such a path is then read again at the return)
  ...FDPATH_FIELDS,
  // a connect's peer, from the socket behind its descriptor (the file table above): the file's inode
  // is a socket (i_mode S_IFSOCK), private_data its struct socket, ->sk its sock, whose __sk_common
  // holds the family, the peer's port and its IPv4 or IPv6 address (optional: -1 when absent; such
  // an address is then read again at the return; skc_v6_daddr is absent without CONFIG_IPV6)
  ...PEER_FIELDS,
  // the signal frames the kernel writes on the user stack for a handler (the 64-bit one; the ia32
  // ones with and without SA_SIGINFO): where the interrupted call's registers are saved, and what
  // the handler's registers point to (optional: a call's result is then read from the registers only)
  ...SIGFRAME_FIELDS,
] as const;
const OPTIONAL_FIELDS: readonly string[] = ['task_struct.thread_pid', 'mount.mnt', 'mount.mnt_parent', 'mount.mnt_mountpoint', 'vfsmount.mnt_root',
  'task_struct.fs', 'fs_struct.pwd', ...FDPATH_FIELDS, ...PEER_FIELDS, ...SIGFRAME_FIELDS];
export type Field = (typeof FIELDS)[number];

export const SYMBOLS = ['_text', 'init_task', '__per_cpu_offset', 'current_task', 'pcpu_hot', 'entry_SYSCALL_64',
  'do_syscall_64', 'syscall_return_via_sysret', 'sys_call_table', 'linux_banner'] as const;

export interface KernelProfile {
  version: number;
  buildId: string;
  /** `Linux version ...` banner from the image. */
  banner: string;
  compression: string;
  offsets: Record<Field, number>;
  sizes: { task_struct: number; commLen: number };
  /** Link-time addresses (hex); add the KASLR slide for run-time addresses. */
  symbols: Partial<Record<(typeof SYMBOLS)[number], string>>;
  /** Offset of the running task pointer in the per-CPU area (current_task, or pcpu_hot.current_task). */
  currentTaskPercpu: number;
  syscall: {
    /** entry_SYSCALL_64 (link-time, hex) and its first bytes, to find it (and the slide) at run time. */
    entry: string;
    entryBytes: string;
    /** do_syscall_64 (link-time, hex): its first instruction sees pt_regs in rdi, on kernel page tables. */
    doSyscall: string;
    /** The instruction right after `call do_syscall_64`: pt_regs is at rsp, ax holds the return value. */
    afterCall: string;
  };
  /**
   * The i386 (compat) entry points, when the kernel has IA32_EMULATION; absent otherwise. Each
   * entry is a C function's first instruction (pt_regs in rdi); each return the instruction after
   * the assembly stub's `call` (pt_regs at rsp, ax the return value, orig_ax the i386 number).
   */
  compat?: {
    /**
     * int $0x80: do_int80_syscall_32 (called from entry_INT80_compat; orig_ax holds the number), or,
     * on kernels with the INT 0x80 IDTENTRY conversion (6.7, backported to 6.1/6.6 stable),
     * do_int80_emulation or int80_emulation (called from asm_int80_emulation; orig_ax is -1 and
     * ax holds the number at entry).
     */
    int80: { entry: string; afterCall: string; handler: string };
    /**
     * sysenter/syscall from 32-bit code (the vDSO's __kernel_vsyscall): do_fast_syscall_32, also
     * reached from do_SYSENTER_32. Its 6th argument is still on the user stack at entry (at the
     * u32 address regs->sp). Returns after `call do_fast_syscall_32` in entry_SYSCALL_compat and
     * after `call do_SYSENTER_32` in entry_SYSENTER_compat, each when found.
     */
    fast?: { entry: string; afterSyscall?: string; afterSysenter?: string };
  };
  counts: { kallsyms: number; ksymtab: number; btfTypes: number };
}

const hex = (v: bigint) => '0x' + v.toString(16);

export function buildProfile(image: Buffer): KernelProfile {
  try {
    return derive(image);
  } catch (e) {
    // a truncated or corrupt image makes some read run past its buffer
    if (e instanceof RangeError) throw new SandtraceError('INPUT_CORRUPT', `kernel image is truncated or corrupt (${e.message})`, { cause: e });
    throw e;
  }
}

function derive(image: Buffer): KernelProfile {
  const { compression, vmlinux } = decompressKernel(image);
  const elf = parseElf(vmlinux);
  const btfSec = section(elf, '.BTF');
  if (!btfSec) {
    // an ELF file that is no kernel at all (a program given by mistake), or a kernel without BTF
    if (!section(elf, '__ksymtab') && !section(elf, '.init.text')) throw new SandtraceError('INPUT_FORMAT_UNKNOWN', 'not a Linux kernel image (an ELF file without the kernel\'s sections)');
    throw new SandtraceError('VM_UNSUPPORTED', 'the kernel image has no .BTF section (built without CONFIG_DEBUG_INFO_BTF): sandtrace reads guest memory through BTF');
  }
  const btf = new Btf(vmlinux.subarray(btfSec.offset, btfSec.offset + btfSec.size));
  const ro = section(elf, '.rodata');
  if (!ro) throw new SandtraceError('VM_PROFILE_FAILED', 'the kernel image has no .rodata section');
  const ksyms = parseKallsyms(vmlinux.subarray(ro.offset, ro.offset + ro.size), section(elf, '.text')?.addr);
  const byName = new Map<string, KSym>();
  for (const s of ksyms) if (!byName.has(s.name)) byName.set(s.name, s);
  const exported = parseKsymtab(elf);

  const offsets = {} as Record<Field, number>;
  for (const f of FIELDS) {
    const dot = f.indexOf('.');
    const off = btf.offsetOf(f.slice(0, dot), f.slice(dot + 1));
    if (off === undefined) {
      if (OPTIONAL_FIELDS.includes(f)) { offsets[f] = -1; continue; }
      throw new SandtraceError('VM_PROFILE_FAILED', `BTF has no ${f}`);
    }
    offsets[f] = off;
  }
  const symbols: KernelProfile['symbols'] = {};
  for (const n of SYMBOLS) {
    const s = byName.get(n);
    const a = exported.get(n) ?? s?.addr; // exported first: kallsyms names are not unique
    if (a !== undefined) symbols[n] = hex(a);
  }
  // current task: a per-CPU variable, on 6.2+ inside pcpu_hot.
  let currentTaskPercpu = btf.percpuOffset('current_task');
  if (currentTaskPercpu === undefined) {
    const hot = btf.percpuOffset('pcpu_hot');
    const inner = btf.offsetOf('pcpu_hot', 'current_task');
    if (hot !== undefined && inner !== undefined) currentTaskPercpu = hot + inner;
  }
  if (currentTaskPercpu === undefined) throw new SandtraceError('VM_PROFILE_FAILED', 'no current_task per-CPU variable in BTF');

  const entry = byName.get('entry_SYSCALL_64')?.addr;
  const doSyscall = byName.get('do_syscall_64')?.addr;
  if (entry === undefined || doSyscall === undefined) throw new SandtraceError('VM_PROFILE_FAILED', 'kallsyms has no entry_SYSCALL_64/do_syscall_64');
  const entryOff = vaddrToOffset(elf, entry);
  const code = vmlinux.subarray(entryOff, entryOff + 512);
  let afterCall: bigint | undefined;
  for (let i = 0; i + 5 <= code.length; i++) {
    if (code[i] !== 0xe8) continue;
    const target = entry + BigInt(i + 5) + BigInt(code.readInt32LE(i + 1));
    if (target === doSyscall) { afterCall = entry + BigInt(i + 5); break; }
  }
  if (afterCall === undefined) throw new SandtraceError('VM_PROFILE_FAILED', 'no call to do_syscall_64 in entry_SYSCALL_64');
  const compat = compatHooks(vmlinux, elf, byName);

  const bannerAddr = byName.get('linux_banner')?.addr;
  let banner = '';
  if (bannerAddr !== undefined) {
    const bo = vaddrToOffset(elf, bannerAddr);
    if (bo >= 0) banner = vmlinux.toString('latin1', bo, vmlinux.indexOf(0, bo)).trim();
  }
  const commLen = (() => {
    const t = btf.struct('task_struct')?.members?.find((m) => m.name === 'comm');
    return (t && btf.resolve(t.type)?.array?.nelems) ?? 16;
  })();
  return {
    version: PROFILE_VERSION,
    buildId: elf.buildId ?? 'unknown',
    banner,
    compression,
    offsets,
    sizes: { task_struct: btf.sizeOf('task_struct') ?? 0, commLen },
    symbols,
    currentTaskPercpu,
    syscall: { entry: hex(entry), entryBytes: entryPrologue(code), doSyscall: hex(doSyscall), afterCall: hex(afterCall) },
    ...(compat ? { compat } : {}),
    counts: { kallsyms: ksyms.length, ksymtab: exported.size, btfTypes: btf.types.length - 1 },
  };
}

/** The address right after the first `call rel32` to `callee` in the `len` bytes from `caller`. */
export function afterCallTo(vmlinux: Buffer, elf: KernelElf, caller: bigint, callee: bigint, len = 512): bigint | undefined {
  const off = vaddrToOffset(elf, caller);
  if (off < 0) return undefined;
  const code = vmlinux.subarray(off, off + len);
  for (let i = 0; i + 5 <= code.length; i++) {
    if (code[i] !== 0xe8) continue;
    if (caller + BigInt(i + 5) + BigInt(code.readInt32LE(i + 1)) === callee) return caller + BigInt(i + 5);
  }
  return undefined;
}

/**
 * The compat (i386) hooks, or undefined for a kernel without IA32_EMULATION. int $0x80 is
 * required for the compat part (every IA32_EMULATION kernel has it); the fast paths are optional.
 */
function compatHooks(vmlinux: Buffer, elf: KernelElf, byName: Map<string, KSym>): KernelProfile['compat'] {
  const at = (n: string) => { const s = byName.get(n); return s && /^[tT]$/.test(s.type) ? s.addr : undefined; };
  let int80: NonNullable<KernelProfile['compat']>['int80'] | undefined;
  // <= 6.6 without the backport: entry_INT80_compat calls do_int80_syscall_32.
  const old = at('do_int80_syscall_32'), oldStub = at('entry_INT80_compat');
  const oldAfter = old !== undefined && oldStub !== undefined ? afterCallTo(vmlinux, elf, oldStub, old) : undefined;
  if (old !== undefined && oldAfter !== undefined) int80 = { entry: hex(old), afterCall: hex(oldAfter), handler: 'do_int80_syscall_32' };
  // IDTENTRY: asm_int80_emulation calls int80_emulation (6.7+: the C handler; 6.1/6.6 stable: a
  // stub that jumps to do_int80_emulation, hooked instead as a plain C function).
  const emu = at('int80_emulation'), emuStub = at('asm_int80_emulation');
  const emuAfter = int80 === undefined && emu !== undefined && emuStub !== undefined ? afterCallTo(vmlinux, elf, emuStub, emu, 128) : undefined;
  if (emu !== undefined && emuAfter !== undefined) {
    const c = at('do_int80_emulation');
    int80 = { entry: hex(c ?? emu), afterCall: hex(emuAfter), handler: c !== undefined ? 'do_int80_emulation' : 'int80_emulation' };
  }
  if (!int80) return undefined;
  const fastFn = at('do_fast_syscall_32');
  if (fastFn === undefined) return { int80 };
  const sysc = at('entry_SYSCALL_compat'), syse = at('entry_SYSENTER_compat'), sysenter32 = at('do_SYSENTER_32');
  const afterSyscall = sysc !== undefined ? afterCallTo(vmlinux, elf, sysc, fastFn) : undefined;
  const afterSysenter = syse !== undefined && sysenter32 !== undefined ? afterCallTo(vmlinux, elf, syse, sysenter32) : undefined;
  return {
    int80,
    fast: { entry: hex(fastFn), ...(afterSyscall !== undefined ? { afterSyscall: hex(afterSyscall) } : {}), ...(afterSysenter !== undefined ? { afterSysenter: hex(afterSysenter) } : {}) },
  };
}

/**
 * The first bytes of entry_SYSCALL_64 up to and including its swapgs (endbr64 first on IBT
 * kernels): what boot-time patching and KASLR relocation leave alone.
 */
function entryPrologue(code: Buffer): string {
  const i = code.subarray(0, 16).indexOf(Buffer.from([0x0f, 0x01, 0xf8]));
  if (i < 0) throw new SandtraceError('VM_PROFILE_FAILED', 'entry_SYSCALL_64 does not start with swapgs: not an x86_64 syscall entry');
  return code.subarray(0, i + 3).toString('hex');
}

/** Exported symbols from __ksymtab/__ksymtab_gpl (PREL32 entries: value, name, namespace offsets). */
export function parseKsymtab(elf: KernelElf): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const name of ['__ksymtab', '__ksymtab_gpl']) {
    const s = section(elf, name);
    if (!s) continue;
    for (let i = 0; i + 12 <= s.size; i += 12) {
      const o = s.offset + i;
      const at = s.addr + BigInt(i);
      // 64-bit wrap-around: per-CPU symbols sit near 0, the table near the top of the address space
      const value = BigInt.asUintN(64, at + BigInt(elf.buf.readInt32LE(o)));
      const nameAddr = at + 4n + BigInt(elf.buf.readInt32LE(o + 4));
      const no = vaddrToOffset(elf, nameAddr);
      if (no < 0) continue;
      out.set(elf.buf.toString('latin1', no, elf.buf.indexOf(0, no)), value);
    }
  }
  return out;
}

export function cacheDir(): string {
  return join(process.env['SANDTRACE_CACHE'] ?? '/var/cache/sandtrace', 'vm', 'profiles');
}

/** Profile for a kernel image file, from the cache when one exists for its build id. */
export function loadProfile(imagePath: string, opts: { cache?: boolean } = {}): KernelProfile {
  let st;
  try { st = statSync(imagePath); } catch (e) {
    // a path the user gave (the default kernel is found by defaultKernel(), VM_KERNEL_MISSING)
    throw new SandtraceError('INPUT_MISSING', `kernel image not found: ${imagePath}`, { cause: e, details: { path: imagePath } });
  }
  if (st.isDirectory()) throw new SandtraceError('INPUT_IS_DIRECTORY', `${imagePath} is a directory, not a kernel image`);
  const special = specialFileKind(st);
  if (special) throw new SandtraceError('INPUT_UNREADABLE', `${imagePath} is ${special}, not a kernel image`, { details: { path: imagePath } });
  if (st.size === 0) throw new SandtraceError('INPUT_EMPTY', `${imagePath} is empty`);
  const image = readFileSync(imagePath);
  // Cache key: size + mtime index to the build id, so a hit needs no decompression.
  const idxFile = join(cacheDir(), 'index.json');
  const key = `${imagePath}:${st.size}:${st.mtimeMs}`;
  let index: Record<string, string> = {};
  if (opts.cache !== false && existsSync(idxFile)) {
    try { index = JSON.parse(readFileSync(idxFile, 'utf8')) as Record<string, string>; } catch { index = {}; }
    const id = index[key];
    if (id && existsSync(join(cacheDir(), `${id}.json`))) {
      const p = JSON.parse(readFileSync(join(cacheDir(), `${id}.json`), 'utf8')) as KernelProfile;
      if (p.version === PROFILE_VERSION) return p;
    }
  }
  const profile = buildProfile(image);
  if (opts.cache !== false) {
    try {
      mkdirSync(cacheDir(), { recursive: true });
      writeFileSync(join(cacheDir(), `${profile.buildId}.json`), JSON.stringify(profile, null, 1));
      index[key] = profile.buildId;
      writeFileSync(idxFile, JSON.stringify(index));
    } catch { /* a read-only cache only costs time */ }
  }
  return profile;
}

/** Debian's kernel image fetched by the set-up, if present. */
export function defaultKernel(): string | null {
  const dir = join(process.env['SANDTRACE_CACHE'] ?? '/var/cache/sandtrace', 'vm', 'kernel', 'boot');
  try {
    const f = readdirSyncSafe(dir).find((n) => n.startsWith('vmlinuz-'));
    return f ? join(dir, f) : null;
  } catch { return null; }
}

import { readdirSync } from 'node:fs';
function readdirSyncSafe(d: string): string[] {
  try { return readdirSync(d).sort(); } catch { return []; }
}
