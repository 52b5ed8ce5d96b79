// Live monitoring of a user's guest: start QEMU with the user's arguments plus the capture
// plugin, and stream every guest process's syscalls (nothing is installed in the guest).
// Used by `sandtrace monitor --vm --kernel VMLINUZ -- QEMU-ARGS...`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { VmiCollector } from '../capture/vmi/collector.js';
import { loadProfile, type KernelProfile } from '../vmi/profile.js';
import { assertTcg, checkVmEnvironment, pluginArgs, QEMU } from './guest.js';

export interface MonitorOptions {
  /** The guest's kernel image (vmlinuz) the profile is derived from; must be the one the guest boots. */
  kernel: string;
  /** The user's QEMU arguments (without the binary). -accel tcg is added when no accelerator is given. */
  qemuArgs: string[];
  /** QEMU's stdout/stderr: inherited (an interactive console) or ignored (default; stderr is kept for errors). */
  stdio?: 'inherit' | 'ignore';
}

export interface MonitoredGuest {
  /** start() launches QEMU; events() streams every guest process; stop() ends QEMU. */
  collector: VmiCollector;
  profile: KernelProfile;
  /** Resolves with QEMU's exit status once it has exited and the socket is gone. */
  done: Promise<{ qemuExit: number | null }>;
}

export function monitorGuest(opts: MonitorOptions): MonitoredGuest {
  assertTcg(opts.qemuArgs);
  checkVmEnvironment(true);
  const profile = loadProfile(opts.kernel);
  const hasAccel = opts.qemuArgs.some((a) => a === '-accel' || a.startsWith('accel=') || a.includes(',accel='));
  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-vm-'));
  const sock = join(tmp, 'plugin.sock');
  let qemu: ChildProcess | null = null;
  let resolveDone!: (v: { qemuExit: number | null }) => void;
  const done = new Promise<{ qemuExit: number | null }>((res) => { resolveDone = res; });

  const open = async (): Promise<Socket> => {
    const server = createServer();
    const connected = new Promise<Socket>((res) => server.once('connection', res));
    await new Promise<void>((res, rej) => { server.listen(sock, res); server.once('error', rej); });
    const args = [...(hasAccel ? [] : ['-accel', 'tcg']), ...opts.qemuArgs, '-plugin', pluginArgs(profile, sock), '-d', 'plugin'];
    let stderr = '';
    qemu = spawn(QEMU, args, { stdio: opts.stdio === 'inherit' ? 'inherit' : ['ignore', 'ignore', 'pipe'] });
    qemu.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const exited = new Promise<number | null>((res) => {
      qemu!.once('exit', (c) => res(c));
      qemu!.once('error', () => res(null));
    });
    void exited.then((c) => { server.close(); rmSync(tmp, { recursive: true, force: true }); resolveDone({ qemuExit: c }); });
    const s = await Promise.race([connected, exited.then(() => null)]);
    if (!s) throw new SandtraceError('VM_BOOT_FAILED', `QEMU exited before the plugin connected: ${stderr.trim().split('\n').pop() ?? ''}`);
    return s;
  };

  const collector = new VmiCollector({
    open,
    stop: async () => {
      if (qemu && qemu.exitCode === null) {
        qemu.kill('SIGTERM');
        const t = setTimeout(() => qemu?.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(t);
      } else if (!qemu) {
        rmSync(tmp, { recursive: true, force: true });
        resolveDone({ qemuExit: null });
      }
    },
  });
  return { collector, profile, done };
}
