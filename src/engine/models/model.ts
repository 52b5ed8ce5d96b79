// Normal-behaviour models as files: training (on normal traces only), threshold calibration by
// cross-validation on those same normal traces, scoring, and the versioned JSON(.gz) format.
// A model file holds one model per program (keyed by exe path) and/or one global model.
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Abi } from '../../capture/events.js';
import { SandtraceError, isSandtraceError } from '../../errors.js';
import { checkInputFile } from '../../sample.js';
import { MAX_ORDER, NgramTable, Vocab, maxOrder, show } from './ngram.js';
import { MODEL_KINDS, SMOOTHINGS, makeScorer, summarize, type ModelKind, type Scorer, type Smoothing, type TraceScore } from './scorers.js';
import { MixScorer, NEURAL_DEFAULTS, NeuralLM, mixBits, type NeuralConfig, type NeuralWeights } from './neural.js';

export const MODEL_FORMAT = 'sandtrace.model';
export const MODEL_VERSION = 1;

/** Defaults, chosen from principles rather than from attack data (see README). */
export const DEFAULTS = {
  /** STIDE window length of Forrest et al. */
  stideN: 6,
  /** Markov orders tried by cross-validated held-out likelihood on the normal traces. */
  vmmCandidates: [2, 3, 4, 5, 6, 7] as readonly number[],
  /** Target false-alarm rate per trace (or per process) the threshold is calibrated to. */
  far: 0.01,
  folds: 5,
  /** Locality frame (Forrest et al.: 20 calls) for the window score. */
  window: 20,
  /**
   * Calls per calibration unit: held-out traces longer than this are judged chunk by chunk, so a
   * threshold means "per process, or per this many calls of a long-running one" and one long
   * main process weighs as much as the same number of calls spread over short children.
   */
  chunk: 1000,
  /**
   * Surprise (bits) a finding needs at least: one locality frame at one bit per call, i.e. calls
   * the model gave worse than even odds on average. Guards programs whose held-out runs were all
   * identical (thresholds near 0), where one delivered signal would otherwise be an alert.
   */
  minEvidence: 20,
  /** Processes of a program needed to calibrate its own thresholds (else the global model's). */
  minProcesses: 5,
} as const;

export interface Calibration {
  /** Anomaly-score threshold (mean over a trace) at the target false-alarm rate. */
  threshold: number;
  /** Threshold for the most anomalous window of `window` calls, at the same rate. */
  windowThreshold: number;
  window: number;
  /** Calls per calibration unit: the thresholds hold per process or per this many calls (absent in older files). */
  chunk?: number;
  /** Least total surprise (bits) of an anomalous process or window (absent in older files: 0). */
  minEvidence?: number;
  far: number;
  method: string;
  /** Held-out normal units scored to set the thresholds. */
  heldOut: number;
}

export interface ProgramModelData {
  kind: ModelKind;
  n: number;
  /** VMM smoothing (absent: Kneser-Ney). */
  smoothing?: Smoothing;
  abi: Abi;
  vocab: string[];
  /** [window key, count] pairs of the n-gram table (see NgramTable). */
  table: [number, number][];
  /** kind 'mix': the neural language model and its interpolation weight with the Markov model. */
  neural?: NeuralWeights;
  lambda?: number;
  calibration: Calibration;
  training: { traces: number; calls: number; selection?: string };
}

export interface ModelFileData {
  format: typeof MODEL_FORMAT;
  version: typeof MODEL_VERSION;
  created: string;
  kind: ModelKind;
  abi: Abi;
  training: { traces: number; calls: number; seconds: number; source: string };
  programs: Record<string, ProgramModelData>;
  global: ProgramModelData | null;
}

export interface TrainOptions {
  kind?: ModelKind;
  /** Window length (STIDE) or Markov order + 1 (VMM); chosen by cross-validation when absent (VMM). */
  n?: number;
  /** VMM smoothing; chosen with n by cross-validation when absent. */
  smoothing?: Smoothing;
  abi?: Abi;
  far?: number;
  folds?: number;
  window?: number;
  /** Calls per calibration unit (default DEFAULTS.chunk). */
  chunk?: number;
  /** Least evidence of a finding: bits for vmm/mix (default DEFAULTS.minEvidence), unseen windows for STIDE (default n). */
  minEvidence?: number;
  /** kind 'mix': neural model settings (defaults NEURAL_DEFAULTS). */
  neural?: Partial<NeuralConfig>;
}

/** A trained model for one program (or the global one), ready to score. */
export class ProgramModel {
  readonly data: ProgramModelData;
  readonly vocab: Vocab;
  readonly scorer: Scorer;

  constructor(data: ProgramModelData) {
    this.data = data;
    this.vocab = new Vocab(data.vocab);
    const table = NgramTable.fromJSON(data.n, this.vocab.size, data.table);
    if (data.kind === 'mix') {
      if (!data.neural || typeof data.lambda !== 'number') throw new SandtraceError('MODEL_INVALID', 'mix model without its neural part');
      this.scorer = new MixScorer(table, data.smoothing ?? 'kn', NeuralLM.fromJSON(data.neural), data.lambda);
    } else {
      this.scorer = makeScorer(data.kind, table, data.smoothing ?? 'kn');
    }
  }

  get name(): string {
    const d = this.data;
    if (d.kind === 'mix') return `mix-${d.smoothing ?? 'kn'}-n${d.n}+nlm`;
    return d.kind === 'vmm' ? `vmm-${d.smoothing ?? 'kn'}-n${d.n}` : `${d.kind}-n${d.n}`;
  }

  score(calls: readonly string[]): TraceScore & { values: Float64Array; ids: Int32Array } {
    const ids = this.vocab.encode(calls);
    const values = this.scorer.values(ids);
    return { ...summarize(values, this.data.calibration.window), values, ids };
  }

  /** Whether a scored trace is anomalous by either calibrated threshold. */
  isAnomalous(s: TraceScore): boolean {
    return this.exceeded(s).length > 0;
  }

  /**
   * Which calibrated thresholds a scored trace exceeds ('trace': its mean, with enough evidence;
   * 'window': its most anomalous window): what a verdict says it was decided by.
   */
  exceeded(s: TraceScore): ('trace' | 'window')[] {
    const c = this.data.calibration;
    const out: ('trace' | 'window')[] = [];
    if (s.score > c.threshold && s.total >= (c.minEvidence ?? 0)) out.push('trace');
    if (s.windowLength >= c.window && s.windowScore > c.windowThreshold) out.push('window');
    return out;
  }
}

/**
 * A cross-validation unit: a whole trace, or a piece of a long one together with the calls just
 * before it (so the piece is learned and scored in its real context, not as a fresh start).
 */
interface Unit { calls: Int32Array; context: Int32Array }

/** Calls of context kept before a piece: enough for any model order. */
const CONTEXT = 16;
const NO_CONTEXT = new Int32Array(0);

function buildTable(units: readonly Unit[], n: number, radix: number): NgramTable {
  const t = new NgramTable(n, radix);
  for (const u of units) t.add(u.calls, u.context);
  return t;
}

/** Anomaly values of a unit's calls, the stream first fed its context. */
function unitValues(scorer: Scorer, u: Unit, seen?: Uint8Array): Float64Array {
  const stream = scorer.stream();
  const sym = (x: number) => (seen && !seen[x] ? 0 : x);
  for (const x of u.context) stream.push(sym(x));
  const out = new Float64Array(u.calls.length);
  for (let i = 0; i < u.calls.length; i++) out[i] = stream.push(sym(u.calls[i] as number));
  return out;
}

/** Quantile with linear interpolation; q in [0,1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * The threshold at the target rate of held-out units, counted both by units and by the calls they
 * hold (the higher of the two quantiles): one long main process cannot hide among many short
 * children (by units), nor many short children among a few long pieces (by calls).
 */
export function calibratedThreshold(units: readonly { score: number; calls: number }[], rate: number): number {
  if (units.length === 0) return 0;
  const sorted = [...units].sort((a, b) => a.score - b.score);
  return Math.max(quantile(sorted.map((u) => u.score), 1 - rate), weightedQuantile(sorted, 1 - rate));
}

/** Quantile of scores weighted by calls, interpolated within a unit's weight; `sorted` ascending. */
function weightedQuantile(sorted: readonly { score: number; calls: number }[], q: number): number {
  const total = sorted.reduce((a, u) => a + u.calls, 0);
  const target = q * total;
  let cum = 0;
  for (let i = 0; i < sorted.length; i++) {
    const u = sorted[i]!;
    if (cum + u.calls >= target && u.calls > 0) {
      const lower = i > 0 ? sorted[i - 1]!.score : u.score;
      return lower + (u.score - lower) * Math.min(1, Math.max(0, (target - cum) / u.calls));
    }
    cum += u.calls;
  }
  return sorted[sorted.length - 1]!.score;
}

/**
 * Units for cross-validation folds: the traces, long ones cut into equal pieces of at most `chunk`
 * calls; with too few traces (a single long process seen live), smaller pieces, so that every
 * fold has some. Pieces of one trace fall in different folds: a held-out piece of a long-running
 * process is judged by a model that saw the rest of that process, as it will be when watched live
 * after learning. Thresholds therefore hold per process, or per `chunk` calls of a long one.
 */
function cvUnits(encoded: readonly Int32Array[], folds: number, chunk: number): Unit[] {
  const total = encoded.reduce((a, e) => a + e.length, 0);
  const size = encoded.length >= folds * 2 ? chunk : Math.min(chunk, Math.max(20, Math.ceil(total / (folds * 4))));
  const out: Unit[] = [];
  for (const e of encoded) {
    if (e.length <= size) { out.push({ calls: e, context: NO_CONTEXT }); continue; }
    // equal pieces, none much shorter than the others (1001 calls are two pieces of ~500)
    const len = Math.ceil(e.length / Math.ceil(e.length / size));
    for (let i = 0; i < e.length; i += len) {
      out.push({ calls: e.subarray(i, Math.min(e.length, i + len)), context: e.subarray(Math.max(0, i - CONTEXT), i) });
    }
  }
  return out;
}

/** One held-out calibration unit: its scores and how many calls it holds. */
interface HeldOut extends TraceScore { calls: number }

interface FoldResult { scores: HeldOut[]; bitsPerCall: number }

function heldOut(values: Float64Array, window: number): HeldOut {
  return { ...summarize(values, window), calls: values.length };
}

function crossValidate(units: readonly Unit[], kind: ModelKind, n: number, radix: number, folds: number, window: number, smoothing: Smoothing): FoldResult {
  const scores: HeldOut[] = [];
  let bits = 0;
  let calls = 0;
  for (let f = 0; f < folds; f++) {
    const train = units.filter((_, i) => i % folds !== f);
    const held = units.filter((_, i) => i % folds === f);
    if (train.length === 0 || held.length === 0) continue;
    // symbols unseen in the training folds must look unseen: remap them to UNK
    const seen = new Uint8Array(radix);
    for (const u of train) for (const s of u.calls) seen[s] = 1;
    const scorer = makeScorer(kind, buildTable(train, n, radix), smoothing);
    for (const h of held) {
      const v = unitValues(scorer, h, seen);
      scores.push(heldOut(v, window));
      if (kind === 'vmm') for (const x of v) bits += x;
      calls += v.length;
    }
  }
  return { scores, bitsPerCall: calls > 0 ? bits / calls : 0 };
}

/** Interpolation weights of the neural model tried (held-out bits/call decides). */
const LAMBDAS = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/**
 * The neural part of a 'mix' model: trained on all units but one fold (training it once per fold
 * would not fit the time budget); that fold, unseen by both parts, chooses the interpolation
 * weight by held-out bits/call and gives the held-out scores the thresholds are calibrated on.
 */
function trainNeuralPart(units: readonly Unit[], n: number, radix: number, folds: number, window: number, smoothing: Smoothing, cfg: NeuralConfig):
  { weights: NeuralWeights; lambda: number; cv: FoldResult; selection: string } {
  let train = units.filter((_, i) => i % folds !== 0);
  let held = units.filter((_, i) => i % folds === 0);
  if (train.length === 0 || held.length === 0) { train = [...units]; held = []; }
  const seen = new Uint8Array(radix);
  for (const u of train) for (const s of u.calls) seen[s] = 1;
  const lm = new NeuralLM(cfg, radix);
  lm.train(train.map((u) => u.calls));
  const table = buildTable(train, n, radix);
  // per-call surprises of both parts on the held-out fold
  const a: Float64Array[] = [];
  const b: Float64Array[] = [];
  const nlmOnly = new MixScorer(table, smoothing, lm, 1);
  const vmmOnly = new MixScorer(table, smoothing, lm, 0);
  for (const h of held) { a.push(unitValues(vmmOnly, h, seen)); b.push(unitValues(nlmOnly, h, seen)); }
  let lambda = 0;
  let best = Infinity;
  const tried: string[] = [];
  let calls = 0;
  for (const x of a) calls += x.length;
  for (const lam of calls > 0 ? LAMBDAS : [0]) {
    let bits = 0;
    for (let t = 0; t < a.length; t++) {
      const x = a[t] as Float64Array;
      const y = b[t] as Float64Array;
      for (let i = 0; i < x.length; i++) bits += mixBits(x[i] as number, y[i] as number, lam);
    }
    const bpc = calls > 0 ? bits / calls : 0;
    tried.push(`${lam}: ${bpc.toFixed(3)}`);
    if (bpc < best - 1e-9) { best = bpc; lambda = lam; }
  }
  const scorer = new MixScorer(table, smoothing, lm, lambda);
  const scores = held.map((h) => heldOut(unitValues(scorer, h, seen), window));
  return {
    weights: lm.toJSON(), lambda, cv: { scores, bitsPerCall: best },
    selection: `neural weight lambda by held-out bits/call on normal fold 1 of ${folds} (${tried.join(', ')}); neural config ${JSON.stringify(cfg)}`,
  };
}

/** Held-out units needed to calibrate any thresholds from held-out scores. */
const MIN_HELD_OUT = 3;

/**
 * Train one model on normal traces (each a list of syscall names). `fallback`: thresholds to use
 * when there is too little data to calibrate this model's own (a program seen once, briefly).
 */
export function trainProgramModel(traces: readonly (readonly string[])[], opts: TrainOptions = {}, fallback?: Calibration): ProgramModelData {
  const kind = opts.kind ?? 'vmm';
  if (!MODEL_KINDS.includes(kind)) throw new SandtraceError('USAGE', `unknown model kind '${kind}' (${MODEL_KINDS.join(', ')})`);
  if (opts.smoothing !== undefined && !SMOOTHINGS.includes(opts.smoothing)) throw new SandtraceError('USAGE', `unknown smoothing '${opts.smoothing}' (${SMOOTHINGS.join(', ')})`);
  const far = opts.far ?? DEFAULTS.far;
  const folds = opts.folds ?? DEFAULTS.folds;
  const window = opts.window ?? DEFAULTS.window;
  const chunk = Math.max(window, opts.chunk ?? DEFAULTS.chunk);
  // n is asked for (--n), so a bad one is a usage error, however deep the table that refuses it
  if (opts.n !== undefined && !(Number.isInteger(opts.n) && opts.n >= 1 && opts.n <= MAX_ORDER)) {
    throw new SandtraceError('USAGE', `n must be a whole number from 1 to ${MAX_ORDER}, got ${opts.n}`);
  }
  const nonEmpty = traces.filter((t) => t.length > 0);
  const calls = nonEmpty.reduce((a, t) => a + t.length, 0);
  if (calls === 0) throw new SandtraceError('INPUT_EMPTY', 'no system calls to train on');
  const vocab = new Vocab();
  const encoded = nonEmpty.map((t) => vocab.encode(t, true));
  const radix = vocab.size;
  if (opts.n !== undefined && opts.n > maxOrder(radix)) {
    throw new SandtraceError('USAGE', `n=${opts.n} is too large for the ${vocab.names.length} system call names of this training data: it allows n up to ${maxOrder(radix)}`);
  }
  const units = cvUnits(encoded, folds, chunk);

  let n = opts.n ?? (kind === 'stide' ? DEFAULTS.stideN : 0);
  let smoothing: Smoothing = opts.smoothing ?? 'kn';
  let cv: FoldResult | undefined;
  let selection: string | undefined;
  if (kind !== 'stide' && (opts.n === undefined || opts.smoothing === undefined)) {
    // choose what best predicts held-out normal calls (cross-entropy), never from attacks
    const tried: string[] = [];
    let best = Infinity;
    for (const sm of opts.smoothing ? [opts.smoothing] : SMOOTHINGS) {
      for (const cand of opts.n ? [opts.n] : DEFAULTS.vmmCandidates) {
        if (Math.pow(radix + 1, cand) >= Number.MAX_SAFE_INTEGER) break;
        const r = crossValidate(units, 'vmm', cand, radix, folds, window, sm);
        tried.push(`${sm} n=${cand}: ${r.bitsPerCall.toFixed(3)}`);
        if (r.bitsPerCall < best - 1e-9) { best = r.bitsPerCall; n = cand; smoothing = sm; cv = r; }
      }
    }
    selection = `smoothing and n by ${folds}-fold held-out bits/call on normal traces (${tried.join(', ')})`;
  }
  let neural: { weights: NeuralWeights; lambda: number } | undefined;
  if (kind === 'mix') {
    const m = trainNeuralPart(units, n, radix, folds, window, smoothing, { ...NEURAL_DEFAULTS, ...opts.neural });
    neural = { weights: m.weights, lambda: m.lambda };
    cv = m.cv;
    selection = `${selection ? selection + '; ' : ''}${m.selection}`;
  }
  cv ??= crossValidate(units, kind, n, radix, folds, window, smoothing);

  const table = buildTable(encoded.map((calls) => ({ calls, context: NO_CONTEXT })), n, radix);
  let calibration: Calibration;
  if ((cv.scores.length >= MIN_HELD_OUT && nonEmpty.length >= DEFAULTS.minProcesses) || !fallback) {
    let held = cv.scores;
    const pieces = units.length > encoded.length;
    const what = `held-out normal traces${pieces ? ` (long ones in pieces of at most ${Math.max(...units.map((u) => u.calls.length))} calls)` : ''}`;
    let how = kind === 'mix'
      ? `${1 - far} quantile of the scores of the ${what} (1 fold of ${folds}) neither part trained on`
      : `${1 - far} quantile of ${folds}-fold cross-validated scores of ${what}`;
    how += ', so that at most that share of them exceeds it, counted by units and by calls';
    if (held.length < MIN_HELD_OUT) {
      // too little data to hold any out: the training units' own (optimistic) scores
      const scorer: Scorer = neural ? new MixScorer(table, smoothing, NeuralLM.fromJSON(neural.weights), neural.lambda) : makeScorer(kind, table, smoothing);
      held = units.map((u) => heldOut(unitValues(scorer, u), window));
      how = `${1 - far} quantile of in-sample scores (too little data to cross-validate)`;
    }
    const threshold = calibratedThreshold(held, far);
    const windowed = held.filter((x) => x.windowLength >= window).map((x) => ({ score: x.windowScore, calls: x.calls }));
    // in the scorer's own unit: bits (vmm, mix), or unseen windows for STIDE, where one unseen
    // call makes n of them (as one unseen call makes about 20 bits)
    const minEvidence = opts.minEvidence ?? (kind === 'stide' ? n : DEFAULTS.minEvidence);
    calibration = {
      threshold,
      windowThreshold: Math.max(windowed.length > 0 ? calibratedThreshold(windowed, far) : threshold, minEvidence / window),
      window, chunk, minEvidence, far, method: how, heldOut: cv.scores.length,
    };
  } else {
    calibration = { ...fallback, method: `${BORROWED} (only ${nonEmpty.length} process(es) of this program to calibrate on)`, heldOut: cv.scores.length };
  }
  return {
    kind, n, ...(kind !== 'stide' ? { smoothing } : {}), abi: opts.abi ?? 'x86_64', vocab: vocab.names, table: table.toJSON(),
    ...(neural ? { neural: neural.weights, lambda: neural.lambda } : {}), calibration,
    training: { traces: nonEmpty.length, calls, ...(selection ? { selection } : {}) },
  };
}

/** The calibration method of a program model that took the global model's thresholds (trainProgramModel). */
const BORROWED = 'thresholds of the global model';

/** A whole model file in memory: per-program models and an optional global one. */
export class AnomalyModel {
  readonly data: ModelFileData;
  readonly programs = new Map<string, ProgramModel>();
  readonly global: ProgramModel | null;
  /** Programs seen too briefly to calibrate their own model, which cannot reach the thresholds they took: judged by the global model. */
  private readonly borrowed = new Set<string>();
  /** The file it was loaded from, for messages. */
  readonly source: string | undefined;

  constructor(data: ModelFileData, source?: string) {
    this.data = data;
    this.source = source;
    // the n-gram tables' entries are checked as they are read: a bad one is named with its file
    const load = (d: ProgramModelData, where: string): ProgramModel => {
      try {
        return new ProgramModel(d);
      } catch (e) {
        if (!isSandtraceError(e) || e.code !== 'MODEL_INVALID' || source === undefined) throw e;
        throw new SandtraceError('MODEL_INVALID', `${source}: model for ${where} has an invalid ${e.message}`, { cause: e });
      }
    };
    for (const [exe, d] of Object.entries(data.programs)) this.programs.set(exe, load(d, exe));
    this.global = data.global ? load(data.global, 'the global model') : null;
    if (this.global) unreachableThreshold(this.global, 'the global model', source);
    for (const [exe, m] of this.programs) {
      // A program seen in too few processes takes the global model's thresholds as they are
      // (trainProgramModel). They were calibrated on the global model's scores, and its own small
      // Markov model may not reach them (one `read write close` run scores at most 3 bits a call
      // against a borrowed 10): then it is judged by the global model, which learned its runs too,
      // and still counts as seen. (A STIDE model reaches any threshold below 1: it keeps its own.)
      const g = this.global?.data.calibration;
      const c = m.data.calibration;
      const took = g && c.method.startsWith(BORROWED) && c.threshold === g.threshold && c.windowThreshold === g.windowThreshold;
      if (took && m.scorer.maxValue <= c.threshold) this.borrowed.add(exe);
      else if (!took) unreachableThreshold(m, exe, source);
    }
  }

  /** The model a program is judged by: its own, or the global model (unseen, or seen too briefly). */
  forExe(exe: string): ProgramModel | null {
    if (this.borrowed.has(exe)) return this.global;
    return this.programs.get(exe) ?? this.global;
  }

  /** Whether a program the model saw is judged by the global model (too few processes to calibrate its own, which could never alert). */
  judgedByGlobal(exe: string): boolean {
    return this.borrowed.has(exe);
  }

  get name(): string {
    return `${this.data.kind}`;
  }

  /**
   * Thresholds calibration had to put at the most the model can score (Scorer.maxValue): more than
   * the target share of held-out normal units already score that much (STIDE's windows of 20 calls
   * all unseen, on data like ADFA-LD's), so nothing can exceed them and that kind of alert never
   * fires. The model stays valid (the other threshold still judges); an operator should know.
   */
  silentThresholds(): { where: string; what: 'threshold' | 'window threshold'; value: number; most: number; far: number }[] {
    const out: { where: string; what: 'threshold' | 'window threshold'; value: number; most: number; far: number }[] = [];
    const check = (m: ProgramModel, where: string) => {
      const c = m.data.calibration;
      const most = m.scorer.maxValue;
      for (const [what, v] of [['threshold', c.threshold], ['window threshold', c.windowThreshold]] as const) {
        if (Number.isFinite(most) && v >= most * (1 - 1e-9)) out.push({ where, what, value: v, most, far: c.far });
      }
    };
    if (this.global) check(this.global, 'the global model');
    for (const [exe, m] of this.programs) {
      // a program that took the global model's thresholds (judged by it or not) is said once, there
      if (!m.data.calibration.method.startsWith(BORROWED)) check(m, exe);
    }
    return out;
  }

  /** The ABI whose system calls the model was trained on (files before the field: x86_64). */
  get abi(): Abi {
    return this.data.abi ?? 'x86_64';
  }
}

/**
 * Refuses a model whose calibrated threshold (of the trace score or the window score) is above the
 * largest score it can give (Scorer.maxValue: 1 for STIDE, the cap on one call's surprise for the
 * Markov model): nothing would ever exceed it, and the model would load, run and never alert.
 * Calibration puts thresholds at or below that (held-out scores come from models trained on less,
 * whose caps are lower), so only a hand-edited or damaged file has one above it.
 */
function unreachableThreshold(m: ProgramModel, where: string, source: string | undefined): void {
  const most = m.scorer.maxValue;
  const c = m.data.calibration;
  for (const [what, v] of [['threshold', c.threshold], ['window threshold', c.windowThreshold]] as const) {
    if (!(v > most * (1 + 1e-9))) continue;
    const unit = m.data.kind === 'stide' ? ' (every window unseen)' : ' bits a call';
    throw new SandtraceError('MODEL_INVALID',
      `${source ? `${source}: ` : ''}model for ${where} has an invalid ${what} ${show(v)} (above ${round2(most)}${unit}, the most this model can score: no ${what === 'threshold' ? 'trace' : 'window'} would ever exceed it, so it would never alert)`,
      { details: { threshold: v, maxScore: most } });
  }
}

const round2 = (x: number) => String(Math.round(x * 100) / 100);

/**
 * Refuses to judge calls of one ABI with a model of the other: the two tables name calls
 * differently (i386's socketcall, mmap2, _llseek, fstat64 ...), so a trace would be all unseen
 * calls and every verdict nonsense. `traceAbi` is the ABI the capture or import declares; a call of
 * the other ABI inside it (int 0x80 from a 64-bit program) is scored by its name, as any call is.
 */
export function checkModelAbi(model: AnomalyModel, traceAbi: Abi, what: string): void {
  if (model.abi === traceAbi) return;
  throw new SandtraceError('MODEL_INVALID',
    `model ${model.source ?? ''}${model.source ? ' ' : ''}was trained on ${model.abi} system calls but ${what} holds ${traceAbi} calls: a model judges only calls of its own ABI`,
    { details: { modelAbi: model.abi, traceAbi } });
}

export interface TrainingSet {
  /** Traces without a program (imported datasets): they train the global model. */
  traces: (readonly string[])[];
  /** Traces per exe path. */
  byExe?: Map<string, (readonly string[])[]>;
  source: string;
}

/**
 * Train a model file: one model per program with traces, plus a global model over every trace
 * (the fallback for programs never seen).
 */
export function trainModelFile(set: TrainingSet, opts: TrainOptions = {}): ModelFileData {
  const t0 = performance.now();
  const programs: Record<string, ProgramModelData> = {};
  const all: (readonly string[])[] = [...set.traces];
  for (const traces of set.byExe?.values() ?? []) all.push(...traces);
  const global = trainProgramModel(all, opts);
  for (const [exe, traces] of set.byExe ?? []) {
    if (traces.some((t) => t.length > 0)) programs[exe] = trainProgramModel(traces, opts, global.calibration);
  }
  return {
    format: MODEL_FORMAT,
    version: MODEL_VERSION,
    created: new Date().toISOString(),
    kind: global.kind,
    abi: opts.abi ?? 'x86_64',
    training: {
      traces: all.filter((t) => t.length > 0).length,
      calls: all.reduce((a, t) => a + t.length, 0),
      seconds: (performance.now() - t0) / 1000,
      source: set.source,
    },
    programs,
    global,
  };
}

export async function saveModel(path: string, data: ModelFileData): Promise<void> {
  const text = JSON.stringify(data);
  await writeFile(path, path.endsWith('.gz') ? gzipSync(text) : text);
}

export async function loadModel(path: string): Promise<AnomalyModel> {
  await checkInputFile(path, 'model file');
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SandtraceError('INPUT_MISSING', `model file ${path} does not exist`, { cause: e });
    if (code === 'EISDIR') throw new SandtraceError('INPUT_IS_DIRECTORY', `${path} is a directory, not a model file`, { cause: e });
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read model file ${path}: ${code ?? e}`, { cause: e });
  }
  let data: unknown;
  try {
    const text = buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf).toString('utf8') : buf.toString('utf8');
    data = JSON.parse(text);
  } catch (e) {
    throw new SandtraceError('MODEL_INVALID', `${path} is not a sandtrace model (not JSON)`, { cause: e });
  }
  return new AnomalyModel(validateModel(data, path), path);
}

/** Calibration pieces of older files, which do not record theirs (a window is at most one piece). */
const OLD_CHUNK: number = DEFAULTS.chunk;

/**
 * What is wrong with one model of a file, as "FIELD VALUE (why)", or undefined. Every field a
 * scorer reads is checked (types, ranges, shapes), since a hand-edited or damaged file is loaded
 * otherwise as if it were sound and can switch detection off without a word: a smoothing nobody
 * knows, a Markov model relabelled STIDE (thresholds in bits, never reached by fractions of unseen
 * windows), vocabulary numbers or duplicates. Linear in the model's size; the n-gram table's
 * entries are checked as they are read (NgramTable.fromJSON).
 */
function modelProblem(p: unknown): string | undefined {
  if (!p || typeof p !== 'object' || Array.isArray(p)) return `model ${show(p)} (not an object)`;
  const m = p as Partial<Record<keyof ProgramModelData, unknown>>;
  const { kind, n, smoothing, abi, vocab, table, calibration: cal, neural, lambda, training } = m;
  if (!MODEL_KINDS.includes(kind as ModelKind)) return `kind ${show(kind)} (${MODEL_KINDS.join(', ')})`;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ORDER) return `n ${show(n)} (a whole number from 1 to ${MAX_ORDER})`;
  if (kind === 'stide' && smoothing !== undefined) return `smoothing ${show(smoothing)} (a STIDE model has none: is this a Markov model's table?)`;
  if (smoothing !== undefined && !SMOOTHINGS.includes(smoothing as Smoothing)) return `smoothing ${show(smoothing)} (${SMOOTHINGS.join(' or ')})`;
  if (abi !== undefined && abi !== 'x86_64' && abi !== 'i386') return `abi ${typeof abi === 'string' ? `'${abi}'` : show(abi)}`;
  if (!Array.isArray(vocab) || vocab.length === 0) return `vocab ${show(vocab)} (a list of the system call names trained on)`;
  const names = new Set<string>();
  for (let i = 0; i < vocab.length; i++) {
    const v: unknown = vocab[i];
    if (typeof v !== 'string') return `vocab entry ${i} ${show(v)} (system call names are strings)`;
    if (names.has(v)) return `vocab entry ${i} ${show(v)} (named twice)`;
    names.add(v);
  }
  const radix = vocab.length + 2;
  if (n > maxOrder(radix)) return `n ${n} (too large for a vocabulary of ${vocab.length} names: at most ${maxOrder(radix)})`;
  if (!Array.isArray(table)) return `table ${show(table)} (a list of [key, count])`;
  if (!cal || typeof cal !== 'object') return `calibration ${show(cal)}`;
  const c = cal as Partial<Record<keyof Calibration, unknown>>;
  // STIDE values are 0 or 1, so its scores are fractions: a threshold above 1 is never exceeded
  const most = kind === 'stide' ? 1 : Infinity;
  const threshold = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= most;
  const range = kind === 'stide' ? '(a fraction of unseen windows, 0 to 1)' : '(a finite number, at least 0)';
  if (!threshold(c.threshold)) return `threshold ${show(c.threshold)} ${range}`;
  if (!threshold(c.windowThreshold)) return `window threshold ${show(c.windowThreshold)} ${range}`;
  if (c.chunk !== undefined && !(typeof c.chunk === 'number' && Number.isInteger(c.chunk) && c.chunk >= 1)) return `chunk ${show(c.chunk)}`;
  // a window longer than a calibration piece was never calibrated (and would never be judged)
  const chunk = (c.chunk as number | undefined) ?? OLD_CHUNK;
  if (!(typeof c.window === 'number' && Number.isInteger(c.window) && c.window >= 1 && c.window <= chunk)) return `window ${show(c.window)} (1 to the calibration chunk, ${chunk})`;
  if (c.minEvidence !== undefined && !(typeof c.minEvidence === 'number' && Number.isFinite(c.minEvidence) && c.minEvidence >= 0)) return `minEvidence ${show(c.minEvidence)}`;
  if (!training || typeof training !== 'object') return `training ${show(training)}`;
  if (kind === 'mix') {
    if (!(typeof lambda === 'number' && lambda >= 0 && lambda <= 1)) return `lambda ${show(lambda)} (the neural model's weight, 0 to 1)`;
    return neuralProblem(neural, radix);
  }
  return undefined;
}

/** What is wrong with a mix model's neural part (shapes follow NeuralLM: see its constructor). */
function neuralProblem(w: unknown, radix: number): string | undefined {
  if (!w || typeof w !== 'object') return `neural ${show(w)} (a mix model's neural part)`;
  const { config, vocab, emb, w1, b1, w2, b2 } = w as Partial<Record<keyof NeuralWeights, unknown>>;
  const cfg = (config ?? {}) as Partial<Record<keyof NeuralConfig, unknown>>;
  for (const k of ['context', 'embed', 'hidden'] as const) {
    const v = cfg[k];
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) return `neural config.${k} ${show(v)} (a positive whole number)`;
  }
  if (vocab !== radix) return `neural vocab ${show(vocab)} (the vocabulary's ${radix - 2} names + 2)`;
  const K = cfg.context as number;
  const E = cfg.embed as number;
  const H = cfg.hidden as number;
  for (const [name, a, len] of [['emb', emb, radix * E], ['w1', w1, K * E * H], ['b1', b1, H], ['w2', w2, H * radix], ['b2', b2, radix]] as const) {
    if (!Array.isArray(a) || a.length !== len) return `neural ${name} (${Array.isArray(a) ? `${a.length} numbers` : show(a)}, the config makes it ${len})`;
    // stored as 32-bit floats: a value beyond their range would become Infinity, every score NaN
    for (let i = 0; i < a.length; i++) {
      const x: unknown = a[i];
      if (typeof x !== 'number' || !Number.isFinite(Math.fround(x))) return `neural ${name}[${i}] ${show(x)} (a finite number)`;
    }
  }
  return undefined;
}

function validateModel(d: unknown, path: string): ModelFileData {
  const o = d as Partial<ModelFileData> | null;
  if (!o || typeof o !== 'object' || o.format !== MODEL_FORMAT) {
    throw new SandtraceError('MODEL_INVALID', `${path} is not a sandtrace model (format field missing)`);
  }
  if (o.version !== MODEL_VERSION) {
    throw new SandtraceError('MODEL_INVALID', `${path} is model format version ${String(o.version)}; this sandtrace reads version ${MODEL_VERSION}`);
  }
  const check = (p: unknown, where: string): void => {
    const bad = modelProblem(p);
    if (bad) throw new SandtraceError('MODEL_INVALID', `${path}: model for ${where} has an invalid ${bad}`);
  };
  if (o.abi !== undefined && o.abi !== 'x86_64' && o.abi !== 'i386') throw new SandtraceError('MODEL_INVALID', `${path}: invalid abi '${String(o.abi)}' (x86_64 or i386)`);
  if (!MODEL_KINDS.includes(o.kind as ModelKind)) throw new SandtraceError('MODEL_INVALID', `${path}: invalid kind ${show(o.kind)} (${MODEL_KINDS.join(', ')})`);
  if (!o.training || typeof o.training !== 'object') throw new SandtraceError('MODEL_INVALID', `${path}: invalid training ${show(o.training)} (what the model was trained on)`);
  const fileAbi = o.abi ?? 'x86_64';
  // every model of a file judges the calls of the file's abi (what scoring checks traces against)
  const sameAbi = (p: unknown, where: string): void => {
    const a = (p as Partial<ProgramModelData>).abi;
    if (a !== undefined && a !== fileAbi) throw new SandtraceError('MODEL_INVALID', `${path}: model for ${where} is of abi ${a}, the file's is ${fileAbi}`);
  };
  if (typeof o.programs !== 'object' || o.programs === null || Array.isArray(o.programs)) throw new SandtraceError('MODEL_INVALID', `${path}: no programs field`);
  for (const [exe, p] of Object.entries(o.programs)) {
    // '' is how an import names a trace without a program: it is judged by the global model
    if (exe === '') throw new SandtraceError('MODEL_INVALID', `${path}: a model for the program "" (programs are named by their exe path)`);
    check(p, exe);
    sameAbi(p, exe);
  }
  if (o.global !== undefined && o.global !== null) { check(o.global, 'the global model'); sameAbi(o.global, 'the global model'); }
  if (!o.global && Object.keys(o.programs).length === 0) throw new SandtraceError('MODEL_INVALID', `${path} holds no model`);
  return o as ModelFileData;
}
