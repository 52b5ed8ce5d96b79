// report.html: one self-contained page (inline CSS, SVG and a hashed inline script; a CSP that
// forbids every network load) that shows an analyst the verdict first, then the findings with
// their ATT&CK ids and evidence, the process tree, a per-process timeline, files and network.
// Every string that came from the sample is escaped: file names and argv are attacker-chosen.
import { createHash } from 'node:crypto';
import type { Finding, Severity } from '../engine/types.js';
import type { Report, ReportProcess } from './schema.js';

const MAX_ROWS = 500;
const MAX_TIMELINE = 80;
const MAX_TREE = 1000;

// Control characters, and the ones that reorder text (a file 'b\u202etxt.exe' reads 'bexe.txt'),
// come from the sample: shown as \uXXXX, never acted on by the browser.
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function esc(v: unknown): string {
  return String(v ?? '')
    .replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const SEV_ORDER: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
const SEV_COLOR: Record<Severity, string> = { critical: '#c92a2a', high: '#e8590c', medium: '#f59f00', low: '#1971c2', info: '#868e96' };
const LABEL_COLOR = { benign: '#2b8a3e', suspicious: '#e67700', malicious: '#c92a2a', unknown: '#495057' } as const;

function worstByPid(findings: Finding[]): Map<number, Severity> {
  const m = new Map<number, Severity>();
  for (const f of findings) {
    const cur = m.get(f.pid);
    if (!cur || SEV_ORDER.indexOf(f.severity) < SEV_ORDER.indexOf(cur)) m.set(f.pid, f.severity);
  }
  return m;
}

function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

function attackLink(t: string): string {
  const [base, sub] = t.split('.');
  return `https://attack.mitre.org/techniques/${base}${sub ? `/${sub}` : ''}/`;
}

function findingsSection(r: Report): string {
  if (r.findings.length === 0) return '<p class="muted">No rule or model matched.</p>';
  const sorted = [...r.findings].sort((a, b) => SEV_ORDER.indexOf(a.severity) - SEV_ORDER.indexOf(b.severity) || a.rule.localeCompare(b.rule) || a.pid - b.pid);
  return sorted.map((f) => {
    const ev = f.evidence.map((e) => `<tr><td>#${esc(e.seq)}</td><td>${esc(e.pid)}</td><td>${esc(e.event)}</td><td class="fields">${
      Object.entries(e.fields).map(([k, v]) => `<span class="kv"><b>${esc(k)}</b>=${esc(v === null ? '<NA>' : v)}</span>`).join(' ')}</td></tr>`).join('');
    const attack = f.attack.map((t) => `<a class="chip" href="${esc(attackLink(t))}" rel="noreferrer">${esc(t)}</a>`).join(' ');
    return `<details class="finding sev-${esc(f.severity)}"${f.severity === 'critical' || f.severity === 'high' ? ' open' : ''}>
<summary><span class="sev" style="background:${SEV_COLOR[f.severity]}">${esc(f.severity)}</span> <b>${esc(f.description)}</b> ${attack}
<span class="muted">· ${esc(f.rule)} · pid ${esc(f.pid)}${f.count && f.count > 1 ? ` · ${esc(f.count)} matches` : ''}${f.source === 'model' ? ' · anomaly model' : ''}</span></summary>
${f.output ? `<p class="output">${esc(f.output)}</p>` : ''}
${f.anomaly ? `<p class="muted">anomaly score ${esc(f.anomaly.score.toFixed(3))} over threshold ${esc(f.anomaly.threshold.toFixed(3))} (${esc(f.anomaly.model)}); window: ${esc(f.anomaly.window.join(' '))}</p>` : ''}
${ev ? `<table class="evidence"><thead><tr><th>event</th><th>pid</th><th>call</th><th>matched fields</th></tr></thead><tbody>${ev}</tbody></table>` : ''}
</details>`;
  }).join('\n');
}

function processTree(r: Report): string {
  if (r.processes.length === 0) return '<p class="muted">No process was observed.</p>';
  const worst = worstByPid(r.findings);
  const pids = new Set(r.processes.map((p) => p.pid));
  const kids = new Map<number, ReportProcess[]>();
  const roots: ReportProcess[] = [];
  for (const p of r.processes) {
    if (p.ppid !== p.pid && pids.has(p.ppid)) {
      const l = kids.get(p.ppid) ?? [];
      l.push(p);
      kids.set(p.ppid, l);
    } else roots.push(p);
  }
  const seen = new Set<ReportProcess>();
  const node = (p: ReportProcess, depth: number): string => {
    // A fork bomb makes thousands of processes: the tree shows the first MAX_TREE.
    if (seen.has(p) || depth > 64 || seen.size >= MAX_TREE) return '';
    seen.add(p);
    const sev = worst.get(p.pid);
    const badge = sev ? ` <span class="sev" style="background:${SEV_COLOR[sev]}">${esc(sev)}</span>` : '';
    const exit = p.signal !== null ? `killed by signal ${p.signal}` : p.exit !== null ? `exit ${p.exit}` : 'running at end';
    const children = (kids.get(p.pid) ?? []).map((c) => node(c, depth + 1)).join('');
    return `<li><span class="proc"><b>${esc(basename(p.exe) || '?')}</b> <span class="muted">pid ${esc(p.pid)}</span>${badge}</span>
<div class="argv">${esc(p.argv.join(' '))}</div><div class="muted small">${esc(p.exe)}${p.copiedFrom ? ` (a copy of ${esc(p.copiedFrom)})` : ''} · uid ${esc(p.uid)} · ${esc(p.syscalls)} calls · ${esc(exit)}</div>${children ? `<ul>${children}</ul>` : ''}</li>`;
  };
  const html = `<ul class="tree">${roots.map((p) => node(p, 0)).join('')}</ul>`;
  const hidden = r.processes.length - seen.size;
  return hidden > 0 ? `${html}<p class="muted">${esc(hidden)} more processes are listed in report.json.</p>` : html;
}

function timeline(r: Report): string {
  const procs = r.processes.slice(0, MAX_TIMELINE);
  if (procs.length === 0) return '';
  const worst = worstByPid(r.findings);
  const end = Math.max(r.analysis.duration, ...procs.map((p) => p.end ?? p.start), 0.001);
  const W = 900;
  const L = 190;
  const row = 18;
  const H = procs.length * row + 30;
  const x = (t: number) => L + (Math.max(0, t) / end) * (W - L - 50);
  const maxCalls = Math.max(1, ...procs.map((p) => p.syscalls));
  const rows = procs.map((p, i) => {
    const y = 10 + i * row;
    const x0 = x(p.start);
    const x1 = Math.max(x0 + 2, x(p.end ?? end));
    const sev = worst.get(p.pid);
    const color = sev ? SEV_COLOR[sev] : '#4c6ef5';
    const op = (0.35 + 0.65 * Math.log1p(p.syscalls) / Math.log1p(maxCalls)).toFixed(2);
    return `<g><title>${esc(`pid ${p.pid} ${p.argv.join(' ')}: ${p.syscalls} calls, ${p.start.toFixed(3)}s to ${p.end === null ? 'end' : `${p.end.toFixed(3)}s`}`)}</title>
<text x="4" y="${y + 12}" class="tl-label">${esc(`${p.pid} ${basename(p.exe) || '?'}`.slice(0, 28))}</text>
<rect x="${x0.toFixed(1)}" y="${y + 3}" width="${(x1 - x0).toFixed(1)}" height="${row - 6}" rx="3" fill="${color}" fill-opacity="${op}"/>
<text x="${(x1 + 4).toFixed(1)}" y="${y + 12}" class="tl-count">${esc(p.syscalls)}</text></g>`;
  }).join('\n');
  // Findings as markers on their process's row, at the time of their evidence.
  const rowOf = new Map(procs.map((p, i) => [p.pid, i] as const));
  const marks: string[] = [];
  for (const f of r.findings) {
    for (const ev of f.evidence.slice(0, 3)) {
      const i = rowOf.get(ev.pid);
      if (i === undefined || typeof ev.ts !== 'number') continue;
      const cx = x(ev.ts / 1e9);
      const cy = 10 + i * row + row / 2;
      marks.push(`<g class="mark"><title>${esc(`${f.severity}: ${f.rule} (event #${ev.seq}, ${(ev.ts / 1e9).toFixed(3)}s)`)}</title><path d="M${cx.toFixed(1)} ${(cy - 6).toFixed(1)} l5 6 l-5 6 l-5 -6 z" fill="${SEV_COLOR[f.severity] ?? '#868e96'}" stroke="#fff" stroke-width="1"/></g>`);
    }
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const t = end * f;
    return `<line x1="${x(t).toFixed(1)}" y1="6" x2="${x(t).toFixed(1)}" y2="${H - 18}" class="tl-grid"/><text x="${x(t).toFixed(1)}" y="${H - 4}" class="tl-axis" text-anchor="middle">${esc(t.toFixed(2))}s</text>`;
  }).join('');
  const more = r.processes.length > procs.length ? `<p class="muted">${esc(r.processes.length - procs.length)} more processes not drawn.</p>` : '';
  return `<svg class="timeline" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="process activity timeline">${ticks}${rows}${marks.join('')}</svg>
<p class="muted small">One row per process: bar from start to exit, opacity by number of system calls (shown at the end of the bar), colour by the worst finding of that process; diamonds mark when findings happened (hover for the rule).</p>${more}`;
}

/** The indicators section: each non-empty list, its values as text to copy. */
function indicators(r: Report): string {
  const i = r.indicators;
  if (!i) return '';
  const lists: [string, string[]][] = [
    ['domains', i.domains], ['hard-coded endpoints', i.endpoints], ['URLs', i.urls], ['user agents', i.userAgents], ['TLS server names', i.serverNames],
    ['accounts', i.accounts.map((a) => `${a.protocol} ${a.user} / ${a.password}`)], ['mail addresses', i.mailAddresses],
    ['SHA-256', i.hashes.map((h) => `${h.sha256} ${h.source === 'upload' ? 'uploaded to' : 'written to'} ${h.name}`)],
  ];
  const shown = lists.filter(([, v]) => v.length > 0);
  if (shown.length === 0) return '';
  return `<h2 id="indicators">Indicators</h2>
<table><tbody>${shown.map(([k, v]) => `<tr><th>${esc(k)} (${esc(v.length)})</th><td>${v.slice(0, MAX_ROWS).map((x) => `<div class="argv">${esc(x)}</div>`).join('')}${v.length > MAX_ROWS ? `<div class="muted">${esc(v.length - MAX_ROWS)} more in report.json</div>` : ''}</td></tr>`).join('')}</tbody></table>`;
}

function table(head: string[], rows: string[][], total: number): string {
  if (rows.length === 0) return '<p class="muted">None.</p>';
  const note = total > rows.length ? `<p class="muted">${esc(total - rows.length)} more rows in report.json.</p>` : '';
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>${note}`;
}

const CSS = `
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;background:#f8f9fa}
body{margin:0}main{max-width:1100px;margin:0 auto;padding:20px}
h1{font-size:20px;margin:0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dee2e6;padding-bottom:4px}
.hero{display:flex;gap:20px;align-items:center;background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:16px}
.verdict{color:#fff;border-radius:8px;padding:10px 18px;text-align:center;min-width:150px}
.verdict .label{font-size:24px;font-weight:700;text-transform:uppercase;letter-spacing:.5px}.verdict .score{font-size:14px}
.facts{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;font-size:13px}.facts b{color:#495057}
.muted{color:#868e96}.small{font-size:12px}
.chip{display:inline-block;background:#e7f5ff;color:#1864ab;border-radius:10px;padding:0 8px;font-size:12px;text-decoration:none;margin:1px}
.sev{display:inline-block;color:#fff;border-radius:4px;padding:0 6px;font-size:11px;text-transform:uppercase;font-weight:700}
.finding{background:#fff;border:1px solid #dee2e6;border-left:5px solid #adb5bd;border-radius:6px;margin:6px 0;padding:6px 10px}
.finding.sev-critical{border-left-color:#c92a2a}.finding.sev-high{border-left-color:#e8590c}.finding.sev-medium{border-left-color:#f59f00}.finding.sev-low{border-left-color:#1971c2}
summary{cursor:pointer}.output{font-family:ui-monospace,monospace;font-size:12px;background:#f1f3f5;padding:4px 6px;border-radius:4px;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;background:#fff;font-size:12px}th,td{border:1px solid #e9ecef;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f1f3f5}.fields .kv{display:inline-block;margin-right:8px;font-family:ui-monospace,monospace}
.tree,.tree ul{list-style:none;padding-left:18px;margin:0}.tree li{border-left:1px dashed #ced4da;padding:3px 0 3px 10px}
.argv{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
.timeline{background:#fff;border:1px solid #dee2e6;border-radius:6px}.tl-label{font:11px ui-monospace,monospace;fill:#495057}
.tl-count{font:10px sans-serif;fill:#868e96}.tl-axis{font:10px sans-serif;fill:#868e96}.tl-grid{stroke:#e9ecef}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin-top:10px}.card{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:6px 12px;font-size:13px}
.card b{font-size:18px;display:block}.diag{color:#c92a2a}
`;

// Expands or collapses all findings; the page works without it.
const SCRIPT = `document.getElementById('toggle').addEventListener('click',function(){var d=document.querySelectorAll('details.finding');var open=!Array.prototype.every.call(d,function(x){return x.open});d.forEach(function(x){x.open=open});});`;

/** Events whose arguments the capture could not read whole (report 1.1). */
function argsNote(r: Report): string {
  const t = r.capture.argsTruncated ?? 0;
  const u = r.capture.argsUnreadable ?? 0;
  const x = r.capture.argsReadAtExit ?? 0;
  if (!t && !u && !x) return '';
  return `, <span class="diag">${[t ? `${esc(t)} with cut arguments` : '', u ? `${esc(u)} with unreadable arguments` : '',
    x ? `${esc(x)} with arguments read at the return` : ''].filter(Boolean).join(', ')}</span>`;
}

export function renderHtml(r: Report): string {
  const v = r.verdict;
  const techniques = [...new Set(r.findings.flatMap((f) => f.attack))].sort();
  const counts = SEV_ORDER.map((s) => [s, r.findings.filter((f) => f.severity === s).length] as const).filter(([, n]) => n > 0);
  const files = r.files.slice(0, MAX_ROWS).map((f) => [
    `<span class="argv">${esc(f.path)}</span>${f.renamedTo?.length ? `<div class="muted small">→ ${esc(f.renamedTo.join(', '))}</div>` : ''}`,
    esc(f.ops.join(', ')), esc(f.pids.join(', ')),
  ]);
  const dropped = r.dropped.slice(0, MAX_ROWS).map((d) => [
    `<span class="argv">${esc(d.path)}</span>`, esc(d.change), esc(d.size), `<span class="argv small">${esc(d.sha256 ?? 'not hashed: too large')}</span>`,
    d.copy ? esc(d.copy) : `<span class="muted">${d.truncated ? 'over size cap' : 'not kept'}</span>`,
  ]);
  const net = r.network.slice(0, MAX_ROWS).map((n) => [
    esc(n.op), esc(n.proto), `<span class="argv">${esc(n.address)}${n.port !== null ? `:${esc(n.port)}` : ''}</span>${n.domain !== undefined ? `<div class="muted small">${esc(n.domain)}</div>` : ''}`, esc(n.result), esc(n.pid), esc(n.count),
  ]);
  const sessions = (r.sessions ?? []).slice(0, MAX_ROWS).map((c) => [
    `${esc(c.domain ?? (c.address.includes(':') ? `[${c.address}]` : c.address))}${c.port === null ? '' : `:${esc(c.port)}`}`, esc(c.transport === 'udp' ? `udp ${c.protocol === 'none' ? 'empty' : 'datagrams'}` : c.protocol),
    `<span class="argv">${esc(c.http ? `${c.http.method} ${c.http.path}${c.http.host !== undefined ? ` · Host: ${c.http.host}` : ''}${c.http.userAgent !== undefined ? ` · User-Agent: ${c.http.userAgent}` : ''}${c.http.body ? ` · body ${c.http.body.bytes} bytes${c.http.body.incomplete ? ' (cut short)' : ''}, sha256 ${c.http.body.sha256}: ${c.http.body.preview.slice(0, 80)}` : ''}`
      : c.smtp?.from !== undefined ? `mail from ${c.smtp.from} to ${c.smtp.to.join(', ')}${c.smtp.recipients > c.smtp.to.length ? ` (${c.smtp.recipients} recipients)` : ''}${c.smtp.subject !== undefined ? ` · Subject: ${c.smtp.subject}` : ''}${c.smtp.helo !== undefined ? ` · HELO ${c.smtp.helo}` : ''}${c.smtp.auth ? ` · logged in as ${c.smtp.auth.user} (AUTH ${c.smtp.auth.mechanism}, password ${c.smtp.auth.password})` : ''}`
      : c.ftp ? `${c.ftp.user !== undefined ? `logged in as ${c.ftp.user}${c.ftp.password !== undefined ? ` (password ${c.ftp.password})` : ''}` : 'no login'}${c.ftp.uploads ? ` · ${c.ftp.uploads} upload${c.ftp.uploads === 1 ? '' : 's'}` : ''}${c.ftp.downloads ? ` · ${c.ftp.downloads} download${c.ftp.downloads === 1 ? '' : 's'}` : ''}${c.ftp.files.length ? ` · ${c.ftp.files.map((x) => `${x.command} ${x.path}`).join(', ')}` : ''}`
      : c.login ? `logged in as ${c.login.user} (${c.login.mechanism}, password ${c.login.password})`
      : c.irc ? `IRC nick ${c.irc.nick ?? '(none)'}${c.irc.user !== undefined ? ` · user ${c.irc.user}${c.irc.realname !== undefined ? ` (${c.irc.realname})` : ''}` : ''}${c.irc.password !== undefined ? ` · server password ${c.irc.password}` : ''}${c.irc.channels.length ? ` · joined ${c.irc.channels.map((x) => `${x.name}${x.key !== undefined ? ` (key ${x.key})` : ''}`).join(', ')}` : ''}${c.irc.messages.length ? ` · ${c.irc.messages.map((m) => `${m.command} ${m.target}: ${m.text}`).join(' | ').slice(0, 200)}` : ''}`
      : c.sni !== undefined ? `server name ${c.sni}` : c.preview.slice(0, 120))}</span>` +
      (c.protocol !== 'tls' ? (c.decrypted === undefined ? '' : `<div class="muted small">${c.smtp?.starttls ? 'STARTTLS: ' : 'TLS: '}decrypted (the sample accepted the sandbox's certificate)${c.http || c.smtp?.from !== undefined ? '' : `: <span class="argv">${esc(c.decrypted.preview.slice(0, 120))}</span>`}</div>`) : c.decrypted === undefined ? '<div class="muted small">refused the sandbox\'s certificate: nothing decrypted</div>'
        // a client that checks a pinned key does so once the handshake is done, then closes
        : c.decrypted.bytes === 0 ? '<div class="muted small">handshake completed, then nothing sent through it (a sample that pins its server\'s key refuses the certificate only then)</div>'
        : `<div class="muted small">${c.sni !== undefined && c.http ? `server name ${esc(c.sni)} · ` : ''}decrypted (the sample accepted the sandbox's certificate)${c.http ? '' : `: <span class="argv">${esc(c.decrypted.preview.slice(0, 120))}</span>`}</div>`),
    `${esc(c.bytes)}${c.decrypted ? ` <span class="muted small">(${esc(c.decrypted.bytes)} in the clear)</span>` : ''}`,
  ]);
  const dns = (r.dns ?? []).slice(0, MAX_ROWS).map((d) => [`<span class="argv">${esc(d.name)}</span>`, esc(d.type), esc(d.answer ?? (d.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'no records')), esc(d.count)]);
  const topCalls = Object.entries(r.syscalls.counts).sort((a, b) => b[1] - a[1]).slice(0, 20);
  const diags = [...r.analysis.errors.map((d) => ['error', d] as const), ...r.analysis.warnings.map((d) => ['warning', d] as const)];
  const scriptHash = createHash('sha256').update(SCRIPT).digest('base64');
  const csp = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-${scriptHash}'; base-uri 'none'; form-action 'none'`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>sandtrace: ${esc(r.sample.name)} · ${esc(v.label)}</title>
<style>${CSS}</style></head>
<body><main>
<section class="hero" id="verdict">
<div class="verdict" style="background:${LABEL_COLOR[v.label]}"><div class="label">${esc(v.label)}</div><div class="score">score ${esc(v.score)} / 10</div></div>
<div><h1>${esc(r.sample.name)}</h1>
<div class="facts"><b>sha256</b><span class="argv small">${esc(r.sample.sha256)}</span>
<b>type</b><span>${esc(r.sample.type)} · ${esc(r.sample.size)} bytes</span>
${r.sample.interpreter?.length ? `<b>run with</b><span class="argv">${esc(r.sample.interpreter.join(' '))}</span>` : ''}
${r.sample.args.length ? `<b>arguments</b><span class="argv">${esc(r.sample.args.join(' '))}</span>` : ''}
<b>analysis</b><span>${esc(r.analysis.started)} · ${esc(r.analysis.duration.toFixed(2))} s${r.analysis.timedOut ? ' (timed out)' : ''} · ${esc(r.analysis.status)} · ${esc(r.capture.backend)} capture, ${esc(r.capture.events)} events${r.capture.lost ? `, <span class="diag">${esc(r.capture.lost)} lost</span>` : ''}${argsNote(r)}</span>
<b>isolation</b><span>${esc(r.analysis.isolation.kind)}</span></div>
<div class="cards">${counts.map(([s, n]) => `<div class="card"><b style="color:${SEV_COLOR[s]}">${n}</b>${esc(s)}</div>`).join('')}
<div class="card"><b>${r.processes.length}</b>processes</div><div class="card"><b>${r.files.length}</b>files</div>
<div class="card"><b>${r.network.length}</b>network</div><div class="card"><b>${r.dropped.length}</b>dropped</div></div>
${techniques.length ? `<p>ATT&amp;CK: ${techniques.map((t) => `<a class="chip" href="${esc(attackLink(t))}" rel="noreferrer">${esc(t)}</a>`).join(' ')}</p>` : ''}
</div></section>
${diags.length ? `<h2>Problems during the analysis</h2><ul>${diags.map(([k, d]) => `<li class="${k === 'error' ? 'diag' : ''}">${esc(k)} ${esc(d.code)}: ${esc(d.message)}${d.where ? ` <span class="muted">(${esc(d.where)})</span>` : ''}</li>`).join('')}</ul>` : ''}
<h2 id="findings">Findings (${r.findings.length}) <button id="toggle" type="button">expand/collapse</button></h2>
${findingsSection(r)}
<h2 id="processes">Process tree</h2>
${processTree(r)}
<h2 id="timeline">Activity per process</h2>
${timeline(r)}
<h2 id="files">Files (${r.files.length})</h2>
${table(['path', 'operations', 'pids'], files, r.files.length)}
<h2 id="dropped">Dropped and modified files (${r.dropped.length})</h2>
${table(['path', 'change', 'bytes', 'sha256', 'copy'], dropped, r.dropped.length)}
${r.deleted.length ? `<h2>Deleted (${r.deleted.length})</h2><ul>${r.deleted.slice(0, MAX_ROWS).map((d) => `<li class="argv">${esc(d)}</li>`).join('')}</ul>` : ''}
<h2 id="network">Network (${r.network.length})</h2>
${table(['operation', 'protocol', 'address', 'result', 'pid', 'count'], net, r.network.length)}
${r.dns ? `<h2 id="dns">DNS lookups (${r.dns.length})</h2>
<p class="muted small">answered by the sandbox's sinkhole: ${r.dns.some((d) => d.rcode === 'NXDOMAIN') ? 'every name NXDOMAIN (--dns nxdomain)' : 'an A question gets an address of its own from 198.18.0.0/15, which leads only to sandtrace inside the namespace'}</p>
${table(['name', 'type', 'answer', 'count'], dns, r.dns.length)}` : ''}
${r.sessions?.length ? `<h2 id="sessions">Connections caught in the sandbox (${r.sessions.length})</h2>
<p class="muted small">the sample's TCP connections off its loopback, taken by sandtrace inside the sample's namespace: what the sample sent first (HTTP was answered 200 with an empty body); nothing left the sandbox</p>
${table(['to', 'protocol', 'first message', 'bytes'], sessions, r.sessions.length)}` : ''}
${indicators(r)}
<h2 id="syscalls">System calls (${esc(r.syscalls.total)})</h2>
${table(['call', 'count'], topCalls.map(([k, n]) => [esc(k), esc(n)]), topCalls.length)}
${r.syscalls.denied.length ? `<p>Denied by the sandbox: ${r.syscalls.denied.map((d) => `${esc(d.name)} ×${esc(d.count)} (pid ${esc(d.pid)})`).join(', ')}</p>` : ''}
<p class="muted small">sandtrace ${esc(r.tool.version)} · report ${esc(r.version)} · analysis ${esc(r.analysis.id)}</p>
</main><script>${SCRIPT}</script></body></html>
`;
}
