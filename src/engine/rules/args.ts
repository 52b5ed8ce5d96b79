// Raw argument access for rules: open flags by syscall, and `evt.rawarg.NAME` (the undecoded
// register value). Decoded `evt.arg.NAME` comes from semantics/args.ts.
import type { SyscallEvent } from '../../capture/events.js';
import type { EnrichedEvent } from '../../semantics/types.js';

export function openFlags(ev: SyscallEvent): number | null {
  switch (ev.name) {
    case 'open': return ev.args[1] ?? null;
    case 'openat': return ev.args[2] ?? null;
    case 'creat': return 0o1 | 0o100 | 0o1000;
    default: return null; // openat2 passes a struct pointer
  }
}

const RAW: Record<string, Record<string, number>> = {
  open: { flags: 1, mode: 2 }, openat: { dirfd: 0, flags: 2, mode: 3 }, dup2: { oldfd: 0, newfd: 1 },
  dup3: { oldfd: 0, newfd: 1, flags: 2 }, ptrace: { request: 0, pid: 1 }, prctl: { option: 0 },
  unshare: { flags: 0 }, setns: { fd: 0, nstype: 1 }, clone: { flags: 0 }, bpf: { cmd: 0 }, setuid: { uid: 0 },
  kill: { pid: 0, sig: 1 }, mprotect: { prot: 2 }, mmap: { prot: 2, flags: 3, fd: 4 }, chmod: { mode: 1 },
  fchmodat: { mode: 2 }, fchmod: { mode: 1 }, socket: { domain: 0, type: 1, proto: 2 },
};

export function rawArg(e: EnrichedEvent, name: string): number | null {
  const ev = e.ev;
  if (ev.type !== 'syscall') return null;
  if (name === 'res') return ev.ret;
  const i = RAW[ev.name]?.[name];
  return i === undefined ? null : ev.args[i] ?? null;
}
