// Flag parsing shared by the commands: node's parseArgs, with usage errors as typed errors.
import { isAbsolute, relative } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SandtraceError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new SandtraceError('USAGE', `${msg.split('\n')[0]}; usage: ${usage}`);
  }
}

/** Split `a b -- c d` into the part before `--` and the part after it. */
export function splitDoubleDash(argv: string[]): [string[], string[]] {
  const i = argv.indexOf('--');
  return i < 0 ? [argv, []] : [argv.slice(0, i), argv.slice(i + 1)];
}

export function numberFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new SandtraceError('USAGE', `--${name} needs a positive number, got '${value}'`);
  return n;
}

/** A path for humans: relative to the working directory when inside it, absolute otherwise. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}
