// `sandtrace bench capture`: the cost of capture. Each workload runs in the runc container sandbox
// untraced, under the eBPF probe and under `strace -f` (the ptrace peer); the sample times its own
// workload step (bash $EPOCHREALTIME, no fork), so container start-up and attach are not counted.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { integerFlag, noExtraArgs, parseFlags } from '../src/cli/args.js';
import { SandtraceError } from '../src/errors.js';
import type { Collector } from '../src/capture/collector.js';
import { createSandbox } from '../src/sandbox/index.js';
import type { Sandbox, SandboxStartInfo } from '../src/sandbox/types.js';
import { EbpfCollector } from '../src/capture/ebpf/collector.js';
import { ProbeDecoder } from '../src/capture/ebpf/decode.js';

const USAGE = 'sandtrace bench capture [--json] [--runs N] [--dd-count N] [--files N] [--modes untraced,ebpf,strace,ptrace] [--workloads dd,archive]';

interface Workload {
  name: string;
  /** bash: `setup` untimed, then `timed` between two $EPOCHREALTIME stamps. */
  setup: string;
  timed: string;
}

/** Starts a collector and drains it (the pipeline's cost is measured elsewhere); returns its stop. */
async function consumeAll(c: Collector): Promise<() => Promise<{ events: number; lost: number; notes: string[] }>> {
  await c.start();
  const consumer = (async () => { for await (const batch of c.events()) void batch; })();
  return async () => {
    await c.stop();
    await consumer;
    const s = c.stats();
    return { events: s.events, lost: s.lost, notes: s.notes };
  };
}

function workloads(ddCount: number, files: number): Workload[] {
  return [
    { name: 'dd', setup: '', timed: `dd if=/dev/zero of=/dev/null bs=1 count=${ddCount} 2>/dev/null` },
    {
      name: 'archive',
      // A source-like tree: `files` text files of about 4 KiB in 50 directories, with distinct
      // lines so that gzip has real work; written by python3 in few system calls, in the
      // container's own /tmp (the sandbox's tmpfs, not the host's).
      setup: `python3 -c '
import os, random
r = random.Random(1)
for i in range(${files}):
    d = "/tmp/tree/d%d" % (i % 50)
    os.makedirs(d, exist_ok=True)
    with open("%s/f%d.txt" % (d, i), "w") as f:
        f.write("".join("line %d of file %d: %s\\n" % (k, i, " ".join(str(r.randrange(32768)) for _ in range(14))) for k in range(32)))
'`,
      timed: 'tar -czf /tmp/tree.tgz -C /tmp tree',
    },
  ];
}

/** What a capture mode reports after the run. */
interface ModeResult { events?: number; lost?: number; notes?: string[] }

/**
 * A way of running the sample. attach() runs after create() and before start(); the returned
 * finish() after the sample ended. To add a mode (e.g. the ptrace collector), append to MODES.
 */
export interface CaptureMode {
  name: string;
  /** Run once even when --runs asks for more (strace on dd takes minutes). */
  slow?: boolean;
  attach(info: SandboxStartInfo, sandbox: Sandbox): Promise<() => Promise<ModeResult>>;
}

const decodeChunks: Buffer[] = [];

export const MODES: CaptureMode[] = [
  { name: 'untraced', attach: async () => async () => ({}) },
  {
    name: 'ebpf',
    async attach(info) {
      decodeChunks.length = 0;
      const c = new EbpfCollector({
        cgroupPath: info.cgroupPath, pidNamespaceOf: info.hostPid,
        ...(info.freezerPath ? { freezerPath: info.freezerPath } : {}),
        rawSink: (b) => { if (decodeChunks.length < 4096) decodeChunks.push(b); },
      });
      return consumeAll(c);
    },
  },
  {
    name: 'strace',
    slow: true,
    // Host strace attached to the container's init before it starts: it sees exactly the sample's
    // process tree (like the probe), needs nothing in the image, and the sandbox's seccomp policy
    // (which denies ptrace inside) does not apply to it.
    async attach(info) {
      const st = spawn('strace', ['-f', '-o', '/dev/null', '-p', String(info.hostPid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      const closed = new Promise<number | null>((r) => st.on('close', (code) => r(code)));
      await new Promise<void>((resolve, reject) => {
        st.on('error', (e) => reject(new SandtraceError('DEPENDENCY_MISSING', `strace: ${e.message}`)));
        st.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (/attached/.test(err)) resolve();
        });
        void closed.then((code) => reject(new SandtraceError('TRACER_FAILED', `strace exited (${code}): ${err.trim()}`)));
      });
      return async () => {
        const t = setTimeout(() => st.kill('SIGTERM'), 10_000);
        await closed;
        clearTimeout(t);
        return {};
      };
    },
  },
  {
    name: 'ptrace',
    slow: true,
    // sandtrace's ptrace backend (StraceCollector): strace attached like the mode above, plus the
    // FIFO stream and the full parse into TraceEvents, so its cost over plain strace shows here.
    async attach(info) {
      const { StraceCollector } = await import('../src/capture/ptrace/collector.js');
      const c = new StraceCollector({ attachPid: info.hostPid });
      return consumeAll(c);
    },
  },
];

async function runOnce(w: Workload, mode: CaptureMode, dir: string): Promise<{ seconds: number; cpu: number } & ModeResult> {
  const sample = join(dir, `bench-${w.name}.sh`);
  // The pause lets the capture drain what the setup produced before the timed step.
  // `times` (a builtin) also gives the CPU the step's processes used, in user and kernel mode: the
  // probe's in-kernel work is charged to them, the consumer's is not. Less noisy on a busy host.
  writeFileSync(sample, `#!/bin/bash\nset -e\n${w.setup}\nsleep 0.5\ntimes > /tmp/.bench-c0\nt0=$EPOCHREALTIME\n${w.timed}\n`
    + `t1=$EPOCHREALTIME\ntimes > /tmp/.bench-c1\necho "BENCH $t0 $t1"\necho "BENCHCPU $(tail -1 /tmp/.bench-c0) $(tail -1 /tmp/.bench-c1)"\n`);
  const sb = createSandbox({ sample, args: [], timeout: 1800, limits: { cpus: 1 } });
  try {
    const info = await sb.create();
    const finish = await mode.attach(info, sb);
    await sb.start();
    const res = await sb.wait();
    const extra = await finish();
    const m = /BENCH ([\d.]+) ([\d.]+)/.exec(res.console);
    if (!m || res.exitCode !== 0) {
      throw new SandtraceError('CAPTURE_FAILED', `${w.name} under ${mode.name}: exit ${res.exitCode}${res.timedOut ? ' (timed out)' : ''}: ${res.console.trim().split('\n').slice(-2).join(' | ')}`);
    }
    // BENCHCPU <user0> <sys0> <user1> <sys1>, each like 0m1.234s
    const c = /BENCHCPU (\d+)m([\d.]+)s (\d+)m([\d.]+)s (\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(res.console);
    const sec = (i: number): number => Number(c![i]) * 60 + Number(c![i + 1]);
    const cpu = c ? sec(5) + sec(7) - sec(1) - sec(3) : NaN;
    return { seconds: Number(m[2]) - Number(m[1]), cpu, ...extra };
  } finally {
    await sb.destroy();
  }
}

export interface WorkloadRow {
  name: string;
  events: number;
  lost: number;
  [key: string]: number | string;
}

export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' }, runs: { type: 'string' }, 'dd-count': { type: 'string' }, files: { type: 'string' },
    modes: { type: 'string' }, workloads: { type: 'string' },
  }, USAGE);
  noExtraArgs(positionals, 0, USAGE);
  const runs = integerFlag(values.runs, 'runs', 5);
  const wantModes = values.modes ? values.modes.split(',') : MODES.map((m) => m.name);
  const modes = MODES.filter((m) => m.name === 'untraced' || wantModes.includes(m.name));
  const unknown = wantModes.filter((n) => !MODES.some((m) => m.name === n));
  if (unknown.length) throw new SandtraceError('USAGE', `unknown mode ${unknown.join(',')}; usage: ${USAGE}`);
  const all = workloads(integerFlag(values['dd-count'], 'dd-count', 500000), integerFlag(values.files, 'files', 4000));
  const ws = values.workloads ? all.filter((w) => values.workloads!.split(',').includes(w.name)) : all;
  if (ws.length === 0) throw new SandtraceError('USAGE', `no such workload; usage: ${USAGE}`);

  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-bench-'));
  const rows: WorkloadRow[] = [];
  const notes: string[] = [];
  let decodeRate = 0;
  try {
    for (const w of ws) {
      const best = new Map<string, number>();
      const bestCpu = new Map<string, number>();
      const row: WorkloadRow = { name: w.name, events: 0, lost: 0 };
      // Modes interleaved within each round, so that load from other work hits them alike; best of N.
      for (let r = 0; r < runs; r++) {
        for (const mode of modes) {
          if (mode.slow && r > 0) continue;
          if (!values.json) process.stderr.write(`bench capture: ${w.name} ${mode.name} (run ${r + 1})\n`);
          const res = await runOnce(w, mode, dir);
          best.set(mode.name, Math.min(best.get(mode.name) ?? Infinity, res.seconds));
          bestCpu.set(mode.name, Math.min(bestCpu.get(mode.name) ?? Infinity, res.cpu));
          if (mode.name === 'ebpf') {
            row.events = res.events ?? 0;
            row.lost = Math.max(row.lost, res.lost ?? 0);
            for (const n of res.notes ?? []) if (!notes.includes(`${w.name}: ${n}`)) notes.push(`${w.name}: ${n}`);
            // Twice: the first pass also warms the JIT up.
            if (w.name === 'dd' && decodeChunks.length) decodeRate = Math.max(decodeRate, measureDecode(), measureDecode());
          }
        }
      }
      const base = best.get('untraced') ?? NaN;
      row['untraced_s'] = round(base);
      for (const m of modes) {
        if (m.name === 'untraced') continue;
        row[`${m.name}_s`] = round(best.get(m.name) ?? NaN);
        row[`${m.name}_ratio`] = round((best.get(m.name) ?? NaN) / base);
      }
      row['untraced_cpu_s'] = round(bestCpu.get('untraced') ?? NaN);
      if (bestCpu.has('ebpf')) {
        row['ebpf_cpu_s'] = round(bestCpu.get('ebpf')!);
        row['ebpf_cpu_ratio'] = round(bestCpu.get('ebpf')! / (bestCpu.get('untraced') ?? NaN));
      }
      rows.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (values.json) {
    process.stdout.write(JSON.stringify({ workloads: rows, decode_events_per_s: Math.round(decodeRate), notes }) + '\n');
    return 0;
  }
  const cols = ['name', 'untraced_s', ...modes.filter((m) => m.name !== 'untraced').flatMap((m) => [`${m.name}_s`, `${m.name}_ratio`]), 'events', 'lost',
    'untraced_cpu_s', ...(modes.some((m) => m.name === 'ebpf') ? ['ebpf_cpu_s', 'ebpf_cpu_ratio'] : [])];
  const table = [cols, ...rows.map((r) => cols.map((c) => String(r[c] ?? '')))];
  const widths = cols.map((_, i) => Math.max(...table.map((l) => l[i]!.length)));
  for (const l of table) process.stdout.write(l.map((c, i) => c.padEnd(widths[i]!)).join('  ') + '\n');
  if (decodeRate) process.stdout.write(`decoder: ${(decodeRate / 1e6).toFixed(2)} M events/s (the dd capture's stream, decoded again)\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  process.stdout.write(`times: best of ${runs} (slow modes: 1 run), the workload step only, timed inside the container; *_cpu_s: user+system CPU of the step's processes\n`);
  return 0;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Decoding rate of the recorded dd stream, timed apart from capture. */
function measureDecode(): number {
  const d = new ProbeDecoder();
  const t0 = performance.now();
  let n = 0;
  for (const c of decodeChunks) n += d.push(c).length;
  const s = (performance.now() - t0) / 1000;
  return s > 0 ? n / s : 0;
}
