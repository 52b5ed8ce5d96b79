// sandtrace command-line entry: picks a command module and turns typed errors into one-line
// messages with stable exit codes. Commands are thin: parse flags, call the library, print.
import { isSandtraceError } from '../errors.js';

export interface CommandModule {
  /** One line for `sandtrace help`. */
  summary: string;
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

async function help(): Promise<number> {
  const lines = ['usage: sandtrace <command> [options]', '', 'commands:'];
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

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return help();
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`sandtrace: unknown command '${name}' (see 'sandtrace help')\n`);
    return EXIT.usage;
  }
  try {
    const cmd = await load();
    return await cmd.run(rest);
  } catch (e) {
    if (isSandtraceError(e)) {
      process.stderr.write(`sandtrace ${name}: ${e.message} [${e.code}]\n`);
      return exitCodeFor(e.code);
    }
    // a file system refusal the library did not foresee: still one line naming the path
    const fsErr = e as { code?: unknown; path?: unknown; syscall?: unknown };
    if (typeof fsErr.code === 'string' && /^E[A-Z]+$/.test(fsErr.code) && typeof fsErr.path === 'string') {
      const why = (e as Error).message.replace(/^E[A-Z]+: /, '').replace(/, \w+ '.*$/, '');
      process.stderr.write(`sandtrace ${name}: ${String(fsErr.syscall ?? 'access')} ${fsErr.path}: ${why} [${fsErr.code}]\n`);
      return EXIT.input;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`sandtrace ${name}: internal error: ${msg.split('\n')[0]}\n`);
    if (process.env['SANDTRACE_DEBUG'] && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return EXIT.failure;
  }
}
