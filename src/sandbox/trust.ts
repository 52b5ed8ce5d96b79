// The container's side of TLS interception (tls.ts): before the sample starts, the sandbox's
// certificate authority is appended to the CA bundles the image already has, so that its
// programs trust the certificates the catcher answers with, as a machine behind an enterprise
// TLS inspection proxy trusts that proxy's CA.
//
// The image is not trusted: an imported one may hold links anywhere on the host. A bundle is
// changed only when every directory on its path and the bundle itself are what they say (no link
// followed, a regular file of sane size), and it is replaced by rename, never written through.
// Nothing of the sample runs yet, so nothing can swap a path between the checks and the write.
import { chownSync, closeSync, constants, fstatSync, lstatSync, openSync, readSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Where OpenSSL, GnuTLS, curl, Go and Python look for the system's CAs, per distribution family. */
export const CA_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL (often a link to the next)
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // Alpine, LibreSSL
] as const;

/** A bundle larger than this is no CA bundle: left alone. */
const BUNDLE_MAX = 16 << 20;

/** A regular file at `path` under `rootfs`, reached through real directories only; else undefined. */
function regularFileUnder(rootfs: string, path: string): string | undefined {
  const parts = path.split('/').filter(Boolean);
  let at = rootfs;
  for (const [i, part] of parts.entries()) {
    at = join(at, part);
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (i < parts.length - 1 ? !st.isDirectory() : !st.isFile()) return undefined;
  }
  return at;
}

/**
 * Appends `certPem` to every CA bundle of CA_BUNDLES that `rootfs` holds as a regular file (a link
 * is skipped: its target is another entry, or outside what may be written). Returns the bundles
 * changed, by path inside the image, with their new content's SHA-256 and size, so the change
 * report does not count them as the sample's. An image with no bundle trusts no CA, this one
 * included: a sample that checks certificates refuses the catcher's there, as it would have.
 */
export function trustAuthority(rootfs: string, certPem: string): Map<string, { sha256: string; size: number }> {
  const changed = new Map<string, { sha256: string; size: number }>();
  for (const path of CA_BUNDLES) {
    const file = regularFileUnder(rootfs, path);
    if (!file) continue;
    let old: Buffer;
    let st: ReturnType<typeof fstatSync>;
    const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      st = fstatSync(fd);
      if (!st.isFile() || st.size > BUNDLE_MAX) continue;
      old = Buffer.alloc(st.size);
      let got = 0;
      while (got < old.length) {
        const n = readSync(fd, old, got, old.length - got, got);
        if (n === 0) break;
        got += n;
      }
      old = old.subarray(0, got);
    } finally {
      closeSync(fd);
    }
    if (old.includes(certPem)) continue;
    const content = Buffer.concat([old, Buffer.from(old.length && old[old.length - 1] !== 0x0a ? '\n' : ''), Buffer.from(certPem)]);
    const tmp = `${file}.sandtrace-new`;
    let created = false;
    try {
      writeFileSync(tmp, content, { flag: 'wx', mode: 0o600 });
      created = true;
      chownSync(tmp, st.uid, st.gid);
      chmodSync(tmp, st.mode & 0o7777);
      renameSync(tmp, file);
    } catch {
      if (created) rmSync(tmp, { force: true });
      continue; // a read-only or odd image (or one holding that name already): this bundle stays as it was
    }
    changed.set(path, { sha256: createHash('sha256').update(content).digest('hex'), size: content.length });
  }
  return changed;
}
