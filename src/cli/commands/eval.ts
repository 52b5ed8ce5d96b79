// `sandtrace eval adfa-ld DIR`: the standard ADFA-LD protocol for the baseline (STIDE) and the
// chosen model (Markov) side by side (with --ablation also the Markov + neural mixture), with ROC curves.
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { noExtraArgs, parseFlags } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { checkOutFile, refuseInputAsOutput } from '../../outpath.js';
import { expandPaths } from '../../capture/replay/index.js';
import { evalAdfa, rocSvg } from '../../engine/models/index.js';

export const summary = 'evaluate the anomaly models on a dataset (adfa-ld DIR) and plot the ROC curve';

const USAGE = 'sandtrace eval adfa-ld DIR [--json] [--roc FILE.svg [--force]] [--ablation]';
export const usage = USAGE;

/** The dataset's files, when `out` exists (a path that does not exist yet cannot be one of them). */
async function datasetFilesLike(out: string, dir: string): Promise<string[]> {
  try { statSync(out); } catch { return []; }
  return expandPaths([dir]);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' }, roc: { type: 'string' }, ablation: { type: 'boolean' }, force: { type: 'boolean' },
  }, USAGE);
  const [dataset, dir] = positionals;
  if (dataset !== 'adfa-ld' || !dir) throw new SandtraceError('USAGE', `usage: ${USAGE}`);
  noExtraArgs(positionals, 2, USAGE);
  if (values.roc) {
    // the plot never replaces a file of the dataset, nor an earlier plot without --force
    refuseInputAsOutput(values.roc, await datasetFilesLike(values.roc, dir), '--roc');
    checkOutFile(values.roc, { overwrite: values.force === true });
  }
  const r = await evalAdfa(dir, { ablation: values.ablation ?? false });
  // files that are not traces were left out: said on stderr, whatever the output format
  if (r.skipped.length > 0) {
    process.stderr.write(`eval: left out ${r.skipped.length} file(s) that are not traces; first: ${r.skipped.slice(0, 3).join(' | ')}\n`);
  }
  if (values.roc) {
    await writeFile(values.roc, rocSvg(r.roc, `ADFA-LD: ${r.data.training} training, ${r.data.validation} validation, ${r.data.attack} attack traces`));
  }
  const { roc: _roc, ...rest } = r;
  if (values.json) {
    process.stdout.write(JSON.stringify(rest) + '\n');
    return 0;
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const line = (name: string, m: typeof r.model) =>
    `${name.padEnd(10)} ${m.name.padEnd(9)} AUC ${m.auc.toFixed(4)}  FAR@90%DR ${pct(m.far_at_dr90).padStart(6)}  DR@5%FAR ${pct(m.dr_at_far5).padStart(6)}`
    + `  at calibrated threshold: FAR ${pct(m.far_at_calibrated_threshold)} DR ${pct(m.dr_at_calibrated_threshold)}  train ${m.train_s}s  score ${(m.score_calls_per_s / 1e6).toFixed(2)}M calls/s`;
  process.stdout.write(`ADFA-LD ${dir}: trained on ${r.data.training} normal traces (${r.data.trainingCalls} calls); scored ${r.data.validation} normal + ${r.data.attack} attack traces\n`);
  process.stdout.write(line('baseline', r.baselineDetail) + '\n');
  process.stdout.write(line('model', r.model) + '\n');
  if (r.model.selection) process.stdout.write(`selection (normal data only): ${r.model.selection}\n`);
  for (const m of r.models.slice(2)) {
    process.stdout.write(line('ablation', m) + '\n');
    if (m.selection) process.stdout.write(`selection (normal data only): ${m.selection}\n`);
  }
  for (const a of r.by_attack) process.stdout.write(`attack type ${a.type} (${a.traces} traces): AUC ${a.auc.toFixed(4)} (baseline ${a.baseline_auc.toFixed(4)}), DR at calibrated threshold ${pct(a.dr_at_calibrated_threshold)}\n`);
  for (const a of r.ablation ?? []) process.stdout.write(`ablation (report only, dev attacks) ${a.name}: AUC ${a.auc} FAR@90%DR ${pct(a.far_at_dr90)}\n`);
  if (values.roc) process.stdout.write(`ROC curve: ${values.roc}\n`);
  process.stdout.write(JSON.stringify({ auc: r.auc, far_at_dr90: r.far_at_dr90, dr_at_far5: r.dr_at_far5, baseline: { name: r.baseline.name, auc: r.baseline.auc, far_at_dr90: r.baseline.far_at_dr90 }, train_s: r.train_s, score_calls_per_s: r.score_calls_per_s }) + '\n');
  return 0;
}
