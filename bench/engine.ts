// `sandtrace bench engine`: engine-stage throughput, two figures from one run, measured side by
// side (interleaved, so load from other work hits both alike):
//  - rules only: a realistic stream (many processes opening, reading and writing files, exec'ing,
//    connecting) enriched ONCE through the real SemanticState outside the timed loop, then replayed
//    through the built-in pack plus Falco's default rules: {"events","seconds","events_per_s",
//    "rules","wall_seconds","wall_events_per_s","cpu_seconds","input"} (the original fields);
//  - semantics + rules: the same raw TraceEvents through a fresh SemanticState per replay and then
//    the rules, i.e. the whole engine stage as the pipeline runs it: "with_semantics" {...}.
import type { SockAddr, SyscallEvent, TraceEvent } from '../src/capture/events.js';
import type { EnrichedEvent } from '../src/semantics/types.js';
import { SemanticState } from '../src/semantics/state.js';
import { syscallNumber } from '../src/semantics/syscalls.js';
import { integerFlag, noExtraArgs, parseFlags } from '../src/cli/args.js';
import { builtinRulePaths, createRuleDetector, falcoRulePaths, loadRuleFiles } from '../src/engine/rules/index.js';

const USAGE = 'sandtrace bench engine [--json] [--events N] [--pool N] [--builtin-only] [--rules-only]';
const SEMANTIC_OPTS = { containerId: 'bench', containerName: 'bench', initialCwd: '/root' };

/** A small deterministic PRNG so that every run replays the same stream. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// Paths named by the synthetic events below: made up in memory, never opened on any machine.
const LIBS = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6', '/etc/ld.so.cache',
  '/usr/lib/locale/locale-archive', '/usr/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/python3.11/os.py'];
const READS = ['/etc/passwd', '/etc/hosts', '/etc/resolv.conf', '/etc/nsswitch.conf', '/proc/self/status', '/proc/meminfo',
  '/root/data/input.csv', '/usr/share/zoneinfo/UTC', '/etc/os-release', '/root/.profile'];
const WRITES = ['/tmp/out.log', '/tmp/build/main.o', '/root/data/result.csv', '/var/tmp/cache.bin', '/tmp/a.out', '/root/notes.txt'];
const PROGS: [string, string[]][] = [
  ['/usr/bin/ls', ['ls', '-l']], ['/usr/bin/cat', ['cat', 'input.csv']], ['/usr/bin/grep', ['grep', '-c', 'error', 'app.log']],
  ['/usr/bin/sort', ['sort', '-u']], ['/usr/bin/python3', ['python3', 'process.py']], ['/usr/bin/gcc', ['gcc', '-O2', 'main.c']],
  ['/usr/bin/tar', ['tar', 'czf', 'out.tgz', 'data']], ['/bin/sh', ['sh', '-c', 'find . -name "*.c" | sort']],
  ['/usr/bin/curl', ['curl', '-s', 'http://198.51.100.10/']], ['/usr/bin/id', ['id']],
];

/** Builds `n` enriched events of a plausible mix across many processes. */
export function generateStream(n: number, seed = 1): EnrichedEvent[] {
  return enrich(generateEvents(n, seed));
}

/** The events through a fresh SemanticState, as the pipeline's semantics stage sees them. */
function enrich(evs: readonly TraceEvent[]): EnrichedEvent[] {
  const st = new SemanticState(SEMANTIC_OPTS);
  return evs.map((e) => st.apply(e));
}

/** Builds `n` raw TraceEvents of a plausible mix across many processes (deterministic per seed). */
export function generateEvents(n: number, seed = 1): TraceEvent[] {
  const rand = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const out: TraceEvent[] = [];
  let seq = 0;
  let ts = 0;
  const push = (ev: TraceEvent) => {
    ev.seq = ++seq;
    ts += 1000 + Math.floor(rand() * 20_000);
    ev.ts = ts;
    out.push(ev);
  };
  const sc = (pid: number, name: string, args: number[], ret: number, extra: Partial<SyscallEvent> = {}) =>
    push({ type: 'syscall', seq: 0, ts: 0, pid, tid: pid, abi: 'x86_64', nr: syscallNumber(name), name, args, ret, ...extra });
  push({ type: 'exec', seq: 0, ts: 0, pid: 1, tid: 1, exe: '/bin/sh', argv: ['sh', '/root/sample.sh'], uid: 0 });
  const live: { pid: number; fds: number[]; next: number; depth: number }[] = [{ pid: 1, fds: [], next: 3, depth: 0 }];
  let nextPid = 2;
  while (out.length < n) {
    const p = pick(live);
    const r = rand();
    // Proportions follow the system-call mix of captured analyses (startup-heavy programs:
    // openat ~16%, newfstatat ~17%, close ~14%, mmap ~12%, exec ~0.5%), with more network
    // activity than the benign corpus had, as malware has.
    if (r < 0.008 && live.length < 200 && p.depth < 5) {
      // Process trees of real samples are wide and shallow: a few levels below the sample.
      const child = nextPid++;
      push({ type: 'fork', seq: 0, ts: 0, pid: p.pid, tid: p.pid, childPid: child, childTid: child, thread: false });
      const [exe, argv] = pick(PROGS);
      push({ type: 'exec', seq: 0, ts: 0, pid: child, tid: child, exe, argv });
      live.push({ pid: child, fds: [], next: 3, depth: p.depth + 1 });
    } else if (r < 0.015 && live.length > 20) {
      const i = live.indexOf(p);
      if (p.pid !== 1) {
        push({ type: 'exit', seq: 0, ts: 0, pid: p.pid, tid: p.pid, code: 0, thread: false });
        live.splice(i, 1);
      }
    } else if (r < 0.175) {
      const w = rand() < 0.2;
      const fd = p.next++;
      const path = w ? pick(WRITES) : rand() < 0.5 ? pick(LIBS) : pick(READS);
      const fail = !w && rand() < 0.15;
      sc(p.pid, 'openat', [-100, 0, w ? 0o1101 : 0o2000000, 0o644], fail ? -2 : fd, { path });
      if (!fail) p.fds.push(fd);
    } else if (r < 0.34) {
      sc(p.pid, 'newfstatat', [-100, 0, 0, 0], rand() < 0.7 ? 0 : -2, { path: rand() < 0.5 ? pick(LIBS) : pick(READS) });
    } else if (r < 0.46 && p.fds.length > 0) {
      const fd = p.fds.pop()!;
      sc(p.pid, 'close', [fd], 0);
    } else if (r < 0.66 && p.fds.length > 0) {
      const fd = pick(p.fds);
      sc(p.pid, pick(['read', 'read', 'read', 'write', 'pread64', 'lseek', 'fstat']), [fd, 0, 4096], 4096);
    } else if (r < 0.68) {
      const fd = p.next++;
      sc(p.pid, 'socket', [2, 1, 0], fd);
      const addr: SockAddr = { family: 'inet', address: rand() < 0.5 ? '127.0.0.1' : `198.51.100.${1 + Math.floor(rand() * 20)}`, port: pick([80, 443, 53, 8080, 5432]) };
      sc(p.pid, 'connect', [fd, 0, 16], rand() < 0.5 ? 0 : -101, { addr });
      p.fds.push(fd);
    } else if (r < 0.69) {
      sc(p.pid, 'unlinkat', [-100, 0, 0], 0, { path: pick(WRITES) });
    } else if (r < 0.695) {
      sc(p.pid, 'dup2', [p.fds[0] ?? 0, 1], 1);
    } else if (r < 0.93) {
      sc(p.pid, pick(['mmap', 'mmap', 'mprotect', 'brk', 'rt_sigaction', 'fcntl', 'futex', 'getpid', 'clock_gettime', 'munmap', 'ioctl']), [0, 4096, 3], 0);
    } else {
      sc(p.pid, pick(['getdents64', 'readlink', 'access', 'prlimit64', 'pipe2', 'wait4', 'execve', 'getrandom', 'set_robust_list']), [3, 0, 0], pick([0, 0, 0, -2]),
        rand() < 0.3 ? { path: pick(READS) } : {});
    }
  }
  out.length = n;
  return out;
}

/** One timed path: wall and on-CPU time over the events it processed. */
class Timer {
  ns = 0n;
  cpuUs = 0;
  run(fn: () => void): void {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    this.ns += process.hrtime.bigint() - t0;
    const c = process.cpuUsage(c0);
    this.cpuUs += c.user + c.system;
  }
  figures(events: number): { events: number; seconds: number; events_per_s: number; wall_seconds: number; wall_events_per_s: number; cpu_seconds: number } {
    const wall = Number(this.ns) / 1e9;
    // The smaller of the two: process CPU time also counts V8's background compiler and
    // garbage-collector threads, so it can exceed the wall clock of this one-thread loop; the
    // wall clock also counts the time other processes held the core.
    const seconds = Math.min(wall, this.cpuUs / 1e6);
    return {
      events, seconds: round3(seconds), events_per_s: Math.round(events / seconds),
      wall_seconds: round3(wall), wall_events_per_s: Math.round(events / wall), cpu_seconds: round3(this.cpuUs / 1e6),
    };
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface EngineBenchOptions {
  events: number;
  pool: number;
  builtinOnly?: boolean;
  /** Leave out the semantics + rules figure (the original, rules-only benchmark). */
  rulesOnly?: boolean;
}

export interface EngineBenchResult {
  events: number; seconds: number; events_per_s: number; rules: number;
  wall_seconds: number; wall_events_per_s: number; cpu_seconds: number; input: string;
  /** Findings of the rules-only path. */
  findings: number;
  /** Rule files loaded, replays of the pool. */
  files: number; pool: number; cycles: number;
  with_semantics?: {
    events: number; seconds: number; events_per_s: number; wall_seconds: number; wall_events_per_s: number;
    cpu_seconds: number; findings: number; input: string;
  };
  /** What the semantics stage adds per event: (semantics + rules - rules only) / events. */
  semantics_ns_per_event?: number;
}

export async function measureEngine(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const total = o.events;
  const files = o.builtinOnly ? builtinRulePaths() : [...builtinRulePaths(), falcoRulePaths()[0]!];
  const { ruleset, diagnostics } = await loadRuleFiles(files);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) process.stderr.write(`bench engine: ${errors.length} rule errors, first: ${errors[0]!.message}\n`);
  const poolSize = Math.min(o.pool, total);
  // Path (a) replays events enriched once; path (b) its own copy of the raw events, so that the
  // timestamps each path moves on between replays are its own. Generated again rather than
  // cloned: structuredClone's objects have other hidden classes, which would slow (b) alone.
  const pool = generateStream(poolSize);
  const rawB = generateEvents(poolSize);
  const withSemantics = !o.rulesOnly;
  // Warm up (JIT) both paths on the pool, untimed, with separate detectors.
  const warm = createRuleDetector(ruleset);
  for (const e of pool) warm.onEvent(e);
  if (withSemantics) {
    const warmB = createRuleDetector(ruleset);
    const st = new SemanticState(SEMANTIC_OPTS);
    for (const e of rawB) warmB.onEvent(st.apply(e));
  }

  const detector = createRuleDetector(ruleset);
  const detectorB = createRuleDetector(ruleset);
  const a = new Timer();
  const b = new Timer();
  const findings = [];
  const findingsB = [];
  let done = 0;
  let cycle = 0;
  const span = (pool.at(-1)?.ev.ts ?? 0) + 1000;
  while (done < total) {
    const n = Math.min(pool.length, total - done);
    if (cycle > 0) {
      // Time moves on in each replay (untimed).
      for (let i = 0; i < n; i++) pool[i]!.ev.ts += span;
      if (withSemantics) for (let i = 0; i < n; i++) rawB[i]!.ts += span;
    }
    a.run(() => {
      for (let i = 0; i < n; i++) detector.onEvent(pool[i]!);
    });
    if (withSemantics) {
      b.run(() => {
        // A fresh process table per replay: the replayed pids start over, as in a new capture.
        const st = new SemanticState(SEMANTIC_OPTS);
        for (let i = 0; i < n; i++) detectorB.onEvent(st.apply(rawB[i]!));
      });
    }
    done += n;
    cycle++;
  }
  a.run(() => findings.push(...detector.finish()));
  if (withSemantics) b.run(() => findingsB.push(...detectorB.finish()));
  const fa = a.figures(done);
  const result: EngineBenchResult = {
    events: fa.events, seconds: fa.seconds, events_per_s: fa.events_per_s, rules: ruleset.rules.length,
    wall_seconds: fa.wall_seconds, wall_events_per_s: fa.wall_events_per_s, cpu_seconds: fa.cpu_seconds,
    input: 'pre-enriched once through SemanticState outside the timed loop, replayed',
    findings: findings.length, files: files.length, pool: pool.length, cycles: cycle,
  };
  if (withSemantics) {
    const fb = b.figures(done);
    result.with_semantics = {
      ...fb, findings: findingsB.length,
      input: 'raw TraceEvents through a fresh SemanticState per replay, then the rules (both timed)',
    };
    result.semantics_ns_per_event = Math.round(((fb.seconds - fa.seconds) / done) * 1e9 * 10) / 10;
  }
  return result;
}

export async function runBench(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' }, events: { type: 'string' }, pool: { type: 'string' }, 'builtin-only': { type: 'boolean' },
    'rules-only': { type: 'boolean' },
  }, USAGE);
  noExtraArgs(positionals, 0, USAGE);
  const r = await measureEngine({
    events: integerFlag(values.events, 'events', 5_000_000),
    pool: integerFlag(values.pool, 'pool', 200_000),
    builtinOnly: values['builtin-only'] === true,
    rulesOnly: values['rules-only'] === true,
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  const rate = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `engine stage: ${r.rules} rules (${r.files} files), ${r.events} events per path (a ${r.pool}-event stream replayed ${r.cycles}x) on one core`,
    `  rules only (events enriched once through SemanticState, outside the timed loop):`,
    `    ${r.seconds} s on the CPU (${r.wall_seconds} s wall), ${rate(r.events_per_s)} events/s (${rate(r.wall_events_per_s)} by the wall clock); ${r.findings} findings`,
  ];
  const w = r.with_semantics;
  if (w) {
    lines.push(
      `  semantics + rules (raw TraceEvents, a fresh SemanticState per replay; the whole engine stage):`,
      `    ${w.seconds} s on the CPU (${w.wall_seconds} s wall), ${rate(w.events_per_s)} events/s (${rate(w.wall_events_per_s)} by the wall clock); ${w.findings} findings`,
      `  semantics adds ${r.semantics_ns_per_event} ns per event; the two paths ran interleaved, replay by replay`,
    );
  }
  lines.push(JSON.stringify(r));
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
