// `sandtrace bench sandbox`: how fast a disposable container is made and thrown away, phase by
// phase (create, start, wait, destroy), and a whole `analyze()` of a trivial sample, in one run.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import { integerFlag, noExtraArgs, parseFlags } from '../src/cli/args.js';
import { createSandbox } from '../src/sandbox/index.js';

const USAGE = 'sandtrace bench sandbox [--json] [--runs N]';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' }, runs: { type: 'string' } }, USAGE);
  noExtraArgs(positionals, 0, USAGE);
  const runs = integerFlag(values.runs, 'runs', 10);
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-bench-'));
  try {
    const sample = join(dir, 'true.sh');
    writeFileSync(sample, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const phases: Record<'create' | 'start' | 'wait' | 'changes' | 'destroy' | 'total', number[]> = { create: [], start: [], wait: [], changes: [], destroy: [], total: [] };
    const analyses: number[] = [];
    for (let i = 0; i < runs; i++) {
      const sb = createSandbox({ sample, args: [], timeout: 30 });
      const t0 = performance.now();
      await sb.create();
      const t1 = performance.now();
      await sb.start();
      const t2 = performance.now();
      await sb.wait();
      const t3 = performance.now();
      await sb.changes(join(dir, `out${i}`));
      const t4 = performance.now();
      await sb.destroy();
      const t5 = performance.now();
      phases.create.push(t1 - t0); phases.start.push(t2 - t1); phases.wait.push(t3 - t2);
      phases.changes.push(t4 - t3); phases.destroy.push(t5 - t4); phases.total.push(t5 - t0);
      const a0 = performance.now();
      await analyze({ sample, outDir: join(dir, `analysis${i}`), timeout: 30 });
      analyses.push(performance.now() - a0);
    }
    const ms = (xs: number[]) => Math.round(median(xs) * 10) / 10;
    const result = {
      runs,
      sandbox_ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, ms(v)])),
      analyze_ms: ms(analyses),
    };
    if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
    else {
      process.stdout.write(`sandbox life cycle, median of ${runs} (ms)\n`);
      for (const [k, v] of Object.entries(result.sandbox_ms)) process.stdout.write(`  ${k.padEnd(8)} ${String(v).padStart(8)}\n`);
      process.stdout.write(`whole analyze() of a trivial sample (probe load, rules, report): ${result.analyze_ms} ms\n`);
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
