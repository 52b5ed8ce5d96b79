// The VM backend as a conformance-suite source: the same behaviour sample, run in a guest whose
// userland is the container sandbox's base image (sample at /tmp/NAME), captured by VMI.
import type { Source } from '../conformance/sources.js';
import type { TraceEvent } from '../events.js';

export const vmiSource: Source = {
  name: 'vmi',
  async unavailable() {
    try {
      const { checkVmEnvironment } = await import('../../vm/guest.js');
      const { defaultKernel } = await import('../../vmi/profile.js');
      checkVmEnvironment(true);
      if (!defaultKernel()) return 'Debian guest kernel missing (make setup)';
      return undefined;
    } catch (e) {
      return (e as Error).message.split('\n')[0];
    }
  },
  async capture(sample, args, timeout) {
    const { runInVm } = await import('../../vm/guest.js');
    const vm = runInVm({ sample, args, timeout, rootfs: 'debian' });
    await vm.collector.start();
    const events: TraceEvent[] = [];
    for await (const b of vm.collector.events()) events.push(...b);
    const r = await vm.done;
    return { events, stats: vm.collector.stats(), timedOut: r.timedOut };
  },
};
