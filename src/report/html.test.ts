// report.html and the Navigator layer, checked in a real headless Chromium: the verdict, a
// finding's ATT&CK id and the process tree are visible, and hostile strings from the sample
// render as text and run nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { REPORT_SCHEMA, REPORT_VERSION, type Report } from './schema.js';
import { renderOutputs } from './render.js';
import { navigatorLayer } from './navigator.js';
import { computeVerdict } from '../engine/verdict.js';
import { builtinRulePaths, createRuleDetector, loadRuleFiles } from '../engine/rules/index.js';
import { O, Sim } from '../../test/rules/sim.js';
import { scratchDir } from '../../test/helpers.js';

const XSS_NAME = '<script>alert(1)</script>';
const XSS_ARG = '"><img src=x onerror=window.__pwned=1>';
const XSS_FILE = '/tmp/<script>window.__pwned=2</script>';

/** A report built from a real rule run over a hostile sample's events. */
async function hostileReport(): Promise<Report> {
  const s = new Sim();
  const p = s.run('/tmp/dropper', ['dropper', XSS_ARG]);
  s.open(p, '/root/.ssh/id_rsa', O.r);
  s.open(p, XSS_FILE, O.w);
  const c = s.fork(p);
  const fd = s.connect(c, '203.0.113.7', 4444, 0);
  s.dup2(c, fd, 0).dup2(c, fd, 1);
  s.exec(c, '/bin/sh', ['sh', '-i', XSS_ARG]);
  const { ruleset } = await loadRuleFiles(builtinRulePaths());
  const d = createRuleDetector(ruleset);
  for (const e of s.events) d.onEvent(e);
  const findings = d.finish();
  const procs = [...new Map(s.events.map((e) => [e.proc.pid, e.proc])).values()];
  return {
    schema: REPORT_SCHEMA, version: REPORT_VERSION, tool: { name: 'sandtrace', version: '0.1.0' },
    analysis: {
      id: 'test-1', started: '2026-01-01T00:00:00.000Z', ended: '2026-01-01T00:00:02.000Z', duration: 2, timeout: 30, timedOut: false,
      status: 'completed', isolation: { kind: 'container', guarantees: [], weaker: [] }, errors: [], warnings: [{ code: 'TEST', message: XSS_NAME }],
    },
    sample: { name: XSS_NAME, size: 10, sha256: 'a'.repeat(64), sha1: 'b'.repeat(40), md5: 'c'.repeat(32), type: 'ELF', args: [XSS_ARG] },
    processes: procs.map((q) => ({ pid: q.pid, ppid: q.ppid, exe: q.exe, argv: q.argv, uid: q.uid, start: q.start / 1e9, end: q.end === null ? null : q.end / 1e9, exit: q.exit, signal: q.signal, syscalls: 3 })),
    files: [{ path: XSS_FILE, ops: ['create', 'write'], pids: [p] }, { path: '/root/.ssh/id_rsa', ops: ['read'], pids: [p] }],
    dropped: [{ path: XSS_FILE, sha256: 'd'.repeat(64), size: 5, change: 'created', truncated: false }],
    deleted: [],
    network: [{ op: 'connect', proto: 'tcp', family: 'inet', address: '203.0.113.7', port: 4444, result: 'ok', pid: p, count: 1 }],
    syscalls: { total: s.events.length, counts: { openat: 2, connect: 1 }, denied: [] },
    capture: { backend: 'replay', reason: 'test', events: s.events.length, lost: 0, parseErrors: 0, duration: 2, notes: [] },
    findings,
    verdict: computeVerdict(findings),
  };
}

test('the Navigator layer lists each technique found, in layer format 4.x', async () => {
  const r = await hostileReport();
  const layer = navigatorLayer(r);
  assert.match(layer.versions.layer, /^4\.\d+$/);
  assert.equal(layer.domain, 'enterprise-attack');
  const ids = layer.techniques.map((t) => t.techniqueID);
  for (const t of r.findings.flatMap((f) => f.attack)) assert.ok(ids.includes(t), t);
  const rev = layer.techniques.find((t) => t.techniqueID === 'T1059.004');
  assert.ok(rev && rev.score === 9 && rev.comment.includes('ST-EXE-011'));
  assert.ok(ids.includes('T1059'), 'the parent of a sub-technique is listed');
});

test('report.html in headless Chromium: verdict, ATT&CK ids and process tree visible; hostile strings inert', async (t) => {
  const exe = '/usr/bin/chromium';
  assert.ok(existsSync(exe), `${exe} is missing: run 'make setup' (scripts/setup.d/60-chromium.sh installs chromium)`);
  const r = await hostileReport();
  assert.equal(r.verdict.label, 'malicious');
  const dir = scratchDir('sandtrace-html-');
  const [htmlPath, layerPath] = await renderOutputs(r, dir);
  assert.ok(htmlPath && layerPath);
  assert.equal(JSON.parse(await readFile(layerPath, 'utf8')).versions.layer, '4.5');
  const html = await readFile(htmlPath, 'utf8');
  assert.ok(!html.includes(XSS_NAME) && !html.includes('<img'), 'raw markup from the sample must not reach the page');

  const browser = await chromium.launch({
    executablePath: exe,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  const dialogs: string[] = [];
  const requests: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (q) => requests.push(q.url()));
  await page.goto(`file://${htmlPath}`);

  assert.equal((await page.locator('#verdict .label').innerText()).toLowerCase(), 'malicious');
  assert.match(await page.locator('#verdict .score').innerText(), /score \d+(\.\d)? \/ 10/);
  assert.ok(await page.getByText('T1059.004').first().isVisible(), 'ATT&CK id of the reverse shell is shown');
  assert.ok(await page.getByText('Reverse shell').first().isVisible());
  assert.ok(await page.locator('.tree').getByText('dropper').first().isVisible(), 'process tree shows the sample');
  assert.ok(await page.locator('svg.timeline rect').count() >= 2, 'timeline draws one bar per process');
  assert.ok(await page.locator('svg.timeline g.mark').count() >= 3, 'timeline marks when findings happened');
  // Hostile strings are shown as text...
  assert.equal(await page.locator('h1').innerText(), XSS_NAME);
  assert.ok(await page.getByText(XSS_FILE).first().isVisible());
  // ...and nothing ran or was injected.
  assert.deepEqual(dialogs, []);
  assert.equal(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned), undefined);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('script').count(), 1, 'only the page\'s own script');
  assert.deepEqual(requests.filter((u) => !u.startsWith('file://')), [], 'no network requests');
  // The page's own script works under its CSP.
  const open = await page.locator('details.finding[open]').count();
  await page.locator('#toggle').click();
  assert.notEqual(await page.locator('details.finding[open]').count(), open);

  const shot = join(dir, 'report.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok((await stat(shot)).size > 10_000);
  process.stdout.write(`# screenshot: ${shot}\n`);
});

test('bin/sandtrace report DIR re-renders from report.json; bad input gives one line and a non-zero exit', async () => {
  const cli = join(import.meta.dirname, '..', '..', 'bin', 'sandtrace');
  const r = await hostileReport();
  const dir = scratchDir('sandtrace-rerender-');
  await writeFile(join(dir, 'report.json'), JSON.stringify(r));
  const ok = spawnSync(cli, ['report', dir], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(dir, 'report.html')) && existsSync(join(dir, 'attack-layer.json')));
  assert.match(await readFile(join(dir, 'report.html'), 'utf8'), /malicious/);
  await writeFile(join(dir, 'report.json'), '{"not":');
  const bad = spawnSync(cli, ['report', dir], { encoding: 'utf8' });
  assert.equal(bad.status, 4);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /not JSON.*INPUT_CORRUPT/);
  const missing = spawnSync(cli, ['report', join(dir, 'nope')], { encoding: 'utf8' });
  assert.equal(missing.status, 4);
  await writeFile(join(dir, 'report.json'), JSON.stringify({ ...r, processes: undefined }));
  const partial = spawnSync(cli, ['report', dir], { encoding: 'utf8' });
  assert.equal(partial.status, 4);
  assert.match(partial.stderr, /lacks processes/);
  // wrong types inside: one line naming the problem, not a crash
  for (const [damaged, why] of [
    [{ ...r, findings: [null] }, /findings\[0\] is not an object/],
    [{ ...r, syscalls: { counts: 'x' } }, /wrong type/],
  ] as const) {
    await writeFile(join(dir, 'report.json'), JSON.stringify(damaged));
    const b = spawnSync(cli, ['report', dir], { encoding: 'utf8' });
    assert.equal(b.status, 4, b.stderr);
    assert.equal(b.stderr.trim().split('\n').length, 1);
    assert.match(b.stderr, why);
  }
});

test('control and text-direction characters from the sample are shown as \\uXXXX, not acted on (b\\u202etxt.exe must not read bexe.txt)', async () => {
  const r = await hostileReport();
  const spoof = '/tmp/b\u202etxt.exe';
  const ansi = '/tmp/\u001b[31mred\u0007';
  r.files.push({ path: spoof, ops: ['create'], pids: [1] }, { path: ansi, ops: ['create'], pids: [1] });
  const dir = scratchDir('sandtrace-html-');
  const [html] = await renderOutputs(r, dir);
  const page = await readFile(html!, 'utf8');
  assert.ok(!/[\u202e\u001b\u0007]/.test(page), 'no raw control or override character in the page');
  assert.ok(page.includes('/tmp/b\\u202etxt.exe'));
  assert.ok(page.includes('/tmp/\\u001b[31mred\\u0007'));
});

test('a sample run by an interpreter shows what it was run with beside its type', async () => {
  const r = await hostileReport();
  const dir = scratchDir('sandtrace-html-');
  const [html] = await renderOutputs(r, dir);
  assert.ok(!(await readFile(html!, 'utf8')).includes('run with'), 'nothing when the kernel ran it');
  r.sample.interpreter = ['/usr/bin/env', 'python3 -u'];
  const [again] = await renderOutputs(r, scratchDir('sandtrace-html-'));
  assert.match(await readFile(again!, 'utf8'), /<b>run with<\/b><span class="argv">\/usr\/bin\/env python3 -u<\/span>/);
});

test('caught sessions show the account the sample logged in with, the IRC channels it joined, what an upload carried and whether the dialogue was read inside TLS (STARTTLS, or an implicit-TLS port), refused during the handshake or after it, the sample\'s strings escaped', async () => {
  const r = await hostileReport();
  r.sessions = [
    { address: '198.18.0.3', port: 587, domain: 'smtp.example.test', protocol: 'smtp', bytes: 30, preview: 'EHLO pc\\r\\nSTARTTLS\\r\\n', decrypted: { bytes: 300, preview: 'EHLO pc' },
      smtp: { helo: 'pc', from: 'pc@example.test', to: ['ops@example.test'], recipients: 1, subject: 'PW', auth: { mechanism: 'LOGIN', user: 'logs@mail.example.test', password: XSS_NAME }, starttls: true } },
    { address: '198.18.0.4', port: 995, domain: 'pop.example.test', protocol: 'pop3', sni: 'pop.example.test', bytes: 517, preview: '\\x16\\x03\\x01', decrypted: { bytes: 12, preview: 'USER victim\\r\\n' }, login: { mechanism: 'USER', user: 'victim', password: 'pop-pw' } },
    { address: '198.18.0.6', port: 80, domain: 'panel.example.test', protocol: 'http', bytes: 400, preview: 'POST /gate.php', http: { method: 'POST', path: '/gate.php', body: { bytes: 300, sha256: 'ab'.repeat(32), preview: 'PK\\x03\\x04' } } },
    { address: '198.18.0.5', port: 21, domain: 'ftp.example.test', protocol: 'ftp', bytes: 80, preview: 'USER ops', ftp: { user: 'ops', password: 'pw', files: [{ command: 'STOR', path: 'PW_devbox.zip' }, { command: 'RETR', path: 'cmd.txt' }], uploads: 1, downloads: 1 } },
    { address: '198.18.0.7', port: 443, domain: 'own-ca.example.test', protocol: 'tls', sni: 'own-ca.example.test', bytes: 517, preview: '\x16\x03\x01' },
    { address: '198.18.0.8', port: 443, domain: 'pinned.example.test', protocol: 'tls', sni: 'pinned.example.test', bytes: 517, preview: '\x16\x03\x01', decrypted: { bytes: 0, preview: '' } },
    { address: '198.18.0.9', port: 6667, domain: 'irc.example.test', protocol: 'irc', bytes: 60, preview: 'NICK a1',
      irc: { nick: 'a1', user: 'a1', realname: XSS_NAME, channels: [{ name: '#cmd', key: 'k3y' }, { name: '#x86' }], messages: [{ command: 'PRIVMSG', target: '#cmd', text: 'ready' }], lines: 5 } },
  ];
  const [html] = await renderOutputs(r, scratchDir('sandtrace-html-'));
  const page = await readFile(html!, 'utf8');
  assert.match(page, /mail from pc@example\.test to ops@example\.test · Subject: PW · HELO pc · logged in as logs@mail\.example\.test \(AUTH LOGIN, password &#60;script&#62;alert\(1\)&#60;\/script&#62;\)<\/span><div class="muted small">STARTTLS: decrypted/);
  assert.match(page, /POST \/gate\.php · body 300 bytes, sha256 (ab){32}: PK\\x03\\x04<\/span>/);
  assert.match(page, /<td>ftp<\/td><td><span class="argv">logged in as ops \(password pw\) · 1 upload · 1 download · STOR PW_devbox\.zip, RETR cmd\.txt<\/span><\/td>/);
  assert.match(page, /<td>pop3<\/td><td><span class="argv">logged in as victim \(USER, password pop-pw\)<\/span><div class="muted small">TLS: decrypted \(the sample accepted the sandbox's certificate\): <span class="argv">USER victim\\r\\n<\/span>/);
  assert.match(page, /<td>irc<\/td><td><span class="argv">IRC nick a1 · user a1 \(&#60;script&#62;alert\(1\)&#60;\/script&#62;\) · joined #cmd \(key k3y\), #x86 · PRIVMSG #cmd: ready<\/span><\/td>/);
  // TLS refused during the handshake (the sample trusts its own CAs only), and after it (a pinned key)
  assert.match(page, /server name own-ca\.example\.test<\/span><div class="muted small">refused the sandbox's certificate: nothing decrypted<\/div>/);
  assert.match(page, /server name pinned\.example\.test<\/span><div class="muted small">handshake completed, then nothing sent through it \(a sample that pins its server's key refuses the certificate only then\)<\/div>/);
});
