// The sandbox's seccomp policy: allow by default, refuse a deny list with EPERM so that a
// sample's attempts still happen (and are captured as failed calls) but achieve nothing. One
// policy, two encodings: an OCI section for runc, a classic BPF program for bwrap.
import { syscallNumber } from '../semantics/syscalls.js';

/**
 * System calls the sandbox refuses with EPERM. The engine flags attempts at these.
 * ptrace is denied too: it would let a sample rewrite another in-container process' memory and
 * syscalls (historically a seccomp bypass); an anti-debugging probe that sees the EPERM shows up
 * in the trace as a failed ptrace, which is itself evidence.
 */
export const DENIED_SYSCALLS: readonly string[] = Object.freeze([
  // kernel modules and replacing the kernel
  'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load',
  // kernel programmability and introspection
  'bpf', 'perf_event_open', 'lookup_dcookie', 'syslog',
  // mounts and namespaces
  'mount', 'umount', 'umount2', 'pivot_root', 'move_mount', 'open_tree', 'fsopen', 'fsmount', 'fsconfig',
  'fspick', 'mount_setattr', 'unshare', 'setns', 'chroot',
  // kernel keyrings
  'keyctl', 'add_key', 'request_key',
  // machine state
  'reboot', 'swapon', 'swapoff', 'settimeofday', 'stime', 'clock_settime', 'clock_adjtime', 'adjtimex',
  'clock_settime64', 'clock_adjtime64', // i386's 64-bit time variants
  'acct', 'quotactl', 'quotactl_fd', 'vhangup', 'iopl', 'ioperm', 'nfsservctl', 'sysfs', '_sysctl',
  // escaping through handles, faults and other processes
  'userfaultfd', 'open_by_handle_at', 'name_to_handle_at', 'ptrace', 'process_vm_writev', 'process_vm_readv',
  'kcmp', 'pidfd_getfd',
  // io_uring performs file and socket operations without system calls, invisible to the capture
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
]);

/** clone flags that create namespaces: clone() with any of them is refused (unshare is denied above). */
export const CLONE_NAMESPACE_FLAGS: readonly number[] = Object.freeze([
  0x00020000, // CLONE_NEWNS
  0x02000000, // CLONE_NEWCGROUP
  0x04000000, // CLONE_NEWUTS
  0x08000000, // CLONE_NEWIPC
  0x10000000, // CLONE_NEWUSER
  0x20000000, // CLONE_NEWPID
  0x40000000, // CLONE_NEWNET
]);

const EPERM = 1;
const ENOSYS = 38;

export interface OciSeccompRule {
  names: string[];
  action: 'SCMP_ACT_ERRNO' | 'SCMP_ACT_ALLOW';
  errnoRet?: number;
  args?: Array<{ index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' }>;
}

export interface OciSeccomp {
  defaultAction: 'SCMP_ACT_ALLOW';
  architectures: string[];
  syscalls: OciSeccompRule[];
}

/** The `linux.seccomp` section of the OCI config. */
export function seccompProfile(): OciSeccomp {
  const syscalls: OciSeccompRule[] = [
    { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
    // clone3 passes its flags in memory where seccomp cannot look: answer ENOSYS so that libc
    // falls back to clone(), whose flags are checked below (Docker does the same).
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  ];
  for (const flag of CLONE_NAMESPACE_FLAGS) {
    syscalls.push({
      names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM,
      args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
    });
  }
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls };
}

// ---- the same policy as a classic BPF program, for sandboxes that load it themselves (bwrap --seccomp) ----

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
/** x32 calls arrive as x86_64 with this bit set in the number. */
const X32_SYSCALL_BIT = 0x40000000;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_KILL_PROCESS = 0x80000000;
// classic BPF opcodes
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
/** struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low 32 bits first on x86). */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;

type Insn = { code: number; k: number; jt?: string; jf?: string } | { label: string };

/**
 * The sandbox's seccomp policy (DENIED_SYSCALLS with EPERM, clone3 with ENOSYS, clone with a
 * namespace flag with EPERM, everything else allowed) as a classic BPF program: an array of
 * struct sock_filter, as bwrap's --seccomp reads it. For both ABIs of this machine (x86_64 and
 * i386, the numbering by each ABI's table); x32 calls and any other architecture are refused,
 * the latter by killing the process (the kernel's own numbering is unknown there).
 */
export function seccompFilter(): Buffer {
  const nsMask = CLONE_NAMESPACE_FLAGS.reduce((a, f) => a | f, 0);
  const prog: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JEQ_K, k: AUDIT_ARCH_X86_64, jt: 'x86_64', jf: 'not_x86_64' },
    { label: 'not_x86_64' },
    { code: JEQ_K, k: AUDIT_ARCH_I386, jt: 'i386', jf: 'kill' },
  ];
  for (const abi of ['x86_64', 'i386'] as const) {
    prog.push({ label: abi }, { code: LD_W_ABS, k: OFF_NR });
    if (abi === 'x86_64') prog.push({ code: JGE_K, k: X32_SYSCALL_BIT, jt: 'eperm', jf: `${abi}_list` }, { label: `${abi}_list` });
    const denied = [...new Set(DENIED_SYSCALLS.map((n) => syscallNumber(n, abi)).filter((nr) => nr >= 0))].sort((a, b) => a - b);
    for (const nr of denied) prog.push({ code: JEQ_K, k: nr, jt: 'eperm', jf: `${abi}_${nr}` }, { label: `${abi}_${nr}` });
    const clone3 = syscallNumber('clone3', abi);
    if (clone3 >= 0) prog.push({ code: JEQ_K, k: clone3, jt: 'enosys', jf: `${abi}_clone3` }, { label: `${abi}_clone3` });
    prog.push(
      { code: JEQ_K, k: syscallNumber('clone', abi), jt: `${abi}_clone`, jf: 'allow' },
      { label: `${abi}_clone` },
      { code: LD_W_ABS, k: OFF_ARG0_LO },
      { code: JSET_K, k: nsMask, jt: 'eperm', jf: 'allow' },
    );
  }
  prog.push(
    { label: 'allow' }, { code: RET_K, k: RET_ALLOW },
    { label: 'eperm' }, { code: RET_K, k: RET_ERRNO | EPERM },
    { label: 'enosys' }, { code: RET_K, k: RET_ERRNO | ENOSYS },
    { label: 'kill' }, { code: RET_K, k: RET_KILL_PROCESS },
  );
  return assemble(prog);
}

/** Labels resolved to the forward jump offsets (u8) classic BPF uses. */
function assemble(prog: readonly Insn[]): Buffer {
  const at = new Map<string, number>();
  const code: Array<Exclude<Insn, { label: string }>> = [];
  for (const i of prog) {
    if ('label' in i) at.set(i.label, code.length);
    else code.push(i);
  }
  if (code.length > 4096) throw new Error(`seccomp filter too long: ${code.length}`);
  const out = Buffer.alloc(code.length * 8);
  code.forEach((i, pc) => {
    const off = (label: string | undefined): number => {
      if (label === undefined) return 0;
      const target = at.get(label);
      const d = target === undefined ? -1 : target - pc - 1;
      if (d < 0 || d > 255) throw new Error(`seccomp filter: jump to ${label} out of range (${d})`);
      return d;
    };
    out.writeUInt16LE(i.code, pc * 8);
    out.writeUInt8(off(i.jt), pc * 8 + 2);
    out.writeUInt8(off(i.jf), pc * 8 + 3);
    out.writeUInt32LE(i.k >>> 0, pc * 8 + 4);
  });
  return out;
}
