// `sandtrace bench models`: training time and scoring rate of the anomaly models on ADFA-LD
// (train on Training_Data_Master, score Validation + Attack), STIDE, VMM and MIX side by side in one
// run. Wall and CPU time of training are both shown: the machine's 2 cores are shared.
import { join } from 'node:path';
import { integerFlag, noExtraArgs, parseFlags } from '../src/cli/args.js';
import { SandtraceError } from '../src/errors.js';
import { checkAdfaDir, readAdfaFolder } from '../src/engine/models/adfa.js';
import { ProgramModel, trainProgramModel, type TrainOptions } from '../src/engine/models/model.js';

const USAGE = 'sandtrace bench models DIR [--json] [--runs N]';

interface Row { model: string; train_s: number; train_cpu_s: number; calls: number; score_s: number; calls_per_s: number }

export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' }, runs: { type: 'string' } }, USAGE);
  noExtraArgs(positionals, 1, USAGE);
  const dir = positionals[0] ?? process.env['SANDTRACE_ADFA_DIR'];
  if (!dir) throw new SandtraceError('USAGE', `usage: ${USAGE}`);
  const runs = integerFlag(values.runs, 'runs', 3);
  await checkAdfaDir(dir);
  const train = (await readAdfaFolder(join(dir, 'Training_Data_Master'))).map((t) => t.calls);
  const test = [...await readAdfaFolder(join(dir, 'Validation_Data_Master')), ...await readAdfaFolder(join(dir, 'Attack_Data_Master'))].map((t) => t.calls);
  const calls = test.reduce((a, t) => a + t.length, 0);
  const rows: Row[] = [];
  const configs: [string, TrainOptions][] = [['stide', { kind: 'stide' }], ['vmm', { kind: 'vmm' }], ['mix', { kind: 'mix' }]];
  for (const [name, opts] of configs) {
    const trainTimes: number[] = [];
    const cpuTimes: number[] = [];
    const scoreTimes: number[] = [];
    let model: ProgramModel | undefined;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      model = new ProgramModel(trainProgramModel(train, { ...opts, abi: 'i386' }));
      trainTimes.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpuTimes.push((c.user + c.system) / 1e6);
      const t1 = performance.now();
      let sink = 0;
      for (const t of test) sink += model.score(t).score;
      scoreTimes.push((performance.now() - t1) / 1000);
      if (!Number.isFinite(sink)) throw new SandtraceError('INTERNAL', 'non-finite score');
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    rows.push({ model: model?.name ?? name, train_s: med(trainTimes), train_cpu_s: med(cpuTimes), calls, score_s: med(scoreTimes), calls_per_s: calls / med(scoreTimes) });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify({ bench: 'models', runs, trainingTraces: train.length, rows }) + '\n');
  } else {
    process.stdout.write(`models on ${dir}: ${train.length} training traces, ${test.length} scored traces (${calls} calls), median of ${runs} runs\n`);
    process.stdout.write('model             train_s  train_cpu_s  score_s  calls/s\n');
    for (const r of rows) process.stdout.write(`${r.model.padEnd(17)} ${r.train_s.toFixed(2).padStart(7)}  ${r.train_cpu_s.toFixed(2).padStart(11)}  ${r.score_s.toFixed(2).padStart(7)}  ${(r.calls_per_s / 1e6).toFixed(2)}M\n`);
  }
  return 0;
}
