// Image preparation used by scripts/setup.d/40-image.sh and by archive import: shift a rootfs'
// ownership into the sandbox's user-namespace range, and personalise the base image (user,
// hostname, resolver, decoy credentials). Run as a script: `image-build.ts shift|personalise ROOTFS`.
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ID_SHIFT, ID_RANGE, SANDBOX_HOSTNAME } from './config.js';
import { allDecoys, USER } from './decoys.js';

/** Adds `shift` to every uid/gid under root (no symlink is followed); keeps setuid/setgid bits. */
export function shiftOwnership(root: string, shift: number): number {
  let n = 0;
  const visit = (p: string): void => {
    const st = lstatSync(p);
    const uid = st.uid % ID_RANGE + shift;
    const gid = st.gid % ID_RANGE + shift;
    if (st.uid !== uid || st.gid !== gid) {
      lchownSync(p, uid, gid);
      // chown clears setuid/setgid on regular files: put the mode back
      if (st.isFile() && (st.mode & 0o6000) !== 0) chmodSync(p, st.mode & 0o7777);
      n++;
    }
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
  };
  visit(root);
  return n;
}

function writeOwned(rootfs: string, path: string, content: string, mode: number, uid: number, shift: number): void {
  const host = join(rootfs, path);
  // create missing parents owned by the file's owner (e.g. ~/.ssh)
  const parents: string[] = [];
  for (let d = dirname(host); !existsSync(d); d = dirname(d)) parents.unshift(d);
  for (const d of parents) {
    mkdirSync(d, { mode: 0o700 });
    lchownSync(d, uid + shift, uid + shift);
  }
  writeFileSync(host, content, { mode });
  chmodSync(host, mode);
  lchownSync(host, uid + shift, uid + shift);
}

function ensureLine(file: string, prefix: string, line: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (text.split('\n').some((l) => l.startsWith(prefix))) return;
  writeFileSync(file, text + (text === '' || text.endsWith('\n') ? '' : '\n') + line + '\n');
}

/** Makes the image look like a lived-in developer machine. Idempotent. */
export function personalise(rootfs: string, shift: number): void {
  const u = USER;
  ensureLine(join(rootfs, 'etc/passwd'), `${u.name}:`, `${u.name}:x:${u.uid}:${u.uid}:Dev User,,,:${u.home}:/bin/bash`);
  ensureLine(join(rootfs, 'etc/group'), `${u.name}:`, `${u.name}:x:${u.uid}:`);
  ensureLine(join(rootfs, 'etc/shadow'), `${u.name}:`, `${u.name}:$y$j9T$Hq4c2TqSx0zv1Qh8cX3Vb/$3Wm2fE8yv4eOaYk2HqR0lV8dQmGz1Kc7pN5sT9uJx6B:19850:0:99999:7:::`);
  if (!existsSync(join(rootfs, u.home))) {
    mkdirSync(join(rootfs, u.home), { recursive: true, mode: 0o750 });
  }
  lchownSync(join(rootfs, u.home), u.uid + shift, u.uid + shift);
  writeOwned(rootfs, `${u.home}/.bashrc`, '# ~/.bashrc\nexport PATH="$HOME/.local/bin:$PATH"\nalias ll="ls -la"\n', 0o644, u.uid, shift);
  writeOwned(rootfs, `${u.home}/projects/billing-api/README.md`, '# billing-api\n\nInternal invoicing service.\n', 0o644, u.uid, shift);
  writeOwned(rootfs, 'etc/hostname', SANDBOX_HOSTNAME + '\n', 0o644, 0, shift);
  writeOwned(rootfs, 'etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`, 0o644, 0, shift);
  // 192.0.2.0/24 is TEST-NET-1: documentation only, routed nowhere (and the sandbox has no route anyway)
  writeOwned(rootfs, 'etc/resolv.conf', 'nameserver 192.0.2.53\nsearch acme.internal\n', 0o644, 0, shift);
  writeOwned(rootfs, 'etc/machine-id', 'f3b2a9c04d1e4c7a9e5b6d8c2a1f0e93\n', 0o444, 0, shift);
  for (const d of allDecoys()) writeOwned(rootfs, d.path, d.content, d.mode, d.uid, shift);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, rootfs] = process.argv.slice(2);
  if (!rootfs || !existsSync(rootfs) || (cmd !== 'shift' && cmd !== 'personalise')) {
    process.stderr.write('usage: image-build.ts shift|personalise ROOTFS\n');
    process.exit(2);
  }
  if (cmd === 'shift') process.stdout.write(`shifted ${shiftOwnership(rootfs, ID_SHIFT)} entries\n`);
  else personalise(rootfs, ID_SHIFT);
}
