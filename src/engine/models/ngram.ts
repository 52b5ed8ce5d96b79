// The shared core of the sequence models: a vocabulary of syscall names and a table of counted
// n-grams over it (traces padded with begin markers, so short traces and trace starts count too).
import { SandtraceError } from '../../errors.js';

/** Symbol ids: 0 = a syscall never seen in training, 1 = begin-of-trace marker, 2.. = known names. */
export const UNK = 0;
export const BOS = 1;

export class Vocab {
  readonly names: string[];
  private readonly ids: Map<string, number>;

  constructor(names: readonly string[] = []) {
    this.names = [...names];
    this.ids = new Map(this.names.map((n, i) => [n, i + 2]));
  }

  /** Id of a name, adding it (training) or mapping it to UNK (scoring). */
  id(name: string, grow: boolean): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    if (!grow) return UNK;
    this.names.push(name);
    const n = this.names.length + 1;
    this.ids.set(name, n);
    return n;
  }

  encode(calls: readonly string[], grow = false): Int32Array {
    const out = new Int32Array(calls.length);
    for (let i = 0; i < calls.length; i++) out[i] = this.id(calls[i] as string, grow);
    return out;
  }

  name(id: number): string {
    if (id === UNK) return '<unknown>';
    if (id === BOS) return '<start>';
    return this.names[id - 2] ?? '<unknown>';
  }

  /** Number of distinct symbol ids (UNK and BOS included). */
  get size(): number {
    return this.names.length + 2;
  }
}

/**
 * Counts of every length-`order` window of the BOS-padded training traces. Keys are exact
 * base-`radix` numbers (oldest symbol most significant), so the table is collision-free; the
 * radix and order are checked to stay within 2^53 (with one spare digit, which the Markov
 * model's context keys need).
 */
export class NgramTable {
  readonly order: number;
  readonly radix: number;
  readonly counts = new Map<number, number>();

  constructor(order: number, radix: number) {
    if (!Number.isInteger(order) || order < 1 || order > 16) {
      throw new SandtraceError('USAGE', `n must be an integer from 1 to 16, got ${order}`);
    }
    if (Math.pow(radix + 1, order) >= Number.MAX_SAFE_INTEGER) {
      throw new SandtraceError('MODEL_INVALID', `n=${order} is too large for a vocabulary of ${radix - 1} symbols`);
    }
    this.order = order;
    this.radix = radix;
  }

  /** Count the windows ending at each call of `trace`; `context`: the calls before it, if any (else BOS). */
  add(trace: Int32Array, context?: Int32Array): void {
    const { order, radix } = this;
    const mod = Math.pow(radix, order - 1);
    // window key over the padded trace; starts as the last `order-1` calls of context, BOS-padded
    let key = 0;
    const ctx = context ?? new Int32Array(0);
    for (let k = order - 1; k > 0; k--) key = key * radix + (ctx.length >= k ? (ctx[ctx.length - k] as number) : BOS);
    for (let i = 0; i < trace.length; i++) {
      key = (key % mod) * radix + (trace[i] as number);
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
  }

  /** Serialized as [key, count] pairs (keys are exact integers). */
  toJSON(): [number, number][] {
    return [...this.counts];
  }

  static fromJSON(order: number, radix: number, pairs: unknown): NgramTable {
    const t = new NgramTable(order, radix);
    if (!Array.isArray(pairs)) throw new SandtraceError('MODEL_INVALID', 'n-gram table is not a list');
    for (const p of pairs) {
      if (!Array.isArray(p) || typeof p[0] !== 'number' || typeof p[1] !== 'number') {
        throw new SandtraceError('MODEL_INVALID', 'n-gram table entry is not [key, count]');
      }
      t.counts.set(p[0], p[1]);
    }
    return t;
  }
}

/** The symbols of a window key, oldest first. */
export function decodeKey(key: number, order: number, radix: number): number[] {
  const out = new Array<number>(order);
  for (let i = order - 1; i >= 0; i--) {
    out[i] = key % radix;
    key = Math.floor(key / radix);
  }
  return out;
}
