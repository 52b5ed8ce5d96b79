import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding, Severity } from './types.js';
import { computeVerdict } from './verdict.js';

const f = (rule: string, severity: Severity, confidence?: number): Finding => ({
  rule, description: rule, severity, attack: [], pid: 1, evidence: [], source: 'rule', ...(confidence !== undefined ? { confidence } : {}),
});

test('no findings is benign with score 0', () => {
  assert.deepEqual(computeVerdict([]), { score: 0, label: 'benign' });
});

test('informational and a few low findings stay benign', () => {
  const v = computeVerdict([f('a', 'info'), f('b', 'low'), f('c', 'low')]);
  assert.equal(v.label, 'benign');
  assert.equal(v.score, 1.3);
});

test('one medium or one high finding is suspicious; one critical is malicious', () => {
  assert.deepEqual(computeVerdict([f('a', 'medium')]), { score: 3, label: 'suspicious' });
  assert.deepEqual(computeVerdict([f('a', 'high')]), { score: 6, label: 'suspicious' });
  assert.deepEqual(computeVerdict([f('a', 'critical')]), { score: 9, label: 'malicious' });
});

test('two high findings of different rules are malicious; the same rule twice counts once', () => {
  assert.deepEqual(computeVerdict([f('a', 'high'), f('b', 'high')]), { score: 7.5, label: 'malicious' });
  assert.deepEqual(computeVerdict([f('a', 'high'), f('a', 'high')]), { score: 6, label: 'suspicious' });
});

test('confidence scales the weight and the score is capped at 10', () => {
  assert.deepEqual(computeVerdict([f('a', 'critical', 0.5)]), { score: 4.5, label: 'suspicious' });
  const many = ['a', 'b', 'c', 'd', 'e', 'g'].map((r) => f(r, 'critical'));
  assert.deepEqual(computeVerdict(many), { score: 10, label: 'malicious' });
});
