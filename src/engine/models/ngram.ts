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

/** Longest window a table holds (the builder's and the model file's limit alike). */
export const MAX_ORDER = 16;

/**
 * The longest window (up to MAX_ORDER) whose keys over `radix` symbols stay exact: base-(radix+1)
 * numbers below 2^53, one spare digit for the Markov model's context keys. 0 when none fits.
 */
export function maxOrder(radix: number): number {
  let n = 0;
  while (n < MAX_ORDER && Math.pow(radix + 1, n + 1) < Number.MAX_SAFE_INTEGER) n++;
  return n;
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
    // callers check first, naming what was wrong (trainProgramModel: the --n flag, USAGE;
    // loading: the model file's field, MODEL_INVALID); this only guards the key arithmetic
    if (!Number.isInteger(order) || order < 1 || order > maxOrder(radix)) {
      throw new SandtraceError('INTERNAL', `n-gram table of order ${order} over ${radix} symbols: keys would not be exact`);
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

  /**
   * A table as a model file holds it. Every entry is checked while it is read (one pass: files
   * run to tens of MB), so a hand-edited or damaged table is refused rather than scored: a
   * negative count makes probabilities negative and every score NaN (detection silently off), a
   * key outside the radix names no window, a key given twice would lose one of its counts.
   * Throws MODEL_INVALID with a reason starting "table" (the caller names the file and model).
   */
  static fromJSON(order: number, radix: number, pairs: unknown): NgramTable {
    const t = new NgramTable(order, radix);
    if (!Array.isArray(pairs)) throw new SandtraceError('MODEL_INVALID', 'table (not a list of [key, count])');
    if (pairs.length === 0) throw new SandtraceError('MODEL_INVALID', 'table (empty: a trained model holds at least one window)');
    const keys = Math.pow(radix, order);
    const { counts } = t;
    for (let i = 0; i < pairs.length; i++) {
      const p: unknown = pairs[i];
      if (!Array.isArray(p) || p.length !== 2) throw new SandtraceError('MODEL_INVALID', `table: entry ${i} is not [key, count]`);
      const [k, c] = p as [unknown, unknown];
      if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= keys) {
        throw new SandtraceError('MODEL_INVALID', `table: entry ${i} has key ${show(k)}, not a window of ${order} of the ${radix - 2} vocabulary names (0 to ${keys - 1})`);
      }
      if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1) {
        throw new SandtraceError('MODEL_INVALID', `table: entry ${i} has count ${show(c)} (counts are positive whole numbers)`);
      }
      // one map operation per entry (files run to millions): a key seen before leaves the size as is
      const size = counts.size;
      counts.set(k, c);
      if (counts.size === size) throw new SandtraceError('MODEL_INVALID', `table: entry ${i} repeats key ${k}`);
    }
    return t;
  }
}

/** A value from a file, short enough for a one-line message. */
export function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  // numbers as JavaScript spells them: JSON would write Infinity (1e999 in a file) as null
  const s = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
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
