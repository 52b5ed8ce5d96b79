// Runs a sample once in a disposable TCG guest and collects every event the VM backend captured.
import type { TraceEvent } from '../../src/capture/events.js';
import type { CaptureStats } from '../../src/capture/collector.js';
import { runInVm, type VmResult, type VmRun, type VmRunOptions } from '../../src/vm/guest.js';

export async function captureInVm(opts: VmRunOptions): Promise<{ events: TraceEvent[]; res: VmResult; stats: CaptureStats; vm: VmRun }> {
  const vm = runInVm(opts);
  await vm.collector.start();
  const events: TraceEvent[] = [];
  for await (const b of vm.collector.events()) events.push(...b);
  const res = await vm.done;
  return { events, res, stats: vm.collector.stats(), vm };
}
