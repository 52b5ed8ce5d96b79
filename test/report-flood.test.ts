// End to end: a sample that touches 20,000 junk files and endpoints before its payload, analysed in
// the real sandbox (runc, the eBPF probe): report.json must still list what the payload did, and
// say how much it left out and where.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import { REPORT_LIMITS } from '../src/report/build.js';
import type { Report } from '../src/report/schema.js';
import { ROOT, sampleProcess, tempDir } from './helpers.js';

test('20,500 junk files and 20,500 refused connects before the payload do not hide it: report.json lists /etc/shadow read, /tmp/payload written and run, the C2 connect, and says what it left out and where', { timeout: 300_000 }, async () => {
  const t = tempDir();
  try {
    await analyze({ sample: join(ROOT, 'test', 'samples', 'flood_report.sh'), outDir: t.path, timeout: 120 });
    const r = JSON.parse(readFileSync(join(t.path, 'report.json'), 'utf8')) as Report;
    assert.equal(r.analysis.status, 'completed');
    assert.equal(r.capture.lost, 0);
    assert.equal(sampleProcess(r)?.exit, 0, 'the sample ran to its end');
    const ops = (p: string) => r.files.find((f) => f.path === p)?.ops ?? [];
    assert.ok(ops('/etc/shadow').includes('read'), JSON.stringify(r.files.find((f) => f.path === '/etc/shadow') ?? 'not listed'));
    assert.ok(ops('/tmp/payload').includes('write') && ops('/tmp/payload').includes('exec'), JSON.stringify(r.files.find((f) => f.path === '/tmp/payload') ?? 'not listed'));
    assert.ok(r.network.some((n) => n.op === 'connect' && n.address === '127.0.0.2' && n.port === 8443 && n.result === 'ok'), 'the C2 connect is listed');
    assert.equal(r.files.length, REPORT_LIMITS.files);
    assert.equal(r.network.length, REPORT_LIMITS.network);
    const w = r.analysis.warnings.find((x) => x.code === 'REPORT_LIMITED' && x.message.includes('file operations past'))?.message ?? '';
    assert.match(w, /file operations past 20,000 paths or 16 MiB of names \([\d,]+ under \/(tmp\/)?aaa[;,]/, JSON.stringify(r.analysis.warnings));
    assert.match(w, /network operations past 20,000 entries \([\d,]+ to 127\.0\.0\.1[;,]/);
    assert.ok((r.analysis.omitted?.files ?? 0) >= 500 && (r.analysis.omitted?.network ?? 0) >= 500, JSON.stringify(r.analysis.omitted));
  } finally {
    t.cleanup();
  }
});
