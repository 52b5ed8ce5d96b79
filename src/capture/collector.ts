// The Collector contract: every event source implements it, and every implementation runs the
// same conformance suite (src/capture/conformance.test.ts).
import type { TraceEvent } from './events.js';

export type Backend = 'ebpf' | 'ptrace' | 'vmi' | 'replay' | 'import';

export interface CaptureStats {
  backend: Backend;
  /** Events delivered to the consumer. */
  events: number;
  /** Events the source knows it lost (ring full, parse failure). Exact, never assumed zero. */
  lost: number;
  /** Lines or records that could not be parsed (each also counted in `lost` when an event was dropped). */
  parseErrors: number;
  /** Seconds from start() to the end of the stream. */
  duration: number;
  /** Free-form facts about the capture (e.g. "froze the sandbox 3 times to drain the ring"). */
  notes: string[];
  /** Seconds the target was paused (frozen) for the capture to keep up; absent when never. */
  paused?: number;
}

export interface Collector {
  readonly backend: Backend;
  /**
   * Seconds the target has been paused (frozen) so far for the capture to keep up, live; absent
   * for sources that never pause it. The sandbox adds them to the sample's time.
   */
  pausedSeconds?(): number;
  /** Attach to the source. Resolves once no event of the target can be missed any more. */
  start(): Promise<void>;
  /**
   * The event stream, in batches (for throughput). Ends after stop() once everything captured
   * has been delivered, or when the source ends by itself (a recording, a traced command).
   */
  events(): AsyncIterable<TraceEvent[]>;
  /** Ask the source to finish: drain what is buffered, detach, and end the stream. Idempotent. */
  stop(): Promise<void>;
  stats(): CaptureStats;
}
