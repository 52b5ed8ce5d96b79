// A small neural language model of system calls (Bengio et al. 2003 style "neural n-gram"):
// the previous `context` calls -> shared embeddings -> one tanh hidden layer -> softmax over the
// vocabulary. Hand-written backprop and Adam on Float32Arrays, seeded, so training is
// deterministic. Unlike count models it generalizes across similar contexts (calls with similar
// roles get similar embeddings), and it scores any context, including ones never seen.
// Scoring memoizes per context, so repetitive traces cost a table look-up per call.
import { BOS, UNK, type NgramTable } from './ngram.js';
import { VmmScorer, type Scorer, type ScoreStream, type Smoothing } from './scorers.js';

export interface NeuralConfig {
  /** Previous calls the prediction looks at. */
  context: number;
  /** Embedding width. */
  embed: number;
  /** Hidden units. */
  hidden: number;
  /** Passes over the training calls. */
  epochs: number;
  /** Adam learning rate. */
  lr: number;
  batch: number;
  seed: number;
}

export const NEURAL_DEFAULTS: NeuralConfig = { context: 8, embed: 12, hidden: 64, epochs: 1, lr: 0.005, batch: 32, seed: 1 };

export interface NeuralWeights {
  config: NeuralConfig;
  vocab: number;
  /** [vocab][embed] */
  emb: number[];
  /** [context][embed][hidden] */
  w1: number[];
  b1: number[];
  /** [hidden][vocab] */
  w2: number[];
  b2: number[];
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LN2 = Math.LN2;

export class NeuralLM {
  readonly cfg: NeuralConfig;
  readonly V: number;
  readonly emb: Float32Array;
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
  /** Input projection per (position, symbol): w1_j^T emb(s), [context][vocab][hidden]; rebuilt after training. */
  private proj: Float32Array | null = null;

  constructor(cfg: NeuralConfig, vocab: number, w?: NeuralWeights) {
    this.cfg = cfg;
    this.V = vocab;
    const { context: K, embed: E, hidden: H } = cfg;
    this.emb = new Float32Array(vocab * E);
    this.w1 = new Float32Array(K * E * H);
    this.b1 = new Float32Array(H);
    this.w2 = new Float32Array(H * vocab);
    this.b2 = new Float32Array(vocab);
    if (w) {
      this.emb.set(w.emb); this.w1.set(w.w1); this.b1.set(w.b1); this.w2.set(w.w2); this.b2.set(w.b2);
    } else {
      const r = rng(cfg.seed);
      const u = (scale: number) => (r() * 2 - 1) * scale;
      for (let s = 0; s < vocab; s++) for (let e = 0; e < E; e++) this.emb[s * E + e] = s === UNK ? 0 : u(0.5);
      const s1 = Math.sqrt(6 / (K * E + H));
      for (let i = 0; i < this.w1.length; i++) this.w1[i] = u(s1);
      const s2 = Math.sqrt(6 / (H + vocab));
      for (let i = 0; i < this.w2.length; i++) this.w2[i] = u(s2);
    }
  }

  toJSON(): NeuralWeights {
    const r = (a: Float32Array) => Array.from(a, (x) => Math.round(x * 1e6) / 1e6);
    return { config: this.cfg, vocab: this.V, emb: r(this.emb), w1: r(this.w1), b1: r(this.b1), w2: r(this.w2), b2: r(this.b2) };
  }

  static fromJSON(w: NeuralWeights): NeuralLM {
    return new NeuralLM(w.config, w.vocab, w);
  }

  /**
   * Train on traces of symbol ids (BOS-padded contexts). Every call of every trace is one
   * example; examples are visited in a seeded random order each epoch.
   */
  train(traces: readonly Int32Array[], epochs = this.cfg.epochs): void {
    const { context: K, embed: E, hidden: H, batch, lr } = this.cfg;
    const V = this.V;
    // flat example index: (trace, position)
    let total = 0;
    for (const t of traces) total += t.length;
    const tIdx = new Int32Array(total);
    const pIdx = new Int32Array(total);
    let n = 0;
    traces.forEach((t, ti) => { for (let i = 0; i < t.length; i++) { tIdx[n] = ti; pIdx[n] = i; n++; } });
    const params = [this.emb, this.w1, this.b1, this.w2, this.b2];
    const grads = params.map((p) => new Float32Array(p.length));
    const m1 = params.map((p) => new Float32Array(p.length));
    const m2 = params.map((p) => new Float32Array(p.length));
    const [gEmb, gW1, gB1, gW2, gB2] = grads as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    const { emb, w1, b1, w2, b2 } = this;
    const ctx = new Int32Array(K);
    const h = new Float32Array(H);
    const dh = new Float32Array(H);
    const logits = new Float32Array(V);
    const order = new Int32Array(total);
    for (let i = 0; i < total; i++) order[i] = i;
    const r = rng(this.cfg.seed + 7);
    let step = 0;
    const b1m = 0.9;
    const b2m = 0.999;
    const totalSteps = Math.ceil(total / batch) * epochs;
    for (let ep = 0; ep < epochs; ep++) {
      for (let i = total - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        const tmp = order[i] as number; order[i] = order[j] as number; order[j] = tmp;
      }
      for (let start = 0; start < total; start += batch) {
        const end = Math.min(total, start + batch);
        for (const g of grads) g.fill(0);
        for (let q = start; q < end; q++) {
          const ex = order[q] as number;
          const tr = traces[tIdx[ex] as number] as Int32Array;
          const pos = pIdx[ex] as number;
          const target = tr[pos] as number;
          for (let j = 0; j < K; j++) ctx[j] = pos - 1 - j >= 0 ? (tr[pos - 1 - j] as number) : BOS;
          // forward
          h.set(b1);
          for (let j = 0; j < K; j++) {
            const eo = (ctx[j] as number) * E;
            const wo = j * E * H;
            for (let e = 0; e < E; e++) {
              const x = emb[eo + e] as number;
              if (x === 0) continue;
              const row = wo + e * H;
              for (let k = 0; k < H; k++) h[k] = (h[k] as number) + x * (w1[row + k] as number);
            }
          }
          for (let k = 0; k < H; k++) h[k] = Math.tanh(h[k] as number);
          logits.set(b2);
          for (let k = 0; k < H; k++) {
            const x = h[k] as number;
            const row = k * V;
            for (let v = 0; v < V; v++) logits[v] = (logits[v] as number) + x * (w2[row + v] as number);
          }
          let mx = -Infinity;
          for (let v = 0; v < V; v++) if ((logits[v] as number) > mx) mx = logits[v] as number;
          let z = 0;
          for (let v = 0; v < V; v++) { const ev = Math.exp((logits[v] as number) - mx); logits[v] = ev; z += ev; }
          // backward: dlogits = p - onehot (kept in logits)
          for (let v = 0; v < V; v++) logits[v] = (logits[v] as number) / z;
          logits[target] = (logits[target] as number) - 1;
          for (let v = 0; v < V; v++) gB2[v] = (gB2[v] as number) + (logits[v] as number);
          for (let k = 0; k < H; k++) {
            const x = h[k] as number;
            const row = k * V;
            let acc = 0;
            for (let v = 0; v < V; v++) {
              const d = logits[v] as number;
              gW2[row + v] = (gW2[row + v] as number) + x * d;
              acc += (w2[row + v] as number) * d;
            }
            dh[k] = acc * (1 - x * x);
            gB1[k] = (gB1[k] as number) + (dh[k] as number);
          }
          for (let j = 0; j < K; j++) {
            const s = ctx[j] as number;
            if (s === UNK) continue;
            const eo = s * E;
            const wo = j * E * H;
            for (let e = 0; e < E; e++) {
              const x = emb[eo + e] as number;
              const row = wo + e * H;
              let acc = 0;
              for (let k = 0; k < H; k++) {
                const d = dh[k] as number;
                gW1[row + k] = (gW1[row + k] as number) + x * d;
                acc += (w1[row + k] as number) * d;
              }
              gEmb[eo + e] = (gEmb[eo + e] as number) + acc;
            }
          }
        }
        // Adam with linear decay of the learning rate to 10% over the run
        step++;
        const bs = end - start;
        const rate = lr * (1 - 0.9 * (step - 1) / Math.max(1, totalSteps - 1));
        const c1 = 1 - Math.pow(b1m, step);
        const c2 = 1 - Math.pow(b2m, step);
        for (let pi = 0; pi < params.length; pi++) {
          const p = params[pi] as Float32Array;
          const g = grads[pi] as Float32Array;
          const a = m1[pi] as Float32Array;
          const b = m2[pi] as Float32Array;
          for (let i = 0; i < p.length; i++) {
            const gi = (g[i] as number) / bs;
            if (gi === 0 && pi === 0) continue; // embeddings of calls absent from the batch
            const ai = b1m * (a[i] as number) + (1 - b1m) * gi;
            const bi = b2m * (b[i] as number) + (1 - b2m) * gi * gi;
            a[i] = ai; b[i] = bi;
            p[i] = (p[i] as number) - rate * (ai / c1) / (Math.sqrt(bi / c2) + 1e-8);
          }
        }
      }
    }
    this.proj = null;
  }

  private projection(): Float32Array {
    if (this.proj) return this.proj;
    const { context: K, embed: E, hidden: H } = this.cfg;
    const V = this.V;
    const proj = new Float32Array(K * V * H);
    for (let j = 0; j < K; j++) {
      for (let s = 0; s < V; s++) {
        const o = (j * V + s) * H;
        for (let e = 0; e < E; e++) {
          const x = this.emb[s * E + e] as number;
          if (x === 0) continue;
          const row = (j * E + e) * H;
          for (let k = 0; k < H; k++) proj[o + k] = (proj[o + k] as number) + x * (this.w1[row + k] as number);
        }
      }
    }
    this.proj = proj;
    return proj;
  }

  /** Surprise in bits of every call in `out` (length V) given a context (nearest call first). */
  surprises(ctx: Int32Array, out: Float32Array): void {
    const { context: K, hidden: H } = this.cfg;
    const V = this.V;
    const proj = this.projection();
    const h = new Float32Array(this.b1);
    for (let j = 0; j < K; j++) {
      const o = (j * V + (ctx[j] as number)) * H;
      for (let k = 0; k < H; k++) h[k] = (h[k] as number) + (proj[o + k] as number);
    }
    for (let k = 0; k < H; k++) h[k] = Math.tanh(h[k] as number);
    out.set(this.b2);
    for (let k = 0; k < H; k++) {
      const x = h[k] as number;
      const row = k * V;
      for (let v = 0; v < V; v++) out[v] = (out[v] as number) + x * (this.w2[row + v] as number);
    }
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if ((out[v] as number) > mx) mx = out[v] as number;
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp((out[v] as number) - mx);
    const lz = mx + Math.log(z);
    for (let v = 0; v < V; v++) out[v] = (lz - (out[v] as number)) / LN2;
  }
}

/** 53-bit hash of a context (collisions are possible but vanishingly rare: a cache key only). */
export function contextKey(ctx: Int32Array): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < ctx.length; i++) {
    const s = ctx[i] as number;
    a = Math.imul(a ^ s, 0x01000193);
    b = Math.imul(b ^ (s + 0x9e37), 0x5bd1e995);
    b ^= b >>> 13;
  }
  return (a >>> 0) * 2097152 + ((b >>> 0) >>> 11);
}

/**
 * Streaming surprise under the neural model alone, memoized per context (the full vector of
 * surprises of every call, so a context seen again costs one look-up).
 */
export class NeuralStreamCache {
  private readonly memo = new Map<number, Float32Array>();
  constructor(readonly lm: NeuralLM, private readonly limit = 1 << 16) {}

  /** Surprises (bits) of every call after `ctx` (nearest call first). */
  lookup(ctx: Int32Array): Float32Array {
    const key = contextKey(ctx);
    let v = this.memo.get(key);
    if (v === undefined) {
      v = new Float32Array(this.lm.V);
      this.lm.surprises(ctx, v);
      if (this.memo.size >= this.limit) this.memo.clear();
      this.memo.set(key, v);
    }
    return v;
  }
}

/**
 * The "mix" model: linear interpolation of the variable-order Markov model and the neural model,
 * P = (1 - lambda) P_vmm + lambda P_nlm, lambda chosen by held-out likelihood of normal calls.
 * Value per call = surprise in bits under the mixture.
 */
export class MixScorer implements Scorer {
  readonly kind = 'mix' as const;
  readonly vmm: VmmScorer;
  /** Shared by every stream of this model: contexts recur across processes of a program. */
  private readonly cache: NeuralStreamCache;
  constructor(table: NgramTable, smoothing: Smoothing, readonly lm: NeuralLM, readonly lambda: number) {
    this.vmm = new VmmScorer(table, smoothing);
    this.cache = new NeuralStreamCache(lm);
  }

  /**
   * A bound on a call's surprise: the Markov part alone gives the mixture at least (1 - lambda) of
   * its probability, so at most its cap plus -log2(1 - lambda) bits; unbounded with the neural
   * model alone (lambda 1), whose softmax can make a call as unlikely as its weights allow.
   */
  get maxValue(): number {
    return this.lambda < 1 ? this.vmm.maxValue - Math.log2(1 - this.lambda) : Infinity;
  }

  stream(): ScoreStream {
    const inner = this.vmm.stream();
    const cache = this.cache;
    const K = this.lm.cfg.context;
    const ctx = new Int32Array(K).fill(BOS); // nearest first
    const lam = this.lambda;
    const V = this.lm.V;
    return {
      push(sym: number): number {
        const a = inner.push(sym);
        const b = cache.lookup(ctx)[sym < V ? sym : UNK] as number;
        ctx.copyWithin(1, 0, K - 1);
        ctx[0] = sym;
        return mixBits(a, b, lam);
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

/** Surprise of a linear mixture given the components' surprises (bits). */
export function mixBits(a: number, b: number, lambda: number): number {
  return -Math.log2((1 - lambda) * Math.pow(2, -a) + lambda * Math.pow(2, -b));
}
