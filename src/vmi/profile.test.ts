// Profile tests on the real Debian kernel image fetched by the set-up (make setup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultKernel, buildProfile, loadProfile, parseKsymtab, afterCallTo } from './profile.js';
import { decompressKernel, parseElf, section, vaddrToOffset } from './image.js';
import { parseKallsyms } from './kallsyms.js';
import { Btf } from './btf.js';
import { isSandtraceError } from '../errors.js';
import { pluginArgs } from '../vm/guest.js';

function kernelPath(): string {
  const k = defaultKernel();
  assert.ok(k, 'Debian kernel image missing under $SANDTRACE_CACHE/vm/kernel/boot: run make setup');
  return k;
}

test('decompresses Debian vmlinuz and parses ELF, BTF, kallsyms and __ksymtab that agree with each other', () => {
  const { compression, vmlinux } = decompressKernel(readFileSync(kernelPath()));
  assert.ok(['gzip', 'xz', 'zstd', 'lz4', 'lzma', 'bzip2'].includes(compression));
  const elf = parseElf(vmlinux);
  assert.match(elf.buildId ?? '', /^[0-9a-f]{40}$/);
  const ro = section(elf, '.rodata');
  assert.ok(ro);
  const syms = parseKallsyms(vmlinux.subarray(ro.offset, ro.offset + ro.size), section(elf, '.text')?.addr);
  assert.ok(syms.length > 50000, `only ${syms.length} kallsyms`);
  const byName = new Map(syms.map((s) => [s.name, s]));
  const addrsOf = new Map<string, bigint[]>();
  for (const s of syms) addrsOf.set(s.name, [...(addrsOf.get(s.name) ?? []), s.addr]);
  // Independent sources agree: every exported symbol's __ksymtab address equals its kallsyms address.
  const exported = parseKsymtab(elf);
  assert.ok(exported.size > 5000);
  let compared = 0;
  for (const [name, addr] of exported) {
    const k = addrsOf.get(name);
    if (!k) continue;
    // names are not unique in kallsyms (static symbols), so one of them must match
    assert.ok(k.includes(addr), `${name}: kallsyms ${k.map((a) => a.toString(16))} vs ksymtab ${addr.toString(16)}`);
    compared++;
  }
  assert.ok(compared > 5000, `compared ${compared}`);
  const text = section(elf, '.text');
  assert.ok(text);
  assert.equal(byName.get('_text')?.addr, text.addr);
  assert.equal(byName.get('entry_SYSCALL_64')?.type.toUpperCase(), 'T');
  // BTF's per-CPU DATASEC and kallsyms' absolute per-CPU symbol give the same current_task offset.
  const btfSec = section(elf, '.BTF');
  assert.ok(btfSec);
  const btf = new Btf(vmlinux.subarray(btfSec.offset, btfSec.offset + btfSec.size));
  const pcpu = btf.percpuOffset('current_task') ?? btf.percpuOffset('pcpu_hot');
  assert.equal(BigInt(pcpu ?? -1), byName.get('current_task')?.addr ?? byName.get('pcpu_hot')?.addr);
});

test('profile: offsets are consistent with the kernel ABI and the cache returns the same profile', () => {
  const kernel = kernelPath();
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-prof-'));
  const prev = process.env['SANDTRACE_CACHE'];
  process.env['SANDTRACE_CACHE'] = dir;
  try {
    const p = loadProfile(kernel);
    const o = p.offsets;
    assert.match(p.banner, /^Linux version \d+\.\d+/);
    assert.equal(o['task_struct.tgid'], o['task_struct.pid'] + 4); // pid_t pid; pid_t tgid;
    assert.equal(p.sizes.commLen, 16); // TASK_COMM_LEN
    assert.equal(o['path.mnt'], 0);
    assert.equal(o['path.dentry'], 8);
    assert.equal(o['qstr.name'], 8); // after the u64 hash_len
    assert.equal(o['cred.uid'], 8);
    assert.ok(o['task_struct.comm'] > o['task_struct.pid'] && o['task_struct.comm'] < p.sizes.task_struct);
    // the signal frames are user-space ABI (what a handler and sigreturn see): BTF gives the uapi
    // layouts (64-bit: pretcode, then the ucontext whose uc_mcontext is struct sigcontext; ia32 rt:
    // pretcode, sig, pinfo, puc, info, uc; ia32 without SA_SIGINFO: pretcode, sig, sc)
    const frame = (s: string, f: string[]) => f.map((x) => o[`${s}.${x}` as keyof typeof o]);
    const regs = ['uc.uc_mcontext.ax', 'uc.uc_mcontext.ip', 'uc.uc_mcontext.sp'];
    assert.deepEqual(frame('rt_sigframe', ['uc', 'info', ...regs]), [8, 8 + 304, 8 + 40 + 13 * 8, 8 + 40 + 16 * 8, 8 + 40 + 15 * 8]);
    assert.deepEqual(frame('rt_sigframe_ia32', ['info', 'uc', ...regs]), [16, 16 + 128, 144 + 20 + 44, 144 + 20 + 56, 144 + 20 + 28]);
    assert.deepEqual(frame('sigframe_ia32', ['sc.ax', 'sc.ip', 'sc.sp']), [8 + 44, 8 + 56, 8 + 28]);
    // an open named from its descriptor: struct fdtable { unsigned int max_fds; struct file **fd; },
    // fs_struct's root and pwd (struct path) side by side, hlist_bl_node { next, pprev } after
    // dentry's d_flags and d_seq; all present in 6.1
    assert.deepEqual([o['fdtable.max_fds'], o['fdtable.fd'], o['fs_struct.pwd'] - o['fs_struct.root'], o['dentry.d_hash.pprev']], [0, 8, 16, 16]);
    assert.ok(o['task_struct.files'] > 0 && o['files_struct.fdt'] > 0);
    // a connect's peer: struct sock starts with its sock_common, whose skc_addrpair (daddr, then
    // rcv_saddr) leads, skc_portpair (dport, then num) follows skc_hash, and skc_family after them;
    // inode's i_mode first; all present in 6.1 (CONFIG_IPV6=y: skc_v6_daddr)
    assert.deepEqual([o['sock.__sk_common'], o['sock_common.skc_daddr'], o['sock_common.skc_dport'], o['sock_common.skc_family'], o['inode.i_mode']],
      [0, 0, 12, 16, 0]);
    assert.ok(o['sock_common.skc_v6_daddr'] > 16 && o['file.f_inode'] > 0 && o['file.private_data'] > 0 && o['socket.sk'] > 0);
    const entry = BigInt(p.syscall.entry), after = BigInt(p.syscall.afterCall);
    assert.ok(after > entry && after - entry < 512n);
    assert.match(p.syscall.entryBytes, /0f01f8$/); // ends with swapgs
    const again = loadProfile(kernel);
    assert.deepEqual(again, p);
    assert.ok(readFileSync(join(dir, 'vm', 'profiles', `${p.buildId}.json`), 'utf8').includes(p.buildId));
  } finally {
    if (prev === undefined) delete process.env['SANDTRACE_CACHE']; else process.env['SANDTRACE_CACHE'] = prev;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('profile: the i386 (compat) hooks of an IA32_EMULATION kernel are calls the entry stubs really make', () => {
  const kernel = kernelPath();
  const config = readFileSync(kernel.replace(/vmlinuz-/, 'config-'), 'utf8');
  assert.match(config, /^CONFIG_IA32_EMULATION=y$/m, 'the test kernel is built with IA32_EMULATION');
  const p = buildProfile(readFileSync(kernel));
  const c = p.compat;
  assert.ok(c, 'no compat part');
  const { vmlinux } = decompressKernel(readFileSync(kernel));
  const elf = parseElf(vmlinux);
  const ro = section(elf, '.rodata');
  assert.ok(ro);
  const byName = new Map(parseKallsyms(vmlinux.subarray(ro.offset, ro.offset + ro.size), section(elf, '.text')?.addr).map((s) => [s.name, s.addr]));
  const at = (n: string) => { const a = byName.get(n); assert.ok(a !== undefined, `no ${n}`); return a; };
  // the bytes before each return hook are `call rel32` to the handler, inside the named stub
  const callBefore = (after: string) => {
    const a = BigInt(after), o = vaddrToOffset(elf, a - 5n);
    assert.equal(vmlinux[o], 0xe8, `no call before ${after}`);
    return a + BigInt(vmlinux.readInt32LE(o + 1));
  };
  const inside = (a: string, stub: string) => { const d = BigInt(a) - at(stub); assert.ok(d > 0n && d < 512n, `${a} not in ${stub}`); };
  // 6.1.0-56 has the INT 0x80 IDTENTRY backport: asm_int80_emulation -> int80_emulation (a jmp to do_int80_emulation)
  assert.equal(byName.has('entry_INT80_compat'), false);
  assert.deepEqual([c.int80.handler, c.int80.entry], ['do_int80_emulation', '0x' + at('do_int80_emulation').toString(16)]);
  assert.equal(callBefore(c.int80.afterCall), at('int80_emulation'));
  inside(c.int80.afterCall, 'asm_int80_emulation');
  assert.ok(c.fast?.afterSyscall && c.fast.afterSysenter);
  assert.equal(c.fast.entry, '0x' + at('do_fast_syscall_32').toString(16));
  assert.equal(callBefore(c.fast.afterSyscall), at('do_fast_syscall_32'));
  inside(c.fast.afterSyscall, 'entry_SYSCALL_compat');
  assert.equal(callBefore(c.fast.afterSysenter), at('do_SYSENTER_32'));
  inside(c.fast.afterSysenter, 'entry_SYSENTER_compat');
  // a call that is not there is not found (a kernel without the compat entry points gets no compat part)
  assert.equal(afterCallTo(vmlinux, elf, at('entry_SYSCALL_64'), at('do_fast_syscall_32')), undefined);
  assert.equal(afterCallTo(vmlinux, elf, at('entry_SYSCALL_64'), at('do_syscall_64')), BigInt(p.syscall.afterCall));
});

test('plugin arguments: the descriptor walk\'s offsets go to the plugin only when all of them (and the mount offsets) are known; a connect\'s peer\'s, with the file table\'s', () => {
  const p = buildProfile(readFileSync(kernelPath()));
  const o = p.offsets;
  const args = (q: typeof p) => Object.fromEntries(pluginArgs(q, '/s').split(',').slice(1).map((kv) => kv.split('=') as [string, string]));
  const a = args(p);
  assert.deepEqual([a['files'], a['fdt'], a['fdtfd'], a['maxfds'], a['dhash'], a['taskfs'], a['root'], a['rootmnt']].map(Number),
    [o['task_struct.files'], o['files_struct.fdt'], o['fdtable.fd'], o['fdtable.max_fds'], o['dentry.d_hash.pprev'], o['task_struct.fs'],
      o['fs_struct.root'] + o['path.dentry'], o['fs_struct.root'] + o['path.mnt']]);
  const skc = o['sock.__sk_common'];
  assert.deepEqual([a['finode'], a['imode'], a['fpriv'], a['socksk'], a['skfamily'], a['skdport'], a['skdaddr'], a['skv6daddr']].map(Number),
    [o['file.f_inode'], o['inode.i_mode'], o['file.private_data'], o['socket.sk'], skc + o['sock_common.skc_family'], skc + o['sock_common.skc_dport'],
      skc + o['sock_common.skc_daddr'], skc + o['sock_common.skc_v6_daddr']]);
  const FDT = ['files', 'fdt', 'fdtfd', 'maxfds'], FDPATH = ['dhash', 'root', 'rootmnt'], PEER = ['finode', 'imode', 'fpriv', 'socksk', 'skfamily', 'skdport', 'skdaddr', 'skv6daddr'];
  const given = (b: Record<string, string>, keys: string[]) => keys.filter((k) => k in b);
  // a kernel whose BTF lacks one of them: no descriptor walk (the plugin reads such a path again);
  // without the mount offsets the peer's still go (with the file table's)
  for (const f of ['fs_struct.root', 'mount.mnt_parent'] as const) {
    const b = args({ ...p, offsets: { ...o, [f]: -1 } });
    assert.deepEqual([given(b, FDT), given(b, FDPATH), given(b, PEER)], [FDT, [], PEER], f);
  }
  // without the file table: neither
  const b = args({ ...p, offsets: { ...o, 'fdtable.max_fds': -1 } });
  assert.deepEqual([given(b, FDT), given(b, FDPATH), given(b, PEER)], [[], [], []]);
  // without one of the socket's (a kernel without CONFIG_IPV6 has no skc_v6_daddr): no peer (such
  // an address is read again), the descriptor walk as before; also from a profile without them at all
  for (const f of ['sock_common.skc_v6_daddr', 'sock.__sk_common', 'socket.sk', 'inode.i_mode'] as const) {
    const c = args({ ...p, offsets: { ...o, [f]: -1 } });
    assert.deepEqual([given(c, FDT), given(c, FDPATH), given(c, PEER)], [FDT, FDPATH, []], f);
  }
  const { 'file.f_inode': _, ...older } = o;
  const d = args({ ...p, offsets: older as typeof o });
  assert.deepEqual([given(d, FDT), given(d, FDPATH), given(d, PEER)], [FDT, FDPATH, []]);
});

test('profile: bad input gives typed errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-prof-'));
  try {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const junk = join(dir, 'junk');
    writeFileSync(junk, Buffer.alloc(4096, 0x41));
    const code = (f: () => unknown) => { try { f(); return 'none'; } catch (e) { return isSandtraceError(e) ? e.code : 'untyped'; } };
    // a path the user gave: input errors (exit 4), not the environment's
    assert.equal(code(() => loadProfile(join(dir, 'absent'))), 'INPUT_MISSING');
    assert.equal(code(() => loadProfile('/dev/zero')), 'INPUT_UNREADABLE');
    // a program given by mistake: an ELF file, but no kernel
    assert.equal(code(() => loadProfile('/bin/true')), 'INPUT_FORMAT_UNKNOWN');
    assert.equal(code(() => loadProfile(empty)), 'INPUT_EMPTY');
    assert.equal(code(() => loadProfile(dir)), 'INPUT_IS_DIRECTORY');
    assert.equal(code(() => buildProfile(readFileSync(junk))), 'INPUT_FORMAT_UNKNOWN');
    assert.equal(code(() => buildProfile(Buffer.from('ab'))), 'INPUT_FORMAT_UNKNOWN');
    // the real image cut short: the payload runs past the end of the file
    assert.equal(code(() => buildProfile(readFileSync(kernelPath()).subarray(0, 300_000))), 'INPUT_CORRUPT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
