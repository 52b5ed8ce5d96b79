// `sandtrace monitor --vm`: learn a guest program's normal behaviour from the hypervisor, then
// alert when the same program deviates, with nothing installed in the guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs } from '../../src/vm/guest.js';
import { defaultKernel } from '../../src/vmi/profile.js';
import { CLI, tempDir } from '../helpers.js';

function guestArgs(kernel: string, initrd: string, dir: string): string[] {
  return ['-nodefaults', '-display', 'none', '-m', '256', '-no-reboot', '-nic', 'none', '-kernel', kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 quiet panic=-1 rdinit=/init', '-serial', `file:${join(dir, 'console.log')}`];
}

/**
 * Runs the CLI until `until(stdout)` holds (then `grace` ms more) or `ms` pass, then SIGINT;
 * resolves with the exit code and output.
 */
function monitorRun(args: string[], ms: number, until: (out: string) => boolean = () => false, grace = 0): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, 'monitor', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let stopped = false;
    // One Ctrl-C: a second one would (as users expect) kill the monitor outright.
    const stop = () => {
      if (!stopped) p.kill('SIGINT');
      stopped = true;
    };
    const timer = setTimeout(stop, ms);
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (!stopped && until(out)) setTimeout(stop, grace);
    });
    p.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test('monitor --vm learns per-program models from a guest; the unchanged program raises nothing, the rogue one is named', { timeout: 420_000 }, async () => {
  const kernel = defaultKernel();
  assert.ok(kernel, 'Debian kernel image missing: run make setup');
  const t = tempDir();
  try {
    // The same program, /sample/svc.sh: a quiet polling loop that forks `sleep` every round (a
    // fork-heavy service: one long main process, many short children), and later the loop gone rogue.
    const normalDir = join(t.path, 'normal');
    const rogueDir = join(t.path, 'rogue');
    mkdirSync(join(normalDir, 's'), { recursive: true });
    mkdirSync(join(rogueDir, 's'), { recursive: true });
    const loop = 'while true; do read -r up rest < /proc/uptime; sleep 0.1; done\n';
    writeFileSync(join(normalDir, 's', 'svc.sh'), `#!/bin/sh\n${loop}`, { mode: 0o755 });
    // After a few rounds the service starts reaching out to the network, which it never did.
    writeFileSync(join(rogueDir, 's', 'svc.sh'), '#!/bin/sh\ni=0\nwhile true; do read -r up rest < /proc/uptime; sleep 0.1; i=$((i+1))\n' +
      '  if [ $i -gt 5 ]; then nc -w 1 127.0.0.1 4444 < /dev/null; fi\ndone\n', { mode: 0o755 });
    const model = join(t.path, 'guest-model.json');
    const normalInitrd = buildInitramfs(normalDir, join(normalDir, 's', 'svc.sh'), [], 600);
    const guestDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('sandtrace-vm-')).sort();
    const before = guestDirs();
    const learned = await monitorRun(['--vm', '--kernel', kernel, '--learn', '25s', '--out', model, '--',
      ...guestArgs(kernel, normalInitrd, normalDir)], 120_000);
    assert.equal(learned.code, 0, learned.err);
    // the monitor waited for QEMU to exit and removed the plugin's socket directory before exiting
    assert.deepEqual(guestDirs(), before);
    assert.ok(existsSync(model), learned.err);
    const m = JSON.parse(readFileSync(model, 'utf8')) as { programs: Record<string, { calibration: { far: number } }> };
    const programs = Object.keys(m.programs);
    // the script, and busybox's sleep applet as a program of its own (not "/proc/self/exe")
    assert.ok(programs.includes('/sample/svc.sh'), `programs learned: ${programs.join(', ')}`);
    assert.ok(programs.some((p) => p.endsWith(':sleep')), `programs learned: ${programs.join(', ')}`);
    assert.equal(m.programs['/sample/svc.sh']?.calibration.far, 0.001, 'live models are calibrated for live use');

    const parse = (out: string) => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    // The unchanged program, watched for a while (~250 forks): no anomaly alert at all.
    const control = await monitorRun(['--vm', '--kernel', kernel, '--model', model, '--no-builtin-rules', '--',
      ...guestArgs(kernel, normalInitrd, normalDir)], 30_000);
    assert.equal(control.code, 0, control.err);
    assert.match(control.err, /detached after \d+ events/);
    assert.deepEqual(guestDirs(), before, 'stopped by Ctrl-C, it cleans up too');
    assert.deepEqual(parse(control.out).filter((a) => a['source'] === 'model').map((a) => a['output']), []);

    // The rogue program: the nc it starts is a program never seen while learning, and the
    // service's main loop, judged when the monitor is stopped, no longer behaves like itself.
    const alerted = await monitorRun(['--vm', '--kernel', kernel, '--model', model, '--no-builtin-rules', '--',
      ...guestArgs(kernel, buildInitramfs(rogueDir, join(rogueDir, 's', 'svc.sh'), [], 600), rogueDir)], 120_000,
    (out) => out.includes('proc.exe=/bin/busybox:nc'), 4000);
    assert.equal(alerted.code, 0, alerted.err);
    const alerts = parse(alerted.out);
    const summary = alerts.map((a) => `${a['rule']} ${a['output']}`).join('\n');
    assert.ok(alerts.some((a) => a['rule'] === 'model.unseen_program' && String(a['output']).includes('proc.exe=/bin/busybox:nc')), summary);
    const svc = alerts.filter((a) => a['source'] === 'model' && a['exe'] === '/sample/svc.sh');
    assert.ok(svc.length > 0, `no model alert for the rogue service loop:\n${summary}`);
    for (const a of svc) {
      const an = a['anomaly'] as { score: number; threshold: number; model: string; window: string[] };
      assert.ok(an.score > an.threshold && an.model.length > 0);
      assert.equal(typeof a['pid'], 'number');
    }
  } finally {
    t.cleanup();
  }
});
