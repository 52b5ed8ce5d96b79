// `sandtrace vm profile VMLINUZ [--json]`: what introspection derives from a guest kernel image;
// `sandtrace vm run SAMPLE [-- ARGS...]`: run a sample in a disposable guest, print its events as JSON lines.
import { noExtraArgs, parseFlags, numberFlag, splitDoubleDash } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { loadProfile, defaultKernel, type KernelProfile } from '../../vmi/profile.js';
import { runInVm } from '../../vm/guest.js';
import { MAX_TIMEOUT_S } from '../../sandbox/types.js';

export const summary = 'guest introspection: profile a kernel image (vm profile), run a sample in a VM (vm run)';

const USAGE = 'sandtrace vm profile [VMLINUZ] [--json] | sandtrace vm run SAMPLE [-- ARGS...] [--timeout S] [--kernel VMLINUZ] [--out DIR] [--debian] [--all]';
export const usage = USAGE;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'profile') return profile(rest);
  if (sub === 'run') return runSample(rest);
  throw new SandtraceError('USAGE', `usage: ${USAGE}`);
}

async function profile(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, USAGE);
  noExtraArgs(positionals, 1, USAGE);
  const image = positionals[0] ?? defaultKernel();
  if (!image) throw new SandtraceError('USAGE', `vm profile takes one kernel image (none cached; run make setup); usage: ${USAGE}`);
  const p = loadProfile(image);
  if (values.json) {
    process.stdout.write(JSON.stringify(p, null, 2) + '\n');
    return 0;
  }
  const lines = [
    `kernel     ${p.banner || '(no banner)'}`,
    `build id   ${p.buildId}  (payload: ${p.compression})`,
    `symbols    ${p.counts.kallsyms} kallsyms, ${p.counts.ksymtab} exported, ${p.counts.btfTypes} BTF types`,
    `syscall    entry_SYSCALL_64 ${p.syscall.entry}, return hook ${p.syscall.afterCall} (after call do_syscall_64)`,
    ...compatLines(p.compat),
    `current    per-CPU offset 0x${p.currentTaskPercpu.toString(16)}`,
    ...Object.entries(p.symbols).map(([k, v]) => `  ${k.padEnd(26)} ${v}`),
    'offsets',
    ...Object.entries(p.offsets).map(([k, v]) => `  ${k.padEnd(26)} ${v}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

/** The i386 (compat) hooks, as `--json` gives them under `compat`. */
function compatLines(c: KernelProfile['compat']): string[] {
  if (!c) return ['i386       none (no IA32_EMULATION entry points found): int $0x80 and 32-bit calls are not captured'];
  const out = [`i386       int $0x80: ${c.int80.handler} ${c.int80.entry}, return hook ${c.int80.afterCall}`];
  if (c.fast) {
    const rets = [c.fast.afterSyscall ? `${c.fast.afterSyscall} (syscall)` : '', c.fast.afterSysenter ? `${c.fast.afterSysenter} (sysenter)` : ''].filter(Boolean);
    out.push(`i386       fast path: do_fast_syscall_32 ${c.fast.entry}, ${rets.length ? `return hooks ${rets.join(', ')}` : 'no return hook'}`);
  } else {
    out.push('i386       fast path: not found (sysenter/syscall from 32-bit code is not captured)');
  }
  return out;
}

async function runSample(argv: string[]): Promise<number> {
  const [mine, args] = splitDoubleDash(argv);
  const { values, positionals } = parseFlags(mine, {
    timeout: { type: 'string' }, kernel: { type: 'string' }, out: { type: 'string' }, all: { type: 'boolean' }, debian: { type: 'boolean' },
  }, USAGE);
  if (positionals.length === 0) throw new SandtraceError('USAGE', `vm run takes one sample; usage: ${USAGE}`);
  noExtraArgs(positionals, 1, USAGE);
  const vm = runInVm({
    sample: positionals[0] as string, args, timeout: numberFlag(values.timeout, 'timeout', 30, MAX_TIMEOUT_S),
    ...(values.kernel ? { kernel: values.kernel } : {}), ...(values.out ? { outDir: values.out } : {}),
    ...(values.all ? { allProcesses: true } : {}), ...(values.debian ? { rootfs: 'debian' as const } : {}),
  });
  const stopOnSignal = () => { void vm.collector.stop(); };
  process.once('SIGINT', stopOnSignal);
  try {
    await vm.collector.start();
    for await (const batch of vm.collector.events()) {
      process.stdout.write(batch.map((e) => JSON.stringify(e)).join('\n') + '\n');
    }
    const r = await vm.done;
    const s = vm.collector.stats();
    process.stderr.write(`vm: sample exit ${r.sampleExit ?? '?'}${r.timedOut ? ' (timed out)' : ''}, ${s.events} events, ${s.lost} lost, ` +
      `guest ${r.wallSeconds.toFixed(1)} s; console: ${values.out ? r.consolePath : '(removed)'}\n`);
    // nothing seen: the sample never ran (not executable, or the guest could not start it); no
    // behaviour seen is no result, as in analyze (SAMPLE_NOT_STARTED)
    if (s.events === 0) {
      process.stderr.write(`vm: the sample never started (exit status ${r.sampleExit ?? '?'}) [SAMPLE_NOT_STARTED]\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', stopOnSignal);
  }
}
