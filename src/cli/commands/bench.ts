// `sandtrace bench capture|engine|vmi`: each benchmark lives in bench/<name>.ts and exports runBench.
import { SandtraceError } from '../../errors.js';

export const summary = 'run a benchmark: capture (eBPF vs strace), engine (rule throughput), vmi (guest capture), models (training and scoring), sandbox (start-up)';

const BENCHES = ['capture', 'engine', 'vmi', 'models', 'sandbox'] as const;

export const usage = `sandtrace bench ${BENCHES.join('|')} [--json]`;

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || !(BENCHES as readonly string[]).includes(name)) {
    throw new SandtraceError('USAGE', `usage: ${usage}`);
  }
  const mod = (await import(`../../../bench/${name}.js`)) as { runBench(argv: string[]): Promise<number> };
  return mod.runBench(rest);
}
