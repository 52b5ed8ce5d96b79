// The guest's Debian root filesystem: the container sandbox's base image as a cached ext4 disk
// image (ownership shifted back to guest root), opened by QEMU in snapshot mode so every run
// starts from the same disk and nothing is written back. The kernel's ext4/virtio modules come
// from the same Debian kernel package and are loaded by a small busybox initramfs.
import { existsSync, readFileSync, readdirSync, mkdtempSync, chownSync, renameSync, rmSync, mkdirSync, copyFileSync, statSync, lstatSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, dirname, basename } from 'node:path';
import { SandtraceError } from '../errors.js';

const cache = () => process.env['SANDTRACE_CACHE'] ?? '/var/cache/sandtrace';
export const BASE_IMAGE = () => join(cache(), 'images', 'base');

/** Modules the guest needs to mount an ext4 root on virtio-blk, in load order. */
const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4'];

interface BaseManifest { personalised?: string; recipe?: string; idShift?: number }

/** The cached ext4 image of the base rootfs, built on first use (about half a minute). */
export function ensureDiskImage(): string {
  const base = BASE_IMAGE();
  const rootfs = join(base, 'rootfs');
  let m: BaseManifest;
  try { m = JSON.parse(readFileSync(join(base, 'manifest.json'), 'utf8')) as BaseManifest; } catch (e) {
    throw new SandtraceError('SANDBOX_IMAGE_MISSING', `no base image at ${base} (run make setup)`, { cause: e });
  }
  const key = (m.personalised ?? m.recipe ?? 'base').slice(0, 16);
  const img = join(cache(), 'vm', `rootfs-${key}.ext4`);
  if (existsSync(img)) return img;
  mkdirSync(dirname(img), { recursive: true });
  const shift = m.idShift ?? 0;
  const tmp = mkdtempSync(join(dirname(img), '.rootfs-'));
  try {
    const out = join(tmp, 'rootfs.ext4');
    spawnSync('truncate', ['-s', '2G', out]);
    const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'sandtrace', '-d', rootfs, out], { encoding: 'utf8' });
    if (r.status !== 0) throw new SandtraceError('VM_BOOT_FAILED', `cannot build the guest disk image: ${(r.stderr || r.error?.message || '').trim()}`);
    // mke2fs copies owners as they are on the host, where the image's ids are shifted for the
    // container's user namespace: shift them back so the guest's files belong to its own root.
    if (shift) {
      const cmds = join(tmp, 'owners.debugfs');
      writeFileSync(cmds, ownerCommands(rootfs, shift));
      const d = spawnSync('debugfs', ['-w', '-f', cmds, out], { encoding: 'utf8', maxBuffer: 1 << 28 });
      if (d.status !== 0) throw new SandtraceError('VM_BOOT_FAILED', `cannot fix owners in the guest disk image: ${d.stderr.trim().split('\n').pop()}`);
    }
    renameSync(out, img);
    chownSync(img, 0, 0);
    // images of earlier base images are stale
    for (const f of readdirSync(dirname(img))) if (/^rootfs-.*\.ext4$/.test(f) && f !== basename(img)) rmSync(join(dirname(img), f), { force: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return img;
}

function ownerCommands(rootfs: string, shift: number): string {
  const out: string[] = [];
  const q = (p: string) => `"${p.replace(/(["\\])/g, '\\$1')}"`;
  const walk = (rel: string) => {
    const abs = join(rootfs, rel);
    const st = lstatSync(abs);
    const path = rel === '' ? '/' : rel;
    if (st.uid >= shift) out.push(`sif ${q(path)} uid ${st.uid - shift}`);
    if (st.gid >= shift) out.push(`sif ${q(path)} gid ${st.gid - shift}`);
    if (st.isDirectory()) for (const n of readdirSync(abs)) walk(`${rel}/${n}`);
  };
  walk('');
  return out.join('\n') + '\n';
}

/** The kernel's module directory for a vmlinuz from the cached Debian package (lib/modules/<release>). */
export function moduleDir(kernel: string): string | null {
  const release = basename(kernel).replace(/^vmlinuz-/, '');
  const d = join(dirname(dirname(kernel)), 'lib', 'modules', release);
  return existsSync(d) ? d : null;
}

function findModule(dir: string, name: string): string | null {
  const stack = [join(dir, 'kernel')];
  while (stack.length) {
    const d = stack.pop() as string;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(d, e.name));
      else if (e.name === `${name}.ko` || e.name.replace(/-/g, '_') === `${name}.ko`) return join(d, e.name);
    }
  }
  return null;
}

/** The modules (uncompressed .ko) needed for the root disk, dependencies first. */
export function rootModules(kernel: string): string[] {
  const dir = moduleDir(kernel);
  if (!dir) throw new SandtraceError('VM_KERNEL_MISSING', `no modules for ${kernel} (expected next to it in the extracted package)`);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const f = findModule(dir, name);
    if (!f) {
      if (statSync(dir).isDirectory() && name !== 'crc32c_generic') throw new SandtraceError('VM_KERNEL_MISSING', `kernel module ${name} not found (compressed modules are not supported)`);
      return;
    }
    const info = readFileSync(f).toString('latin1');
    const dep = /\0depends=([^\0]*)\0/.exec(info)?.[1] ?? '';
    for (const d of dep.split(',').filter(Boolean)) visit(d);
    order.push(f);
  };
  for (const m of ROOT_MODULES) visit(m);
  return order;
}

/** Copy the modules into the initramfs tree; returns the guest paths in load order. */
export function installModules(root: string, modules: string[]): string[] {
  mkdirSync(join(root, 'modules'), { recursive: true });
  return modules.map((m) => {
    copyFileSync(m, join(root, 'modules', basename(m)));
    return `/modules/${basename(m)}`;
  });
}
