// The container's cgroups on this hybrid host (v1 controllers + cgroup2 at .../unified): where
// they are, freezing and killing everything in them, and removing them.
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Parent of every sandbox cgroup, relative to each hierarchy's root. */
export const CGROUP_PARENT = 'sandtrace';

export interface Hierarchy { mount: string; version: 1 | 2; controllers: string[] }

let cached: Hierarchy[] | undefined;

/** The host's cgroup hierarchies, from /proc/self/mountinfo. */
export function hierarchies(): Hierarchy[] {
  if (cached) return cached;
  const out: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mount = left.split(' ')[4];
    const [fstype, , superOpts] = right.split(' ');
    if (!mount) continue;
    if (fstype === 'cgroup2') out.push({ mount, version: 2, controllers: [] });
    else if (fstype === 'cgroup') {
      const ctl = (superOpts ?? '').split(',').filter((o) => !['rw', 'ro', 'relatime', 'noexec', 'nosuid', 'nodev', 'xattr', 'clone_children'].includes(o));
      out.push({ mount, version: 1, controllers: ctl.map((c) => c.replace(/^name=/, 'name=')) });
    }
  }
  cached = out;
  return out;
}

export interface ContainerCgroups {
  /** cgroup v2 directory (the capture filter); undefined on a host without cgroup2. */
  unified: string | undefined;
  /** v1 freezer directory. */
  freezer: string | undefined;
  /** Every directory the container may have, leaf first when removing. */
  all: string[];
}

export function containerCgroups(id: string): ContainerCgroups {
  const rel = join(CGROUP_PARENT, id);
  const hs = hierarchies();
  const v2 = hs.find((h) => h.version === 2);
  const fr = hs.find((h) => h.version === 1 && h.controllers.includes('freezer'));
  return {
    unified: v2 ? join(v2.mount, rel) : undefined,
    freezer: fr ? join(fr.mount, rel) : undefined,
    all: hs.map((h) => join(h.mount, rel)),
  };
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function pidsIn(cg: ContainerCgroups): number[] {
  const set = new Set<number>();
  for (const d of [cg.freezer, cg.unified]) if (d) for (const p of readPids(d)) set.add(p);
  return [...set];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** v1 freezer: FROZEN or THAWED; resolves when the state has settled (bounded). */
export async function setFrozen(cg: ContainerCgroups, frozen: boolean): Promise<boolean> {
  if (cg.freezer && existsSync(cg.freezer)) {
    const want = frozen ? 'FROZEN' : 'THAWED';
    // A task in the middle of execve (runc's init becoming the sample) waits in D state for its
    // sibling threads, which the v1 freezer has already stopped: FREEZING then never completes.
    // Thaw briefly so the exec can finish, and try again.
    const file = join(cg.freezer, 'freezer.state');
    for (let attempt = 0; attempt < 25; attempt++) {
      try { writeFileSync(file, want); } catch { return false; }
      for (let i = 0; i < 20; i++) {
        let state = '';
        try { state = readFileSync(file, 'utf8').trim(); } catch { return false; }
        if (state === want) return true;
        await sleep(10);
      }
      if (!frozen) continue;
      try { writeFileSync(file, 'THAWED'); } catch { return false; }
      await sleep(10 * (attempt + 1));
    }
    // never leave the container half-frozen
    if (frozen) try { writeFileSync(file, 'THAWED'); } catch { /* gone */ }
    return false;
  }
  if (cg.unified && existsSync(join(cg.unified, 'cgroup.freeze'))) {
    writeFileSync(join(cg.unified, 'cgroup.freeze'), frozen ? '1' : '0');
    return true;
  }
  return false;
}

/**
 * Kills every process in the container, including ones that double-forked or called setsid:
 * freeze (nothing can fork meanwhile), SIGKILL all members, thaw so that the kill lands.
 */
export async function killAll(cg: ContainerCgroups): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const before = pidsIn(cg);
    if (before.length === 0) return;
    // cgroup2's cgroup.kill kills the whole subtree at once where the kernel has it
    if (cg.unified && existsSync(join(cg.unified, 'cgroup.kill'))) {
      try { writeFileSync(join(cg.unified, 'cgroup.kill'), '1'); } catch { /* fall back to freeze + kill */ }
    }
    await setFrozen(cg, true);
    for (const pid of pidsIn(cg)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await setFrozen(cg, false);
    for (let i = 0; i < 50 && pidsIn(cg).length > 0; i++) await sleep(10);
  }
}

/** Removes every cgroup dir of the container (and never the shared parent). Returns what remains. */
export async function removeCgroups(cg: ContainerCgroups): Promise<string[]> {
  const left: string[] = [];
  for (const dir of cg.all) {
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      try { rmdirSync(dir); } catch { await sleep(20); }
    }
    if (existsSync(dir)) left.push(dir);
  }
  return left;
}
