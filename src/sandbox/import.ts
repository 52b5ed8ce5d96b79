// Imports a docker-save or OCI-layout archive as a sandbox base image: layers applied in order
// with whiteouts (.wh.NAME, .wh..wh..opq), cached by the archive's sha256, ownership shifted into
// the sandbox's user-namespace range. Layer extraction runs under bubblewrap with the host
// read-only, so a hostile layer (symlink tricks) can write nowhere but the new rootfs.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync, chmodSync, openSync, readSync, closeSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { SandtraceError } from '../errors.js';
import { ID_SHIFT } from './config.js';
import { execFile } from './exec.js';
import { cacheDir } from './image.js';
import { shiftOwnership } from './image-build.js';

export interface ImportedImage {
  rootfs: string; digest: string; layers: number; format: 'docker' | 'oci';
  /** Layer members dropped because they tried to write through a symlink out of the rootfs. */
  dropped: string[];
}

export function importDir(): string {
  return join(cacheDir(), 'images', 'import');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function invalid(msg: string, cause?: unknown): SandtraceError {
  return new SandtraceError('SANDBOX_IMAGE_INVALID', msg, cause === undefined ? {} : { cause });
}

/** A path inside `root` named by the archive, refusing anything that resolves outside it. */
function inside(root: string, rel: string): string {
  const p = resolve(root, rel);
  let real: string;
  try { real = realpathSync(p); } catch (e) { throw invalid(`archive names a missing file: ${rel}`, e); }
  const r = realpathSync(root);
  if (real !== r && !real.startsWith(r + sep)) throw invalid(`archive path escapes the archive: ${rel}`);
  return real;
}

function readJson(path: string): unknown {
  try { return JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw invalid(`unreadable JSON in the archive: ${path}`, e); }
}

function blob(root: string, digest: unknown): string {
  const m = typeof digest === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(digest) : null;
  if (!m) throw invalid(`bad digest in the archive: ${String(digest)}`);
  return inside(root, join('blobs', 'sha256', m[1] ?? ''));
}

/** The layer files of an extracted archive, bottom first. */
export function archiveLayers(root: string): { format: 'docker' | 'oci'; layers: string[] } {
  if (existsSync(join(root, 'index.json')) && existsSync(join(root, 'blobs'))) {
    let node = readJson(inside(root, 'index.json')) as { manifests?: Array<{ digest?: string; platform?: { os?: string; architecture?: string } }>; layers?: Array<{ digest?: string }> };
    // an index may point to another index: descend to a manifest, preferring linux/amd64
    for (let depth = 0; depth < 4 && node.manifests; depth++) {
      const ms = node.manifests;
      const pick = ms.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? ms[0];
      if (!pick) throw invalid('OCI index lists no manifest');
      node = readJson(blob(root, pick.digest)) as typeof node;
    }
    if (!Array.isArray(node.layers)) throw invalid('OCI manifest has no layers');
    return { format: 'oci', layers: node.layers.map((l) => blob(root, l.digest)) };
  }
  if (existsSync(join(root, 'manifest.json'))) {
    const mf = readJson(inside(root, 'manifest.json')) as Array<{ Layers?: unknown }>;
    const layers = Array.isArray(mf) ? mf[0]?.Layers : undefined;
    if (!Array.isArray(layers) || !layers.every((l) => typeof l === 'string')) throw invalid('docker manifest.json has no Layers');
    return { format: 'docker', layers: (layers as string[]).map((l) => inside(root, l)) };
  }
  throw new SandtraceError('INPUT_FORMAT_UNKNOWN', 'not a docker-save or OCI-layout archive (no manifest.json or index.json)');
}

/** Normalised member name ('./a/b/' -> 'a/b'); null for names that climb out. */
function norm(name: string): string | null {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return null;
  return parts.join('/');
}

/** Removes rootfs/rel without following any symlink on the way (a symlinked parent: nothing to remove). */
function safeRemove(rootfs: string, rel: string, childrenOnly = false): void {
  const parts = rel.split('/').filter(Boolean);
  let cur = rootfs;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i] ?? '');
    let st;
    try { st = lstatSync(cur); } catch { return; }
    const last = i === parts.length - 1;
    if (!last && !st.isDirectory()) return; // symlink or file as a parent: the path cannot exist below it
    if (last && childrenOnly) {
      if (!st.isDirectory()) return;
      for (const n of readdirSync(cur)) rmSync(join(cur, n), { recursive: true, force: true });
      return;
    }
  }
  if (parts.length === 0) {
    if (childrenOnly) for (const n of readdirSync(rootfs)) rmSync(join(rootfs, n), { recursive: true, force: true });
    return;
  }
  rmSync(cur, { recursive: true, force: true });
}

function isZstd(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 0);
    return b.readUInt32LE(0) === 0xfd2fb528;
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `tar -x` of `archive` into `dest` under bubblewrap: the host is read-only and /tmp, /run and
 * /dev are private, so a member written through a planted symlink lands nowhere but `dest`.
 */
function confinedTar(archive: string, dest: string, flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFile('bwrap', [
    '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--tmpfs', '/run',
    '--bind', dest, '/run/target', '--ro-bind', archive, '/run/archive',
    '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--cap-add', 'ALL',
    'tar', ...flags, '-xf', '/run/archive', '-C', '/run/target',
  ], 600000);
}

/** Applies one layer: whiteouts first (they hide lower layers), then the layer's files under bwrap. */
export async function applyLayer(rootfs: string, layer: string): Promise<string[]> {
  if (isZstd(layer)) throw invalid('zstd-compressed layers are not supported (gzip or plain tar only)');
  const list = await execFile('tar', ['-tf', layer], 300000);
  if (list.code !== 0) throw invalid(`unreadable layer ${layer}: ${list.stderr.trim()}`);
  for (const raw of list.stdout.split('\n')) {
    if (raw === '') continue;
    const name = norm(raw);
    if (name === null) continue; // tar refuses '..' members too
    const slash = name.lastIndexOf('/');
    const dir = slash < 0 ? '' : name.slice(0, slash);
    const base = slash < 0 ? name : name.slice(slash + 1);
    if (base === '.wh..wh..opq') safeRemove(rootfs, dir, true);
    else if (base.startsWith('.wh.')) safeRemove(rootfs, (dir === '' ? '' : dir + '/') + base.slice(4));
  }
  const r = await confinedTar(layer, rootfs, ['--numeric-owner', '--same-owner', '-p', '--exclude=.wh.*']);
  // members that tried to write through a symlink out of the rootfs hit the read-only host and
  // are dropped; any other error fails the import
  const errs = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/Exiting with failure status/.test(l));
  const dropped = errs.filter((l) => /Read-only file system/.test(l));
  if (r.code !== 0 && (r.code !== 2 || dropped.length !== errs.length)) {
    throw invalid(`cannot extract layer ${layer}: ${r.stderr.trim().split('\n').slice(-2).join('; ')}`);
  }
  return dropped.map((l) => l.replace(/^tar: /, '').replace(/: (Cannot|Read-only).*$/, ''));
}

/** Start of a compressed stream tar unpacks itself (gzip, bzip2, xz, zstd). */
function compressedMagic(b: Buffer): boolean {
  return (b[0] === 0x1f && b[1] === 0x8b) || b.subarray(0, 3).toString('latin1') === 'BZh'
    || b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) || (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528);
}

/** A tar header block: its checksum field (octal) is the byte sum of the block, that field read as spaces. */
function tarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  const field = b.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (b[i] as number);
  return sum === parseInt(field, 8);
}

/** tar's words for an archive that is damaged or not an archive (as opposed to a full disk, say). */
const CORRUPT_TAR = /^(gzip|bzip2|xz|zstd): |does not look like a tar archive|Unexpected EOF|unexpected end of file|not in gzip format|invalid compressed data|Skipping to next header|Damaged tar archive|Archive contains obsolescent|crc error|Corrupt input|format violated|Unknown frame descriptor/i;

/**
 * The archive named by the user, checked before any work: it exists, is a regular non-empty
 * file, and starts like a tar archive (a tar header, or a compressed stream tar unpacks). Bad
 * input is an input error naming the file, not a failed sandbox with tar's last words.
 */
export function checkArchiveFile(archive: string): void {
  let st;
  try { st = lstatSync(archive); } catch (e) { throw new SandtraceError('INPUT_MISSING', `image archive not found: ${archive}`, { cause: e }); }
  if (!st.isFile()) throw new SandtraceError('INPUT_UNREADABLE', `image archive is not a regular file: ${archive}`);
  if (st.size === 0) throw new SandtraceError('INPUT_EMPTY', `image archive is empty: ${archive}`);
  const head = Buffer.alloc(512);
  let n: number;
  try {
    const fd = openSync(archive, 'r');
    try { n = readSync(fd, head, 0, 512, 0); } finally { closeSync(fd); }
  } catch (e) {
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read image archive ${archive}: ${(e as { code?: string }).code ?? String(e)}`, { cause: e });
  }
  const b = head.subarray(0, n);
  if (!compressedMagic(b) && !tarHeader(b)) {
    throw new SandtraceError('INPUT_CORRUPT', `image archive ${archive} is not a tar archive (no tar header at its start)`, { details: { path: archive } });
  }
}

/** The rootfs of an imported archive (imported once, then cached by sha256). */
export async function importArchive(archive: string): Promise<ImportedImage> {
  checkArchiveFile(archive);
  const digest = await sha256File(archive);
  const dir = join(importDir(), digest);
  const done = join(dir, 'manifest.json');
  if (existsSync(done)) {
    const m = readJson(done) as { layers: number; format: 'docker' | 'oci'; dropped?: string[] };
    return { rootfs: join(dir, 'rootfs'), digest, layers: m.layers, format: m.format, dropped: m.dropped ?? [] };
  }
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    mkdirSync(join(tmp, 'archive'), { recursive: true, mode: 0o700 });
    mkdirSync(join(tmp, 'rootfs'), { mode: 0o755 });
    const x = await confinedTar(realpathSync(archive), join(tmp, 'archive'), ['--no-same-owner', '--no-same-permissions']);
    if (x.code !== 0) {
      const said = x.stderr.trim().split('\n');
      // a truncated or damaged archive (it started like one): the input's fault, said in tar's words
      const bad = said.find((l) => CORRUPT_TAR.test(l));
      if (bad !== undefined) throw new SandtraceError('INPUT_CORRUPT', `image archive ${archive} is damaged: ${bad.replace(/^tar: /, '')}`, { details: { path: archive } });
      throw invalid(`cannot unpack ${archive}: ${said.pop() ?? ''}`);
    }
    const { format, layers } = archiveLayers(join(tmp, 'archive'));
    const dropped: string[] = [];
    for (const layer of layers) dropped.push(...(await applyLayer(join(tmp, 'rootfs'), layer)));
    const rootfs = join(tmp, 'rootfs');
    // the sandbox copies the sample into /tmp
    if (!existsSync(join(rootfs, 'tmp'))) { mkdirSync(join(rootfs, 'tmp')); chmodSync(join(rootfs, 'tmp'), 0o1777); }
    chmodSync(rootfs, 0o755);
    shiftOwnership(rootfs, ID_SHIFT);
    rmSync(join(tmp, 'archive'), { recursive: true, force: true });
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ source: archive, sha256: digest, format, layers: layers.length, dropped, idShift: ID_SHIFT, importedAt: new Date().toISOString() }, null, 2) + '\n');
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return { rootfs: join(dir, 'rootfs'), digest, layers: layers.length, format, dropped };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
