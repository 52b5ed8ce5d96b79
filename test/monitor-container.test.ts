// `sandtrace monitor --container ID` against live runc containers: the container's cgroup is found
// through `runc state` (default root and sandtrace's own), a service running in it is learned, and
// what `runc exec` then runs inside it is alerted on by pid and program. Needs root and `make setup`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createSandbox, runcRoot, shimPath } from '../src/sandbox/index.js';
import { baseRootfs } from '../src/sandbox/image.js';
import { hierarchies } from '../src/sandbox/cgroups.js';
import { cgroupOfContainer, cgroup2Root } from '../src/engine/models/monitor.js';
import { runCli } from '../src/engine/models/testutil.js';

const execFile = promisify(execFileCb);

function requireSetup(): string {
  assert.equal(process.getuid?.(), 0, 'monitor --container tests need root (runc, eBPF)');
  assert.ok(existsSync(shimPath()), `missing ${shimPath()}: run make setup`);
  return baseRootfs().rootfs; // throws SANDBOX_IMAGE_MISSING with "run make setup"
}

// The service: every 0.3 s a python3 helper reads its config and lists its spool.
const SERVICE = `#!/bin/sh
while :; do
  python3 -c 'import os; open("/etc/hostname").read(); os.listdir("/tmp")'
  sleep 0.3
done
`;

interface Alert { time: string; source: string; rule: string; pid: number; exe: string; ppid: number; parent: string; output?: string; evidence: Array<{ event: string }> }

// Calls of runc's Go init that CPython's start-up never makes (CPython does call futex and prctl)
const RUNC_INIT_CALLS = new Set(['keyctl', 'epoll_pwait', 'epoll_ctl', 'sched_yield']);
const runcInit = (a: Alert): boolean => /runc:\[|proc\.exe=\/ /.test(a.output ?? '') || a.evidence.some((e) => RUNC_INIT_CALLS.has(e.event));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `runc exec` in the sandbox's runc root; resolves with the exec'd process's host pid. */
async function runcExec(id: string, dir: string, name: string, args: string[]): Promise<number> {
  const pidFile = join(dir, `${name}.pid`);
  await execFile('runc', ['--root', runcRoot(), 'exec', '--pid-file', pidFile, id, ...args], { timeout: 20_000 });
  return Number(readFileSync(pidFile, 'utf8').trim());
}

test('monitor --container: learns a service in a live runc container, then names what runc exec runs in it', { timeout: 90_000 }, async (t) => {
  requireSetup();
  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-monitor-container-'));
  const svc = join(tmp, 'service.sh');
  writeFileSync(svc, SERVICE, { mode: 0o755 });
  // should this process die, the sandbox's shim takes the container down with it
  const sb = createSandbox({ sample: svc, args: [], timeout: 120 });
  try {
    const info = await sb.create();
    await sb.start();
    // the container is found under sandtrace's runc root, at the cgroup the sandbox made for it
    assert.equal(await cgroupOfContainer(sb.id, [runcRoot()]), info.cgroupPath);

    const modelPath = join(tmp, 'service.model.json');
    const learn = await runCli(['monitor', '--container', sb.id, '--learn', '4s', '--out', modelPath]);
    assert.equal(learn.code, 0, learn.stderr);
    assert.match(learn.stderr, new RegExp(`attaching to ${info.cgroupPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(learn.stderr, /lost 0\n/, learn.stderr);
    const model = JSON.parse(readFileSync(modelPath, 'utf8')) as { programs: Record<string, { calibration: unknown }> };
    const programs = Object.keys(model.programs);
    const python = programs.find((p) => /\/python3[.\d]*$/.test(p));
    assert.ok(python, `the service's python3 was learned: ${programs.join(', ')}`);
    t.diagnostic(`learned ${python}: ${JSON.stringify(model.programs[python]?.calibration)}`);
    assert.ok(programs.some((p) => /\/(dash|sh)$/.test(p)), `the service's shell was learned: ${programs.join(', ')}`);
    assert.ok(!programs.some((p) => /\/cat$/.test(p)), `cat never ran in the service: ${programs.join(', ')}`);

    // watch; after a quiet spell of the unchanged service, two things happen inside the container
    let shellPid = 0;
    let pyPid = 0;
    let execError: unknown;
    let detachAt = Infinity;
    const watched = await runCli(['monitor', '--container', sb.id, '--model', modelPath], (child) => {
      let stderr = '';
      let started = false;
      let fallback: NodeJS.Timeout | undefined;
      // a quiet spell of the unchanged service once the probe is attached, then the execs
      const go = (quietMs: number) => {
        if (started) return;
        started = true;
        clearTimeout(fallback);
        void (async () => {
          try {
            await sleep(quietMs);
            shellPid = await runcExec(sb.id, tmp, 'shell', ['sh', '-c', 'cat /etc/shadow > /dev/null']);
            // a socket in the container's own network namespace (loopback only; port 9 is closed),
            // by a python started through a link made inside the container: the monitor resolves
            // /tmp/python3 in the container's root (the host has no /tmp/python3, or another one)
            pyPid = await runcExec(sb.id, tmp, 'python', ['sh', '-c', 'ln -sf /usr/bin/python3 /tmp/python3 && exec /tmp/python3 -c "import socket; s = socket.socket(); s.connect_ex((\'127.0.0.1\', 9)); s.close()"']);
            await sleep(1000);
          } catch (e) {
            execError = e;
          } finally {
            detachAt = Date.now();
            child.kill('SIGINT');
          }
        })();
      };
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('monitor: attached')) go(1000);
        // without the attached line, the probe is given a generous moment after the attaching one
        else if (stderr.includes('monitor: attaching')) fallback ??= setTimeout(() => go(0), 2500);
      });
      // never outlive the test, whatever the monitor prints
      const guard = setTimeout(() => child.kill('SIGINT'), 45_000);
      child.on('close', () => { clearTimeout(fallback); clearTimeout(guard); });
    });
    assert.equal(execError, undefined, String(execError));
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stderr, /detached after [1-9]\d* events, \d+ alert\(s\); lost 0\n/, watched.stderr);
    assert.ok(shellPid > 0 && pyPid > 0);
    const alerts = watched.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
    const summary = alerts.map((a) => `${a.source} ${a.rule} pid=${a.pid} exe=${a.exe} ppid=${a.ppid} ${a.output ?? ''}`).join('\n');
    t.diagnostic(`exec'd: shell ${shellPid}, python ${pyPid}; alerts:\n${summary}`);

    // everything alerted on is what runc exec started (the exec'd processes and their children):
    // the processes the unchanged service started while watched raise nothing. Service processes
    // seen only in part are a known gap, checked below: those already running at attach (never
    // seen forking: ppid 0) and those still running at detach (whole-life scores at the end).
    const execd = (a: Alert) => a.pid === shellPid || a.pid === pyPid || a.ppid === shellPid || a.ppid === pyPid;
    const partial = (a: Alert) => !execd(a) && (a.ppid === 0 || (a.rule === 'model.anomalous_process' && Date.parse(a.time) >= detachAt));
    assert.deepEqual(alerts.filter((a) => !execd(a) && !partial(a)).map((a) => `${a.rule} pid=${a.pid} exe=${a.exe}`), [], summary);

    // cat, run by the exec'd shell, reads the password hashes: a built-in rule, and a program the
    // service never ran
    const shadow = alerts.find((a) => a.source === 'rule' && a.rule === 'ST-CRD-001');
    assert.ok(shadow, `a rule alert for the read of /etc/shadow:\n${summary}`);
    assert.equal(shadow.ppid, shellPid, summary);
    assert.match(shadow.exe, /\/cat$/);
    assert.match(shadow.output ?? '', /\/etc\/shadow/);
    const unseen = alerts.find((a) => a.rule === 'model.unseen_program' && a.pid === shadow.pid);
    assert.ok(unseen, `cat is an unseen program:\n${summary}`);
    assert.equal(unseen.exe, shadow.exe);

    // the exec'd python, started through a link made inside the container (named in the
    // container's root: python, not /tmp/python3), is the learned program behaving unlike the service's:
    // a model alert, scored with python's own model on python's own calls, names its pid and
    // program (runc's own init is never scored: checked below); the socket one-liner rule fires too
    const anomaly = alerts.find((a) => a.source === 'model' && a.pid === pyPid && /^model\.anomalous_(window|process)$/.test(a.rule)
      && (a.output ?? '').includes(`proc.exe=${python} `));
    assert.ok(anomaly, `a model alert for the exec'd python (pid ${pyPid}):\n${summary}`);
    assert.equal(anomaly.exe, python, summary);
    assert.ok(alerts.some((a) => a.source === 'rule' && a.rule === 'ST-EXE-002' && a.pid === pyPid && a.exe === python), `socket one-liner rule for pid ${pyPid}:\n${summary}`);

    // A service process caught mid-run at attach is not scored as if its first calls seen were
    // its first calls, and gets no whole-life verdict.
    await t.test('service processes seen only in part (running at attach or at detach) raise no model alert', () => {
      assert.deepEqual(alerts.filter(partial).map((a) => `${a.rule} pid=${a.pid} ${a.output ?? ''}`), []);
    });

    // runc exec's own init (runc:[2:INIT], a Go program: futex, epoll, keyctl) runs in the
    // container's cgroup before it execs the command, under the command's pid: it is not the
    // workload, so it raises nothing (no ST-ESC-008 keyctl, no model windows, no unseen '/').
    await t.test('runc exec\'s own init is not taken for the exec\'d program', () => {
      assert.deepEqual(alerts.filter(runcInit).map((a) => `${a.rule} pid=${a.pid} ${a.output ?? ''}`), []);
    });
  } finally {
    await sb.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
  assert.equal(spawnSync('runc', ['--root', runcRoot(), 'state', sb.id]).status, 1, 'the container is gone');
});

/** The cgroup directories of a process in every hierarchy, from /proc/PID/cgroup. */
function cgroupDirs(pid: number): string[] {
  const hs = hierarchies();
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const ctl = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    const h = m[1] === '0' ? hs.find((x) => x.version === 2) : hs.find((x) => x.version === 1 && [...x.controllers].sort().join(',') === ctl);
    if (h) out.push(join(h.mount, m[3] ?? ''));
  }
  return out;
}

test('monitor --container: plain runc containers in the default root, every cgroupsPath form; unknown and stopped ones are one-line errors', { timeout: 60_000 }, async () => {
  const rootfs = requireSetup();
  const tmp = mkdtempSync(join(tmpdir(), 'sandtrace-monitor-container-'));
  const tag = `sandtrace-test-h8-${process.pid}-${Date.now().toString(36)}`;
  const ids: string[] = [];
  const parents = new Set<string>();
  try {
    // a bundle from `runc spec`: the image read-only, user and network namespaces of its own
    assert.equal(spawnSync('runc', ['spec'], { cwd: tmp }).status, 0, 'runc spec');
    const spec = JSON.parse(readFileSync(join(tmp, 'config.json'), 'utf8')) as {
      root: unknown; process: { args: string[]; terminal: boolean };
      linux: { cgroupsPath?: string; namespaces: Array<{ type: string }>; uidMappings?: unknown; gidMappings?: unknown };
    };
    spec.root = { path: rootfs, readonly: true };
    spec.process.terminal = false;
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3) ?? '/';
    const start = (name: string, args: string[], cgroupsPath?: string): string => {
      const id = `${tag}-${name}`;
      const bundle = join(tmp, name);
      mkdirSync(bundle);
      const cfg = { ...spec, process: { ...spec.process, args }, linux: { ...spec.linux } };
      if (cgroupsPath === undefined) delete cfg.linux.cgroupsPath;
      else cfg.linux.cgroupsPath = cgroupsPath;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(cfg));
      ids.push(id);
      // the detached container keeps runc's stdio: a file, not a pipe that would never close
      const log = join(tmp, `${name}.log`);
      const fd = openSync(log, 'w');
      let r;
      try {
        r = spawnSync('runc', ['run', '--detach', '--bundle', bundle, id], { stdio: ['ignore', fd, fd], timeout: 20_000 });
      } finally {
        closeSync(fd);
      }
      assert.equal(r.status, 0, `runc run ${id}: ${readFileSync(log, 'utf8')}`);
      return id;
    };
    const state = (id: string) => JSON.parse(spawnSync('runc', ['state', id], { encoding: 'utf8' }).stdout) as { pid: number; status: string };

    // runc's cgroupfs forms: none (/ID), absolute (from the hierarchy root), relative (under runc's own cgroup)
    const cases: Array<[string, string | undefined, (id: string) => string]> = [
      ['none', undefined, (id) => join(cgroup2Root(), id)],
      ['abs', `/${tag}/abs`, () => join(cgroup2Root(), tag, 'abs')],
      ['rel', `${tag}/rel`, () => join(cgroup2Root(), own, tag, 'rel')],
    ];
    for (const [name, path, expected] of cases) {
      const id = start(name, ['sleep', '60'], path);
      const st = state(id);
      assert.equal(st.status, 'running');
      for (const d of cgroupDirs(st.pid)) if (dirname(d).includes(tag)) parents.add(dirname(d));
      const cg = await cgroupOfContainer(id, [runcRoot()]);
      assert.equal(cg, expected(id), `cgroupsPath ${path ?? '(none)'}`);
      assert.ok(readFileSync(join(cg, 'cgroup.procs'), 'utf8').split('\n').includes(String(st.pid)), `${cg} holds the container's init`);
    }

    // a container whose process has ended is stopped: nothing to watch
    const stopped = start('stopped', ['true']);
    for (let i = 0; i < 100 && state(stopped).status !== 'stopped'; i++) await sleep(50);
    assert.equal(state(stopped).status, 'stopped');
    for (const [id, reason] of [[stopped, /is stopped/], ['nope', /no runc container 'nope' \(looked in the default runc root, \/run\//]] as const) {
      const r = await runCli(['monitor', '--container', id, '--model', join(tmp, 'no-model-needed.json')]);
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, reason);
      assert.match(r.stderr, /\[INPUT_MISSING\]$/m);
    }
  } finally {
    for (const id of ids) spawnSync('runc', ['delete', '--force', id], { stdio: 'ignore' });
    // runc removes each container's own cgroups; the parents made for the path forms are ours
    for (const p of [...parents].sort((a, b) => b.length - a.length)) {
      for (let i = 0; i < 20 && existsSync(p); i++) {
        try { rmdirSync(p); } catch { await sleep(25); }
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const p of parents) assert.ok(!existsSync(p), `cgroup ${p} removed`);
  for (const id of ids) assert.notEqual(spawnSync('runc', ['state', id]).status, 0, `${id} deleted`);
});
