// Image import from archives the test builds itself with tar: docker-save and OCI layout, layer
// order, whiteouts, opaque dirs, a hostile symlink layer, the cache, and a real run on the result.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { importArchive, importDir } from './import.js';
import { baseRootfs } from './image.js';
import { createSandbox } from './index.js';

const scratch = mkdtempSync(join(tmpdir(), 'sandtrace-import-'));
// outside /tmp, so that bwrap's private /tmp is not what protects it
const hostDir = mkdtempSync('/var/tmp/sandtrace-import-host-');
const imported: string[] = [];
after(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(hostDir, { recursive: true, force: true });
  for (const d of imported) rmSync(join(importDir(), d), { recursive: true, force: true });
});

function put(root: string, rel: string, content: string): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
}

function tarDir(dir: string, out: string, gzip = false): string {
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '--numeric-owner', '-C', dir, '.']);
  return out;
}

// the second layer lists files only, no directory entries: tar then follows the planted `esc`
// symlink to the host (checked by hand) unless the extraction is confined
const L2_MEMBERS = ['etc/keep', 'etc/.wh.gone', 'opq/.wh..wh..opq', 'opq/c', 'esc/pwned'];
function tarL2(dir: string, out: string, gzip = false): string {
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '--numeric-owner', '-C', dir, ...L2_MEMBERS]);
  return out;
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Two layers: a tiny runnable base (dash + libc from the base image), then whiteouts and a symlink attack. */
function layers(): { l1: string; l2dir: string } {
  const base = baseRootfs().rootfs;
  const l1 = join(scratch, 'l1');
  mkdirSync(l1);
  const copy = (from: string, to: string): void => {
    mkdirSync(dirname(join(l1, to)), { recursive: true });
    copyFileSync(realpathSync(join(base, from)), join(l1, to));
    chmodSync(join(l1, to), 0o755);
  };
  copy('usr/bin/dash', 'bin/sh');
  copy('lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/libc.so.6');
  copy('lib64/ld-linux-x86-64.so.2', 'lib64/ld-linux-x86-64.so.2');
  put(l1, 'etc/keep', 'keep1\n');
  put(l1, 'etc/gone', 'gone\n');
  put(l1, 'opq/a', 'a\n');
  put(l1, 'opq/b', 'b\n');
  mkdirSync(join(l1, 'tmp'));
  chmodSync(join(l1, 'tmp'), 0o1777);
  symlinkSync(hostDir, join(l1, 'esc'));
  const l2 = join(scratch, 'l2');
  put(l2, 'etc/keep', 'keep2\n');
  put(l2, 'etc/.wh.gone', '');
  put(l2, 'opq/.wh..wh..opq', '');
  put(l2, 'opq/c', 'c\n');
  put(l2, 'esc/pwned', 'escaped\n');
  return { l1, l2dir: l2 };
}

function dockerArchive(): string {
  const { l1, l2dir } = layers();
  const a = join(scratch, 'docker');
  mkdirSync(join(a, 'one'), { recursive: true });
  mkdirSync(join(a, 'two'));
  tarDir(l1, join(a, 'one', 'layer.tar'));
  tarL2(l2dir, join(a, 'two', 'layer.tar'));
  writeFileSync(join(a, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['tiny:latest'], Layers: ['one/layer.tar', 'two/layer.tar'] }]));
  writeFileSync(join(a, 'config.json'), '{}');
  return tarDir(a, join(scratch, 'docker.tar'));
}

function ociArchive(): string {
  const a = join(scratch, 'oci');
  const blobs = join(a, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const addBlob = (file: string): string => {
    const d = sha(file);
    copyFileSync(file, join(blobs, d));
    return `sha256:${d}`;
  };
  const l1 = addBlob(tarDir(join(scratch, 'l1'), join(scratch, 'l1.tar')));
  const l2 = addBlob(tarL2(join(scratch, 'l2'), join(scratch, 'l2.tar.gz'), true));
  const manifest = join(scratch, 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ schemaVersion: 2, layers: [{ digest: l1 }, { digest: l2 }], config: { digest: l1 } }));
  const md = addBlob(manifest);
  writeFileSync(join(a, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ digest: md, platform: { os: 'linux', architecture: 'amd64' } }] }));
  writeFileSync(join(a, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return tarDir(a, join(scratch, 'oci.tar'));
}

function checkRootfs(rootfs: string): void {
  assert.equal(readFileSync(join(rootfs, 'etc/keep'), 'utf8'), 'keep2\n', 'upper layer wins');
  assert.ok(!existsSync(join(rootfs, 'etc/gone')), '.wh.gone removed the lower file');
  assert.deepEqual(readdirSync(join(rootfs, 'opq')), ['c'], 'opaque dir hides the lower entries');
  assert.ok(!readdirSync(rootfs, { recursive: true }).some((n) => String(n).includes('.wh.')), 'no whiteout files kept');
  assert.equal(lstatSync(join(rootfs, 'etc/keep')).uid, 100000, 'owners shifted into the user-namespace range');
  assert.ok(!existsSync(join(hostDir, 'pwned')), 'a layer cannot write through a planted symlink');
}

test('docker-save archive: layers in order, whiteouts, opaque dirs; cached by sha256', async () => {
  const archive = dockerArchive();
  const img = await importArchive(archive);
  imported.push(img.digest);
  assert.equal(img.digest, sha(archive));
  assert.equal(img.format, 'docker');
  assert.equal(img.layers, 2);
  assert.deepEqual(img.dropped, ['esc/pwned'], 'the member written through the planted symlink is dropped');
  checkRootfs(img.rootfs);
  const t0 = Date.now();
  const again = await importArchive(archive);
  assert.equal(again.rootfs, img.rootfs);
  assert.ok(Date.now() - t0 < 2000, 'second import comes from the cache');
});

test('OCI-layout archive with a gzip layer imports the same tree, and a sample runs on it; the image has no resolv.conf, so it gets one naming the DNS sinkhole, which is no change of the sample\'s', async () => {
  const archive = ociArchive();
  const img = await importArchive(archive);
  imported.push(img.digest);
  assert.equal(img.format, 'oci');
  checkRootfs(img.rootfs);
  const sample = join(scratch, 'probe.sh');
  writeFileSync(sample, '#!/bin/sh\nread x < /etc/keep; echo "keep=$x"\n[ -e /etc/gone ] || echo gone-absent\n[ -e /usr/bin/python3 ] || echo not-the-base-image\nread r < /etc/resolv.conf; echo "$r"\n', { mode: 0o755 });
  const sb = createSandbox({ sample, args: [], timeout: 20, image: archive });
  try {
    await sb.create();
    await sb.start();
    const r = await sb.wait();
    assert.equal(r.exitCode, 0, r.console);
    assert.equal(r.console, 'keep=keep2\ngone-absent\nnot-the-base-image\nnameserver 192.0.2.53\n');
    const changes = await sb.changes(join(scratch, 'oci-changes'));
    assert.deepEqual(changes.map((c) => c.path), [], 'the resolver configuration sandtrace wrote is not listed');
  } finally {
    await sb.destroy();
  }
});

test('an archive that is neither format fails with INPUT_FORMAT_UNKNOWN', async () => {
  const d = join(scratch, 'junk');
  put(d, 'hello.txt', 'hi\n');
  const archive = tarDir(d, join(scratch, 'junk.tar'));
  await assert.rejects(importArchive(archive), (e: unknown) => (e as { code?: string }).code === 'INPUT_FORMAT_UNKNOWN');
  assert.ok(!existsSync(join(importDir(), sha(archive))));
  await assert.rejects(importArchive(join(scratch, 'absent.tar')), (e: unknown) => (e as { code?: string }).code === 'INPUT_MISSING');
});

test('a file that is not a tar archive is an input error naming the file (INPUT_CORRUPT), not a failed unpack', async () => {
  const garbage = join(scratch, 'garbage.tar');
  writeFileSync(garbage, 'this is not an image archive\n'.repeat(100));
  await assert.rejects(importArchive(garbage), (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, 'INPUT_CORRUPT');
    assert.equal(err.message, `image archive ${garbage} is not a tar archive (no tar header at its start)`);
    return true;
  });
  assert.ok(!existsSync(join(importDir(), sha(garbage))), 'nothing was imported');
  const empty = join(scratch, 'empty.tar');
  writeFileSync(empty, '');
  await assert.rejects(importArchive(empty), (e: unknown) => (e as { code?: string }).code === 'INPUT_EMPTY');
});

test('an archive cut short or a compressed stream that is not one is INPUT_CORRUPT in tar\'s words', async () => {
  const d = join(scratch, 'cut');
  put(d, 'manifest.json', '[]');
  put(d, 'big', 'x'.repeat(100_000));
  const whole = readFileSync(tarDir(d, join(scratch, 'whole.tar')));
  const cut = join(scratch, 'cut.tar');
  writeFileSync(cut, whole.subarray(0, 20_000));
  await assert.rejects(importArchive(cut), (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, 'INPUT_CORRUPT', err.message);
    assert.match(err.message ?? '', new RegExp(`^image archive ${cut} is damaged: .*Unexpected EOF`));
    assert.equal((err.message ?? '').split('\n').length, 1);
    return true;
  });
  const badGzip = join(scratch, 'bad.tar.gz');
  writeFileSync(badGzip, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(2048, 0x41)]));
  await assert.rejects(importArchive(badGzip), (e: unknown) => {
    const err = e as { code?: string; message?: string };
    assert.equal(err.code, 'INPUT_CORRUPT', err.message);
    assert.match(err.message ?? '', new RegExp(`^image archive ${badGzip} is damaged: `));
    return true;
  });
});
