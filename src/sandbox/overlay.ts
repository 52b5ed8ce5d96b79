// The per-analysis overlay: the image read-only below, an upper layer on a size-capped tmpfs (so a
// sample cannot fill the host disk), and the merged rootfs. changes() reads the upper layer.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, chownSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { ChangeWalk, DEFAULT_CHANGE_LIMITS, type ChangeLimits, type KnownContent, type LayerRules } from './changes.js';
import { execFile } from './exec.js';
import type { ChangeList } from './types.js';

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

export { DEFAULT_CHANGE_LIMITS, hashAndCopy, type ChangeLimits, type KnownContent } from './changes.js';

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

export interface ChangesInput {
  upper: string;
  lower: string;
  /** The merged view, when still mounted: reveals deletions hidden by opaque directories. */
  merged?: string;
  /**
   * Files to leave out while their content is unchanged (container path -> sha256, or sha256 and
   * size: compared only when the size is the same), e.g. the sample we copied in.
   */
  unchanged?: ReadonlyMap<string, string | KnownContent>;
}

/**
 * Files created, modified and deleted, from the overlay upper layer. Created/modified regular
 * files are copied under outDir/<container path> (per-file and total caps) with their sha256.
 * The whole layer is walked, then the budgets are spent by priority (changes.ts); what they left
 * out is in the result's `omitted`.
 */
export function listChanges(inp: ChangesInput, outDir: string | null, limits: ChangeLimits = DEFAULT_CHANGE_LIMITS): ChangeList {
  const walk = new ChangeWalk(limits);
  if (existsSync(inp.upper)) walk.walk(inp.upper, '', overlayRules(inp));
  return walk.finish(outDir);
}

interface OverlayDir {
  /** The lower layer's names in this directory (none when it is not a directory there). */
  lower: ReadonlySet<string>;
  /** Lower names the merged view no longer shows, already reported deleted. */
  gone: ReadonlySet<string>;
}

const NONE: ReadonlySet<string> = new Set();

/** The overlay's rules: an upper entry over a lower one is a modification, a whiteout (char 0/0) a deletion. */
function overlayRules(inp: ChangesInput): LayerRules<OverlayDir> {
  return {
    enter(cdir, _names, deleted) {
      let lower: ReadonlySet<string> = NONE;
      try { lower = new Set(readdirSync(join(inp.lower, cdir))); } catch { /* not a directory below */ }
      const gone = new Set<string>();
      // an opaque dir (or one whose lower children were whited out): lower children that the
      // merged view no longer shows were deleted
      if (inp.merged !== undefined && lower.size > 0) {
        for (const ln of lower) {
          if (!lstatSync(join(inp.merged, cdir, ln), { throwIfNoEntry: false })) { gone.add(ln); deleted(`${cdir}/${ln}`); }
        }
      }
      return { lower, gone };
    },
    entry(cpath, name, _host, st, dir) {
      const below = dir.lower.has(name);
      if (isWhiteout(st)) return below && !dir.gone.has(name) ? { change: 'deleted' } : null;
      return { change: below ? 'modified' : 'created', known: inp.unchanged?.get(cpath) };
    },
  };
}
