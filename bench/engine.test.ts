// The engine benchmark's two paths over the same stream: the whole-stage path (raw events through
// SemanticState, then the rules) must find what the rules-only path finds on pre-enriched events,
// or its figure would time a different workload. Shapes only: figures come from the benchmark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateEvents, generateStream, measureEngine } from './engine.js';

test('semantics + rules over raw events finds exactly what rules over pre-enriched events find', async () => {
  // One replay of the pool: both paths see the same 20000 events once.
  const r = await measureEngine({ events: 20_000, pool: 20_000 });
  assert.equal(r.cycles, 1);
  assert.equal(r.events, 20_000);
  assert.ok(r.rules >= 80, 'built-in pack plus Falco default rules');
  assert.ok(r.findings > 0, 'the stream triggers rules');
  const w = r.with_semantics;
  assert.ok(w, 'the whole-stage figure is there by default');
  assert.equal(w.events, r.events);
  assert.equal(w.findings, r.findings);
  for (const k of ['seconds', 'events_per_s', 'wall_seconds'] as const) assert.ok(w[k] > 0, k);
  assert.equal(typeof r.semantics_ns_per_event, 'number');
});

test('replays: time moves on in both paths alike; --rules-only gives the original figure alone', async () => {
  const r = await measureEngine({ events: 15_000, pool: 5_000 });
  assert.equal(r.cycles, 3);
  assert.equal(r.with_semantics?.events, 15_000);
  assert.equal(r.with_semantics?.findings, r.findings);
  const only = await measureEngine({ events: 5_000, pool: 5_000, rulesOnly: true });
  assert.equal(only.with_semantics, undefined);
  assert.equal(only.semantics_ns_per_event, undefined);
});

test('the generated stream is deterministic and generateStream is it enriched', () => {
  const a = generateEvents(3000, 7);
  assert.deepEqual(generateEvents(3000, 7), a);
  const e = generateStream(3000, 7);
  assert.equal(e.length, 3000);
  assert.deepEqual(e.map((x) => x.ev), a);
  assert.ok(e.some((x) => x.proc.exe === '/bin/sh'));
  assert.ok(e.some((x) => x.fd?.path !== undefined), 'descriptors resolved to paths');
});
