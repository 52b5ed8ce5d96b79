// Overlay change detection on a real overlayfs mount: created, modified and deleted files,
// whiteouts and opaque directories, size caps, and never following symlinks on copy-out; and the
// budgets spent by priority, so that junk cannot hide a payload from the list.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync, renameSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMountPoint, listChanges, mountOverlay, overlayDirs, unmountOverlay } from './overlay.js';
import { changeWarnings } from './changes.js';

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

// The budgets of the list (entries, hashing, copying) are the sample's to exhaust: spent in path
// order, junk in a directory that sorts first hid the payload. These are the evasions, each with
// a payload (ELF magic) in /tmp behind junk in /aaa.
const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.from('buried payload\n')]);

function layers(name: string): { upper: string; lower: string; out: string } {
  const base = mkdtempSync(join(root, `${name}-`));
  const l = { upper: join(base, 'upper'), lower: join(base, 'lower'), out: join(base, 'out') };
  for (const p of Object.values(l)) mkdirSync(p);
  return l;
}

function touchMany(dir: string, n: number, prefix = 'j'): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) closeSync(openSync(join(dir, `${prefix}${String(i).padStart(5, '0')}`), 'w'));
}

test('20,000 junk files in a directory that sorts first do not hide a payload elsewhere: it is listed, hashed and copied, image changes too, and the warning names the junk directory with its count', { timeout: 120_000 }, () => {
  const l = layers('flood');
  touchMany(join(l.upper, 'aaa'), 20_010);
  put(l.upper, 'tmp/payload', ELF); // no exec bit: known by its magic
  put(l.lower, 'etc/crontab', 'old\n');
  put(l.upper, 'etc/crontab', '* * * * * root /tmp/payload\n');
  put(l.lower, 'etc/motd', 'hello\n');
  execFileSync('mknod', [join(l.upper, 'etc/motd'), 'c', '0', '0']); // the overlay's whiteout
  const got = listChanges({ upper: l.upper, lower: l.lower }, l.out);
  assert.equal(got.length, 20_000);
  const by = new Map(got.map((c) => [c.path, c]));
  const p = by.get('/tmp/payload');
  assert.deepEqual(p && { ...p, copy: undefined }, { path: '/tmp/payload', change: 'created', size: ELF.length, sha256: sha(ELF), truncated: false, copy: undefined });
  assert.deepEqual(readFileSync(p?.copy ?? ''), ELF, 'copied whole');
  assert.equal(by.get('/etc/crontab')?.change, 'modified');
  assert.equal(by.get('/etc/motd')?.change, 'deleted');
  assert.deepEqual(got.map((c) => c.path), got.map((c) => c.path).sort(), 'the list is in path order');
  // 20,013 changes: the 13 not listed are junk, all under /aaa, and the warning says so
  assert.deepEqual(got.omitted && { found: got.omitted.found, notListed: got.omitted.notListed, at: got.omitted.notListedAt }, { found: 20_013, notListed: 13, at: [{ dir: '/aaa', count: 13 }] });
  const w = changeWarnings(got.omitted!);
  assert.equal(w.length, 1);
  assert.equal(w[0]?.code, 'REPORT_LIMITED');
  assert.match(w[0]?.message ?? '', /20,013 changes found, 20,000 listed; not listed: 13 under \/aaa \(/);
});

test('junk files that exhaust the copy budget do not stop the payload\'s copy; the copies left out are counted by directory', { timeout: 120_000 }, () => {
  const l = layers('copies');
  const junk = Buffer.alloc(16 << 20, 0x41);
  for (let i = 1; i <= 4; i++) put(l.upper, `aaa/big${i}`, junk); // four of the per-file cap: the 64 MiB budget
  put(l.upper, 'tmp/payload', ELF);
  const got = listChanges({ upper: l.upper, lower: l.lower }, l.out);
  const p = got.find((c) => c.path === '/tmp/payload');
  assert.equal(p?.sha256, sha(ELF));
  assert.equal(p?.truncated, false);
  assert.deepEqual(readFileSync(p?.copy ?? ''), ELF, 'the payload is copied whole');
  const copied = got.reduce((s, c) => s + (c.copy ? statSync(c.copy).size : 0), 0);
  assert.ok(copied <= 64 << 20, `${copied} bytes copied under the 64 MiB budget`);
  assert.ok(got.filter((c) => c.path.startsWith('/aaa/')).every((c) => c.sha256 === sha(junk)), 'the junk is still listed and hashed');
  const o = got.omitted!;
  assert.deepEqual([o.notCopied, o.cutCopies, o.copyBytesLeftOut, o.notCopiedAt], [0, 1, ELF.length, [{ dir: '/aaa', count: 1 }]]);
  const w = changeWarnings(o).find((x) => x.code === 'COPIES_LIMITED');
  assert.match(w?.message ?? '', /1 copied in part .* 1 under \/aaa/);
});

test('sparse files claiming what is left of the hashing budget do not leave the payload unhashed', { timeout: 60_000 }, () => {
  const l = layers('sparse');
  // the payload holds 3 MiB of data; four sparse files of 2.5 MiB each (4 KiB of data) would take
  // an 8 MiB budget ahead of it in path order, and each is smaller than the payload
  const payload = Buffer.concat([ELF, Buffer.alloc((3 << 20) - ELF.length, 0x5a)]);
  put(l.upper, 'tmp/payload', payload);
  for (let i = 1; i <= 4; i++) {
    put(l.upper, `aaa/s${i}`, 'MZ');
    truncateSync(join(l.upper, `aaa/s${i}`), 5 << 19);
  }
  const got = listChanges({ upper: l.upper, lower: l.lower }, null, { perFileBytes: 1 << 20, totalBytes: 4 << 20, hashBytes: 8 << 20 });
  assert.equal(got.find((c) => c.path === '/tmp/payload')?.sha256, sha(payload));
  const sparse = got.filter((c) => c.path.startsWith('/aaa/'));
  assert.deepEqual(sparse.map((c) => c.sha256 === null), [false, false, true, true], 'what the payload left of the budget went to the sparse files');
  assert.ok(sparse.every((c) => c.size === 5 << 19));
});

test('the walk\'s memory is bounded by path characters: long-path junk past it is counted, not kept, and does not crowd out the payload', () => {
  const l = layers('long');
  const deep = join(l.upper, 'aaa', 'D'.repeat(200), 'E'.repeat(200));
  touchMany(deep, 60);
  put(l.upper, 'tmp/payload', ELF);
  // 60 paths of ~420 characters: 25,000 characters, over a bound of 10,000
  const got = listChanges({ upper: l.upper, lower: l.lower }, null, { perFileBytes: 1 << 20, totalBytes: 1 << 20, maxPathChars: 10_000 });
  assert.ok(got.some((c) => c.path === '/tmp/payload'));
  const kept = got.filter((c) => c.path.startsWith('/aaa/')).length;
  assert.ok(kept > 0 && kept < 24, `${kept} long paths kept`);
  const o = got.omitted!;
  assert.equal(o.found, 61);
  assert.equal(o.notListed, 60 - kept);
  assert.equal(o.notListedAt[0]?.dir, `/aaa/${'D'.repeat(200)}/${'E'.repeat(200)}`);
});

test('executable-looking junk takes no more than its turn: image modifications and deletions, and new files elsewhere, are still listed', () => {
  const l = layers('kinds');
  for (let i = 0; i < 40; i++) put(l.upper, `aaa/x${i}`, ELF);
  for (const f of ['etc/a', 'etc/b', 'etc/c']) { put(l.lower, f, 'x'); put(l.upper, f, 'y'); }
  put(l.lower, 'etc/gone', 'x');
  execFileSync('mknod', [join(l.upper, 'etc/gone'), 'c', '0', '0']);
  put(l.upper, 'tmp/payload', ELF);
  put(l.upper, 'tmp/note.txt', 'ransom\n');
  const got = listChanges({ upper: l.upper, lower: l.lower }, null, { perFileBytes: 1 << 20, totalBytes: 1 << 20, maxEntries: 10 });
  const paths = got.map((c) => c.path);
  for (const p of ['/etc/a', '/etc/b', '/etc/c', '/etc/gone', '/tmp/payload', '/tmp/note.txt']) assert.ok(paths.includes(p), `${p} listed: ${paths.join(' ')}`);
  assert.equal(got.length, 10);
  assert.deepEqual(got.omitted?.notListedAt, [{ dir: '/aaa', count: 36 }]);
});

test('hard links to one file are hashed once and share one copy', () => {
  const l = layers('links');
  const data = Buffer.alloc(1 << 20, 7);
  put(l.upper, 'aaa/f0', data);
  for (let i = 1; i < 8; i++) linkSync(join(l.upper, 'aaa/f0'), join(l.upper, `aaa/f${i}`));
  put(l.upper, 'tmp/payload', ELF);
  const got = listChanges({ upper: l.upper, lower: l.lower }, l.out, { perFileBytes: 1 << 20, totalBytes: 2 << 20, hashBytes: 2 << 20 });
  assert.equal(got.length, 9);
  assert.ok(got.filter((c) => c.path.startsWith('/aaa/')).every((c) => c.sha256 === sha(data) && c.copy !== undefined), 'eight links, one read');
  assert.equal(new Set(got.map((c) => c.copy)).size, 2, 'one copy for the links, one for the payload');
  assert.equal(got.find((c) => c.path === '/tmp/payload')?.sha256, sha(ELF));
});
