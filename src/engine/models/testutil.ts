// Test helper: runs the sandtrace CLI from source in a child process (the built dist/ may lag
// behind while the tree is being edited), capturing its output.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Run `sandtrace ARGS` from source; `onSpawn` gets the child (to signal it). */
export function runCli(args: string[], onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<Ran> {
  const code = `const { main } = await import(${JSON.stringify(new URL('../../cli/main.ts', import.meta.url).href)});`
    + `process.exitCode = await main(${JSON.stringify(args)});`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** The ADFA-LD dev copy: $SANDTRACE_ADFA_DIR or ../shared/datasets/adfa-ld-dev from the repo root. */
export function adfaDir(): string {
  const dir = process.env['SANDTRACE_ADFA_DIR'] ?? join(ROOT, '..', 'shared', 'datasets', 'adfa-ld-dev');
  if (!existsSync(join(dir, 'Training_Data_Master'))) {
    throw new Error(`ADFA-LD not found at ${dir}: set SANDTRACE_ADFA_DIR to the dataset directory`);
  }
  return dir;
}
