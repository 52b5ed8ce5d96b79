// Flag parsing shared by the commands: node's parseArgs, with usage errors as typed errors.
import { isAbsolute, relative } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SandtraceError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** `--help` or `-h` among a command's flags: main prints the command's usage and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

/** True when the flags (the part before any `--`) ask for help. */
export function wantsHelp(argv: string[]): boolean {
  return splitDoubleDash(argv)[0].some((a) => a === '--help' || a === '-h');
}

const NUMBER_LIKE = /^-(\d|\.\d)/;

/**
 * node's parseArgs refuses a string option whose value starts with '-' as "ambiguous", which is
 * no help for `--timeout -5`: said here in the user's terms before parseArgs sees it.
 */
function checkDashValues(argv: string[], options: Options, usage: string): void {
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  for (let i = 0; i < argv.length - 1; i++) {
    const a = argv[i] as string;
    const name = a.startsWith('--') ? a.slice(2) : /^-[^-]$/.test(a) ? byShort.get(a.slice(1)) : undefined;
    if (name === undefined || options[name]?.type !== 'string') continue;
    const v = argv[i + 1] as string;
    if (!v.startsWith('-') || v === '-') { i++; continue; }
    // the same words as numberFlag's for --timeout=-5; a path or name that reads like a negative
    // number is written --out=-5
    if (NUMBER_LIKE.test(v)) throw new SandtraceError('USAGE', `${a} needs a positive number, got '${v}' (a value that starts with '-' is written ${a}=${v})`);
    throw new SandtraceError('USAGE', `${a} needs a value, got the option '${v}' (a value that starts with '-' is written ${a}=${v}); usage: ${usage}`);
  }
}

export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  if (wantsHelp(argv)) throw new HelpRequested(usage);
  checkDashValues(argv, options, usage);
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new SandtraceError('USAGE', `${msg.split('\n')[0]}; usage: ${usage}`);
  }
}

/** At most `max` positional arguments: the first extra one is named, never silently ignored. */
export function noExtraArgs(positionals: readonly string[], max: number, usage: string): void {
  if (positionals.length > max) {
    throw new SandtraceError('USAGE', `unexpected argument '${positionals[max]}'; usage: ${usage}`);
  }
}

/** Split `a b -- c d` into the part before `--` and the part after it. */
export function splitDoubleDash(argv: string[]): [string[], string[]] {
  const i = argv.indexOf('--');
  return i < 0 ? [argv, []] : [argv.slice(0, i), argv.slice(i + 1)];
}

export function numberFlag(value: string | undefined, name: string, fallback: number, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new SandtraceError('USAGE', `--${name} needs a positive number, got '${value}'`);
  if (n > max) throw new SandtraceError('USAGE', `--${name} must be at most ${max}, got '${value}'`);
  return n;
}

/** A count or a size: a positive whole number written in decimal digits (not 2.5, 1e3 or 0x10). */
export function integerFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\+?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new SandtraceError('USAGE', `--${name} needs a positive whole number, got '${value}'`);
  }
  return n;
}

/** A path for humans: relative to the working directory when inside it, absolute otherwise. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}
