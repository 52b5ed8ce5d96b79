// What a sample changed in its writable layer, for both sandboxes (overlay.ts: the runc sandbox's
// overlay upper layer; rootless/index.ts: the bubblewrap sandbox's writable host directories).
//
// The budgets of the list (entries, bytes hashed, bytes copied) are the sample's to exhaust: spent
// first-come in path order, 20,000 empty files in /aaa hid /tmp/payload from the report. So the
// layer is walked whole first (lstat only; memory bounded), then the budgets are spent by
// priority, and what did not fit is counted by where it was, for the report's warnings:
//
// - entries (maxEntries): four kinds take turns: files that look executable (exec bit, or ELF,
//   "#!", PE "MZ", zip, gzip, xz, bzip2, zstd or 7z magic), other modifications of image files,
//   deletions of image files, other new entries; so a flood of one kind leaves each other kind at
//   least a quarter of the list. Within a kind, each directory level splits its share evenly among
//   what it holds (subdirectories and entries), larger shares first: a flood in one directory,
//   however deep, is listed after what is elsewhere.
// - hashing (hashBytes) and copying (totalBytes): listed regular files, those holding their data
//   before sparse ones (only sparse files can claim more than the disk cap), executables first,
//   then image modifications, then the rest, smaller before larger; hard links are read once.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ChangeList, ChangeOmissions, FileChange, Place } from './types.js';

export interface ChangeLimits {
  /** Bytes copied at most per file (the copy holds its first bytes). */
  perFileBytes: number;
  /** Bytes copied at most, all files together. */
  totalBytes: number;
  /**
   * Bytes hashed at most, all files together: a file that does not fit in what is left is listed
   * with its size and first bytes, sha256 null. Real data cannot exceed the sandbox's disk cap;
   * only sparse files come near this (hard links are hashed once).
   */
  hashBytes?: number;
  /** Entries listed at most. */
  maxEntries?: number;
  /** Directory depth walked at most: a sample cannot make the walk explode. */
  maxDepth?: number;
  /**
   * Memory of the walk: characters of the paths kept (paths can be 4,000 characters deep in
   * nested directories) and entries kept, at most. Past either, the entries least likely to be
   * listed (new files without the exec bit, longest paths first) are counted, not kept.
   */
  maxPathChars?: number;
  maxKept?: number;
  /**
   * Entries examined at most: the runc sandbox's tmpfs holds 262,144 inodes, the rootless
   * sandbox's host directories are not capped; past this the walk stops, and says so.
   */
  maxWalk?: number;
}

export const DEFAULT_CHANGE_LIMITS: ChangeLimits = {
  perFileBytes: 16 << 20, totalBytes: 64 << 20, hashBytes: 1 << 30, maxEntries: 20_000, maxDepth: 64,
  maxPathChars: 16 << 20, maxKept: 1 << 19, maxWalk: 1 << 20,
};

/** Content known before the run (the sample copied in, a file seeded from the image): no change while it is the same. */
export interface KnownContent { sha256: string; size: number }

/** hashAndCopy's read buffer (it is synchronous: one at a time). */
const READ_BUF = Buffer.alloc(1 << 16);

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
    const buf = READ_BUF;
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

/** What a layer's rules make of one entry found by the walk. */
export interface EntryChange {
  change: FileChange['change'];
  /** For a regular file: its content before the run; the file is no change while it is the same. */
  known?: KnownContent | string | undefined;
}

/**
 * How one kind of writable layer tells changes (the overlay's lower layer and whiteouts; the
 * rootless sandbox's seeded copies). `S`: what the rules keep per directory walked.
 */
export interface LayerRules<S> {
  /**
   * A directory about to be walked (container path, '' for /), whose entries are `names`: state
   * for judging them; deletions found there (e.g. under an opaque directory) go to `deleted`.
   */
  enter(cdir: string, names: readonly string[], deleted: (cpath: string) => void): S;
  /** An entry that is not a directory (directories are walked): its change, or null for none. */
  entry(cpath: string, name: string, host: string, st: Stats, dir: S): EntryChange | null;
}

/** The four kinds that take turns for the list's entries, in this order at each turn. */
const EXEC = 0, MODIFIED = 1, DELETED = 2, CREATED = 3;

interface Candidate {
  path: string;
  /** Index of the walk root the host file is under; -1 for a deletion (no host file). */
  root: number;
  change: FileChange['change'];
  isFile: boolean;
  size: number;
  execBit: boolean;
  sparse: boolean;
  /** dev:ino of a file with more than one link (read once), else ''. */
  link: string;
  known?: KnownContent | string | undefined;
  /** The kind (EXEC ... CREATED), once classified. */
  kind: number;
  /** sha256 already computed by the unchanged check. */
  sha?: string;
  /** An entry described, not found on the host (a VM guest's listing): its magic and hash as given. */
  described?: { magic: boolean; sha256: string | null };
}

/**
 * What a listing of described entries (ChangeWalk.describe: a VM guest's) left out besides
 * ChangeOmissions: files listed without a hash (the describer's hashing budget ran out), and why
 * the listing itself is incomplete, when it is.
 */
export interface DescribedOmissions extends ChangeOmissions {
  notHashed?: number;
  notHashedAt?: Place[];
  /** Why files were left unhashed, when not the hashing budget (the guest's deadline). */
  notHashedWhy?: string;
  incomplete?: string;
}

/** How far past the cost a file claims: a file holding at least all but 1 MiB of its size is not sparse. */
const SPARSE_SLACK = 1 << 20;

/** The magic numbers of executables, scripts and archives: what a payload usually is. */
export function looksExecutable(head: Buffer): boolean {
  const b = (i: number) => head[i];
  if (head.length >= 4 && b(0) === 0x7f && b(1) === 0x45 && b(2) === 0x4c && b(3) === 0x46) return true; // ELF
  if (head.length >= 2 && b(0) === 0x23 && b(1) === 0x21) return true; // #! script
  if (head.length >= 2 && b(0) === 0x4d && b(1) === 0x5a) return true; // MZ (PE, DOS)
  if (head.length >= 4 && b(0) === 0x50 && b(1) === 0x4b && ((b(2) === 3 && b(3) === 4) || (b(2) === 5 && b(3) === 6))) return true; // zip, jar, apk
  if (head.length >= 2 && b(0) === 0x1f && b(1) === 0x8b) return true; // gzip
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true; // xz
  if (head.length >= 4 && b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68 && (b(3) ?? 0) >= 0x31 && (b(3) ?? 0) <= 0x39) return true; // bzip2
  if (head.length >= 4 && b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return true; // zstd
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]))) return true; // 7z
  return false;
}

const HEAD_BUF = Buffer.alloc(8);

/** The first bytes of a file the walk found regular (the sample is dead: it cannot swap it since; O_NONBLOCK all the same). */
function looksExecutableFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return false;
  }
  try {
    return looksExecutable(HEAD_BUF.subarray(0, readSync(fd, HEAD_BUF, 0, HEAD_BUF.length, 0)));
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Counts of entries by directory, bounded: directories are named by their first three
 * components at most, and by fewer when more than `maxKeys` places were seen.
 */
export class PlaceCounter {
  private counts = new Map<string, number>();
  private level = 3;
  total = 0;
  constructor(private readonly maxKeys = 1024) {}

  private key(dir: string): string {
    if (dir === '/' || this.level <= 0) return '/';
    let i = 0;
    for (let k = 0; k < this.level; k++) {
      i = dir.indexOf('/', i + 1);
      if (i < 0) return dir;
    }
    return dir.slice(0, i);
  }

  /** One entry (its path) more, or `n`. */
  add(path: string, n = 1): void {
    this.addDir(dirOf(path), n);
  }

  addDir(dir: string, n = 1): void {
    if (n <= 0) return;
    this.total += n;
    const k = this.key(dir);
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
    while (this.counts.size > this.maxKeys && this.level > 0) {
      this.level--;
      const old = this.counts;
      this.counts = new Map();
      for (const [d, c] of old) { const k2 = this.key(d); this.counts.set(k2, (this.counts.get(k2) ?? 0) + c); }
    }
  }

  /**
   * Where most of the entries were: the deepest directories holding at least 5% of them each
   * (hierarchical heavy hitters: a directory is named for what its named subdirectories do not
   * already account for), at most `k`, largest first; what is left is counted under ''.
   */
  top(k = 5): Place[] {
    if (this.total === 0) return [];
    const theta = Math.max(1, Math.ceil(this.total * 0.05));
    const nodes = new Map<string, { depth: number; own: number; carry: number }>();
    const depthOf = (d: string) => (d === '/' ? 0 : d.split('/').length - 1);
    for (const [d, c] of this.counts) {
      let dir = d;
      const n = nodes.get(dir) ?? { depth: depthOf(dir), own: 0, carry: 0 };
      n.own += c;
      nodes.set(dir, n);
      while (dir !== '/') {
        dir = dirOf(dir);
        if (!nodes.has(dir)) nodes.set(dir, { depth: depthOf(dir), own: 0, carry: 0 });
      }
    }
    const named: Place[] = [];
    for (const [dir, n] of [...nodes.entries()].sort((a, b) => b[1].depth - a[1].depth || cmpStr(a[0], b[0]))) {
      const r = n.own + n.carry;
      if (r >= theta) named.push({ dir, count: r });
      else if (dir !== '/') { const p = nodes.get(dirOf(dir)); if (p) p.carry += r; }
      else if (r > 0) named.push({ dir: '', count: r });
    }
    const byCount = named.filter((p) => p.dir !== '').sort((a, b) => b.count - a.count || cmpStr(a.dir, b.dir));
    const shown = byCount.slice(0, k);
    const rest = this.total - shown.reduce((s, p) => s + p.count, 0);
    if (rest > 0) shown.push({ dir: '', count: rest });
    return shown;
  }
}

/**
 * One change listing: walk() each writable tree (lstat only), add() what is known otherwise
 * (deletions), then finish() chooses, hashes and copies by priority.
 */
export class ChangeWalk {
  private readonly roots: { host: string; inside: string }[] = [];
  private kept: Candidate[] = [];
  private keptChars = 0;
  /** Entries whose retention key is this or worse are counted, not kept (the walk's memory bound). */
  private cut: Candidate | undefined;
  private evicted = 0;
  private readonly notListed = new PlaceCounter();
  private readonly deep = new PlaceCounter();
  private walked = 0;
  private stopped = false;
  private readonly maxDepth: number;
  private readonly maxWalk: number;
  private readonly maxChars: number;
  private readonly maxKept: number;

  constructor(private readonly limits: ChangeLimits = DEFAULT_CHANGE_LIMITS) {
    this.maxDepth = limits.maxDepth ?? Infinity;
    this.maxWalk = limits.maxWalk ?? Infinity;
    this.maxChars = limits.maxPathChars ?? Infinity;
    this.maxKept = limits.maxKept ?? Infinity;
  }

  /** Walks the host directory `host`, seen in the sandbox at `inside` ('' for /). */
  walk<S>(host: string, inside: string, rules: LayerRules<S>): void {
    const root = this.roots.push({ host, inside }) - 1;
    const visit = (hdir: string, cdir: string, depth: number): void => {
      if (this.stopped) return;
      let names: string[];
      try { names = readdirSync(hdir); } catch { return; }
      const state = rules.enter(cdir, names, (p) => this.add({ path: p, change: 'deleted' }));
      for (const name of names) {
        if (this.walked >= this.maxWalk) { this.stopped = true; return; }
        this.walked++;
        const h = `${hdir}/${name}`;
        const c = `${cdir}/${name}`;
        const st = lstatSync(h, { throwIfNoEntry: false });
        if (!st) continue;
        if (st.isDirectory()) {
          if (depth + 1 > this.maxDepth) this.deep.addDir(c);
          else visit(h, c, depth + 1);
          if (this.stopped) return;
          continue;
        }
        const v = rules.entry(c, name, h, st, state);
        if (v) this.push(c, root, v, st);
      }
    };
    visit(host, inside, 0);
  }

  /** An entry found otherwise than by walk(): a deletion (no host file). */
  add(e: { path: string; change: 'deleted' }): void {
    this.keep({ path: e.path, root: -1, change: e.change, isFile: false, size: 0, execBit: false, sparse: false, link: '', kind: DELETED });
  }

  private push(path: string, root: number, v: EntryChange, st: Stats): void {
    const isFile = st.isFile();
    this.keep({
      path, root, change: v.change, isFile, size: v.change === 'deleted' ? 0 : st.size,
      execBit: isFile && (st.mode & 0o111) !== 0,
      sparse: isFile && st.size > st.blocks * 512 + SPARSE_SLACK,
      link: isFile && st.nlink > 1 ? `${st.dev}:${st.ino}` : '',
      known: isFile ? v.known : undefined, kind: -1,
    });
  }

  /**
   * A regular file described rather than found on the host (a VM guest's listing: size, exec bit,
   * whether its first bytes look executable, its hash or null when not hashed): chosen with the
   * same priorities as walked ones, never read.
   */
  describe(e: { path: string; change: FileChange['change']; size: number; execBit: boolean; magic: boolean; sha256: string | null }): void {
    this.keep({ path: e.path, root: -1, change: e.change, isFile: true, size: e.size, execBit: e.execBit, sparse: false, link: '', kind: -1,
      described: { magic: e.magic, sha256: e.sha256 } });
  }

  /** `n` entries under `dir` known only by count (a describer's listing left them out): not listed, counted where they were. */
  addUnlisted(dir: string, n: number): void {
    if (n <= 0) return;
    this.evicted += n;
    this.notListed.addDir(dir, n);
  }

  /** What the walk keeps when its memory is short: image changes, then new executables, shortest paths first. */
  private static retention(a: Candidate, b: Candidate): number {
    const ra = a.change !== 'created' ? 0 : a.execBit ? 1 : 2;
    const rb = b.change !== 'created' ? 0 : b.execBit ? 1 : 2;
    return ra - rb || a.path.length - b.path.length || cmpStr(a.path, b.path);
  }

  private keep(c: Candidate): void {
    if (this.cut && ChangeWalk.retention(c, this.cut) >= 0) {
      this.evicted++;
      this.notListed.add(c.path);
      return;
    }
    this.kept.push(c);
    this.keptChars += c.path.length;
    if (this.keptChars > this.maxChars || this.kept.length > this.maxKept) this.compact();
  }

  /** Over the walk's memory: keep the best three quarters, count the rest. */
  private compact(): void {
    this.kept.sort(ChangeWalk.retention);
    const chars = this.maxChars * 0.75, count = Math.floor(this.maxKept * 0.75);
    let n = 0, used = 0;
    for (; n < this.kept.length && n < count; n++) {
      const len = (this.kept[n] as Candidate).path.length;
      if (used + len > chars) break;
      used += len;
    }
    const out = this.kept.splice(n);
    this.cut = out[0];
    this.keptChars = used;
    this.evicted += out.length;
    for (const c of out) this.notListed.add(c.path);
  }

  private hostOf(c: Candidate): string {
    const r = this.roots[c.root] as { host: string; inside: string };
    return r.host + c.path.slice(r.inside.length);
  }

  /**
   * Chooses what to list (maxEntries), hashes and copies it into outDir/<container path> (null:
   * no copies) within the budgets, in priority order; returns the list sorted by path, with what
   * was left out in `omitted`.
   */
  finish(outDir: string | null): ChangeList {
    const lim = this.limits;
    let hashLeft = lim.hashBytes ?? Infinity;
    // files known before the run are no change while their content is the same (compared only
    // when the size is: a known file the sample grew to exabytes costs nothing to tell)
    const cands: Candidate[] = [];
    for (const c of this.kept) {
      if (c.isFile && c.known !== undefined) {
        const known = typeof c.known === 'string' ? { sha256: c.known, size: c.size } : c.known;
        if (known.size === c.size) {
          const same = hashAndCopy(this.hostOf(c), null, 0, hashLeft);
          hashLeft -= same?.read ?? 0;
          if (same?.sha256 === known.sha256) continue;
          if (same?.sha256) c.sha = same.sha256;
        }
      }
      cands.push(c);
    }
    this.kept = [];
    for (const c of cands) c.kind = this.kindOf(c);

    // entries: the kinds take turns, each in its fair-across-directories order
    const byKind: Candidate[][] = [[], [], [], []];
    for (const c of cands) (byKind[c.kind] as Candidate[]).push(c);
    const orders = byKind.map((k) => fairOrder(k));
    const maxEntries = this.limits.maxEntries ?? Infinity;
    const listed: Candidate[] = [];
    for (let i = 0, more = true; more && listed.length < maxEntries; i++) {
      more = false;
      for (const o of orders) {
        const c = o[i];
        if (c === undefined) continue;
        more = true;
        if (listed.length < maxEntries) listed.push(c);
        else break;
      }
    }
    const chosen = new Set(listed);
    for (const c of cands) if (!chosen.has(c)) this.notListed.add(c.path);

    // hashing and copying: listed regular files, by content priority
    const files = listed.filter((c) => c.isFile).sort((a, b) => contentOrder(a, b, lim.perFileBytes));
    let copyLeft = lim.totalBytes;
    const notCopied = new PlaceCounter();
    let notCopiedFiles = 0, cutCopies = 0, bytesLeftOut = 0;
    const links = new Map<string, FileChange>();
    const out: FileChange[] = [];
    const notHashed = new PlaceCounter();
    for (const c of files) {
      const base = { path: c.path, change: c.change };
      if (c.described) {
        // hashed (or not) by whoever described it; nothing here to read or copy
        const fc: FileChange = { ...base, size: c.size, sha256: c.described.sha256, truncated: false };
        if (fc.sha256 === null) { fc.unhashed = true; notHashed.add(c.path); }
        out.push(fc);
        continue;
      }
      const twin = c.link ? links.get(c.link) : undefined;
      if (twin) {
        // another link to a file already read: its hash and copy
        const fc: FileChange = { ...base, size: twin.size, sha256: twin.sha256, truncated: twin.truncated };
        if (twin.unhashed) fc.unhashed = true;
        if (twin.copy !== undefined) fc.copy = twin.copy;
        out.push(fc);
        continue;
      }
      const dst = outDir === null ? null : join(outDir, c.path);
      const want = Math.min(lim.perFileBytes, c.size);
      const cap = Math.max(0, Math.min(lim.perFileBytes, copyLeft));
      const hc = c.sha !== undefined ? hashAndCopy(this.hostOf(c), dst, cap, -1) : hashAndCopy(this.hostOf(c), dst, cap, hashLeft);
      if (!hc) continue;
      const sha256 = c.sha ?? hc.sha256;
      copyLeft -= hc.copied;
      if (c.sha === undefined && hc.size <= hashLeft) hashLeft -= hc.read; // what hashing it read
      if (dst !== null && cap < want) {
        // the total copy budget, not the per-file cap, left this out
        if (hc.copied === 0) notCopiedFiles++; else cutCopies++;
        bytesLeftOut += want - hc.copied;
        notCopied.add(c.path);
      }
      const fc: FileChange = { ...base, size: hc.size, sha256, truncated: hc.copied < hc.size };
      if (sha256 === null) fc.unhashed = true;
      if (dst !== null && hc.wrote) fc.copy = dst;
      if (c.link) links.set(c.link, fc);
      out.push(fc);
    }
    for (const c of listed) {
      // symlinks, fifos, sockets, device nodes: reported, never copied or followed; deletions
      if (!c.isFile) out.push({ path: c.path, change: c.change, size: c.change === 'deleted' ? 0 : c.size, sha256: null, truncated: false });
    }
    const result = out.sort((a, b) => cmpStr(a.path, b.path)) as ChangeList;
    const omitted: ChangeOmissions = {
      found: cands.length + this.evicted, listed: result.length,
      notListed: this.notListed.total, notListedAt: this.notListed.top(),
      walked: this.walked, walkStopped: this.stopped,
      deepDirs: this.deep.total, deepDirsAt: this.deep.top(),
      notCopied: notCopiedFiles, cutCopies, copyBytesLeftOut: bytesLeftOut, notCopiedAt: notCopied.top(),
      ...(notHashed.total ? { notHashed: notHashed.total, notHashedAt: notHashed.top() } : {}),
    } satisfies DescribedOmissions;
    // not enumerable: the list still compares and serialises as the plain list of changes
    Object.defineProperty(result, 'omitted', { value: omitted, enumerable: false, writable: true, configurable: true });
    return result;
  }

  private kindOf(c: Candidate): number {
    if (c.change === 'deleted') return DELETED;
    if (c.described) return c.execBit || c.described.magic ? EXEC : c.change === 'modified' ? MODIFIED : CREATED;
    if (c.isFile && (c.execBit || (c.size >= 2 && looksExecutableFile(this.hostOf(c))))) return EXEC;
    return c.change === 'modified' ? MODIFIED : CREATED;
  }
}

/** Hashing and copying order: data before sparse claims, executables, image modifications, smaller first. */
function contentOrder(a: Candidate, b: Candidate, perFile: number): number {
  return Number(a.sparse) - Number(b.sparse) || a.kind - b.kind
    || Math.min(a.size, perFile) - Math.min(b.size, perFile) || a.size - b.size || cmpStr(a.path, b.path);
}

/** Within a directory: the exec bit first, then files with content (an empty one tells only its name), smaller first. */
function inDirOrder(a: Candidate, b: Candidate): number {
  return Number(b.execBit) - Number(a.execBit) || Number(a.size === 0) - Number(b.size === 0) || a.size - b.size || cmpStr(a.path, b.path);
}

/**
 * Orders entries fairly across directories: from /, each directory splits its share evenly among
 * what it holds of these entries (each subdirectory holding some, each entry); larger shares
 * first, equal shares in turns (first of each directory, then second, ...).
 */
function fairOrder(items: Candidate[]): Candidate[] {
  interface Dir { parent: Dir | null; fan: number; key: number | undefined; members: Candidate[]; name: string }
  const dirs = new Map<string, Dir>();
  const root: Dir = { parent: null, fan: 0, key: 0, members: [], name: '/' };
  dirs.set('/', root);
  const dirFor = (path: string): Dir => {
    const d = dirOf(path);
    let found = dirs.get(d);
    if (found) return found;
    // create the missing chain up to a known ancestor
    const chain: [string, Dir][] = [];
    let p = d;
    let anc: Dir | undefined;
    while (!(anc = dirs.get(p))) {
      const n: Dir = { parent: null, fan: 0, key: undefined, members: [], name: '' };
      chain.push([p, n]);
      p = dirOf(p);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const [name, n] = chain[i] as [string, Dir];
      n.parent = anc;
      anc.fan++;
      dirs.set(name, n);
      anc = n;
    }
    found = chain[0]?.[1] as Dir;
    return found;
  };
  for (const c of items) {
    const d = dirFor(c.path);
    d.fan++;
    d.members.push(c);
  }
  const keyOf = (d: Dir): number => {
    const up: Dir[] = [];
    let x: Dir = d;
    while (x.key === undefined) { up.push(x); x = x.parent as Dir; }
    for (let i = up.length - 1; i >= 0; i--) {
      const n = up[i] as Dir;
      const par = n.parent as Dir;
      n.key = (par.key as number) + Math.log2(par.fan);
    }
    return d.key as number;
  };
  // by share (largest first), dirs of equal share in turns: the first of each, then the second, ...
  const groups = new Map<number, Dir[]>();
  for (const [name, d] of dirs) {
    if (d.members.length === 0) continue;
    const share = Math.round((keyOf(d) + Math.log2(d.fan)) * 1e9) / 1e9;
    d.members.sort(inDirOrder);
    d.name = name;
    const g = groups.get(share);
    if (g) g.push(d); else groups.set(share, [d]);
  }
  const out: Candidate[] = [];
  for (const share of [...groups.keys()].sort((a, b) => a - b)) {
    const g = (groups.get(share) as Dir[]).sort((a, b) => cmpStr(a.name, b.name));
    let most = 0;
    for (const d of g) most = Math.max(most, d.members.length);
    for (let r = 0; r < most; r++) for (const d of g) { const c = d.members[r]; if (c) out.push(c); }
  }
  return out;
}

/** `20,000`: counts in messages. */
export const fmt = (n: number) => n.toLocaleString('en-US');
const mib = (n: number) => `${(n / 1048576).toFixed(n < 10 << 20 ? 1 : 0)} MiB`;

/** `1,204 under /aaa, 3 elsewhere`: where a PlaceCounter's entries were. */
export function places(at: readonly Place[]): string {
  return at.map((p) => (p.dir === '' ? `${fmt(p.count)} elsewhere` : `${fmt(p.count)} under ${p.dir}`)).join(', ');
}

/** The report's warnings for what a change listing left out (nothing when it left nothing out). */
export function changeWarnings(o: DescribedOmissions, limits: ChangeLimits = DEFAULT_CHANGE_LIMITS): { code: string; message: string }[] {
  const w: { code: string; message: string }[] = [];
  const parts: string[] = [];
  // a listing that did not finish (a VM guest's cut by its deadline): said first, in its own words
  if (o.incomplete) w.push({ code: 'REPORT_LIMITED', message: `the list of dropped files is incomplete: ${o.incomplete}` });
  if (o.notListed > 0) {
    parts.push(`${fmt(o.found)} changes found, ${fmt(o.listed)} listed; not listed: ${places(o.notListedAt)} (executables, scripts and archives, modified image files, deleted image files and other new files were listed in turns, each spread evenly across directories)`);
  }
  if (o.deepDirs > 0) parts.push(`${fmt(o.deepDirs)} directories deeper than ${limits.maxDepth ?? '?'} levels not walked: ${places(o.deepDirsAt)}`);
  if (o.walkStopped) parts.push(`the walk stopped after ${fmt(o.walked)} entries: the rest of the writable layer was not examined`);
  if (parts.length) w.push({ code: 'REPORT_LIMITED', message: `the sample changed more files than the dropped and deleted lists hold: ${parts.join('; ')}` });
  if (o.notHashed) {
    w.push({ code: 'HASHES_LIMITED', message: `${fmt(o.notHashed)} listed file(s) have no sha256 (${o.notHashedWhy ?? 'the hashing budget ran out first'}; executables, scripts and archives were hashed first, then smaller files before larger): ${places(o.notHashedAt ?? [])}` });
  }
  if (o.notCopied + o.cutCopies > 0) {
    w.push({
      code: 'COPIES_LIMITED',
      message: `the copies of dropped files are capped at ${mib(limits.totalBytes)} in all: ${o.notCopied ? `${fmt(o.notCopied)} listed file(s) not copied` : ''}${o.notCopied && o.cutCopies ? ' and ' : ''}${o.cutCopies ? `${fmt(o.cutCopies)} copied in part` : ''} (${mib(o.copyBytesLeftOut)} left out): ${places(o.notCopiedAt)}; their size and sha256 are listed (copied first: files holding their data before sparse ones, executables, scripts and archives, then modified image files, smaller first)`,
    });
  }
  return w;
}
