// The VM's list of dropped files, host side and the guest's script without QEMU: the script run by
// the host's busybox over a real tree, its lines parsed, the list chosen by changes.ts's priorities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { guestListingScript, guestStampCommand, parseGuestListing, GUEST_LISTING } from '../../src/vm/guest.js';
import { ChangeWalk, changeWarnings, type DescribedOmissions } from '../../src/sandbox/changes.js';

const T = 'sandtrace-0123456789ab';
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

test('a path with a newline is decoded whole from hex and the line it hides creates no entry', () => {
  const evil = '/tmp/d\nsandtrace-0123456789ab: f 5 81ed 1 /fake';
  const con = [
    `${T}: exit 0 3.2`,
    `${T}: u 4 81a4 0 ${sha('evil')} ${Buffer.from(evil).toString('hex')}`,
    `${T}: f 5 81ed 1 /tmp/payload`,
    `${T}: f 3 81a4 0 /tmp/é x `,
    `${T}: listed`,
    `${T}: h ${sha('hello')}  /tmp/payload`,
    `${T}: h ${'0'.repeat(64)}  /fake`,
    `other: h ${'1'.repeat(64)}  /tmp/é x `,
    `${T}: hashed`, `${T}: end`,
  ].join('\r\n');
  const { files, listing } = parseGuestListing(Buffer.from(con).toString('latin1'), T);
  assert.deepEqual(files.map((f) => [f.path, f.size, f.sha256]).sort(), [
    ['/tmp/d\nsandtrace-0123456789ab: f 5 81ed 1 /fake', 4, sha('evil')], ['/tmp/payload', 5, sha('hello')], ['/tmp/é x ', 3, null]]);
  assert.deepEqual(listing, { notPrinted: [], complete: true, hashed: true });
});

test('no listed/end line from the guest: the listing says it is incomplete', () => {
  const cut = parseGuestListing(`${T}: exit 0 1\n${T}: f 1 81a4 0 /tmp/a\n${T}: deadline\n${T}: end\n`, T).listing;
  assert.equal(cut.complete, false);
  assert.match(cut.cut ?? '', new RegExp(`${GUEST_LISTING.seconds} s deadline after 1 files`));
  const killed = parseGuestListing(`${T}: exit 0 1\n${T}: f 1 81a4 0 /tmp/a\n`, T).listing;
  assert.equal(killed.complete, false);
  assert.match(killed.cut ?? '', /cut short \(the guest ended before it finished\) after 1 files/);
  // listed, but the deadline cut the hashing: complete, not hashed
  const h = parseGuestListing(`${T}: f 1 81a4 0 /tmp/a\n${T}: listed\n${T}: deadline\n${T}: end\n`, T).listing;
  assert.deepEqual([h.complete, h.hashed, h.cut], [true, false, undefined]);
});

test('described entries: executables first, floods spread, what was left out and not hashed is warned with where', () => {
  const w = new ChangeWalk({ perFileBytes: 0, totalBytes: 0, maxEntries: 5 });
  for (let i = 0; i < 10; i++) w.describe({ path: `/tmp/junk/f${i}`, change: 'created', size: 1, execBit: false, magic: false, sha256: null });
  w.describe({ path: '/tmp/payload', change: 'created', size: 9, execBit: false, magic: true, sha256: 'a'.repeat(64) });
  w.describe({ path: '/work/data', change: 'created', size: 9, execBit: false, magic: false, sha256: 'b'.repeat(64) });
  w.addUnlisted('/tmp/junk', 1000);
  const list = w.finish(null);
  const o = list.omitted as DescribedOmissions;
  assert.ok(list.some((f) => f.path === '/tmp/payload' && f.sha256 === 'a'.repeat(64)));
  assert.ok(list.some((f) => f.path === '/work/data'));
  assert.equal(list.length, 5);
  assert.deepEqual([o.found, o.notListed, o.notListedAt], [1012, 1007, [{ dir: '/tmp/junk', count: 1007 }]]);
  assert.equal(o.notHashed, 3);
  const msgs = changeWarnings({ ...o, incomplete: 'the guest ended' });
  assert.deepEqual(msgs.map((m) => m.code), ['REPORT_LIMITED', 'REPORT_LIMITED', 'HASHES_LIMITED']);
  assert.match(msgs[1]?.message ?? '', /1,012 changes found, 5 listed; not listed: 1,007 under \/tmp\/junk/);
  assert.match(msgs[2]?.message ?? '', /3 listed file\(s\) have no sha256.*3 under \/tmp\/junk/);
  // when the guest's deadline, not the budget, cut the hashing, the warning says so
  const cut = changeWarnings({ ...o, notHashedWhy: 'the guest\'s 120 s deadline cut the hashing' }).find((m) => m.code === 'HASHES_LIMITED');
  assert.match(cut?.message ?? '', /have no sha256 \(the guest's 120 s deadline cut the hashing; executables/);
});

test('the guest script (host busybox, no QEMU): caps the others, always lists executables, hashes them, hex for a newline path', { timeout: 120_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sandtrace-glist-'));
  try {
    const R = join(root, 'R'), D = join(root, 'D');
    mkdirSync(join(R, 'junk'), { recursive: true });
    mkdirSync(join(R, 'w'), { recursive: true });
    const N = GUEST_LISTING.perDirRun + 50;
    for (let i = 0; i < N; i++) writeFileSync(join(R, 'junk', `f${i}`), 'j');
    writeFileSync(join(R, 'w', 'payload'), '#!/bin/sh\necho hi\n');
    writeFileSync(join(R, 'w', 'elf'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
    chmodSync(join(R, 'w', 'payload'), 0o755);
    const dir = join(R, 'w', `d\n${T}: f 5 81ed 1 `);
    mkdirSync(dir);
    writeFileSync(join(dir, 'fake'), 'evil');
    writeFileSync(join(root, 'list.sh'), guestListingScript({ B: '/bin/busybox', T, D, roots: [R], filter: '' }));
    const r = spawnSync('/bin/busybox', ['sh', join(root, 'list.sh')], { encoding: 'latin1', maxBuffer: 64 << 20 });
    spawnSync('umount', [D]);
    const { files, listing } = parseGuestListing(`${r.stdout}${T}: end\n`, T);
    const by = new Map(files.map((f) => [f.path, f]));
    assert.deepEqual(by.get(join(R, 'w', 'payload')), { path: join(R, 'w', 'payload'), size: 18, execBit: true, magic: false, sha256: sha('#!/bin/sh\necho hi\n') });
    assert.equal(by.get(join(R, 'w', 'elf'))?.magic, true);
    assert.equal(by.get(join(dir, 'fake'))?.sha256, sha('evil'));
    assert.equal(files.filter((f) => f.path.startsWith(join(R, 'junk'))).length, GUEST_LISTING.perDirRun);
    assert.equal(files.length, GUEST_LISTING.perDirRun + 3);
    assert.ok(!files.some((f) => f.path === '/fake'));
    assert.deepEqual(listing, { notPrinted: [{ dir: join(R, 'junk'), count: 50 }], complete: true, hashed: true });
  } finally {
    spawnSync('umount', [join(root, 'D')]);
    rmSync(root, { recursive: true, force: true });
  }
});

test('the Debian guest\'s stamp: a file written in the same second as the stamp is still newer than it (busybox find compares whole seconds)', () => {
  const root = mkdtempSync(join(tmpdir(), 'sandtrace-stamp-'));
  try {
    const stamp = join(root, 'stamp');
    const file = join(root, 'dropped');
    // the stamp, then at once a file, as a fast sample writes it; find as the guest's listing runs it
    const r = spawnSync('/bin/busybox', ['sh', '-c', `${guestStampCommand('/bin/busybox', stamp)} && echo x > ${file} && /bin/busybox find ${root} -type f -newer ${stamp}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [file]);
    // why: a stamp of now (what the guest did before) hides a file of the same second
    const same = spawnSync('/bin/busybox', ['sh', '-c', `/bin/busybox touch -d @1796650000 ${stamp} ${file} && /bin/busybox find ${root} -type f -newer ${stamp}`], { encoding: 'utf8' });
    assert.equal(same.status, 0, same.stderr);
    assert.equal(same.stdout.trim(), '');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
