// Files written during the capture (proc.is_exe_upper_layer: the program run was dropped by the
// sample), in bounded memory. A sample names as many files as it likes; past a budget of names
// kept whole, only 32-bit hashes of the path and of its last component are kept, and past a cap
// on those the set is saturated: every program then counts as possibly written, which errs
// towards flagging an execution rather than letting a flood of names hide the one that matters.

/** Characters of names kept whole, hashes kept after them. */
export const WRITTEN_LIMITS = { chars: 8 << 20, hashes: 1_000_000 } as const;

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

export class WrittenFiles {
  private readonly whole = new Set<string>();
  /** last component -> the whole names ending in it (a relative exe is matched by its suffix) */
  private readonly byBase = new Map<string, string[]>();
  private chars = 0;
  private readonly hashes = new Set<number>();
  private readonly baseHashes = new Set<number>();
  /** true once names were no longer kept whole (answers may then be "yes" for a name never written) */
  approximate = false;
  saturated = false;

  constructor(private readonly limits: { chars: number; hashes: number } = WRITTEN_LIMITS) {}

  add(path: string): void {
    if (this.whole.has(path)) return;
    if (this.chars + path.length <= this.limits.chars) {
      this.whole.add(path);
      this.chars += path.length;
      const b = base(path);
      const list = this.byBase.get(b);
      if (list) list.push(path);
      else this.byBase.set(b, [path]);
      return;
    }
    this.approximate = true;
    if (this.saturated) return;
    if (this.hashes.size >= this.limits.hashes) { this.saturated = true; return; }
    this.hashes.add(fnv1a(path));
    this.baseHashes.add(fnv1a(base(path)));
  }

  /** An absolute path written during the capture. */
  has(path: string): boolean {
    if (this.whole.has(path)) return true;
    return this.saturated || (this.approximate && this.hashes.has(fnv1a(path)));
  }

  /** A written absolute path ending in `rel` ('/x' or '/sub/x': a relative exe made absolute). */
  hasSuffix(rel: string): boolean {
    const b = base(rel);
    for (const w of this.byBase.get(b) ?? []) if (w.endsWith(rel)) return true;
    return this.saturated || (this.approximate && this.baseHashes.has(fnv1a(b)));
  }
}
