// The sandbox's seccomp policy: allow by default, refuse a deny list with EPERM so that a
// sample's attempts still happen (and are captured as failed calls) but achieve nothing.

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
