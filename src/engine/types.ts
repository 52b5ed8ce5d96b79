// What detectors (rules and models) produce: findings with evidence, and the verdict.
import type { EnrichedEvent } from '../semantics/types.js';
import type { DnsRecord } from '../sandbox/dns.js';
import type { SinkholeSession } from '../sandbox/sessions.js';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export interface Evidence {
  /** Event sequence number (TraceEvent.seq). */
  seq: number;
  pid: number;
  /** Syscall or event type name. */
  event: string;
  /** Nanoseconds since the capture started (TraceEvent.ts), when known. */
  ts?: number;
  /** The fields the detector matched on, with their values. */
  fields: Record<string, string | number | boolean | null>;
}

export interface Finding {
  /** Stable rule or model id. */
  rule: string;
  description: string;
  severity: Severity;
  /** MITRE ATT&CK technique ids (T1059, T1059.004). */
  attack: string[];
  pid: number;
  evidence: Evidence[];
  source: 'rule' | 'model';
  /** Rendered output line (Falco's `output` with %fields filled in). */
  output?: string;
  /** How many events matched (evidence keeps the first few). */
  count?: number;
  /** 0..1; defaults to 1 for rules. */
  confidence?: number;
  tags?: string[];
  /** For model findings: anomaly score and the calibrated threshold it exceeded. */
  anomaly?: { score: number; threshold: number; window: string[]; model: string };
}

/** A detector sees every enriched event once, in order, and reports findings at the end. */
export interface Detector {
  readonly name: string;
  onEvent(e: EnrichedEvent): void;
  /**
   * The connections the sandbox caught (the report's sessions), once, after the last event and
   * before finish(); detectors without rules about them leave it out.
   */
  onSessions?(sessions: readonly SinkholeSession[]): void;
  /** The sinkhole's DNS log, once, after the last event (with onSessions); detectors without rules about it leave it out. */
  onDns?(queries: readonly DnsRecord[]): void;
  /** Findings so far (live monitoring drains these). */
  drain(): Finding[];
  /** Called once after the last event; returns the remaining findings. */
  finish(): Finding[];
}

export interface Verdict {
  score: number;
  /** 'unknown': the sample never ran (the sandbox failed; the report's errors say why). */
  label: 'benign' | 'suspicious' | 'malicious' | 'unknown';
}
