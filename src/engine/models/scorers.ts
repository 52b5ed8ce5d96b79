// The two sequence models. Both turn each call of a trace into an anomaly value given the calls
// before it, so trace scores (mean) and window scores (max over a sliding window) are shared:
//  - STIDE (Forrest et al. 1996): 1 when the length-n window ending at the call never occurred
//    in training, else 0. Mean = fraction of unseen windows; window mean = locality frame count.
//  - VMM: a variable-order Markov model, orders 0..n-1 interpolated with interpolated Kneser-Ney
//    (discounts estimated from count-of-counts) or Witten-Bell escape probabilities; the value is
//    the call's surprise in bits (-log2 P(call | up to n-1 previous calls)).
import { BOS, NgramTable, decodeKey } from './ngram.js';

export type ModelKind = 'stide' | 'vmm' | 'mix';
export type Smoothing = 'kn' | 'wb';
export const SMOOTHINGS: readonly Smoothing[] = ['kn', 'wb'];
export const MODEL_KINDS: readonly ModelKind[] = ['stide', 'vmm', 'mix'];

/** Streaming state for one process: feed symbol ids, get one anomaly value per call. */
export interface ScoreStream {
  push(sym: number): number;
}

export interface Scorer {
  readonly kind: ModelKind;
  /** The largest anomaly value one call can get, so the largest trace or window score (a mean of them). */
  readonly maxValue: number;
  stream(): ScoreStream;
  /** Anomaly value of every call of a whole trace (same numbers as a stream would give). */
  values(trace: Int32Array): Float64Array;
}

export class StideScorer implements Scorer {
  readonly kind = 'stide' as const;
  readonly maxValue = 1;
  constructor(private readonly table: NgramTable) {}

  stream(): ScoreStream {
    const { order, radix, counts } = this.table;
    const mod = Math.pow(radix, order - 1);
    let key = 0;
    for (let k = 0; k < order - 1; k++) key = key * radix + BOS;
    return {
      push(sym: number): number {
        key = (key % mod) * radix + sym;
        return counts.has(key) ? 0 : 1;
      },
    };
  }

  values(trace: Int32Array): Float64Array {
    const s = this.stream();
    const out = new Float64Array(trace.length);
    for (let i = 0; i < trace.length; i++) out[i] = s.push(trace[i] as number);
    return out;
  }
}

export class VmmScorer implements Scorer {
  readonly kind = 'vmm' as const;
  /** Deepest context length (n - 1). */
  private readonly depth: number;
  private readonly radix: number;
  /**
   * Contexts form a trie (node 0 = the empty context); a child extends its parent's context one
   * call further into the past: key parent * radix + symbol. Small integer keys keep lookups fast.
   */
  private readonly child = new Map<number, number>();
  private readonly tot: number[] = [0];
  private readonly uniq: number[] = [0];
  /** context node * radix + symbol -> count */
  private readonly pair = new Map<number, number>();
  /** (deepest matching context, symbol) -> surprise: the interpolation depends on nothing else. */
  private readonly memo = new Map<number, number>();
  readonly smoothing: Smoothing;
  /** Kneser-Ney: continuation counts (distinct one-call-longer contexts) below the top order. */
  private readonly ctot: number[] = [];
  private readonly cpair = new Map<number, number>();
  private readonly parent: number[] = [-1];
  private readonly level: number[] = [0];
  /** Kneser-Ney discount per context length. */
  private readonly discount: number[] = [];
  /**
   * Most surprise one call can carry: a call never seen at all, estimated with add-one counts over
   * the training calls. Interpolation would otherwise multiply one escape per order, which on
   * highly repetitive training data makes a single unseen call worth 40+ bits.
   */
  private readonly cap: number;

  constructor(table: NgramTable, smoothing: Smoothing = 'kn') {
    this.smoothing = smoothing;
    this.depth = table.order - 1;
    this.radix = table.radix;
    for (const [key, c] of table.counts) {
      const w = decodeKey(key, table.order, this.radix);
      const s = w[table.order - 1] as number;
      let node = 0;
      for (let k = 0; k <= this.depth; k++) {
        if (k > 0) {
          const ck = node * this.radix + (w[table.order - 1 - k] as number);
          let next = this.child.get(ck);
          if (next === undefined) {
            next = this.tot.length;
            this.child.set(ck, next);
            this.tot.push(0);
            this.uniq.push(0);
            this.parent.push(node);
            this.level.push(k);
          }
          node = next;
        }
        this.tot[node] = (this.tot[node] as number) + c;
        const pk = node * this.radix + s;
        const prev = this.pair.get(pk);
        if (prev === undefined) this.uniq[node] = (this.uniq[node] as number) + 1;
        this.pair.set(pk, (prev ?? 0) + c);
      }
    }
    if (smoothing === 'kn') this.prepareKneserNey();
    this.cap = Math.log2((this.tot[0] as number) + this.radix);
  }

  private prepareKneserNey(): void {
    const { radix } = this;
    this.ctot.length = this.tot.length;
    this.ctot.fill(0);
    // each distinct (context, call) one level deeper adds one continuation to its parent context
    const n1 = new Array<number>(this.depth + 1).fill(0);
    const n2 = new Array<number>(this.depth + 1).fill(0);
    for (const [pk, c] of this.pair) {
      const node = Math.floor(pk / radix);
      const s = pk - node * radix;
      const lvl = this.level[node] as number;
      if (lvl > 0) {
        const par = this.parent[node] as number;
        const ck = par * radix + s;
        this.cpair.set(ck, (this.cpair.get(ck) ?? 0) + 1);
        this.ctot[par] = (this.ctot[par] as number) + 1;
      }
      // count-of-counts of the counts each level is estimated from (raw at the top, continuation below)
      if (lvl === this.depth) { if (c === 1) n1[lvl]!++; else if (c === 2) n2[lvl]!++; }
    }
    for (const [ck, c] of this.cpair) {
      const lvl = this.level[Math.floor(ck / radix)] as number;
      if (c === 1) n1[lvl]!++; else if (c === 2) n2[lvl]!++;
    }
    for (let l = 0; l <= this.depth; l++) {
      const a = n1[l] as number;
      const b = n2[l] as number;
      // Ney et al.: D = n1 / (n1 + 2 n2), kept inside (0, 1)
      this.discount[l] = a + b > 0 ? Math.min(0.95, Math.max(0.05, a / (a + 2 * b))) : 0.5;
    }
  }

  /** Surprise of `sym` given the chain of context nodes path[0..len-1] (shortest first). */
  private surprise(path: Int32Array, len: number, sym: number): number {
    const { radix, tot, uniq, pair } = this;
    let p = 1 / radix;
    if (this.smoothing === 'kn') {
      for (let k = 0; k < len; k++) {
        const node = path[k] as number;
        const top = k === this.depth;
        const c = (top ? pair.get(node * radix + sym) : this.cpair.get(node * radix + sym)) ?? 0;
        const t = (top ? tot[node] : this.ctot[node]) as number;
        if (t === 0) continue;
        const d = this.discount[k] as number;
        p = Math.max(c - d, 0) / t + (d * (uniq[node] as number) / t) * p;
      }
      return Math.min(this.cap, -Math.log2(p));
    }
    for (let k = 0; k < len; k++) {
      const node = path[k] as number;
      const c = pair.get(node * radix + sym) ?? 0;
      const u = uniq[node] as number;
      p = (c + u * p) / ((tot[node] as number) + u);
    }
    return Math.min(this.cap, -Math.log2(p));
  }

  /** Every surprise is capped (see cap), so no call, trace or window scores more. */
  get maxValue(): number {
    return this.cap;
  }

  stream(): ScoreStream {
    const { depth, radix, child, memo } = this;
    const hist = new Int32Array(Math.max(1, depth)).fill(BOS); // nearest first
    const path = new Int32Array(depth + 1);
    return {
      push: (sym: number): number => {
        let len = 1;
        let node = 0;
        path[0] = 0;
        for (let k = 1; k <= depth; k++) {
          const next = child.get(node * radix + (hist[k - 1] as number));
          if (next === undefined) break;
          node = next;
          path[len++] = node;
        }
        const mk = node * radix + sym;
        let v = memo.get(mk);
        if (v === undefined) {
          v = this.surprise(path, len, sym);
          if (memo.size >= 1 << 20) memo.clear();
          memo.set(mk, v);
        }
        if (depth > 0) {
          hist.copyWithin(1, 0, depth - 1);
          hist[0] = sym;
        }
        return v;
      },
    };
  }

  values(trace: Int32Array): Float64Array {
    const s = this.stream();
    const out = new Float64Array(trace.length);
    for (let i = 0; i < trace.length; i++) out[i] = s.push(trace[i] as number);
    return out;
  }
}

export function makeScorer(kind: ModelKind, table: NgramTable, smoothing: Smoothing = 'kn'): Scorer {
  return kind === 'stide' ? new StideScorer(table) : new VmmScorer(table, smoothing);
}

export interface TraceScore {
  /** Mean anomaly value over the trace (0 for an empty trace). */
  score: number;
  /** Sum of the anomaly values (bits of surprise for the Markov models). */
  total: number;
  /** Highest mean over any `window` consecutive calls (the whole trace when shorter). */
  windowScore: number;
  /** Index of the first call of that window, and its length. */
  windowStart: number;
  windowLength: number;
}

export function summarize(values: Float64Array, window: number): TraceScore {
  const n = values.length;
  if (n === 0) return { score: 0, total: 0, windowScore: 0, windowStart: 0, windowLength: 0 };
  let total = 0;
  for (let i = 0; i < n; i++) total += values[i] as number;
  if (n <= window) return { score: total / n, total, windowScore: total / n, windowStart: 0, windowLength: n };
  let sum = 0;
  for (let i = 0; i < window; i++) sum += values[i] as number;
  let best = sum;
  let bestStart = 0;
  for (let i = window; i < n; i++) {
    sum += (values[i] as number) - (values[i - window] as number);
    if (sum > best + 1e-9) { best = sum; bestStart = i - window + 1; }
  }
  return { score: total / n, total, windowScore: best / window, windowStart: bestStart, windowLength: window };
}
