// Falco-style named arguments of a syscall event (evt.arg.NAME), decoded from the raw registers
// and the pointer arguments the collector read. Computed on demand: rules ask for few of them.
import type { SockAddr, SyscallEvent } from '../capture/events.js';
import type { EnrichedEvent } from './types.js';
import { cloneFlags, openFlags, protFlags, ptraceRequest, signalName, socketDomain, socketType } from './flags.js';
import { errnoName } from './syscalls.js';

type Decoder = (v: number) => string | number;
type ArgSpec = readonly (readonly [string, Decoder?] | null)[];

const oct: Decoder = (v) => `0${(v >>> 0).toString(8)}`;
const sig: Decoder = (v) => signalName(v);

/** Register arguments by position; null skips a position. Path arguments come from the collector. */
const SPECS: Record<string, ArgSpec> = {
  open: [null, ['flags', openFlags], ['mode', oct]],
  openat: [['dirfd'], null, ['flags', openFlags], ['mode', oct]],
  creat: [null, ['mode', oct]],
  close: [['fd']],
  read: [['fd'], null, ['size']], write: [['fd'], null, ['size']],
  pread64: [['fd'], null, ['size'], ['pos']], pwrite64: [['fd'], null, ['size'], ['pos']],
  socket: [['domain', socketDomain], ['type', socketType], ['proto']],
  connect: [['fd']], bind: [['fd']], listen: [['fd'], ['backlog']], accept: [['fd']], accept4: [['fd'], null, null, ['flags']],
  sendto: [['fd'], null, ['size']], recvfrom: [['fd'], null, ['size']], sendmsg: [['fd']], recvmsg: [['fd']],
  dup: [['oldfd']], dup2: [['oldfd'], ['newfd']], dup3: [['oldfd'], ['newfd'], ['flags']],
  unlinkat: [['dirfd'], null, ['flags']], mkdir: [null, ['mode', oct]], mkdirat: [['dirfd'], null, ['mode', oct]],
  renameat: [['olddirfd'], null, ['newdirfd']], renameat2: [['olddirfd'], null, ['newdirfd'], null, ['flags']],
  linkat: [['olddir'], null, ['newdir'], null, ['flags']], symlinkat: [null, ['linkdirfd']],
  chmod: [null, ['mode', oct]], fchmod: [['fd'], ['mode', oct]], fchmodat: [['dirfd'], null, ['mode', oct]],
  chown: [null, ['uid'], ['gid']], lchown: [null, ['uid'], ['gid']], fchown: [['fd'], ['uid'], ['gid']],
  fchownat: [['dirfd'], null, ['uid'], ['gid']],
  setuid: [['uid']], setgid: [['gid']], setreuid: [['ruid'], ['euid']], setresuid: [['ruid'], ['euid'], ['suid']],
  setresgid: [['rgid'], ['egid'], ['sgid']], setregid: [['rgid'], ['egid']],
  kill: [['pid'], ['sig', sig]], tkill: [['tid'], ['sig', sig]], tgkill: [['pid'], ['tid'], ['sig', sig]],
  ptrace: [['request', ptraceRequest], ['pid']],
  prctl: [['option'], ['arg2_int']],
  clone: [['flags', cloneFlags]], clone3: [],
  unshare: [['flags', cloneFlags]], setns: [['fd'], ['nstype', cloneFlags]],
  mmap: [['addr'], ['length'], ['prot', protFlags], ['flags'], ['fd'], ['offset']],
  mprotect: [['addr'], ['length'], ['prot', protFlags]],
  memfd_create: [null, ['flags']],
  execveat: [['dirfd'], null, null, null, ['flags']],
  bpf: [['cmd']], finit_module: [['fd']], init_module: [null, ['length']], delete_module: [null, ['flags']],
  kexec_load: [], reboot: [null, null, ['cmd']],
  ioctl: [['fd'], ['request']], fcntl: [['fd'], ['cmd']],
  ftruncate: [['fd'], ['length']], truncate: [null, ['length']],
  chroot: [], chdir: [], fchdir: [['fd']], umount2: [null, ['flags']],
  mount: [null, null, null, ['flags']],
  personality: [['persona']], seccomp: [['op']], capset: [], keyctl: [['option']], add_key: [], request_key: [],
  process_vm_writev: [['pid']], process_vm_readv: [['pid']],
  utimensat: [['dirfd']], utimes: [], utime: [],
};

/** Names for the collector-read path arguments, as Falco names them per syscall. */
const PATH_NAMES: Record<string, [string, string?]> = {
  open: ['name'], openat: ['name'], openat2: ['name'], creat: ['name'],
  execve: ['exe'], execveat: ['pathname'],
  unlink: ['path'], unlinkat: ['name'], rmdir: ['path'], mkdir: ['path'], mkdirat: ['path'],
  rename: ['oldpath', 'newpath'], renameat: ['oldpath', 'newpath'], renameat2: ['oldpath', 'newpath'],
  link: ['oldpath', 'newpath'], linkat: ['oldpath', 'newpath'], symlink: ['target', 'linkpath'], symlinkat: ['target', 'linkpath'],
  chmod: ['filename'], fchmodat: ['filename'], chown: ['path'], lchown: ['path'], fchownat: ['pathname'],
  truncate: ['path'], chdir: ['path'], chroot: ['path'], mount: ['dev', 'dir'], umount2: ['name'], umount: ['name'],
  memfd_create: ['name'], utimensat: ['path'], utimes: ['filename'], utime: ['filename'],
  stat: ['path'], lstat: ['path'], newfstatat: ['name'], statx: ['pathname'], access: ['pathname'],
  faccessat: ['pathname'], faccessat2: ['pathname'], readlink: ['path'], readlinkat: ['path'],
  pivot_root: ['new_root', 'put_old'], mknod: ['path'], mknodat: ['path'], inotify_add_watch: ['name'],
};

/** evt.arg.* of an enriched syscall event (paths made absolute by semantics). */
export function decodeArgs(e: EnrichedEvent): Record<string, string | number> {
  const ev = e.ev;
  const out: Record<string, string | number> = {};
  if (ev.type !== 'syscall') {
    if (ev.type === 'exec') {
      out['exe'] = ev.exe;
      out['args'] = ev.argv.slice(1).join(' ');
      out['res'] = 0;
    } else if (ev.type === 'fork') {
      out['res'] = 0;
      out['child'] = ev.childPid;
    } else {
      out['status'] = ev.code;
    }
    return out;
  }
  decodeRegisters(ev, out);
  const names = PATH_NAMES[ev.name];
  if (names) {
    if (e.path !== undefined || ev.path !== undefined) out[names[0]] = e.path ?? ev.path ?? '';
    if (names[1] && (e.path2 !== undefined || ev.path2 !== undefined)) out[names[1]] = e.path2 ?? ev.path2 ?? '';
  }
  if (ev.argv) out['args'] = ev.argv.slice(1).join(' ');
  if (ev.addr) out['addr'] = addrText(ev.addr);
  // a batch (sendmmsg/recvmmsg): each message's address, '-' for a message without one
  if (ev.addrs) out['addrs'] = ev.addrs.map((a) => (a ? addrText(a) : '-')).join(' ');
  if (e.fd && (e.fd.type === 'ipv4' || e.fd.type === 'ipv6' || e.fd.type === 'unix')) out['tuple'] = e.fd.name;
  if (ev.ret !== null) {
    out['res'] = ev.ret < 0 ? errnoName(ev.ret) : ev.ret;
    if (OPEN_LIKE.has(ev.name) || ev.name === 'socket' || ev.name === 'accept' || ev.name === 'accept4') out['fd'] = ev.ret;
  }
  return out;
}

function addrText(a: SockAddr): string {
  return a.family === 'inet' ? `${a.address}:${a.port}` : a.family === 'inet6' ? `[${a.address}]:${a.port}` : a.family === 'unix' ? a.path : '';
}

const OPEN_LIKE = new Set(['open', 'openat', 'openat2', 'creat', 'memfd_create']);

function decodeRegisters(ev: SyscallEvent, out: Record<string, string | number>): void {
  const spec = SPECS[ev.name];
  if (!spec) return;
  for (let i = 0; i < spec.length; i++) {
    const s = spec[i];
    const v = ev.args[i];
    if (!s || v === undefined) continue;
    const [name, dec] = s;
    out[name] = dec ? dec(v) : v;
  }
}
