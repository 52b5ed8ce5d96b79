// Rule fields about where a process runs: proc.cwd, container.id/name/image*, and the fields
// sandtrace has no data for (k8s.*, proc.env), which must behave as Falco's missing values do:
// every comparison false (so `not <cmp>` true), `exists` false, `<NA>` in outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRuleDetector, falcoRulePaths, loadRuleFiles, loadRuleStrings } from '../../src/engine/rules/index.js';
import { splitRef } from '../../src/engine/rules/fields.js';
import type { Finding } from '../../src/engine/types.js';
import type { RuleSet } from '../../src/engine/rules/load.js';
import { O, Sim } from './sim.js';

const rule = (name: string, condition: string, output = '%proc.name') =>
  `- rule: ${name}\n  desc: test rule ${name}\n  condition: ${condition}\n  output: "${output}"\n  priority: WARNING\n`;

function load(yaml: string): RuleSet {
  const { ruleset, diagnostics } = loadRuleStrings(yaml);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return ruleset;
}

function run(rs: RuleSet, scenario: (s: Sim) => void, opts: ConstructorParameters<typeof Sim>[0] = {}): Map<string, Finding> {
  const s = new Sim(opts);
  scenario(s);
  const d = createRuleDetector(rs);
  for (const e of s.events) d.onEvent(e);
  return new Map(d.finish().map((f) => [f.rule, f]));
}
const names = (m: Map<string, Finding>) => [...m.keys()].sort();

test('proc.cwd: start directory, chdir (absolute, relative, failed), fchdir, inherited by children', () => {
  const rs = load([
    rule('in_tmp', 'evt.type = openat and proc.cwd startswith /tmp/', 'cwd=%proc.cwd file=%fd.name'),
    rule('exactly_tmp', 'evt.type = openat and proc.cwd = /tmp/'),
    rule('in_root', 'evt.type = openat and proc.cwd = /root/'),
  ].join(''));
  // The sample starts in /root (the sandbox's working directory).
  assert.deepEqual(names(run(rs, (s) => s.open(1, 'notes.txt'))), ['in_root']);
  // cd /tmp && cat x: the child inherits the directory; the relative name resolves against it.
  const got = run(rs, (s) => {
    s.chdir(1, '/tmp');
    s.open(s.run('/usr/bin/cat', ['cat', 'x']), 'x');
  });
  assert.deepEqual(names(got), ['exactly_tmp', 'in_tmp']);
  assert.equal(got.get('in_tmp')?.output, 'cwd=/tmp/ file=/tmp/x');
  // A relative chdir goes from the old directory; Falco keeps a trailing slash.
  const rel = run(rs, (s) => s.chdir(1, '/tmp').chdir(1, 'work/../build/').open(1, 'a.o', O.w));
  assert.deepEqual(names(rel), ['in_tmp']);
  assert.equal(rel.get('in_tmp')?.output, 'cwd=/tmp/build/ file=/tmp/build/a.o');
  // A failed chdir changes nothing.
  assert.deepEqual(names(run(rs, (s) => s.chdir(1, '/tmp', -2).open(1, 'x'))), ['in_root']);
  // fchdir to a directory descriptor.
  assert.deepEqual(names(run(rs, (s) => {
    const fd = s.open(1, '/tmp', O.dir);
    s.sys(1, 'fchdir', [fd], 0).open(1, 'y');
  })).filter((n) => n !== 'in_root'), ['exactly_tmp', 'in_tmp']);
  // The parent's later chdir does not move a child forked before it.
  assert.deepEqual(names(run(rs, (s) => {
    const child = s.fork(1);
    s.chdir(1, '/tmp');
    s.open(child, 'z');
  })), ['in_root']);
});

test('proc.cwd unknown (no start directory, or fchdir to a descriptor of unknown path) reads as missing', () => {
  const rs = load([
    rule('has_cwd', 'evt.type = openat and proc.cwd exists'),
    rule('not_tmp', 'evt.type = openat and not proc.cwd startswith /tmp', 'cwd=%proc.cwd'),
    rule('ne_tmp', 'evt.type = openat and proc.cwd != /tmp/'),
  ].join(''));
  const unknown = run(rs, (s) => s.open(1, 'x'), { cwd: null });
  assert.deepEqual(names(unknown), ['not_tmp']);
  assert.equal(unknown.get('not_tmp')?.output, 'cwd=<NA>');
  // A relative chdir from an unknown directory stays unknown; an absolute one makes it known.
  assert.deepEqual(names(run(rs, (s) => s.chdir(1, 'sub').open(1, 'x'), { cwd: null })), ['not_tmp']);
  assert.deepEqual(names(run(rs, (s) => s.chdir(1, '/var').open(1, 'x'), { cwd: null })), ['has_cwd', 'ne_tmp', 'not_tmp']);
  // fd 7 was never seen opened: after fchdir to it the directory is no longer known.
  assert.deepEqual(names(run(rs, (s) => s.sys(1, 'fchdir', [7], 0).open(1, 'x'))), ['not_tmp']);
});

test('Falco\'s own "Execution from /dev/shm" rule (proc.cwd and container.image.repository) fires as in Falco', async () => {
  const { ruleset, diagnostics } = await loadRuleFiles(falcoRulePaths());
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  const shm = (s: Sim) => {
    s.chdir(1, '/dev/shm');
    s.run('/dev/shm/x', ['./x']);
  };
  const id = 'Execution from /dev/shm';
  // No image known: `not container.image.repository in (...)` is true, as in Falco.
  const f = run(ruleset, shm).get(id);
  assert.ok(f, 'the rule fires for ./x run in /dev/shm');
  assert.match(f.output ?? '', /proc_cwd=\/dev\/shm\/ /);
  assert.match(f.output ?? '', /container_id=c0ffee container_name=sandtrace-test/);
  assert.ok(!run(ruleset, (s) => s.run('/root/x', ['./x'])).has(id), 'not for ./x run in /root');
  // An image on Falco's list of privileged images is exempt; any other image is not.
  assert.ok(!run(ruleset, shm, { image: { name: 'calico/node:v3.27.0' } }).has(id));
  assert.ok(run(ruleset, shm, { image: { name: 'debian:bookworm' } }).has(id));
});

test('container.id, container.name and container.image*: the container\'s when known, host or missing otherwise', () => {
  const rs = load([
    rule('in_container', 'evt.type = openat and container.id != host', '%container.id %container.name'),
    rule('on_host', 'evt.type = openat and container.id = host', '%container.id %container.name %container.image'),
    rule('debian', 'evt.type = openat and container.image.repository = debian and container.image.tag = bookworm',
      'image=%container.image repo=%container.image.repository tag=%container.image.tag id=%container.image.id'),
    rule('has_image', 'evt.type = openat and container.image exists'),
    rule('untrusted', 'evt.type = openat and not container.image.repository in (docker.io/library/nginx)'),
    rule('image_id', 'evt.type = openat and container.image.id startswith 0123'),
  ].join(''));
  const img = { name: 'debian:bookworm' };
  const inC = run(rs, (s) => s.open(1, '/etc/hosts'), { image: img });
  assert.deepEqual(names(inC), ['debian', 'has_image', 'in_container', 'untrusted']);
  assert.equal(inC.get('in_container')?.output, 'c0ffee sandtrace-test');
  assert.equal(inC.get('debian')?.output, 'image=debian:bookworm repo=debian tag=bookworm id=<NA>');
  // Parts given explicitly win over what the reference says; a known id can be matched.
  const explicit = run(rs, (s) => s.open(1, '/etc/hosts'), { image: { name: 'debian:bookworm', id: '0123456789ab' } });
  assert.ok(explicit.has('image_id'));
  // No image known: every image field is missing (so `not ... in` holds, as Falco's k8s_containers macro relies on).
  assert.deepEqual(names(run(rs, (s) => s.open(1, '/etc/hosts'))), ['in_container', 'untrusted']);
  // On the host, container.id and .name are "host" and there is no image, even if one was passed.
  const host = run(rs, (s) => s.open(1, '/etc/hosts'), { container: false, image: img });
  assert.deepEqual(names(host), ['on_host', 'untrusted']);
  assert.equal(host.get('on_host')?.output, 'host host <NA>');
});

test('image references split into repository, tag and digest (a registry port is not a tag)', () => {
  assert.deepEqual(splitRef('debian:bookworm'), { repository: 'debian', tag: 'bookworm', digest: undefined });
  assert.deepEqual(splitRef('registry.local:5000/team/app:1.2@sha256:ab12'), { repository: 'registry.local:5000/team/app', tag: '1.2', digest: 'sha256:ab12' });
  assert.deepEqual(splitRef('localhost:5000/app'), { repository: 'localhost:5000/app', tag: undefined, digest: undefined });
});

test('k8s.* and proc.env (no data here) compare as Falco\'s missing values: false, not -> true, <NA> in output', () => {
  const rs = load([
    rule('eq', 'evt.type = openat and k8s.ns.name = default'),
    rule('ne', 'evt.type = openat and k8s.ns.name != default'),
    rule('not_eq', 'evt.type = openat and not k8s.ns.name = default', 'ns=%k8s.ns.name pod=%k8s.pod.name env=%proc.env'),
    rule('in', 'evt.type = openat and k8s.ns.name in (kube-system, default)'),
    rule('not_in', 'evt.type = openat and not k8s.ns.name in (kube-system)'),
    rule('exists', 'evt.type = openat and k8s.pod.name exists'),
    rule('startswith', 'evt.type = openat and k8s.pod.label.app startswith a'),
    rule('env', 'evt.type = openat and proc.env contains PATH'),
    rule('not_env', 'evt.type = openat and not proc.env contains HTTP_PROXY'),
  ].join(''));
  for (const container of [true, false]) {
    const got = run(rs, (s) => s.open(1, '/etc/hosts'), { container });
    assert.deepEqual(names(got), ['not_env', 'not_eq', 'not_in'], `container: ${container}`);
    assert.equal(got.get('not_eq')?.output, 'ns=<NA> pod=<NA> env=<NA>');
  }
});
