// `sandtrace trace [--record FILE] [--json] -- CMD ARGS...`: trace a local command with strace (no
// sandbox) and print its events, or record them for building normal-behaviour models.
import { accessSync, constants as fs, statSync } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, join } from 'node:path';
import { noExtraArgs, parseFlags, splitDoubleDash } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { checkOutFile } from '../../outpath.js';
import { StraceCollector } from '../../capture/ptrace/collector.js';
import type { TraceEvent } from '../../capture/events.js';
import { termSafe, termSafeJson } from '../terminal.js';

export const summary = 'trace a local command with strace (no sandbox) and print or record its events';

const USAGE = 'sandtrace trace [--record FILE [--force]] [--json] [--quiet] -- CMD ARGS...';
export const usage = USAGE;

type Writer = { write(events: TraceEvent[]): void; close(): Promise<void> };
type RecordingModule = { RecordingWriter: { create(path: string, meta: Record<string, unknown>): Promise<Writer> } };

/** One readable line per event; comm, paths and socket names are the traced program's: escaped for the terminal. */
export function formatEvent(e: TraceEvent): string {
  return termSafe(eventLine(e));
}

function eventLine(e: TraceEvent): string {
  const who = `${e.pid}${e.tid !== e.pid ? `/${e.tid}` : ''}${e.comm ? ` ${e.comm}` : ''}`;
  switch (e.type) {
    case 'exec': return `[${who}] exec ${e.exe} ${JSON.stringify(e.argv)}`;
    case 'fork': return `[${who}] ${e.thread ? 'thread' : 'fork'} -> ${e.childPid}${e.thread ? `/${e.childTid}` : ''}`;
    case 'exit': return `[${who}] exit ${e.signal !== undefined ? `killed by signal ${e.signal}` : e.code}${e.thread ? ' (thread)' : ''}`;
    case 'syscall': {
      const extra: string[] = [];
      if (e.path !== undefined) extra.push(JSON.stringify(e.path));
      if (e.path2 !== undefined) extra.push(JSON.stringify(e.path2));
      if (e.addr) extra.push(e.addr.family === 'unix' ? `unix:${e.addr.abstract ? '@' : ''}${e.addr.path}` : 'address' in e.addr ? `${e.addr.family}:${e.addr.address}:${e.addr.port}` : e.addr.family);
      return `[${who}] ${e.name}(${extra.join(', ')}) = ${e.ret === null ? '?' : e.ret}`;
    }
  }
}

/**
 * The program a command runs, found as the shell finds it (a name without '/' in PATH), so that
 * one that cannot run is refused in one line (exit 4) before strace starts, rather than reported
 * as a command that 'exited with status 1' or whose end strace 'did not report'.
 */
export function commandProgram(name: string): string {
  const runnable = (p: string): 'ok' | 'missing' | 'directory' | 'not executable' => {
    try {
      if (statSync(p).isDirectory()) return 'directory';
      accessSync(p, fs.X_OK);
      return 'ok';
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'not executable';
    }
  };
  if (name.includes('/')) {
    const r = runnable(name);
    if (r === 'missing') throw new SandtraceError('INPUT_MISSING', `${name} does not exist`, { details: { path: name } });
    if (r === 'directory') throw new SandtraceError('INPUT_IS_DIRECTORY', `${name} is a directory, not a program`, { details: { path: name } });
    if (r === 'not executable') throw new SandtraceError('INPUT_UNREADABLE', `${name} is not executable`, { details: { path: name } });
    return name;
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    if (runnable(p) === 'ok') return p;
  }
  throw new SandtraceError('INPUT_MISSING', `${name}: command not found in PATH`, { details: { command: name } });
}

export async function run(argv: string[]): Promise<number> {
  const [flags, command] = splitDoubleDash(argv);
  const { values, positionals } = parseFlags(flags, {
    record: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' }, force: { type: 'boolean' },
  }, USAGE);
  // the command is what follows `--` (or, without it, the positionals): nothing else is taken
  if (command.length > 0) noExtraArgs(positionals, 0, USAGE);
  const cmd = command.length > 0 ? command : positionals;
  if (cmd.length === 0) throw new SandtraceError('USAGE', `no command to trace; usage: ${USAGE}`);
  if (values.record === '') throw new SandtraceError('USAGE', `--record needs a file name; usage: ${USAGE}`);
  commandProgram(cmd[0] as string);

  let writer: Writer | undefined;
  // an earlier recording is never replaced without --force
  if (values.record) checkOutFile(values.record, { overwrite: values.force === true });
  if (values.record) {
    const path = '../../capture/replay/index.js';
    let mod: RecordingModule;
    try {
      mod = (await import(path)) as RecordingModule;
    } catch {
      throw new SandtraceError('DEPENDENCY_MISSING', 'recording is not available in this build (src/capture/replay)');
    }
    writer = await mod.RecordingWriter.create(values.record, { backend: 'ptrace', command: cmd });
  }

  // The command's own output goes to stderr so that stdout carries only events.
  const collector = new StraceCollector({ command: cmd, output: 'stderr' });
  await collector.start();
  const out: string[] = [];
  const print = values.quiet !== true && (writer === undefined || values.json === true);
  for await (const batch of collector.events()) {
    writer?.write(batch);
    if (!print) continue;
    for (const e of batch) out.push(values.json ? termSafeJson(JSON.stringify(e)) : formatEvent(e));
    if (out.length > 0) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
  }
  await collector.stop();
  await writer?.close();
  const st = collector.stats();
  // how the command ended is its outcome: an exit status passed through, or the signal that killed it
  const ex = collector.commandExit();
  const outcome = ex === undefined ? 'strace did not report how the command ended' : 'signal' in ex ? `the command was killed by ${ex.signal}` : `the command exited with status ${ex.code}`;
  process.stderr.write(`sandtrace trace: ${st.events} events, ${st.parseErrors} parse errors, ${st.duration.toFixed(2)} s${values.record ? `, recorded to ${values.record}` : ''}; ${outcome}\n`);
  for (const n of st.notes) process.stderr.write(`sandtrace trace: note: ${n}\n`);
  // the command's status passes through, a killing signal as a shell reports it (128 + its
  // number: 137 for SIGKILL); only a tracer that failed (no status at all) is exit 1
  if (ex === undefined) return 1;
  if (!('signal' in ex)) return ex.code;
  return 128 + (constants.signals[ex.signal as keyof typeof constants.signals] ?? 0);
}
