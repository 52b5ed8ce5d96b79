// Trusting the sandbox's authority inside an image: on crafted root filesystems, hostile ones
// included (links out to the host, odd files), the host is never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trustAuthority } from './trust.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBsandtraceTEST\n-----END CERTIFICATE-----\n';
const MOZILLA = '# ISRG Root X1\n-----BEGIN CERTIFICATE-----\nMIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw\n-----END CERTIFICATE-----\n';

function tempDir(): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'sandtrace-trust-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

test('trustAuthority: the authority is appended to the image\'s CA bundles (owner and mode kept), once, and the bundles changed are named with their new content', () => {
  const t = tempDir();
  try {
    const certs = join(t.path, 'etc/ssl/certs');
    mkdirSync(certs, { recursive: true });
    writeFileSync(join(certs, 'ca-certificates.crt'), MOZILLA);
    chmodSync(join(certs, 'ca-certificates.crt'), 0o644);
    execFileSync('chown', ['100000:100000', join(certs, 'ca-certificates.crt')]);
    // Alpine's second name for it is a link: not written through, the file it names already is
    symlinkSync('certs/ca-certificates.crt', join(t.path, 'etc/ssl/cert.pem'));
    // a bundle without a final newline gets one before the authority
    mkdirSync(join(t.path, 'etc/pki/tls/certs'), { recursive: true });
    writeFileSync(join(t.path, 'etc/pki/tls/certs/ca-bundle.crt'), MOZILLA.trimEnd());
    const changed = trustAuthority(t.path, CA);
    const debian = readFileSync(join(certs, 'ca-certificates.crt'), 'utf8');
    assert.equal(debian, MOZILLA + CA);
    assert.equal(readFileSync(join(t.path, 'etc/pki/tls/certs/ca-bundle.crt'), 'utf8'), `${MOZILLA.trimEnd()}\n${CA}`);
    const st = statSync(join(certs, 'ca-certificates.crt'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [100000, 100000, 0o644]);
    assert.ok(lstatSync(join(t.path, 'etc/ssl/cert.pem')).isSymbolicLink(), 'the link is still a link');
    assert.deepEqual([...changed.entries()], [
      ['/etc/ssl/certs/ca-certificates.crt', { sha256: sha(MOZILLA + CA), size: Buffer.byteLength(MOZILLA + CA) }],
      ['/etc/pki/tls/certs/ca-bundle.crt', { sha256: sha(`${MOZILLA.trimEnd()}\n${CA}`), size: Buffer.byteLength(`${MOZILLA.trimEnd()}\n${CA}`) }],
    ]);
    assert.equal(trustAuthority(t.path, CA).size, 0, 'already trusted: not appended twice');
    assert.equal(readFileSync(join(certs, 'ca-certificates.crt'), 'utf8'), MOZILLA + CA);
  } finally {
    t.cleanup();
  }
});

test('trustAuthority on a hostile image: a bundle that links to a host file, an /etc/ssl that links to a host directory, a FIFO, or a leftover temporary name are left alone, and the host file is never written', () => {
  const t = tempDir();
  const host = tempDir();
  try {
    const hostFile = join(host.path, 'hosts-bundle.crt');
    writeFileSync(hostFile, MOZILLA);
    // an image whose bundle is an absolute link (resolved on the host, it would be the host's file)
    const a = join(t.path, 'a');
    mkdirSync(join(a, 'etc/ssl/certs'), { recursive: true });
    symlinkSync(hostFile, join(a, 'etc/ssl/certs/ca-certificates.crt'));
    assert.equal(trustAuthority(a, CA).size, 0);
    // one whose /etc/ssl is a link to a host directory holding a bundle
    const b = join(t.path, 'b');
    mkdirSync(join(b, 'etc'), { recursive: true });
    mkdirSync(join(host.path, 'ssl/certs'), { recursive: true });
    writeFileSync(join(host.path, 'ssl/certs/ca-certificates.crt'), MOZILLA);
    symlinkSync(join(host.path, 'ssl'), join(b, 'etc/ssl'));
    assert.equal(trustAuthority(b, CA).size, 0);
    // a FIFO where the bundle should be: never opened (it would block)
    const c = join(t.path, 'c');
    mkdirSync(join(c, 'etc/ssl/certs'), { recursive: true });
    execFileSync('mkfifo', [join(c, 'etc/ssl/certs/ca-certificates.crt')]);
    assert.equal(trustAuthority(c, CA).size, 0);
    // an image that holds the temporary name already: that file is its own, kept; the bundle stays as it was
    const d = join(t.path, 'd');
    mkdirSync(join(d, 'etc/ssl/certs'), { recursive: true });
    writeFileSync(join(d, 'etc/ssl/certs/ca-certificates.crt'), MOZILLA);
    writeFileSync(join(d, 'etc/ssl/certs/ca-certificates.crt.sandtrace-new'), 'image file');
    assert.equal(trustAuthority(d, CA).size, 0);
    assert.equal(readFileSync(join(d, 'etc/ssl/certs/ca-certificates.crt.sandtrace-new'), 'utf8'), 'image file');
    assert.equal(readFileSync(join(d, 'etc/ssl/certs/ca-certificates.crt'), 'utf8'), MOZILLA);
    // an image with no bundle at all: nothing made up
    const e = join(t.path, 'e');
    mkdirSync(join(e, 'etc'), { recursive: true });
    assert.equal(trustAuthority(e, CA).size, 0);
    assert.equal(readFileSync(hostFile, 'utf8'), MOZILLA);
    assert.equal(readFileSync(join(host.path, 'ssl/certs/ca-certificates.crt'), 'utf8'), MOZILLA);
  } finally {
    t.cleanup();
    host.cleanup();
  }
});
