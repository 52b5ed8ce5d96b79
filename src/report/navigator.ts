// The MITRE ATT&CK Navigator layer (layer format 4.5) for one report: every technique a
// finding names, scored by the heaviest finding's severity, with the rules in the comment.
import type { Report } from './schema.js';
import { SEVERITY_WEIGHT } from '../engine/verdict.js';

export interface NavigatorTechnique {
  techniqueID: string;
  score: number;
  color: string;
  comment: string;
  enabled: boolean;
  metadata: { name: string; value: string }[];
  showSubtechniques: boolean;
}

export interface NavigatorLayer {
  name: string;
  versions: { attack: string; navigator: string; layer: string };
  domain: 'enterprise-attack';
  description: string;
  filters: { platforms: string[] };
  sorting: number;
  layout: { layout: 'side'; showID: boolean; showName: boolean };
  hideDisabled: boolean;
  techniques: NavigatorTechnique[];
  gradient: { colors: string[]; minValue: number; maxValue: number };
  legendItems: { label: string; color: string }[];
  metadata: { name: string; value: string }[];
  showTacticRowBackground: boolean;
  selectTechniquesAcrossTactics: boolean;
  selectSubtechniquesWithParent: boolean;
}

const COLOR: Record<number, string> = { 0: '#d9ecff', 1: '#fff3b0', 3: '#ffc266', 6: '#ff7f50', 9: '#e03131' };

export function navigatorLayer(report: Report): NavigatorLayer {
  const byTech = new Map<string, { score: number; rules: Set<string> }>();
  for (const f of report.findings) {
    const w = SEVERITY_WEIGHT[f.severity];
    for (const t of f.attack) {
      const cur = byTech.get(t) ?? { score: 0, rules: new Set<string>() };
      cur.score = Math.max(cur.score, w);
      cur.rules.add(f.rule);
      byTech.set(t, cur);
      // Navigator shows a sub-technique under its parent; mark the parent too so it is visible.
      const parent = t.split('.')[0]!;
      if (parent !== t && !byTech.has(parent)) byTech.set(parent, { score: 0, rules: new Set() });
    }
  }
  const techniques = [...byTech.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, v]) => ({
    techniqueID: id,
    score: v.score,
    color: v.rules.size > 0 ? COLOR[v.score] ?? '#ffc266' : '',
    comment: v.rules.size > 0 ? `sandtrace rules: ${[...v.rules].sort().join(', ')}` : 'parent of a detected sub-technique',
    enabled: true,
    metadata: [...v.rules].sort().map((r) => ({ name: 'rule', value: r })),
    showSubtechniques: true,
  }));
  return {
    name: `sandtrace: ${report.sample.name}`,
    versions: { attack: '16', navigator: '5.1.0', layer: '4.5' },
    domain: 'enterprise-attack',
    description: `Techniques observed by sandtrace in ${report.sample.name} (sha256 ${report.sample.sha256}); verdict ${report.verdict.label} ${report.verdict.score}/10.`,
    filters: { platforms: ['Linux', 'Containers'] },
    sorting: 3,
    layout: { layout: 'side', showID: true, showName: true },
    hideDisabled: false,
    techniques,
    gradient: { colors: ['#d9ecff', '#ffc266', '#e03131'], minValue: 0, maxValue: 9 },
    legendItems: [
      { label: 'critical', color: COLOR[9]! }, { label: 'high', color: COLOR[6]! }, { label: 'medium', color: COLOR[3]! },
      { label: 'low', color: COLOR[1]! }, { label: 'info', color: COLOR[0]! },
    ],
    metadata: [
      { name: 'analysis', value: report.analysis.id },
      { name: 'verdict', value: `${report.verdict.label} (${report.verdict.score}/10)` },
    ],
    showTacticRowBackground: false,
    selectTechniquesAcrossTactics: true,
    selectSubtechniquesWithParent: false,
  };
}
