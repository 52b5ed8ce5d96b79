// Overlay change detection on a real overlayfs mount: created, modified and deleted files,
// whiteouts and opaque directories, size caps, and never following symlinks on copy-out.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync, renameSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMountPoint, listChanges, mountOverlay, overlayDirs, unmountOverlay } from './overlay.js';

const root = mkdtempSync(join(tmpdir(), 'sandtrace-overlay-'));
const lower = join(root, 'lower');
const d = overlayDirs(join(root, 'work'), lower);
after(async () => {
  await unmountOverlay(d);
  rmSync(root, { recursive: true, force: true });
});
const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

function put(base: string, rel: string, content: string | Buffer): void {
  mkdirSync(join(base, rel, '..'), { recursive: true });
  writeFileSync(join(base, rel), content);
}

test('created, modified and deleted files incl. whiteouts and opaque dirs; caps; no symlink followed', async () => {
  assert.equal(process.getuid?.(), 0, 'overlay tests need root (mount)');
  for (const f of ['a/keep', 'a/del', 'a/sub/x', 'o/1', 'o/2', 'm/file', 'r/old']) put(lower, f, `${f}\n`);
  const hostSecret = join(root, 'host-secret');
  writeFileSync(hostSecret, 'HOST\n');
  await mountOverlay(d, 64, { uid: 0, gid: 0, mode: 0o755 });
  assert.ok(isMountPoint(d.merged) && isMountPoint(d.tmpfs));
  const m = d.merged;
  appendFileSync(join(m, 'm/file'), 'more\n');
  rmSync(join(m, 'a/del'));
  rmSync(join(m, 'a/sub'), { recursive: true });
  rmSync(join(m, 'o'), { recursive: true });
  mkdirSync(join(m, 'o'));
  writeFileSync(join(m, 'o/3'), 'three\n');
  renameSync(join(m, 'r/old'), join(m, 'r/new'));
  put(m, 'n/new.txt', 'new\n');
  const big = Buffer.alloc(3 << 20, 7);
  writeFileSync(join(m, 'n/big.bin'), big);
  symlinkSync(hostSecret, join(m, 'n/link'));
  execFileSync('mkfifo', [join(m, 'n/fifo')]);

  const out = join(root, 'out');
  const changes = listChanges({ upper: d.upper, lower, merged: d.merged }, out, { perFileBytes: 1 << 20, totalBytes: 1 << 30 });
  const by = new Map(changes.map((c) => [c.path, c]));
  assert.equal(by.get('/m/file')?.change, 'modified');
  assert.equal(by.get('/m/file')?.sha256, sha('m/file\nmore\n'));
  assert.equal(readFileSync(by.get('/m/file')?.copy ?? '', 'utf8'), 'm/file\nmore\n');
  for (const p of ['/a/del', '/a/sub', '/o/1', '/o/2', '/r/old']) assert.equal(by.get(p)?.change, 'deleted', `${p} deleted`);
  assert.equal(by.get('/o/3')?.change, 'created', 'new file in an opaque dir');
  assert.equal(by.get('/r/new')?.change, 'created');
  assert.equal(by.get('/r/new')?.sha256, sha('r/old\n'));
  assert.equal(by.get('/n/new.txt')?.sha256, sha('new\n'));
  assert.ok(!by.has('/a/keep'), 'untouched files are not changes');
  const b = by.get('/n/big.bin');
  assert.equal(b?.size, 3 << 20);
  assert.equal(b?.sha256, sha(big), 'sha256 covers the whole file');
  assert.equal(b?.truncated, true);
  assert.equal(statSync(b?.copy ?? '').size, 1 << 20, 'copy capped per file');
  for (const p of ['/n/link', '/n/fifo']) {
    assert.equal(by.get(p)?.change, 'created');
    assert.equal(by.get(p)?.sha256, null);
    assert.equal(by.get(p)?.copy, undefined);
  }
  assert.ok(!existsSync(join(out, 'n/link')) && !existsSync(join(out, 'n/fifo')));

  // the total cap: once spent, files are still listed and hashed but not copied
  const capped = listChanges({ upper: d.upper, lower, merged: d.merged }, join(root, 'out2'), { perFileBytes: 1 << 30, totalBytes: 10 });
  const cb = new Map(capped.map((c) => [c.path, c]));
  assert.equal(cb.get('/n/big.bin')?.sha256, sha(big));
  assert.equal(cb.get('/n/big.bin')?.truncated, true);
  const copiedBytes = capped.reduce((s, c) => s + (c.copy ? statSync(c.copy).size : 0), 0);
  assert.ok(copiedBytes <= 10, `copied ${copiedBytes} bytes under a 10-byte cap`);

  // a sample cannot make the walk explode: entries and depth are capped
  assert.equal(listChanges({ upper: d.upper, lower, merged: d.merged }, null, { perFileBytes: 0, totalBytes: 0, maxEntries: 3 }).length, 3);
  const shallow = listChanges({ upper: d.upper, lower, merged: d.merged }, null, { perFileBytes: 0, totalBytes: 0, maxDepth: 0 });
  assert.ok(shallow.length < changes.length && !shallow.some((c) => c.path === '/n/new.txt'), 'depth 0: files below the top-level dirs are not walked');

  // without the merged view, whiteouts (char 0/0) still show deletions
  const unchanged = new Map([['/n/new.txt', sha('new\n')]]);
  assert.deepEqual(await unmountOverlay({ ...d, tmpfs: join(root, 'not-a-mount') }), []);
  const noMerged = listChanges({ upper: d.upper, lower, unchanged }, null);
  const nm = new Map(noMerged.map((c) => [c.path, c.change]));
  assert.equal(nm.get('/a/del'), 'deleted');
  assert.equal(nm.get('/r/old'), 'deleted');
  assert.equal(nm.get('/o/3'), 'created');
  assert.ok(!nm.has('/n/new.txt'), 'a file listed as unchanged is left out');
  assert.ok(noMerged.every((c) => c.copy === undefined), 'no copies without an output dir');
});

test('a sparse file claiming terabytes is listed with its size and first bytes, not read to its end; hashing stops at the budget', { timeout: 60_000 }, () => {
  const upper = mkdtempSync(join(root, 'sparse-upper-'));
  const low = mkdtempSync(join(root, 'sparse-lower-'));
  const out = mkdtempSync(join(root, 'sparse-out-'));
  // 8 TiB of holes behind 4 real bytes: before the budget, listing it read 8 TiB of zeros (hours)
  writeFileSync(join(upper, 'big'), 'MZ!!');
  truncateSync(join(upper, 'big'), 8 * 2 ** 40);
  const t0 = Date.now();
  const [big] = listChanges({ upper, lower: low }, out);
  assert.ok(Date.now() - t0 < 20_000, 'listed in bounded time');
  assert.deepEqual({ ...big, copy: undefined }, { path: '/big', change: 'created', size: 8 * 2 ** 40, sha256: null, truncated: true, unhashed: true, copy: undefined });
  assert.equal(readFileSync(big!.copy!).subarray(0, 4).toString(), 'MZ!!', 'the copy holds its first bytes');
  assert.equal(statSync(big!.copy!).size, 16 << 20, 'the copy is cut at the per-file cap');

  // a budget of 1 MiB: the first file (512 KiB) is hashed, the second (768 KiB) no longer fits
  const a = Buffer.alloc(512 << 10, 1), b = Buffer.alloc(768 << 10, 2);
  const up2 = mkdtempSync(join(root, 'budget-upper-'));
  writeFileSync(join(up2, 'a'), a);
  writeFileSync(join(up2, 'b'), b);
  const got = listChanges({ upper: up2, lower: low }, null, { perFileBytes: 1 << 20, totalBytes: 4 << 20, hashBytes: 1 << 20 });
  assert.deepEqual(got.map((c) => [c.path, c.size, c.sha256, c.unhashed ?? false]), [['/a', a.length, sha(a), false], ['/b', b.length, null, true]]);
});
