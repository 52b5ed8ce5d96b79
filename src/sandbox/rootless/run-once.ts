// One rootless analysis run end to end (sandbox + ptrace capture), printed as JSON: used by the
// rootless tests, which run it as an unprivileged user, and handy to try the sandbox by hand:
//   node --import tsx src/sandbox/rootless/run-once.ts [--timeout=SECONDS] [--pids=N] [--interpreter=PATH] [--dns=nxdomain] SAMPLE [ARGS...]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRootlessSandbox } from './index.js';
import type { DnsMode } from '../dns.js';
import { StraceCollector } from '../../capture/ptrace/collector.js';
import type { TraceEvent } from '../../capture/events.js';
import type { CaptureStats } from '../../capture/collector.js';
import type { FileChange, SandboxDns, SandboxResult, SandboxStartInfo } from '../types.js';

export interface RunOnce {
  info: SandboxStartInfo;
  result: SandboxResult;
  events: TraceEvent[];
  stats: CaptureStats;
  changes: FileChange[];
  dns: SandboxDns;
  uid: number;
}

export async function runOnce(sample: string, args: string[], timeout = 20, pids?: number, interpreter?: string, dns?: DnsMode): Promise<RunOnce> {
  const sb = createRootlessSandbox({ sample, args, timeout, ...(pids ? { limits: { pids } } : {}), ...(interpreter ? { interpreter: [interpreter] } : {}), ...(dns ? { dns } : {}) });
  const out = mkdtempSync(join(tmpdir(), 'sandtrace-rootless-out-'));
  try {
    const info = await sb.create();
    const c = new StraceCollector({ attachPid: info.hostPid });
    await c.start();
    const events: TraceEvent[] = [];
    // the sandbox's init is not the sample (as analyze() hides it)
    const consuming = (async () => { for await (const b of c.events()) events.push(...b.filter((e) => e.pid !== info.hiddenPid)); })();
    await sb.start();
    const result = await sb.wait();
    await c.stop();
    await consuming;
    const changes = await sb.changes(out);
    return { info, result, events, stats: c.stats(), changes, dns: sb.dns(), uid: process.getuid?.() ?? -1 };
  } finally {
    await sb.destroy();
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let argv = process.argv.slice(2);
  let timeout = 20;
  let pids: number | undefined;
  let interpreter: string | undefined;
  let dns: DnsMode | undefined;
  for (let m; (m = /^--(timeout|pids|interpreter|dns)=(.+)$/.exec(argv[0] ?? '')); argv = argv.slice(1)) {
    if (m[1] === 'timeout') timeout = Number(m[2]); else if (m[1] === 'pids') pids = Number(m[2]);
    else if (m[1] === 'dns') dns = m[2] === 'nxdomain' ? 'nxdomain' : 'sinkhole'; else interpreter = m[2];
  }
  const [sample, ...rest] = argv;
  if (!sample) { process.stderr.write('usage: run-once.ts [--timeout=SECONDS] [--pids=N] [--interpreter=PATH] [--dns=nxdomain] SAMPLE [ARGS...]\n'); process.exit(2); }
  runOnce(sample, rest, timeout, pids, interpreter, dns).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e: unknown) => { process.stderr.write(`run-once: ${(e as Error).message}\n`); process.exit(1); },
  );
}
