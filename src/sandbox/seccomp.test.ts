// The classic BPF encoding of the sandbox's seccomp policy (bwrap --seccomp), run through a small
// interpreter of the instructions it uses: every call the OCI profile refuses is refused here too,
// for both ABIs, and nothing else is. The kernel runs it for real in the rootless tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLONE_NAMESPACE_FLAGS, DENIED_SYSCALLS, seccompFilter } from './seccomp.js';
import { syscallCount, syscallName, syscallNumber } from '../semantics/syscalls.js';

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const KILL = 0x80000000;

/** Runs the program on struct seccomp_data {nr, arch, ip, args[6]}. */
function run(prog: Buffer, arch: number, nr: number, arg0 = 0): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  data.writeUInt32LE(arg0 >>> 0, 16);
  let a = 0;
  for (let pc = 0; pc * 8 < prog.length; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20: a = data.readUInt32LE(k); break;
      case 0x15: pc += a === k ? jt : jf; break;
      case 0x35: pc += a >= k ? jt : jf; break;
      case 0x45: pc += (a & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unexpected opcode ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

test('seccomp BPF: the denied calls fail with EPERM on x86_64 and i386; every other call is allowed', () => {
  const prog = seccompFilter();
  assert.ok(prog.length % 8 === 0 && prog.length / 8 < 4096);
  for (const [abi, arch] of [['x86_64', X86_64], ['i386', I386]] as const) {
    const denied = new Set(DENIED_SYSCALLS.map((n) => syscallNumber(n, abi)).filter((nr) => nr >= 0));
    assert.ok(denied.size > 40, `${abi}: ${denied.size} denied`);
    for (let nr = 0; nr < syscallCount(abi) + 10; nr++) {
      const name = syscallName(nr, abi);
      const want = denied.has(nr) ? EPERM : name === 'clone3' ? ENOSYS : ALLOW;
      assert.equal(run(prog, arch, nr), want, `${abi} ${name} (${nr})`);
    }
  }
});

test('seccomp BPF: clone with any namespace flag is refused, a plain fork or thread clone is not; x32 and other ABIs are refused', () => {
  const prog = seccompFilter();
  for (const [abi, arch] of [['x86_64', X86_64], ['i386', I386]] as const) {
    const clone = syscallNumber('clone', abi);
    for (const f of CLONE_NAMESPACE_FLAGS) assert.equal(run(prog, arch, clone, f | 17), EPERM, `${abi} clone 0x${f.toString(16)}`);
    assert.equal(run(prog, arch, clone, 17), ALLOW, `${abi} fork-like clone (SIGCHLD)`);
    assert.equal(run(prog, arch, clone, 0x3d0f00), ALLOW, `${abi} thread clone (pthread flags)`);
  }
  assert.equal(run(prog, X86_64, 0x40000000 + 39), EPERM, 'x32 getpid');
  assert.equal(run(prog, 0xc00000b7, 172), KILL, 'aarch64');
});
