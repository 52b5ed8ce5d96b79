// sandtrace command-line entry: picks a command module and turns typed errors into one-line
// messages with stable exit codes. Commands are thin: parse flags, call the library, print.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSandtraceError } from '../errors.js';
import { HelpRequested, wantsHelp } from './args.js';
import { termSafe } from './terminal.js';

export interface CommandModule {
  /** One line for `sandtrace help`. */
  summary: string;
  /** What `sandtrace <command> --help` prints after 'usage: ' (lines after the first indented to match). */
  usage?: string;
  run(argv: string[]): Promise<number>;
}

// Lazily imported so that one command's dependencies never slow down or break another.
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  analyze: () => import('./commands/analyze.js'),
  report: () => import('./commands/report.js'),
  rules: () => import('./commands/rules.js'),
  replay: () => import('./commands/replay.js'),
  trace: () => import('./commands/trace.js'),
  model: () => import('./commands/model.js'),
  monitor: () => import('./commands/monitor.js'),
  eval: () => import('./commands/eval.js'),
  vm: () => import('./commands/vm.js'),
  bench: () => import('./commands/bench.js'),
};

export const EXIT = { ok: 0, failure: 1, usage: 2, environment: 3, input: 4 } as const;

export function exitCodeFor(code: string): number {
  if (code === 'USAGE') return EXIT.usage;
  if (code.startsWith('INPUT_') || code === 'OUTPUT_UNWRITABLE' || code === 'RULES_INVALID' || code === 'MODEL_INVALID') return EXIT.input;
  if (['NOT_ROOT', 'DEPENDENCY_MISSING', 'SETUP_INCOMPLETE', 'SANDBOX_IMAGE_MISSING', 'PROBE_BUILD_MISSING',
    'PROBE_LOAD_FAILED', 'VM_UNSUPPORTED', 'VM_KERNEL_MISSING'].includes(code)) return EXIT.environment;
  return EXIT.failure;
}

/** The version in the package.json above this file (src/cli/ when run from source, dist/src/cli/ when built). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'sandtrace' && typeof pkg.version === 'string') return pkg.version;
      } catch { /* not ours: keep looking */ }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

async function help(): Promise<number> {
  const lines = ['usage: sandtrace <command> [options]', '       sandtrace <command> --help', '       sandtrace --version', '', 'commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    try {
      lines.push(`  ${name.padEnd(9)} ${(await load()).summary}`);
    } catch {
      // a command whose module is absent is simply not listed
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  return EXIT.ok;
}

function commandHelp(cmd: CommandModule, usage: string): number {
  process.stdout.write(`usage: ${usage}\n\n${cmd.summary}\n`);
  return EXIT.ok;
}

export async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`sandtrace ${version()}\n`);
    return EXIT.ok;
  }
  // `sandtrace help CMD` is `sandtrace CMD --help`
  if (name === 'help' && rest[0] !== undefined) {
    if (!COMMANDS[rest[0]]) {
      process.stderr.write(`sandtrace: unknown command '${termSafe(rest[0])}' (see 'sandtrace help')\n`);
      return EXIT.usage;
    }
    [name, rest] = [rest[0], ['--help']];
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return help();
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`sandtrace: unknown command '${termSafe(name)}' (see 'sandtrace help')\n`);
    return EXIT.usage;
  }
  let cmd: CommandModule | undefined;
  try {
    cmd = await load();
    if (cmd.usage !== undefined && wantsHelp(rest)) return commandHelp(cmd, cmd.usage);
    return await cmd.run(rest);
  } catch (e) {
    // a command without an exported usage: its flag parser found --help
    if (e instanceof HelpRequested && cmd) return commandHelp(cmd, e.usage);
    // messages name files and quote what the sample wrote: shown, never acted on by the terminal
    if (isSandtraceError(e)) {
      process.stderr.write(`sandtrace ${name}: ${termSafe(e.message)} [${e.code}]\n`);
      return exitCodeFor(e.code);
    }
    // a file system refusal the library did not foresee: still one line naming the path
    const fsErr = e as { code?: unknown; path?: unknown; syscall?: unknown };
    if (typeof fsErr.code === 'string' && /^E[A-Z]+$/.test(fsErr.code) && typeof fsErr.path === 'string') {
      const why = (e as Error).message.replace(/^E[A-Z]+: /, '').replace(/, \w+ '.*$/, '');
      process.stderr.write(`sandtrace ${name}: ${String(fsErr.syscall ?? 'access')} ${termSafe(fsErr.path)}: ${termSafe(why)} [${fsErr.code}]\n`);
      return EXIT.input;
    }
    // one the system refused without naming a path (a write to a full disk: ENOSPC)
    if (typeof fsErr.code === 'string' && /^E[A-Z]+$/.test(fsErr.code) && typeof fsErr.syscall === 'string') {
      process.stderr.write(`sandtrace ${name}: ${fsErr.syscall} failed: ${termSafe((e as Error).message.replace(/^E[A-Z]+: /, '').replace(/, \w+$/, ''))} [${fsErr.code}]\n`);
      return EXIT.failure;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`sandtrace ${name}: internal error: ${termSafe(msg.split('\n')[0])}\n`);
    if (process.env['SANDTRACE_DEBUG'] && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return EXIT.failure;
  }
}
