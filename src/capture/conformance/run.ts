// Runs one behaviour sample in the real container sandbox under a given collector, and returns
// every event: the shared harness of the conformance suite (and of anyone comparing sources).
import type { Collector } from '../collector.js';
import type { TraceEvent } from '../events.js';
import type { CaptureStats } from '../collector.js';
import type { Sandbox, SandboxOptions, SandboxResult, SandboxStartInfo } from '../../sandbox/types.js';

export interface SampleRun {
  events: TraceEvent[];
  stats: CaptureStats;
  result: SandboxResult;
  info: SandboxStartInfo;
}

/** create -> attach the collector -> start -> wait -> stop -> destroy, events consumed as they come (the runc sandbox unless `create` says otherwise). */
export async function runSample(
  sample: string, args: string[], timeout: number,
  makeCollector: (info: SandboxStartInfo) => Collector | Promise<Collector>,
  create?: (opts: SandboxOptions) => Sandbox,
  onBatch?: (batch: TraceEvent[]) => void,
): Promise<SampleRun> {
  const make = create ?? (await import('../../sandbox/index.js')).createSandbox;
  const sb = make({ sample, args, timeout });
  try {
    const info = await sb.create();
    const c = await makeCollector(info);
    await c.start();
    const events: TraceEvent[] = [];
    const consuming = (async () => {
      // the sandbox's own init is not the sample (as analyze() hides it)
      for await (const all of c.events()) {
        const b = info.hiddenPid === undefined ? all : all.filter((e) => e.pid !== info.hiddenPid);
        events.push(...b);
        onBatch?.(b);
      }
    })();
    let result: SandboxResult;
    try {
      await sb.start();
      result = await sb.wait();
    } finally {
      await c.stop();
      await consuming;
    }
    return { events, stats: c.stats(), result, info };
  } finally {
    await sb.destroy();
  }
}
