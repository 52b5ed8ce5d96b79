// The ADFA-LD evaluation protocol (Kim et al. 2016): train on Training_Data_Master only, score
// every Validation (normal) and Attack trace, sweep the threshold. Baseline STIDE and the chosen
// model (VMM) run side by side; with --ablation also the Markov + neural mixture (MIX) and other
// settings, for reporting only. No attack trace influences a model, a hyperparameter or a threshold.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SandtraceError } from '../../errors.js';
import { createImporter } from '../../capture/replay/importers.js';
import { ProgramModel, trainProgramModel, type ProgramModelData, type TrainOptions } from './model.js';
import { auc, drAtFar, farAtDr, rocCurve, type RocSeries } from './roc.js';

/**
 * The model `eval adfa-ld` reports as "the model", fixed in code. MIX was fixed here before its
 * first evaluation; it did not beat VMM on the dev attacks, so, as the issue asked, the VMM stays
 * (see README). MIX is still measured, with --ablation.
 */
export const CHOSEN_KIND = 'vmm' as const;

export const ADFA_DIRS = ['Training_Data_Master', 'Validation_Data_Master', 'Attack_Data_Master'] as const;

export interface AdfaTrace { file: string; calls: string[] }

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(dir)).sort()) {
    const p = join(dir, n);
    const st = await stat(p);
    if (st.isDirectory()) out.push(...await filesUnder(p));
    // only regular files: a FIFO named *.txt would block the read forever
    else if (st.isFile() && n.endsWith('.txt')) out.push(p);
  }
  return out;
}

/**
 * The traces of one ADFA-LD folder. A file that is not a trace (a token that is no syscall
 * number, or no call at all) is left out rather than scored as a damaged trace, and named in
 * `skipped` when given.
 */
export async function readAdfaFolder(dir: string, skipped?: string[]): Promise<AdfaTrace[]> {
  const traces: AdfaTrace[] = [];
  for (const file of await filesUnder(dir)) {
    const imp = createImporter('adfa', { abi: 'i386' });
    const text = await readFile(file, 'utf8');
    const calls: string[] = [];
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      for (const e of imp.line(line, lineNo)) if (e.type === 'syscall') calls.push(e.name);
    }
    const issue = imp.issues[0];
    if (issue || calls.length === 0) {
      skipped?.push(`${file}: ${issue ? `line ${issue.line}: ${issue.message}` : 'no system calls'}`);
      continue;
    }
    traces.push({ file, calls });
  }
  return traces;
}

export async function checkAdfaDir(dir: string): Promise<void> {
  for (const d of ADFA_DIRS) {
    try {
      if (!(await stat(join(dir, d))).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new SandtraceError('INPUT_MISSING', `${dir} is not an ADFA-LD directory: ${d}/ is missing`, { cause: e, details: { dir } });
    }
  }
}

export interface ModelResult {
  name: string;
  auc: number;
  far_at_dr90: number;
  dr_at_far5: number;
  /** Share of validation traces above the model's own calibrated threshold (expected near its target). */
  far_at_calibrated_threshold: number;
  /** Share of attack traces above that threshold. */
  dr_at_calibrated_threshold: number;
  threshold: number;
  train_s: number;
  score_calls_per_s: number;
  selection?: string;
}

export interface AdfaResult {
  auc: number;
  far_at_dr90: number;
  dr_at_far5: number;
  baseline: { name: string; auc: number; far_at_dr90: number; dr_at_far5: number };
  train_s: number;
  score_calls_per_s: number;
  model: ModelResult;
  baselineDetail: ModelResult;
  /** Every model of the run: the baseline, the chosen one, and with --ablation the MIX model. */
  models: ModelResult[];
  data: { training: number; validation: number; attack: number; trainingCalls: number; scoredCalls: number };
  /** Files left out because they are not traces (file: reason). */
  skipped: string[];
  roc: RocSeries[];
  /** Report-only figures (AUC of other settings on the dev attacks); never used to choose anything. */
  ablation?: { name: string; auc: number; far_at_dr90: number }[];
  /**
   * Per attack type (the attack folder's name without its number: Adduser_3 -> Adduser): how many
   * traces, the model's and the baseline's AUC against all Validation traces, and the share above
   * the model's calibrated threshold. Report only.
   */
  by_attack: { type: string; traces: number; auc: number; baseline_auc: number; dr_at_calibrated_threshold: number }[];
}

interface Evaluated { r: ModelResult; normalScores: number[]; attackScores: number[]; data: ProgramModelData }

function evaluate(opts: TrainOptions, train: AdfaTrace[], normal: AdfaTrace[], attack: AdfaTrace[]): Evaluated {
  const t0 = performance.now();
  const data = trainProgramModel(train.map((t) => t.calls), { ...opts, abi: 'i386' });
  return evaluateData(data, (performance.now() - t0) / 1000, normal, attack);
}

function evaluateData(data: ProgramModelData, trainS: number, normal: AdfaTrace[], attack: AdfaTrace[]): Evaluated {
  const model = new ProgramModel(data);
  const t1 = performance.now();
  let calls = 0;
  const scoreAll = (ts: AdfaTrace[]) => ts.map((t) => {
    calls += t.calls.length;
    return model.score(t.calls).score;
  });
  const normalScores = scoreAll(normal);
  const attackScores = scoreAll(attack);
  const scoreS = (performance.now() - t1) / 1000;
  const th = data.calibration.threshold;
  const r: ModelResult = {
    name: model.name,
    auc: auc(normalScores, attackScores),
    far_at_dr90: farAtDr(normalScores, attackScores, 0.9),
    dr_at_far5: drAtFar(normalScores, attackScores, 0.05),
    far_at_calibrated_threshold: normalScores.filter((s) => s > th).length / normalScores.length,
    dr_at_calibrated_threshold: attackScores.filter((s) => s > th).length / attackScores.length,
    threshold: th,
    train_s: trainS,
    score_calls_per_s: calls / Math.max(scoreS, 1e-9),
    ...(data.training.selection ? { selection: data.training.selection } : {}),
  };
  return { r, normalScores, attackScores, data };
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

export async function evalAdfa(dir: string, opts: { ablation?: boolean } = {}): Promise<AdfaResult> {
  await checkAdfaDir(dir);
  const skipped: string[] = [];
  const [train, normal, attack] = await Promise.all(ADFA_DIRS.map((d) => readAdfaFolder(join(dir, d), skipped))) as [AdfaTrace[], AdfaTrace[], AdfaTrace[]];
  if (train.length === 0 || normal.length === 0 || attack.length === 0) {
    throw new SandtraceError('INPUT_EMPTY', `${dir}: a folder of the ADFA-LD layout holds no .txt traces`);
  }
  const base = evaluate({ kind: 'stide' }, train, normal, attack);
  const best = evaluate({ kind: CHOSEN_KIND }, train, normal, attack);
  const mix = opts.ablation ? evaluate({ kind: 'mix' }, train, normal, attack) : undefined;
  const ablation: { name: string; auc: number; far_at_dr90: number }[] = [];
  if (opts.ablation) {
    for (const smoothing of ['kn', 'wb'] as const) {
      for (const n of [2, 3, 4, 5, 6, 7]) {
        const r = evaluate({ kind: 'vmm', n, smoothing }, train, normal, attack).r;
        ablation.push({ name: r.name, auc: round(r.auc), far_at_dr90: round(r.far_at_dr90) });
      }
    }
    for (const n of [3, 4, 6]) {
      const r = evaluate({ kind: 'stide', n }, train, normal, attack).r;
      ablation.push({ name: r.name, auc: round(r.auc), far_at_dr90: round(r.far_at_dr90) });
    }
    // the chosen mixture with other interpolation weights (1 = the neural model alone)
    if (mix) {
      for (const lambda of [0.05, 0.2, 0.3, 0.5, 1]) {
        const r = evaluateData({ ...mix.data, lambda }, 0, normal, attack).r;
        ablation.push({ name: `${r.name} lambda=${lambda}`, auc: round(r.auc), far_at_dr90: round(r.far_at_dr90) });
      }
    }
  }
  const roundR = (r: ModelResult): ModelResult => ({
    ...r, auc: round(r.auc), far_at_dr90: round(r.far_at_dr90), dr_at_far5: round(r.dr_at_far5),
    far_at_calibrated_threshold: round(r.far_at_calibrated_threshold), dr_at_calibrated_threshold: round(r.dr_at_calibrated_threshold),
    threshold: round(r.threshold), train_s: round(r.train_s, 2), score_calls_per_s: Math.round(r.score_calls_per_s),
  });
  const m = roundR(best.r);
  const b = roundR(base.r);
  const typeOf = (file: string) => basename(dirname(file)).replace(/_\d+$/, '') || 'attack';
  const types = [...new Set(attack.map((t) => typeOf(t.file)))].sort();
  const by_attack = types.map((type) => {
    const idx = attack.map((t, i) => (typeOf(t.file) === type ? i : -1)).filter((i) => i >= 0);
    const pick = (xs: number[]) => idx.map((i) => xs[i] as number);
    const own = pick(best.attackScores);
    return {
      type, traces: idx.length, auc: round(auc(best.normalScores, own)), baseline_auc: round(auc(base.normalScores, pick(base.attackScores))),
      dr_at_calibrated_threshold: round(own.filter((x) => x > best.r.threshold).length / Math.max(1, own.length)),
    };
  });
  const x = mix ? roundR(mix.r) : undefined;
  return {
    auc: m.auc,
    far_at_dr90: m.far_at_dr90,
    dr_at_far5: m.dr_at_far5,
    baseline: { name: b.name, auc: b.auc, far_at_dr90: b.far_at_dr90, dr_at_far5: b.dr_at_far5 },
    train_s: m.train_s,
    score_calls_per_s: m.score_calls_per_s,
    model: m,
    baselineDetail: b,
    models: x ? [b, m, x] : [b, m],
    data: {
      training: train.length, validation: normal.length, attack: attack.length,
      trainingCalls: train.reduce((a, t) => a + t.calls.length, 0),
      scoredCalls: [...normal, ...attack].reduce((a, t) => a + t.calls.length, 0),
    },
    skipped,
    roc: [
      { name: b.name, auc: b.auc, points: rocCurve(base.normalScores, base.attackScores) },
      { name: m.name, auc: m.auc, points: rocCurve(best.normalScores, best.attackScores) },
      ...(mix && x ? [{ name: x.name, auc: x.auc, points: rocCurve(mix.normalScores, mix.attackScores) }] : []),
    ],
    ...(opts.ablation ? { ablation } : {}),
    by_attack,
  };
}
