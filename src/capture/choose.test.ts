// Backend choice on this machine: eBPF where the probe loads (root, built), ptrace otherwise, with
// the reason the report shows; checked as root and as an unprivileged user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chooseBackend, probeEbpf } from './choose.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('ptrace on request; auto follows whether the probe loads', async () => {
  assert.deepEqual(await chooseBackend('ptrace'), { backend: 'ptrace', reason: 'ptrace requested (--backend ptrace)' });
  const probe = await probeEbpf();
  const auto = await chooseBackend('auto');
  if (probe.ok) {
    assert.equal(auto.backend, 'ebpf');
    assert.equal((await chooseBackend('ebpf')).backend, 'ebpf');
  } else {
    assert.equal(auto.backend, 'ptrace');
    assert.ok(auto.reason.includes(probe.reason), auto.reason);
    await assert.rejects(chooseBackend('ebpf'), /eBPF requested but unavailable/);
  }
  assert.ok(auto.reason.startsWith('auto: '));
  if (process.getuid?.() === 0) assert.ok(probe.ok, `as root with make setup done, the probe must load: ${probe.reason}`);
});

test('as an unprivileged user, auto picks ptrace and says why; ebpf is refused with the reason', () => {
  const script = `
    import { chooseBackend } from ${JSON.stringify(join(ROOT, 'src/capture/choose.ts'))};
    const auto = await chooseBackend('auto');
    let ebpf = '';
    try { await chooseBackend('ebpf'); } catch (e) { ebpf = e.code + ': ' + e.message; }
    process.stdout.write(JSON.stringify({ auto, ebpf }));`;
  const pre = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  const r = spawnSync(pre[0] ?? process.execPath, [...pre.slice(1), ...(pre.length ? [process.execPath] : []),
    '--import', join(ROOT, 'node_modules/tsx/dist/esm/index.mjs'), '--input-type=module', '-e', script],
  { encoding: 'utf8', cwd: tmpdir(), env: { ...process.env, HOME: tmpdir() } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { auto: { backend: string; reason: string }; ebpf: string };
  assert.equal(out.auto.backend, 'ptrace');
  assert.match(out.auto.reason, /^auto: eBPF unavailable \(.*root.*\); tracing with strace/i);
  assert.match(out.ebpf, /^PROBE_LOAD_FAILED: eBPF requested but unavailable/);
});
