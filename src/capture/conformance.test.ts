// One conformance suite for every event source: the same behaviour samples, run in the real
// container sandbox (the rootless source: in the bubblewrap sandbox), must yield the same facts
// (process tree, files, connections, programs) whichever source captured them. To add a source,
// add one entry to SOURCES.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { factsOf, type Facts } from './conformance/facts.js';
import { ebpfSource, ptraceSource, replaySource, rootlessSource, type Source } from './conformance/sources.js';
import { vmiSource } from './vmi/conformance-source.js';

const SOURCES: Source[] = [
  ebpfSource,
  ptraceSource,
  replaySource,
  rootlessSource,
  vmiSource,
];

const SAMPLES_DIR = fileURLToPath(new URL('../../test/samples/', import.meta.url));

interface Case {
  sample: string;
  args: string[];
  timeout: number;
  /** Facts that must be present (each listed item is included in the source's facts). */
  expect: Partial<Record<keyof Facts, string[]>>;
  /** Facts that must be exactly these (nothing else made up). */
  only?: Partial<Record<keyof Facts, string[]>>;
  timedOut?: boolean;
  /** Programs the sample runs a timing-dependent number of times (retry loops): left out of the cross-source comparison. */
  unstable?: string[];
}

const CASES: Case[] = [
  {
    sample: 'fork_exec_chain.sh', args: [], timeout: 20,
    expect: {
      processes: [
        '/tmp/fork_exec_chain.sh > /tmp/fork_exec_chain.sh => /bin/sh ["/bin/sh","-c","exec /bin/ls -la /etc/hostname"]',
        '/tmp/fork_exec_chain.sh > /bin/sh => /bin/ls ["/bin/ls","-la","/etc/hostname"]',
      ],
      executed: ['/tmp/fork_exec_chain.sh', '/bin/sh', '/bin/ls'],
    },
  },
  {
    sample: 'file_ops.sh', args: [], timeout: 20,
    expect: {
      written: ['/tmp/created.txt', '/etc/motd', '/tmp/a.txt'],
      deleted: ['/etc/issue.net'],
      renamed: ['/tmp/a.txt -> /tmp/renamed.txt'],
      executed: ['/usr/bin/rm', '/usr/bin/mv'],
    },
  },
  {
    sample: 'connect_loopback.sh', args: ['4444'], timeout: 20,
    expect: { connections: ['inet:127.0.0.1:4444'], bound: ['inet:127.0.0.1:4444'], executed: ['/usr/bin/nc'] },
    unstable: ['/usr/bin/sleep'],
  },
  {
    // recvmsg names its sender; asked for none (msg_name NULL, msg_namelen 0), it names none
    sample: 'udp_recvmsg.sh', args: ['4445', '4446'], timeout: 20,
    expect: { bound: ['inet:127.0.0.1:4445', 'inet:127.0.0.1:4446'] },
    only: { received: ['inet:127.0.0.1:4446'] },
  },
  {
    // batched datagrams: every message of a sendmmsg names its destination, every message of a
    // recvmmsg its sender (none for the message that asked for none, none on a connected socket)
    sample: 'udp_mmsg.sh', args: ['4448', '4449', '4450', '4451'], timeout: 20,
    expect: { bound: ['inet:127.0.0.1:4448', 'inet:127.0.0.1:4449', 'inet:127.0.0.1:4450', 'inet:127.0.0.1:4451'] },
    only: {
      sent: ['inet:127.0.0.1:4448', 'inet:127.0.0.1:4449'],
      received: ['inet:127.0.0.1:4450', 'inet:127.0.0.1:4451'],
      connections: ['inet:127.0.0.1:4449'],
    },
  },
  {
    // a call a signal cut into: EINTR when the handler has no SA_RESTART, made again when it has
    sample: 'signal_accept.sh', args: ['4447'], timeout: 30,
    expect: { bound: ['inet:127.0.0.1:4447'] },
    only: { signalled: ['accept4:interrupted', 'accept4:restarted'] },
  },
  {
    sample: 'self_delete.sh', args: [], timeout: 20,
    expect: { deleted: ['/tmp/self_delete.sh'], executed: ['/usr/bin/rm'] },
  },
  {
    sample: 'read_secrets.sh', args: [], timeout: 20,
    expect: { executed: ['/usr/bin/cat', '/usr/bin/head', '/usr/bin/grep'] },
  },
  {
    sample: 'fork_sleep_forever.sh', args: [], timeout: 3, timedOut: true,
    expect: { executed: ['/usr/bin/sleep', '/usr/bin/setsid'] },
  },
];

// facts[sample][source]
const seen = new Map<string, Map<string, Facts>>();

for (const src of SOURCES) {
  for (const c of CASES) {
    test(`${src.name}: ${c.sample}`, async () => {
      const why = await src.unavailable();
      assert.equal(why, undefined, `source ${src.name} is not available on this machine: ${why}`);
      const r = await src.capture(join(SAMPLES_DIR, c.sample), c.args, c.timeout);
      assert.equal(r.stats.lost, 0, `${src.name} lost events: ${r.stats.notes.join('; ')}`);
      assert.equal(r.stats.parseErrors, 0, r.stats.notes.join('; '));
      assert.equal(r.timedOut, c.timedOut ?? false, 'timed out as expected');
      const f = factsOf(r.events);
      for (const [k, items] of Object.entries(c.expect) as [keyof Facts, string[]][]) {
        for (const it of items) assert.ok(f[k].includes(it), `${src.name} ${c.sample}: ${k} lacks ${it}; has ${JSON.stringify(f[k])}`);
      }
      for (const [k, items] of Object.entries(c.only ?? {}) as [keyof Facts, string[]][]) assert.deepEqual(f[k], items, `${src.name} ${c.sample}: ${k}`);
      let m = seen.get(c.sample);
      if (!m) { m = new Map(); seen.set(c.sample, m); }
      m.set(src.name, f);
    });
  }
}

for (const c of CASES) {
  test(`every source yields the same facts: ${c.sample}`, () => {
    const m = seen.get(c.sample);
    const got = [...(m?.keys() ?? [])];
    assert.deepEqual(got, SOURCES.map((s) => s.name), `sources that captured ${c.sample}`);
    const stable = (f: Facts): Facts => {
      const keep = (x: string) => !(c.unstable ?? []).some((u) => x === u || x.includes(` => ${u} `));
      // which calls a signal happens to catch (a shell's wait interrupted by SIGCHLD) is timing:
      // compared only where the case is about it
      const signalled = c.only?.signalled || c.expect.signalled ? f.signalled : [];
      return { ...f, processes: f.processes.filter(keep), executed: f.executed.filter(keep), signalled };
    };
    const [first, ...rest] = [...(m as Map<string, Facts>).entries()].map(([n, f]) => [n, stable(f)] as const);
    for (const [name, f] of rest) assert.deepEqual(f, first?.[1], `${name} vs ${first?.[0]}`);
  });
}
