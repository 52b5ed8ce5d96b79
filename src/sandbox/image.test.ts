// The cached base image: present after `make setup`, owned by the user-namespace range, personalised
// with well-formed decoy credentials at DECOY_PATHS; a missing image is a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { baseRootfs, DECOY_PATHS } from './image.js';
import { ID_SHIFT } from './config.js';

test('base image: shifted ownership, user 1000, decoys present and well-formed', () => {
  const { rootfs, manifest } = baseRootfs();
  assert.equal(manifest.idShift, ID_SHIFT);
  assert.match(manifest.recipe, /^[0-9a-f]{64}$/);
  assert.equal(lstatSync(join(rootfs, 'etc/passwd')).uid, ID_SHIFT, 'image root is host uid 100000');
  assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /^user:x:1000:1000:.*:\/home\/user:\/bin\/bash$/m);
  assert.equal(lstatSync(join(rootfs, 'home/user')).uid, ID_SHIFT + 1000);
  assert.ok(DECOY_PATHS.includes('/home/user/.ssh/id_rsa') && DECOY_PATHS.includes('/root/.aws/credentials'));
  for (const p of DECOY_PATHS) {
    const st = lstatSync(join(rootfs, p));
    assert.ok(st.isFile(), p);
    assert.equal(st.uid, ID_SHIFT + (p.startsWith('/root') ? 0 : 1000), `${p} owner`);
  }
  const priv = readFileSync(join(rootfs, 'home/user/.ssh/id_rsa'), 'utf8');
  const key = createPrivateKey(priv);
  assert.equal(key.asymmetricKeyType, 'rsa');
  assert.equal(lstatSync(join(rootfs, 'home/user/.ssh/id_rsa')).mode & 0o777, 0o600);
  // the .pub file is the public half of that key, in OpenSSH format
  const pub = readFileSync(join(rootfs, 'home/user/.ssh/id_rsa.pub'), 'utf8');
  assert.match(pub, /^ssh-rsa [A-Za-z0-9+/=]+ user@devbox\n$/);
  const n = createPublicKey(key).export({ format: 'jwk' }).n ?? '';
  const blob = Buffer.from(pub.split(' ')[1] ?? '', 'base64');
  assert.ok(blob.includes(Buffer.from(n, 'base64url')), 'public key matches the private key');
  const ssh = spawnSync('ssh-keygen', ['-l', '-f', join(rootfs, 'home/user/.ssh/id_rsa.pub')], { encoding: 'utf8' });
  if (ssh.error === undefined) assert.equal(ssh.status, 0, ssh.stderr);
  assert.match(readFileSync(join(rootfs, 'home/user/.aws/credentials'), 'utf8'), /aws_access_key_id = AKIA[A-Z2-7]{16}\naws_secret_access_key = \S{40}/);
  assert.match(readFileSync(join(rootfs, 'etc/resolv.conf'), 'utf8'), /^nameserver 192\.0\.2\.53$/m);
  assert.equal(readFileSync(join(rootfs, 'etc/hostname'), 'utf8'), 'devbox\n');
});

test('a missing image is SANDBOX_IMAGE_MISSING telling to run make setup', () => {
  const empty = mkdtempSync(join(tmpdir(), 'sandtrace-nocache-'));
  const saved = process.env['SANDTRACE_CACHE'];
  process.env['SANDTRACE_CACHE'] = empty;
  try {
    assert.throws(() => baseRootfs(), (e: unknown) => {
      const err = e as { code?: string; message?: string };
      return err.code === 'SANDBOX_IMAGE_MISSING' && /run make setup/.test(err.message ?? '');
    });
  } finally {
    if (saved === undefined) delete process.env['SANDTRACE_CACHE'];
    else process.env['SANDTRACE_CACHE'] = saved;
    rmSync(empty, { recursive: true, force: true });
  }
});
