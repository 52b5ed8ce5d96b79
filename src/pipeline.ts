// The shared middle of every analysis: collector -> semantics -> report accumulator and
// detectors, in one pass over the event stream. Sources and outputs differ; this does not.
import type { Collector } from './capture/collector.js';
import type { TraceEvent } from './capture/events.js';
import type { Detector, Finding } from './engine/types.js';
import type { ReportBuilder } from './report/build.js';
import type { SemanticState } from './semantics/state.js';

export interface EventSink {
  write(events: TraceEvent[]): void;
}

export interface PipelineOptions {
  collector: Collector;
  semantics: SemanticState;
  report?: ReportBuilder;
  detectors: Detector[];
  /** Receives every event the pipeline keeps (e.g. a recording writer). */
  sink?: EventSink;
  /**
   * Rewrites events in place before anything else sees them, e.g. kernel uids into the uids of
   * the sandbox's user namespace, so that recordings hold what the sample saw.
   */
  normalize?: (ev: TraceEvent) => void;
  /**
   * Drop events until the first exec: in a container the first process is the runtime's own
   * init until it execs the sample, and its set-up calls are not the sample's behaviour.
   */
  startAtFirstExec?: boolean;
  /**
   * A process whose events are dropped, all of them (counted in `skipped`): the sandbox's own init,
   * pid 1 of the container, which runs the sample and reaps what it leaves (src/sandbox/init.c).
   */
  hidePid?: number;
  /** Called after each batch with the running event count. */
  onProgress?: (events: number) => void;
  /** Live findings, drained from the detectors after each batch. */
  onFindings?: (findings: Finding[]) => void;
}

export interface PipelineResult {
  /** Events that went through semantics and detectors. */
  events: number;
  /** Events dropped before the first exec (runtime set-up), and the hidden process's. */
  skipped: number;
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  let started = !o.startAtFirstExec;
  let events = 0;
  let skipped = 0;
  const { semantics, report, detectors } = o;
  for await (const batch of o.collector.events()) {
    let kept = batch;
    if (o.hidePid !== undefined) {
      kept = batch.filter((e) => e.pid !== o.hidePid);
      skipped += batch.length - kept.length;
    }
    if (!started) {
      const i = kept.findIndex((e) => e.type === 'exec');
      if (i < 0) {
        skipped += kept.length;
        continue;
      }
      started = true;
      skipped += i;
      kept = kept.slice(i);
    }
    if (o.normalize) for (const ev of kept) o.normalize(ev);
    o.sink?.write(kept);
    for (const ev of kept) {
      const e = semantics.apply(ev);
      report?.add(e);
      for (const d of detectors) d.onEvent(e);
    }
    events += kept.length;
    o.onProgress?.(events);
    if (o.onFindings) {
      const found = detectors.flatMap((d) => d.drain());
      if (found.length) o.onFindings(found);
    }
  }
  return { events, skipped };
}
