// Shared helpers for the tests: run the built CLI, make temp dirs, read a FIFO without hanging.
import { spawnSync } from 'node:child_process';
import { after } from 'node:test';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'bin', 'sandtrace');

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs bin/sandtrace (the built dist/; `make test` builds it first). */
export function cli(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 180_000,
    env: opts.env ?? process.env,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'sandtrace-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

const scratch: string[] = [];

/** A temp directory removed, with everything in it, when the test file's tests are done. */
export function scratchDir(prefix = 'sandtrace-test-'): string {
  if (scratch.length === 0) after(() => { for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true }); });
  const path = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(path);
  return path;
}

/** A CLI failure is one line (no stack trace) naming the reason. */
export function assertOneLineError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected a one-line error, got:\n${stderr}`);
  if (/\n\s+at /.test(stderr)) throw new Error(`stack trace in the error:\n${stderr}`);
  return lines[0] as string;
}

/**
 * `p`, or a rejection after 5 s when a regression opened the FIFO and blocks: a writer is then
 * opened so that the blocked reader returns and the test fails instead of hanging the run.
 */
export async function unblocking<T>(p: Promise<T>, fifo: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const blocked = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try { closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)); } catch { /* no reader */ }
      reject(new Error(`blocked on the FIFO ${fifo}`));
    }, 5000);
  });
  try {
    return await Promise.race([p, blocked]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The sample's own process in a report: the first one it lists (the container's init, which runs
 * it, is hidden, and nothing else starts before it). Its pid is whatever the namespace gave it.
 */
export function sampleProcess<P extends { pid: number; ppid: number }>(r: { processes: P[] }): P | undefined {
  return r.processes[0];
}
