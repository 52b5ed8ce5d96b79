// The VM's dropped files through the Sandbox contract: a flood of junk does not bury the payload,
// what was left out is warned with how many and where, and a path with a newline is one entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createVmSandbox } from '../../src/vm/sandbox.js';
import { changeWarnings, DEFAULT_CHANGE_LIMITS } from '../../src/sandbox/changes.js';

const JUNK = (DEFAULT_CHANGE_LIMITS.maxEntries ?? 20_000) + 100;

test('20,100 junk files then /tmp/payload: the payload is listed with its hash, the junk left out is warned with where; a newline path is one entry', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-vmdrop-'));
  try {
    const sample = join(dir, 'flood.sh');
    // the sample reads the run's tag from /init, as a root sample can, to forge a line with a newline path
    writeFileSync(sample, `#!/bin/sh
mkdir -p /tmp/junk
i=0; while [ $i -lt ${JUNK} ]; do echo j > /tmp/junk/f$i; i=$((i+1)); done
tag=$(grep -o 'sandtrace-[0-9a-f]*' /init | head -n 1)
d="/work/d
$tag: f 5 81ed 1 "
mkdir -p "$d"; echo evil > "$d/fake"
printf '#!/bin/sh\\necho payload\\n' > /tmp/payload; chmod 755 /tmp/payload
`, { mode: 0o755 });
    const sb = createVmSandbox({ sample, args: [], timeout: 120, rootfs: 'initramfs' });
    await sb.create();
    const c = sb.collector();
    await c.start();
    const consume = (async () => { for await (const _ of c.events()) { /* drained */ } })();
    await sb.start();
    const t0 = performance.now();
    const r = await sb.wait();
    await c.stop();
    await consume;
    const ch = await sb.changes(dir);
    console.log(`guest: sample ${r.duration.toFixed(1)} s, wait() ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(r.exitCode, 0);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const payload = ch.find((f) => f.path === '/tmp/payload');
    assert.deepEqual(payload, { path: '/tmp/payload', change: 'created', size: 23, sha256: sha('#!/bin/sh\necho payload\n'), truncated: false });
    const nl = ch.filter((f) => f.path.startsWith('/work/'));
    assert.deepEqual(nl.map((f) => [f.path, f.sha256]), [[`/work/d\n${/sandtrace-[0-9a-f]+/.exec(ch.map((f) => f.path).join(' '))?.[0] ?? '?'}: f 5 81ed 1 /fake`, sha('evil\n')]]);
    assert.ok(!ch.some((f) => f.path === '/fake'));
    const o = ch.omitted;
    assert.ok(o, 'no omissions');
    assert.equal(o.found, JUNK + 2);
    assert.equal(o.notListed, JUNK + 2 - ch.length);
    assert.deepEqual(o.notListedAt, [{ dir: '/tmp/junk', count: o.notListed }]);
    const w = changeWarnings(o);
    assert.equal(w.length, 1, JSON.stringify(w));
    assert.match(w[0]?.message ?? '', new RegExp(`${(JUNK + 2).toLocaleString('en-US')} changes found, ${ch.length.toLocaleString('en-US')} listed; not listed: ${o.notListed.toLocaleString('en-US')} under /tmp/junk`));
    await sb.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
