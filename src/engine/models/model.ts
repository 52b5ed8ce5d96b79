// Normal-behaviour models as files: training (on normal traces only), threshold calibration by
// cross-validation on those same normal traces, scoring, and the versioned JSON(.gz) format.
// A model file holds one model per program (keyed by exe path) and/or one global model.
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Abi } from '../../capture/events.js';
import { SandtraceError } from '../../errors.js';
import { checkInputFile } from '../../sample.js';
import { NgramTable, Vocab } from './ngram.js';
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
    const c = this.data.calibration;
    return (s.score > c.threshold && s.total >= (c.minEvidence ?? 0))
      || (s.windowLength >= c.window && s.windowScore > c.windowThreshold);
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
  const nonEmpty = traces.filter((t) => t.length > 0);
  const calls = nonEmpty.reduce((a, t) => a + t.length, 0);
  if (calls === 0) throw new SandtraceError('INPUT_EMPTY', 'no system calls to train on');
  const vocab = new Vocab();
  const encoded = nonEmpty.map((t) => vocab.encode(t, true));
  const radix = vocab.size;
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
    calibration = { ...fallback, method: `thresholds of the global model (only ${nonEmpty.length} process(es) of this program to calibrate on)`, heldOut: cv.scores.length };
  }
  return {
    kind, n, ...(kind !== 'stide' ? { smoothing } : {}), abi: opts.abi ?? 'x86_64', vocab: vocab.names, table: table.toJSON(),
    ...(neural ? { neural: neural.weights, lambda: neural.lambda } : {}), calibration,
    training: { traces: nonEmpty.length, calls, ...(selection ? { selection } : {}) },
  };
}

/** A whole model file in memory: per-program models and an optional global one. */
export class AnomalyModel {
  readonly data: ModelFileData;
  readonly programs = new Map<string, ProgramModel>();
  readonly global: ProgramModel | null;
  /** The file it was loaded from, for messages. */
  readonly source: string | undefined;

  constructor(data: ModelFileData, source?: string) {
    this.data = data;
    this.source = source;
    for (const [exe, d] of Object.entries(data.programs)) this.programs.set(exe, new ProgramModel(d));
    this.global = data.global ? new ProgramModel(data.global) : null;
  }

  /** The model of a program, falling back to the global model. */
  forExe(exe: string): ProgramModel | null {
    return this.programs.get(exe) ?? this.global;
  }

  get name(): string {
    return `${this.data.kind}`;
  }

  /** The ABI whose system calls the model was trained on (files before the field: x86_64). */
  get abi(): Abi {
    return this.data.abi ?? 'x86_64';
  }
}

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

function validateModel(d: unknown, path: string): ModelFileData {
  const o = d as Partial<ModelFileData> | null;
  if (!o || typeof o !== 'object' || o.format !== MODEL_FORMAT) {
    throw new SandtraceError('MODEL_INVALID', `${path} is not a sandtrace model (format field missing)`);
  }
  if (o.version !== MODEL_VERSION) {
    throw new SandtraceError('MODEL_INVALID', `${path} is model format version ${String(o.version)}; this sandtrace reads version ${MODEL_VERSION}`);
  }
  const check = (p: unknown, where: string): void => {
    const m = p as Partial<ProgramModelData> | null;
    if (!m || !MODEL_KINDS.includes(m.kind as ModelKind) || typeof m.n !== 'number' || !Array.isArray(m.vocab)
      || !Array.isArray(m.table) || !m.calibration || typeof m.calibration.threshold !== 'number'
      || (m.kind === 'mix' && (!m.neural || typeof m.lambda !== 'number' || !Array.isArray(m.neural.w2)))) {
      throw new SandtraceError('MODEL_INVALID', `${path}: model for ${where} is incomplete`);
    }
    // values a hand-edited or damaged file can hold that would silently switch detection off
    const c = m.calibration;
    const bad = !Number.isInteger(m.n) || m.n < 1 || m.n > 32 ? `n ${String(m.n)}`
      : m.abi !== undefined && m.abi !== 'x86_64' && m.abi !== 'i386' ? `abi '${String(m.abi)}'`
        : !(Number.isFinite(c.threshold) && c.threshold >= 0) ? `threshold ${String(c.threshold)}`
          : !(Number.isFinite(c.windowThreshold) && c.windowThreshold >= 0) ? `window threshold ${String(c.windowThreshold)}`
            : !(Number.isInteger(c.window) && c.window >= 1) ? `window ${String(c.window)}`
              : c.chunk !== undefined && !(Number.isInteger(c.chunk) && c.chunk >= 1) ? `chunk ${String(c.chunk)}` : undefined;
    if (bad) throw new SandtraceError('MODEL_INVALID', `${path}: model for ${where} has an invalid ${bad}`);
  };
  if (o.abi !== undefined && o.abi !== 'x86_64' && o.abi !== 'i386') throw new SandtraceError('MODEL_INVALID', `${path}: invalid abi '${String(o.abi)}' (x86_64 or i386)`);
  const fileAbi = o.abi ?? 'x86_64';
  // every model of a file judges the calls of the file's abi (what scoring checks traces against)
  const sameAbi = (p: unknown, where: string): void => {
    const a = (p as Partial<ProgramModelData>).abi;
    if (a !== undefined && a !== fileAbi) throw new SandtraceError('MODEL_INVALID', `${path}: model for ${where} is of abi ${a}, the file's is ${fileAbi}`);
  };
  if (typeof o.programs !== 'object' || o.programs === null) throw new SandtraceError('MODEL_INVALID', `${path}: no programs field`);
  for (const [exe, p] of Object.entries(o.programs)) { check(p, exe); sameAbi(p, exe); }
  if (o.global) { check(o.global, 'the global model'); sameAbi(o.global, 'the global model'); }
  if (!o.global && Object.keys(o.programs).length === 0) throw new SandtraceError('MODEL_INVALID', `${path} holds no model`);
  return o as ModelFileData;
}
