// The sandbox's certificate authority: what it issues is checked by Node's X.509 parser and by the
// real OpenSSL in strict mode (the verifier curl and python use inside the container).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateName, SANDBOX_CA_NAME, SandboxCa, sandboxCa } from './tls.js';

const DAY = 86_400_000;

test('SandboxCa: the authority is a CA certificate signed by itself, valid now; the process has one, kept in memory', () => {
  const now = new Date();
  const ca = new SandboxCa(() => now);
  const x = new X509Certificate(ca.certPem);
  assert.equal(x.subject, `O=${SANDBOX_CA_NAME.organization}\nCN=${SANDBOX_CA_NAME.commonName}`);
  assert.equal(x.issuer, x.subject);
  assert.equal(x.ca, true);
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.ok(new Date(x.validFrom) < now && now < new Date(x.validTo));
  assert.equal(sandboxCa(), sandboxCa(), 'one authority per process');
  assert.notEqual(new X509Certificate(new SandboxCa().certPem).publicKey.export({ format: 'jwk' }).x, x.publicKey.export({ format: 'jwk' }).x, 'a new key for each authority');
  assert.doesNotMatch(ca.certPem, /PRIVATE/, 'the PEM handed to containers holds no key');
});

test('SandboxCa.leaf: a server certificate for the name and the address, issued by the authority, with the key it is served with', () => {
  const now = new Date();
  const ca = new SandboxCa(() => now);
  const authority = new X509Certificate(ca.certPem);
  const { cert, key } = ca.leaf('Panel.Example.test', '198.18.0.9');
  const x = new X509Certificate(cert);
  assert.equal(x.subject, 'CN=panel.example.test');
  assert.equal(x.issuer, authority.subject);
  assert.equal(x.ca, false);
  assert.ok(x.verify(authority.publicKey), 'signed by the authority');
  assert.ok(x.checkIssued(authority));
  assert.ok(x.checkPrivateKey(createPrivateKey(key)));
  assert.equal(x.subjectAltName, 'DNS:panel.example.test, IP Address:198.18.0.9');
  assert.equal(x.checkHost('panel.example.test'), 'panel.example.test');
  assert.equal(x.checkHost('other.example.test'), undefined);
  assert.equal(x.checkIP('198.18.0.9'), '198.18.0.9');
  assert.equal(new Date(x.validTo).getTime() - new Date(x.validFrom).getTime(), 91 * DAY, 'from a day ago for 90 days');
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'for TLS servers only');
  assert.equal(new X509Certificate(ca.leaf(undefined, '203.0.113.7').cert).subjectAltName, 'IP Address:203.0.113.7');
  assert.equal(new X509Certificate(ca.leaf(undefined, '::1').cert).subjectAltName, undefined, 'no name and no IPv4 address: nothing to name');
  const other = new SandboxCa();
  assert.equal(x.verify(new X509Certificate(other.certPem).publicKey), false, 'another process\'s authority did not issue it');
});

test('SandboxCa: OpenSSL\'s strict verifier accepts the leaf for its name, its address and as a TLS server, and refuses another name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ca-'));
  try {
    const ca = new SandboxCa();
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'leaf.pem'), ca.leaf('cdn-update.example.test', '198.18.0.4').cert);
    const verify = (...args: string[]) => spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), ...args, join(dir, 'leaf.pem')], { encoding: 'utf8' });
    assert.equal(verify('-verify_hostname', 'cdn-update.example.test').status, 0);
    assert.equal(verify('-verify_ip', '198.18.0.4').status, 0);
    const wrong = verify('-verify_hostname', 'cdn.example.test');
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stdout + wrong.stderr, /hostname mismatch/);
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.pem'), '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('certificateName: host names (any case, with _ and -) are kept lower-cased; an address, an empty or overlong label, spaces, a trailing dot or non-ASCII are not names', () => {
  assert.equal(certificateName('C2_Panel-1.Example.TEST'), 'c2_panel-1.example.test');
  assert.equal(certificateName('localhost'), 'localhost');
  for (const bad of [undefined, '', '198.18.0.9', 'a..b', '.a', 'a.', '-a.test', 'a-.test', 'a b.test', 'pánel.test', 'a;rm.test', `${'a'.repeat(64)}.test`, `${'a.'.repeat(127)}ab`]) {
    assert.equal(certificateName(bad), undefined, String(bad));
  }
});

test('SandboxCa.context: one TLS context per name and address, reused; a name that is no host name shares the address\'s', () => {
  const ca = new SandboxCa();
  const a = ca.context('a.example.test', '198.18.0.2');
  assert.equal(ca.context('A.example.test', '198.18.0.2'), a);
  assert.notEqual(ca.context('b.example.test', '198.18.0.2'), a);
  assert.equal(ca.context('not a name', '198.18.0.2'), ca.context(undefined, '198.18.0.2'));
});
