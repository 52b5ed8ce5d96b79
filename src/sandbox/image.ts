// Where the sandbox's root filesystems live: the cached base image built by
// scripts/setup.d/40-image.sh, and imported docker/OCI archives (import.ts). Also names the decoy
// credential paths planted in the base image, which the rule engine watches.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandtraceError } from '../errors.js';
import { USER } from './decoys.js';

export function cacheDir(): string {
  return process.env['SANDTRACE_CACHE'] || '/var/cache/sandtrace';
}

export function baseImageDir(): string {
  return join(cacheDir(), 'images', 'base');
}

/** The init both sandboxes run the sample under (init.c), built by setup next to the shim. */
export function initPath(): string {
  return join(cacheDir(), 'bin', 'sandtrace-init');
}

/** Decoy credentials in the base image: reading any of them is credential access. */
export const DECOY_PATHS: readonly string[] = Object.freeze(
  [USER.home, '/root'].flatMap((h) => [
    `${h}/.ssh/id_rsa`, `${h}/.ssh/id_rsa.pub`, `${h}/.ssh/known_hosts`, `${h}/.aws/credentials`,
    `${h}/.docker/config.json`, `${h}/.config/gcloud/application_default_credentials.json`, `${h}/.netrc`,
    `${h}/.bash_history`,
  ]),
);

export interface ImageManifest {
  /** sha256 of the recipe the image was built from (suite, packages, personalisation). */
  recipe: string;
  /** Host uid/gid that the image's uid 0 is shifted to. */
  idShift: number;
  builtAt: string;
  source: string;
}

/** The rootfs of the cached base image, or SANDBOX_IMAGE_MISSING. */
export function baseRootfs(): { rootfs: string; manifest: ImageManifest } {
  const dir = baseImageDir();
  const mf = join(dir, 'manifest.json');
  const rootfs = join(dir, 'rootfs');
  if (!existsSync(mf) || !existsSync(join(rootfs, 'bin', 'sh'))) {
    throw new SandtraceError('SANDBOX_IMAGE_MISSING', `no base image at ${dir}: run make setup`, { details: { dir } });
  }
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(readFileSync(mf, 'utf8')) as ImageManifest;
  } catch (e) {
    throw new SandtraceError('SANDBOX_IMAGE_INVALID', `unreadable image manifest ${mf}: run make setup`, { cause: e });
  }
  return { rootfs, manifest };
}
