// The per-analysis overlay: the image read-only below, an upper layer on a size-capped tmpfs (so a
// sample cannot fill the host disk), and the merged rootfs. changes() reads the upper layer.
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeSync, chownSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { execFile } from './exec.js';
import type { FileChange } from './types.js';

export interface OverlayDirs { tmpfs: string; upper: string; work: string; merged: string; lower: string }

export function overlayDirs(workDir: string, lower: string): OverlayDirs {
  const tmpfs = join(workDir, 'overlay');
  return { tmpfs, upper: join(tmpfs, 'upper'), work: join(tmpfs, 'work'), merged: join(workDir, 'rootfs'), lower };
}

export function isMountPoint(path: string): boolean {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[4] === path);
  } catch {
    return false;
  }
}

export async function mountOverlay(d: OverlayDirs, sizeMiB: number, rootOwner: { uid: number; gid: number; mode: number }): Promise<void> {
  mkdirSync(d.tmpfs, { recursive: true, mode: 0o700 });
  mkdirSync(d.merged, { recursive: true, mode: 0o755 });
  let r = await execFile('mount', ['-t', 'tmpfs', '-o', `size=${Math.max(1, Math.floor(sizeMiB))}m,nr_inodes=262144,mode=0700,nosuid,nodev`, 'sandtrace-upper', d.tmpfs]);
  if (r.code !== 0) throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `cannot mount the upper tmpfs: ${r.stderr.trim()}`);
  mkdirSync(d.upper, { mode: rootOwner.mode & 0o7777 });
  mkdirSync(d.work, { mode: 0o700 });
  // the merged root takes the upper dir's owner: make it the image root's
  chownSync(d.upper, rootOwner.uid, rootOwner.gid);
  r = await execFile('mount', ['-t', 'overlay', '-o', `lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work}`, 'sandtrace-rootfs', d.merged]);
  if (r.code !== 0) throw new SandtraceError('SANDBOX_RUNTIME_FAILED', `cannot mount the overlay rootfs: ${r.stderr.trim()}`);
}

/** Unmounts merged then the tmpfs; lazily if something still holds them. Returns what stays mounted. */
export async function unmountOverlay(d: OverlayDirs): Promise<string[]> {
  const left: string[] = [];
  for (const m of [d.merged, d.tmpfs]) {
    if (!isMountPoint(m)) continue;
    let r = await execFile('umount', [m]);
    if (r.code !== 0) r = await execFile('umount', ['-l', m]);
    if (isMountPoint(m)) left.push(m);
  }
  return left;
}

export interface ChangeLimits {
  perFileBytes: number;
  totalBytes: number;
  /**
   * Bytes hashed at most, all files together: a file that does not fit in what is left is listed
   * with its size and first bytes, sha256 null. Real data cannot exceed the sandbox's disk cap;
   * only sparse files (or many links to one) come near this.
   */
  hashBytes?: number;
  /** Entries listed at most, and directory depth walked at most: a sample cannot make the walk explode. */
  maxEntries?: number;
  maxDepth?: number;
}
export const DEFAULT_CHANGE_LIMITS: ChangeLimits = { perFileBytes: 16 << 20, totalBytes: 64 << 20, hashBytes: 1 << 30, maxEntries: 20_000, maxDepth: 64 };

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function lstatOrNull(p: string): Stats | null {
  try { return lstatSync(p); } catch { return null; }
}

/**
 * Hashes a regular file and copies at most `maxCopy` bytes of it; never follows a symlink
 * (O_NOFOLLOW) and refuses anything that is not a regular file once opened. A file larger than
 * `maxHash` is not hashed (sha256 null) and only its first `maxCopy` bytes are read: a sparse file
 * costs the sample no disk but can claim exabytes, which would take centuries to read.
 */
export function hashAndCopy(src: string, dst: string | null, maxCopy: number, maxHash = Infinity): { sha256: string | null; size: number; copied: number; read: number; wrote: boolean } | null {
  let fd: number;
  try {
    fd = openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return null;
  }
  let out = -1;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return null;
    const hashing = st.size <= maxHash;
    if (!hashing && (dst === null || maxCopy <= 0)) return { sha256: null, size: st.size, copied: 0, read: 0, wrote: false };
    if (dst !== null && maxCopy > 0) {
      try {
        mkdirSync(dirname(dst), { recursive: true });
        out = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
      } catch {
        out = -1; // e.g. a path too long for the output dir: listed and hashed, not copied
      }
    }
    const h = createHash('sha256');
    const buf = Buffer.alloc(1 << 16);
    let size = 0;
    let copied = 0;
    for (;;) {
      // hashing: never more than maxHash (one byte over tells a file that grew); not hashing: the
      // copy's bytes only
      const want = Math.min(buf.length, (hashing ? maxHash + 1 : out >= 0 ? maxCopy : 0) - size);
      if (want <= 0) break;
      const n = readSync(fd, buf, 0, want, null);
      if (n <= 0) break;
      if (hashing) h.update(buf.subarray(0, n));
      if (out >= 0 && copied < maxCopy) {
        const take = Math.min(n, maxCopy - copied);
        writeSync(out, buf, 0, take);
        copied += take;
      }
      size += n;
    }
    const whole = hashing && size <= maxHash;
    return { sha256: whole ? h.digest('hex') : null, size: whole ? size : Math.max(size, st.size), copied, read: size, wrote: out >= 0 };
  } finally {
    closeSync(fd);
    if (out >= 0) closeSync(out);
  }
}

export interface ChangesInput {
  upper: string;
  lower: string;
  /** The merged view, when still mounted: reveals deletions hidden by opaque directories. */
  merged?: string;
  /** Files to leave out while their content is unchanged (container path -> sha256), e.g. the sample we copied in. */
  unchanged?: ReadonlyMap<string, string>;
}

/**
 * Files created, modified and deleted, from the overlay upper layer. Created/modified regular
 * files are copied under outDir/<container path> (per-file and total caps) with their sha256.
 */
export function listChanges(inp: ChangesInput, outDir: string | null, limits: ChangeLimits = DEFAULT_CHANGE_LIMITS): FileChange[] {
  const changes: FileChange[] = [];
  let budget = limits.totalBytes;
  let hashBudget = limits.hashBytes ?? Infinity;
  const deleted = new Set<string>();
  const markDeleted = (cpath: string): void => {
    if (deleted.has(cpath)) return;
    deleted.add(cpath);
    changes.push({ path: cpath, change: 'deleted', size: 0, sha256: null, truncated: false });
  };
  const maxEntries = limits.maxEntries ?? Infinity;
  const maxDepth = limits.maxDepth ?? Infinity;
  const walk = (rel: string, depth: number): void => {
    if (depth > maxDepth || changes.length >= maxEntries) return;
    const udir = join(inp.upper, rel);
    let names: string[];
    try { names = readdirSync(udir).sort(); } catch { return; }
    for (const name of names) {
      if (changes.length >= maxEntries) return;
      const r = rel === '' ? name : `${rel}/${name}`;
      const cpath = '/' + r;
      const st = lstatOrNull(join(inp.upper, r));
      if (!st) continue;
      const lst = lstatOrNull(join(inp.lower, r));
      if (isWhiteout(st)) {
        if (lst) markDeleted(cpath);
        continue;
      }
      if (st.isDirectory()) {
        // an opaque dir (or one whose lower children were whited out): lower children that the
        // merged view no longer shows were deleted
        if (lst?.isDirectory() && inp.merged !== undefined) {
          let lowerNames: string[] = [];
          try { lowerNames = readdirSync(join(inp.lower, r)); } catch { /* unreadable */ }
          for (const ln of lowerNames.sort()) {
            if (!lstatOrNull(join(inp.merged, r, ln))) markDeleted(`${cpath}/${ln}`);
          }
        }
        walk(r, depth + 1);
        continue;
      }
      const change: FileChange['change'] = lst ? 'modified' : 'created';
      if (st.isFile()) {
        const dst = outDir === null ? null : join(outDir, r);
        const cap = Math.min(limits.perFileBytes, budget);
        const known = inp.unchanged?.get(cpath);
        if (known !== undefined) {
          const same = hashAndCopy(join(inp.upper, r), null, 0, hashBudget);
          hashBudget -= same?.read ?? 0;
          if (same?.sha256 === known) continue;
        }
        const hc = hashAndCopy(join(inp.upper, r), dst, cap, hashBudget);
        if (!hc) continue;
        budget -= hc.copied;
        hashBudget -= hc.read;
        const fc: FileChange = { path: cpath, change, size: hc.size, sha256: hc.sha256, truncated: hc.copied < hc.size };
        if (hc.sha256 === null) fc.unhashed = true;
        if (dst !== null && hc.wrote) fc.copy = dst;
        changes.push(fc);
      } else {
        // symlinks, fifos, sockets, device nodes: reported, never copied or followed
        changes.push({ path: cpath, change, size: st.size, sha256: null, truncated: false });
      }
    }
  };
  if (existsSync(inp.upper)) walk('', 0);
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
