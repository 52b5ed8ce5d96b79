import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAdfaFolder } from './adfa.js';
import { NeuralLM, NEURAL_DEFAULTS, mixBits } from './neural.js';
import { ProgramModel, loadModel, saveModel, trainModelFile, trainProgramModel } from './model.js';
import { adfaDir } from './testutil.js';

const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-neural-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Traces of a little "program": open, read x k, close, with k varying; symbols 2..5. */
function toyTraces(count: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i < count; i++) {
    const t: number[] = [];
    for (let r = 0; r < 3; r++) { t.push(2); for (let k = 0; k < 1 + ((i + r) % 3); k++) t.push(3); t.push(4); }
    t.push(5);
    out.push(Int32Array.from(t));
  }
  return out;
}

function surprisesOf(lm: NeuralLM, trace: Int32Array): number[] {
  const K = lm.cfg.context;
  const ctx = new Int32Array(K);
  const out = new Float32Array(lm.V);
  const r: number[] = [];
  for (let i = 0; i < trace.length; i++) {
    for (let j = 0; j < K; j++) ctx[j] = i - 1 - j >= 0 ? (trace[i - 1 - j] as number) : 1;
    lm.surprises(ctx, out);
    r.push(out[trace[i] as number] as number);
  }
  return r;
}

test('neural LM: learns a toy program, deterministic for a seed, survives a JSON round trip', () => {
  const cfg = { ...NEURAL_DEFAULTS, context: 4, embed: 6, hidden: 16, epochs: 30, lr: 0.01 };
  const train = toyTraces(40);
  const a = new NeuralLM(cfg, 8);
  a.train(train);
  const b = new NeuralLM(cfg, 8);
  b.train(train);
  assert.deepEqual(Array.from(a.w2), Array.from(b.w2), 'same seed, same weights');
  const normal = surprisesOf(a, train[0] as Int32Array);
  const mean = normal.reduce((x, y) => x + y, 0) / normal.length;
  assert.ok(mean < 1.2, `normal trace: ${mean} bits/call`);
  // close before open, a call never made after read: surprising
  const odd = surprisesOf(a, Int32Array.from([2, 3, 5, 6, 4, 4]));
  assert.ok(Math.max(...odd) > 5, `deviation: ${odd.map((x) => x.toFixed(2)).join(' ')}`);
  const c = NeuralLM.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
  const again = surprisesOf(c, train[0] as Int32Array);
  for (let i = 0; i < again.length; i++) assert.ok(Math.abs((again[i] as number) - (normal[i] as number)) < 1e-3);
});

test('mixture surprise: lambda 0 and 1 give the parts, anything between lies between them', () => {
  assert.ok(Math.abs(mixBits(3, 7, 0) - 3) < 1e-12);
  assert.ok(Math.abs(mixBits(3, 7, 1) - 7) < 1e-12);
  const m = mixBits(3, 7, 0.3);
  assert.ok(m > 3 && m < 7);
  assert.ok(Math.abs(mixBits(2, 2, 0.4) - 2) < 1e-12);
});

test('mix model on real normal traces: weight chosen on held-out normal calls, calibrated, saved, reloaded, streamed', async () => {
  const all = (await readAdfaFolder(join(adfaDir(), 'Training_Data_Master'))).map((t) => t.calls);
  const train = all.filter((_, i) => i % 4 === 0).slice(0, 150);
  const heldOut = all.filter((_, i) => i % 4 === 1).slice(0, 100);
  const neural = { context: 6, embed: 8, hidden: 16 };
  const file = trainModelFile({ traces: train, source: 'adfa subset' }, { kind: 'mix', abi: 'i386', n: 5, smoothing: 'kn', neural });
  const g = file.global;
  assert.ok(g && g.neural && typeof g.lambda === 'number');
  assert.equal(g.kind, 'mix');
  assert.ok(g.lambda > 0 && g.lambda < 1, `the mixture predicts held-out normal calls better than either part (lambda ${g.lambda})`);
  assert.match(g.training.selection ?? '', /lambda by held-out bits\/call on normal fold/);
  assert.match(g.calibration.method, /held-out normal traces.*\(1 fold of 5\) neither part trained on/);
  // one fold in five of the units: traces, long ones in pieces of at most 1000 calls
  const units = train.flatMap((t) => new Array<number>(Math.max(1, Math.ceil(t.length / 1000))).fill(0));
  assert.equal(g.calibration.heldOut, units.filter((_, i) => i % 5 === 0).length);
  const path = join(tmp, 'mix.model.json.gz');
  await saveModel(path, file);
  const m = (await loadModel(path)).forExe('/any');
  assert.ok(m);
  assert.equal(m.name, 'mix-kn-n5+nlm');
  const direct = new ProgramModel(g);
  for (const t of heldOut.slice(0, 10)) assert.ok(Math.abs(m.score(t).score - direct.score(t).score) < 1e-4);
  // a stream gives the same values as whole-trace scoring
  const t0 = heldOut[0] as string[];
  const ids = m.vocab.encode(t0);
  const whole = m.scorer.values(ids);
  const s = m.scorer.stream();
  for (let i = 0; i < ids.length; i++) assert.equal(s.push(ids[i] as number), whole[i]);
  const far = heldOut.filter((t) => m.score(t).score > g.calibration.threshold).length / heldOut.length;
  assert.ok(far < 0.1, `false-alarm rate on unseen normal traces ${far}`);
  const normal = train[0] as string[];
  const spliced = [...normal.slice(0, 40), 'no_such_call', 'syscall_999', 'no_such_call', ...normal.slice(40)];
  assert.ok(m.score(spliced).windowScore > m.score(normal).windowScore);
  assert.equal(m.score([]).score, 0);
});

test('mix model with too little data: trains, and falls back to in-sample thresholds', () => {
  const d = trainProgramModel([['read', 'write', 'close', 'read', 'write', 'close']], { kind: 'mix', neural: { hidden: 8, embed: 4 } });
  assert.equal(d.kind, 'mix');
  const m = new ProgramModel(d);
  assert.ok(Number.isFinite(m.score(['read', 'write']).score));
});
