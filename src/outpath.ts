// Output paths the user names (analysis directories, model files, plots): made or checked before
// any work starts, so that a bad one costs a one-line error, not an analysis or an hour of learning.
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
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

/** A file about to be written: its directory must exist and be writable, and it must not be a directory. */
export function checkOutFile(path: string): string {
  const abs = resolve(path);
  try {
    if (statSync(abs).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EISDIR') throw new SandtraceError('OUTPUT_UNWRITABLE', `cannot write ${abs}: it is a directory`, { details: { path: abs } });
    if (code !== 'ENOENT') throw unwritable(abs, e);
  }
  const dir = dirname(abs);
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw unwritable(abs, e);
  }
  return abs;
}
