// Runs a host helper (runc, mount, umount, tar) to completion with a time limit; never a shell.
import { spawn } from 'node:child_process';

export interface ExecResult { code: number; stdout: string; stderr: string }

export function execFile(cmd: string, args: string[], timeoutMs = 30000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { if (stdout.length < 1 << 20) stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { if (stderr.length < 1 << 20) stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: 127, stdout, stderr: stderr + e.message }); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (sig ? 9 : 0), stdout, stderr });
    });
  });
}
