// ROC analysis for anomaly scores (higher = more anomalous): AUC with ties counted half, the
// false-alarm rate at a detection rate, the detection rate at a false-alarm rate, and an SVG plot.

export interface RocPoint { far: number; dr: number }

/** AUC = P(score(attack) > score(normal)) + P(tie)/2, via ranks. */
export function auc(normal: readonly number[], attack: readonly number[]): number {
  if (normal.length === 0 || attack.length === 0) return NaN;
  const all = [...normal.map((s) => [s, 0] as const), ...attack.map((s) => [s, 1] as const)].sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && (all[j] as readonly [number, number])[0] === (all[i] as readonly [number, number])[0]) j++;
    const avg = (i + j + 1) / 2;
    for (let k = i; k < j; k++) if ((all[k] as readonly [number, number])[1] === 1) rankSum += avg;
    i = j;
  }
  const p = attack.length;
  return (rankSum - (p * (p + 1)) / 2) / (p * normal.length);
}

/** Points of the ROC curve, one per distinct threshold, from (0,0) to (1,1). */
export function rocCurve(normal: readonly number[], attack: readonly number[]): RocPoint[] {
  const all = [...normal.map((s) => [s, 0] as const), ...attack.map((s) => [s, 1] as const)].sort((a, b) => b[0] - a[0]);
  const pts: RocPoint[] = [{ far: 0, dr: 0 }];
  let fp = 0;
  let tp = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && (all[j] as readonly [number, number])[0] === (all[i] as readonly [number, number])[0]) {
      if ((all[j] as readonly [number, number])[1] === 1) tp++;
      else fp++;
      j++;
    }
    pts.push({ far: fp / Math.max(1, normal.length), dr: tp / Math.max(1, attack.length) });
    i = j;
  }
  return pts;
}

/** Lowest false-alarm rate among thresholds that detect at least `dr` of the attacks. */
export function farAtDr(normal: readonly number[], attack: readonly number[], dr: number): number {
  let best = 1;
  for (const p of rocCurve(normal, attack)) if (p.dr >= dr - 1e-12 && p.far < best) best = p.far;
  return best;
}

/** Highest detection rate among thresholds whose false-alarm rate is at most `far`. */
export function drAtFar(normal: readonly number[], attack: readonly number[], far: number): number {
  let best = 0;
  for (const p of rocCurve(normal, attack)) if (p.far <= far + 1e-12 && p.dr > best) best = p.dr;
  return best;
}

export interface RocSeries { name: string; auc: number; points: RocPoint[] }

/** A self-contained SVG of one or more ROC curves (the points are thinned to keep it small). */
export function rocSvg(series: readonly RocSeries[], title: string): string {
  const W = 480;
  const H = 480;
  const m = { l: 56, r: 16, t: 36, b: 48 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const x = (far: number) => (m.l + far * pw).toFixed(1);
  const y = (dr: number) => (m.t + (1 - dr) * ph).toFixed(1);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#bbb" stroke-dasharray="4 4"/>`,
  ];
  for (let i = 0; i <= 10; i += 2) {
    const v = i / 10;
    out.push(`<text x="${x(v)}" y="${H - m.b + 16}" text-anchor="middle">${v}</text>`);
    out.push(`<text x="${m.l - 6}" y="${(Number(y(v)) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  out.push(`<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">false-alarm rate</text>`);
  out.push(`<text x="14" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + ph / 2})">detection rate</text>`);
  series.forEach((s, i) => {
    const color = colors[i % colors.length] as string;
    let last: RocPoint | undefined;
    const pts: string[] = [];
    s.points.forEach((p, k) => {
      const keep = k === 0 || k === s.points.length - 1 || !last || Math.abs(p.far - last.far) > 0.002 || Math.abs(p.dr - last.dr) > 0.002;
      if (keep) { pts.push(`${x(p.far)},${y(p.dr)}`); last = p; }
    });
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    out.push(`<rect x="${m.l + pw - 190}" y="${m.t + ph - 24 - 18 * (series.length - 1 - i)}" width="12" height="3" fill="${color}"/>`);
    out.push(`<text x="${m.l + pw - 172}" y="${m.t + ph - 19 - 18 * (series.length - 1 - i)}">${esc(s.name)} (AUC ${s.auc.toFixed(3)})</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
