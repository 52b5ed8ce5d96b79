// `sandtrace vm profile`: the command's output and its one-line errors (run as a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { defaultKernel } from '../../src/vmi/profile.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function cli(argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e',
    `import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(${JSON.stringify(argv)}); })`],
  { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('vm profile --json prints the profile of Debian\'s kernel', () => {
  const k = defaultKernel();
  assert.ok(k, 'Debian kernel image missing: run make setup');
  const r = cli(['vm', 'profile', k, '--json']);
  assert.equal(r.code, 0, r.err);
  const p = JSON.parse(r.out) as { buildId: string; offsets: Record<string, number>; symbols: Record<string, string> };
  assert.match(p.buildId, /^[0-9a-f]{40}$/);
  assert.equal(p.offsets['task_struct.tgid'], (p.offsets['task_struct.pid'] ?? 0) + 4);
  assert.match(p.symbols['init_task'] ?? '', /^0xffffffff8/);
  assert.match(cli(['vm', 'profile', k]).out, /^kernel +Linux version /);
});

test('vm profile text lists the i386 (compat) hooks that --json gives', () => {
  const k = defaultKernel();
  assert.ok(k, 'Debian kernel image missing: run make setup');
  type Compat = { int80: { entry: string; afterCall: string; handler: string }; fast?: { entry: string; afterSyscall?: string; afterSysenter?: string } };
  const c = (JSON.parse(cli(['vm', 'profile', k, '--json']).out) as { compat?: Compat }).compat;
  assert.ok(c?.fast?.afterSyscall && c.fast.afterSysenter, 'Debian\'s 6.1 kernel has IA32_EMULATION: int $0x80 and the fast path with both returns');
  const r = cli(['vm', 'profile', k]);
  assert.equal(r.code, 0, r.err);
  const i386 = r.out.split('\n').filter((l) => l.startsWith('i386 '));
  assert.deepEqual(i386.map((l) => l.replace(/ +/, ' ')), [
    `i386 int $0x80: ${c.int80.handler} ${c.int80.entry}, return hook ${c.int80.afterCall}`,
    `i386 fast path: do_fast_syscall_32 ${c.fast.entry}, return hooks ${c.fast.afterSyscall} (syscall), ${c.fast.afterSysenter} (sysenter)`,
  ]);
});

test('vm profile on a file that is not a kernel: one line, input exit code', () => {
  const r = cli(['vm', 'profile', '/etc/hostname']);
  assert.equal(r.code, 4, r.err);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.match(r.err, /^sandtrace vm: not an x86 bzImage/);
  assert.equal(cli(['vm', 'frobnicate']).code, 2);
});

test('vm run of a file the guest cannot execute says the sample never started and exits 1', { timeout: 180_000 }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e',
    `import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(${JSON.stringify(['vm', 'run', '/etc/hostname', '--timeout', '20'])}); })`],
  { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the sample never started \(exit status \d+\) \[SAMPLE_NOT_STARTED\]/);
});
