// A guest kernel profile derived from the kernel image alone (no debug packages): struct
// offsets from .BTF, symbols from kallsyms and __ksymtab, the syscall entry and return points.
// Profiles are cached by the kernel's GNU build id.
import { readFileSync, mkdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { decompressKernel, parseElf, section, vaddrToOffset, type KernelElf } from './image.js';
import { Btf } from './btf.js';
import { parseKallsyms, type KSym } from './kallsyms.js';

export const PROFILE_VERSION = 6;

/** Struct fields the introspection reads, as 'struct.field' -> byte offset. */
export const FIELDS = [
  'task_struct.pid', 'task_struct.tgid', 'task_struct.comm', 'task_struct.tasks', 'task_struct.real_parent',
  'task_struct.mm', 'task_struct.cred', 'task_struct.thread_pid', 'mm_struct.pgd', 'mm_struct.exe_file',
  'mm_struct.arg_start', 'mm_struct.arg_end', 'mm_struct.env_end',
  'file.f_path', 'path.dentry', 'path.mnt', 'dentry.d_name', 'dentry.d_parent', 'qstr.name', 'cred.uid', 'cred.euid',
  // exe paths across mount points, and the working directory at exec (optional: -1 when absent)
  'mount.mnt', 'mount.mnt_parent', 'mount.mnt_mountpoint', 'vfsmount.mnt_root', 'task_struct.fs', 'fs_struct.pwd',
] as const;
const OPTIONAL_FIELDS: readonly string[] = ['task_struct.thread_pid', 'mount.mnt', 'mount.mnt_parent', 'mount.mnt_mountpoint', 'vfsmount.mnt_root',
  'task_struct.fs', 'fs_struct.pwd'];
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
  if (!btfSec) throw new SandtraceError('VM_PROFILE_FAILED', 'the kernel image has no .BTF section (built without CONFIG_DEBUG_INFO_BTF)');
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
    counts: { kallsyms: ksyms.length, ksymtab: exported.size, btfTypes: btf.types.length - 1 },
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
    throw new SandtraceError('VM_KERNEL_MISSING', `kernel image not found: ${imagePath}`, { cause: e });
  }
  if (st.isDirectory()) throw new SandtraceError('INPUT_IS_DIRECTORY', `${imagePath} is a directory, not a kernel image`);
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
