// Output paths the user names (analysis directories, model files, plots): made or checked before
// any work starts, so that a bad one costs a one-line error, not an analysis or an hour of learning.
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { SandtraceError } from './errors.js';

const REASONS: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'not permitted', EROFS: 'read-only file system', ENOSPC: 'no space left',
  ENOENT: 'cannot be created there', ENOTDIR: 'a parent is not a directory', EEXIST: 'exists and is not a directory',
};

function unwritable(path: string, e: unknown): SandtraceError {
  const code = (e as { code?: string }).code ?? '';
  return new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${path}: ${REASONS[code] ?? (e as Error).message}`, { cause: e, details: { path, errno: code } });
}

/**
 * mkdir -p, one component at a time. (Node's recursive mkdir never returns for a path under
 * /proc: it retries EEXIST/ENOENT forever.) Returns the absolute directory.
 */
export function makeOutDir(dir: string, mode = 0o777): string {
  const abs = resolve(dir);
  let cur = '';
  for (const part of abs.split(sep).filter(Boolean)) {
    cur += sep + part;
    try {
      mkdirSync(cur, { mode });
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw unwritable(abs, e);
      let isDir = false;
      try { isDir = statSync(cur).isDirectory(); } catch (se) { throw unwritable(abs, se); }
      if (!isDir) throw unwritable(abs, Object.assign(new Error('exists'), { code: cur === abs ? 'EEXIST' : 'ENOTDIR' }));
    }
  }
  try {
    accessSync(abs, constants.W_OK);
  } catch (e) {
    throw unwritable(abs, e);
  }
  return abs;
}

/**
 * A file about to be written: its directory must exist and be writable, and it must not be a
 * directory. With `overwrite: false`, an existing regular file is refused too (a device such as
 * /dev/null, or a FIFO, loses nothing and stays allowed): `--force` is what replaces it.
 * Writability is tried, not asked: access() says yes to root everywhere, also under /proc or on a
 * file the kernel will not let anyone open for writing, and the work would be done for nothing.
 */
export function checkOutFile(path: string, opts: { overwrite?: boolean } = {}): string {
  const abs = resolve(path);
  let exists = false;
  try {
    const st = statSync(abs);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (opts.overwrite === false && st.isFile()) {
      throw new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${abs}: the file exists (use --force to replace it)`, { details: { path: abs, exists: true } });
    }
    exists = st.isFile();
    if (!exists) return abs; // a device or a FIFO: opening one to try it could block or act
  } catch (e) {
    if (e instanceof SandtraceError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'EISDIR') throw new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${abs}: it is a directory`, { details: { path: abs } });
    if (code !== 'ENOENT') throw unwritable(abs, e);
  }
  const dir = dirname(abs);
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
    if (exists) closeSync(openSync(abs, constants.O_WRONLY)); // no O_TRUNC: the file stays as it is
    else {
      // made and removed again: nothing is left if the work fails later
      closeSync(openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
      unlinkSync(abs);
    }
  } catch (e) {
    throw unwritable(abs, e);
  }
  return abs;
}

/**
 * Refuses to write `out` when it is one of the `inputs` (the same file: device and inode, so a
 * second name or a link is caught too), whatever --force says: training would replace the data it
 * learns from. Nothing is refused when `out` does not exist yet (it cannot be an input then).
 */
export function refuseInputAsOutput(out: string, inputs: readonly string[], flag: string): void {
  let o: Stats;
  try { o = statSync(out); } catch { return; } // absent or unreachable: checkOutFile says why
  for (const i of inputs) {
    let st: Stats;
    try { st = statSync(i); } catch { continue; }
    if (st.dev === o.dev && st.ino === o.ino) {
      throw new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${out} (${flag}): it is ${i === out ? 'one of the inputs' : `the input ${i}`}, which is never replaced, not even with --force`, { details: { path: out, input: i } });
    }
  }
}

/**
 * Writes one output file of an analysis directory by a new file renamed over the name: a link
 * planted at the name (report.html -> /etc/x) is replaced, never followed, and a reader never sees
 * half a file.
 */
export async function writeOutputFile(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** What an analysis writes into its directory (analyze, replay; report re-renders the last two). */
export const ANALYSIS_FILES = ['report.json', 'report.html', 'attack-layer.json', 'dropped'] as const;

/**
 * An analysis directory about to be written: refused when it already holds an analysis (any of
 * ANALYSIS_FILES), so that a new run never silently replaces an earlier one; `--force` replaces it.
 * Whether the directory can be made and written is makeOutDir's question, not this one's.
 */
export function refuseExistingAnalysis(dir: string): void {
  const abs = resolve(dir);
  const found = ANALYSIS_FILES.find((f) => {
    try { lstatSync(join(abs, f)); return true; } catch { return false; /* absent (or unreachable: makeOutDir says why) */ }
  });
  if (found) {
    throw new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${abs}: it already holds an analysis (${found}; use --force to replace it)`, { details: { path: abs, exists: true } });
  }
}

/**
 * Removes what an earlier analysis wrote into dir (ANALYSIS_FILES, without following links), so
 * that one replaced by --force leaves none of its files behind (its dropped files in particular).
 */
export async function clearAnalysis(dir: string): Promise<void> {
  for (const f of ANALYSIS_FILES) await rm(join(resolve(dir), f), { recursive: true, force: true });
}
