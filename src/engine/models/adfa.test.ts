import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auc, drAtFar, farAtDr } from './roc.js';
import { adfaDir, runCli } from './testutil.js';
import { readAdfaFolder } from './adfa.js';

test('ROC figures: AUC counts ties half; FAR at a detection rate and DR at a false-alarm rate', () => {
  assert.equal(auc([1, 2, 3], [4, 5]), 1);
  assert.equal(auc([4, 5], [1, 2, 3]), 0);
  assert.equal(auc([1, 1], [1, 1]), 0.5);
  assert.equal(auc([0, 1, 2, 3], [2.5, 0.5]), 0.5);
  // detecting 90% of attacks [5..14] needs threshold 6, above which normals 7 and 9 lie
  const normal = [0, 1, 2, 3, 4, 7, 9, 1, 2, 3];
  const attack = [5, 6, 8, 10, 11, 12, 13, 14, 15, 16];
  assert.equal(farAtDr(normal, attack, 0.9), 0.2);
  // one false alarm allowed (9): everything above 7 is flagged, 8 of the 10 attacks
  assert.equal(drAtFar(normal, attack, 0.1), 0.8);
});

test('eval adfa-ld: the standard protocol, baseline and chosen model side by side, JSON figures and a ROC SVG', async () => {
  const dir = adfaDir();
  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-eval-'));
  try {
    const svg = join(tmp, 'roc.svg');
    const r = await runCli(['eval', 'adfa-ld', dir, '--json', '--roc', svg]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const k of ['auc', 'far_at_dr90', 'dr_at_far5', 'train_s', 'score_calls_per_s']) assert.equal(typeof j[k], 'number', k);
    // the dev copy has 371 attack traces of 3 types; the full dataset (other attack types) more
    assert.equal(j.data.training, 833);
    assert.equal(j.data.trainingCalls, 308077);
    assert.equal(j.data.validation, 4372);
    assert.ok(j.data.attack >= 371, `attack traces: ${j.data.attack}`);
    assert.equal(j.baseline.name, 'stide-n6');
    // STIDE n=6 measured here and published: AUC about 0.83
    assert.ok(j.baseline.auc > 0.8 && j.baseline.auc < 0.87, `baseline AUC ${j.baseline.auc}`);
    // the Markov model beats the baseline on both figures, side by side in one run
    assert.ok(j.auc > j.baseline.auc, `model ${j.auc} vs baseline ${j.baseline.auc}`);
    assert.ok(j.far_at_dr90 < j.baseline.far_at_dr90);
    // the reported model is the one fixed in code; its order and its threshold were chosen on
    // normal data only (MIX runs only with --ablation)
    assert.match(j.model.name, /^vmm-(kn|wb)-n\d$/);
    assert.deepEqual(j.models.map((m: { name: string }) => m.name.split('-')[0]), ['stide', 'vmm']);
    assert.match(j.model.selection, /held-out bits\/call on normal traces/);
    assert.ok(j.model.far_at_calibrated_threshold < 0.1, `FAR at the calibrated threshold ${j.model.far_at_calibrated_threshold}`);
    // per attack type, report only: every attack trace counted once, under its folder's type
    const by = j.by_attack as { type: string; traces: number; auc: number; baseline_auc: number }[];
    if (j.data.attack === 371) assert.deepEqual(by.map((x) => x.type), ['Adduser', 'Hydra_FTP', 'Web_Shell']);
    assert.equal(by.reduce((a, x) => a + x.traces, 0), j.data.attack);
    for (const x of by) assert.ok(x.auc > 0.5 && x.auc <= 1 && x.baseline_auc > 0.5, JSON.stringify(x));
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg /);
    assert.equal((text.match(/<polyline /g) ?? []).length, 2);
    assert.match(text, /stide-n6 \(AUC 0\.\d+\)/);
    assert.match(text, /vmm-(kn|wb)-n\d \(AUC 0\.\d+\)/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('ADFA-LD folders: a file that is not a trace (garbage, empty) is left out and named, not scored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-adfa-bad-'));
  try {
    writeFileSync(join(dir, 'UTD-0001.txt'), '6 6 63 6 42 120 6 195 120 6 6 114\n');
    writeFileSync(join(dir, 'UTD-0002.txt'), '');
    writeFileSync(join(dir, 'UTD-0003.txt'), '1 2 abc 3\n');
    const skipped: string[] = [];
    const traces = await readAdfaFolder(dir, skipped);
    assert.deepEqual(traces.map((t) => t.file.slice(-12)), ['UTD-0001.txt']);
    assert.equal(skipped.length, 2);
    assert.match(skipped.join('\n'), /UTD-0002\.txt: no system calls/);
    assert.match(skipped.join('\n'), /UTD-0003\.txt: line 1: .*not syscall numbers/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
