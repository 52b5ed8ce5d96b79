// The verdict: a 0-10 score and a label from the findings' severities and confidence.
//
// Formula. Each finding weighs severity x confidence, with severity weights info 0, low 1,
// medium 3, high 6, critical 9. Findings of the same rule count once (its heaviest). The
// heaviest rule counts fully and every further rule adds a quarter of its weight:
//   score = min(10, w1 + 0.25 * (w2 + w3 + ...))   (w sorted descending, rounded to 0.1)
// Labels: score >= 7 malicious, score >= 3 suspicious, otherwise benign. So one critical
// finding, or two high ones, make a sample malicious; one high or one medium finding makes it
// suspicious; low and informational findings alone stay benign unless there are many of them.
import type { Finding, Severity, Verdict } from './types.js';

export const SEVERITY_WEIGHT: Readonly<Record<Severity, number>> = { info: 0, low: 1, medium: 3, high: 6, critical: 9 };
export const MALICIOUS_AT = 7;
export const SUSPICIOUS_AT = 3;

export function computeVerdict(findings: Finding[]): Verdict {
  const byRule = new Map<string, number>();
  for (const f of findings) {
    const c = f.confidence ?? 1;
    const w = SEVERITY_WEIGHT[f.severity] * Math.min(1, Math.max(0, Number.isFinite(c) ? c : 1));
    byRule.set(f.rule, Math.max(byRule.get(f.rule) ?? 0, w));
  }
  const ws = [...byRule.values()].sort((a, b) => b - a);
  const [top = 0, ...rest] = ws;
  const raw = top + 0.25 * rest.reduce((s, w) => s + w, 0);
  const score = Math.round(Math.min(10, raw) * 10) / 10;
  const label = score >= MALICIOUS_AT ? 'malicious' : score >= SUSPICIOUS_AT ? 'suspicious' : 'benign';
  return { score, label };
}
