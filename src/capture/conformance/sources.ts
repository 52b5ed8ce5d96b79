// The event sources the conformance suite runs, each able to say why it cannot run here. A new
// source (e.g. the VM backend) is one more entry: a name, unavailable(), capture().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptureStats } from '../collector.js';
import type { TraceEvent } from '../events.js';
import { runSample } from './run.js';

export interface Captured { events: TraceEvent[]; stats: CaptureStats; timedOut: boolean }

export interface Source {
  name: string;
  /** Why this source cannot run on this machine; undefined when it can. */
  unavailable(): Promise<string | undefined>;
  /** Run `sample ARGS` (a host path) to completion or timeout, and return what the source captured. */
  capture(sample: string, args: string[], timeout: number): Promise<Captured>;
}

async function ebpfReason(): Promise<string | undefined> {
  try {
    const { ebpfAvailable } = await import('../ebpf/collector.js');
    const a = await ebpfAvailable();
    return a.ok ? undefined : a.reason;
  } catch (e) {
    return `eBPF backend missing: ${(e as Error).message.split('\n')[0]}`;
  }
}

export const ebpfSource: Source = {
  name: 'ebpf',
  unavailable: ebpfReason,
  async capture(sample, args, timeout) {
    const { EbpfCollector } = await import('../ebpf/collector.js');
    const r = await runSample(sample, args, timeout, (info) => new EbpfCollector({
      cgroupPath: info.cgroupPath, pidNamespaceOf: info.hostPid, ...(info.freezerPath ? { freezerPath: info.freezerPath } : {}),
    }));
    return { events: r.events, stats: r.stats, timedOut: r.result.timedOut };
  },
};

export const ptraceSource: Source = {
  name: 'ptrace',
  async unavailable() {
    const { straceVersion } = await import('../ptrace/collector.js');
    return straceVersion() ? undefined : 'strace is not installed (make setup)';
  },
  async capture(sample, args, timeout) {
    const { StraceCollector } = await import('../ptrace/collector.js');
    const r = await runSample(sample, args, timeout, (info) => new StraceCollector({ attachPid: info.hostPid }));
    return { events: r.events, stats: r.stats, timedOut: r.result.timedOut };
  },
};

/** Records a live capture (eBPF where it loads, else ptrace) with RecordingWriter and replays the file. */
export const replaySource: Source = {
  name: 'replay',
  async unavailable() {
    try {
      await import('../replay/index.js');
    } catch (e) {
      return `recording/replay missing: ${(e as Error).message.split('\n')[0]}`;
    }
    return (await ebpfReason()) === undefined ? undefined : ptraceSource.unavailable();
  },
  async capture(sample, args, timeout) {
    const { RecordingWriter, RecordingCollector } = await import('../replay/index.js');
    const live = (await ebpfReason()) === undefined ? ebpfSource : ptraceSource;
    const dir = mkdtempSync(join(tmpdir(), 'sandtrace-conformance-'));
    try {
      const file = join(dir, 'events.jsonl.gz');
      const rec = await live.capture(sample, args, timeout);
      const w = await RecordingWriter.create(file, { backend: rec.stats.backend, sample });
      w.write(rec.events);
      await w.close(rec.stats);
      const c = new RecordingCollector(file);
      await c.start();
      const events: TraceEvent[] = [];
      for await (const b of c.events()) events.push(...b);
      await c.stop();
      return { events, stats: c.stats(), timedOut: rec.timedOut };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The rootless sandbox (bubblewrap, no root needed) captured with ptrace: what an analyst without root gets. */
export const rootlessSource: Source = {
  name: 'rootless',
  async unavailable() {
    const { rootlessAvailable } = await import('../../sandbox/rootless/index.js');
    const a = rootlessAvailable();
    return a.ok ? ptraceSource.unavailable() : a.reason;
  },
  async capture(sample, args, timeout) {
    const { createRootlessSandbox } = await import('../../sandbox/rootless/index.js');
    const { StraceCollector } = await import('../ptrace/collector.js');
    const r = await runSample(sample, args, timeout, (info) => new StraceCollector({ attachPid: info.hostPid }), createRootlessSandbox);
    return { events: r.events, stats: r.stats, timedOut: r.result.timedOut };
  },
};
