// Checks a submitted sample before anything runs it, and describes it: size, hashes, type.
// Also the one check every input file passes before it is opened (checkInputFile).
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { SandtraceError } from './errors.js';
import type { SampleInfo } from './report/build.js';

export const MAX_SAMPLE_BYTES = 256 * 1024 * 1024;

/** What a path is when it is neither a regular file nor a directory: 'a FIFO', 'a socket', ...; undefined otherwise. */
export function specialFileKind(st: Stats): string | undefined {
  if (st.isFile() || st.isDirectory()) return undefined;
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(path: string, what: string, kind: string): SandtraceError {
  const is = kind.startsWith('a ') ? `is ${kind}, not a regular file` : `is ${kind}`;
  return new SandtraceError('INPUT_UNREADABLE', `${what}${what ? ' ' : ''}${path} ${is}`, { details: { path } });
}

/** The paths of a descriptor this process was handed: /dev/stdin, /dev/fd/N, /proc/self/fd/N. */
const INHERITED_FD = /^\/(?:dev\/(?:stdin|fd\/\d+)|proc\/(?:self|thread-self|(\d+))\/fd\/\d+)$/;

/**
 * Whether `path` (whose stat is `st`) is a pipe this process was handed as an open descriptor, by
 * its path: /dev/stdin, /dev/fd/N or /proc/self/fd/N (a symlink there, lstat says) resolving to a
 * pipe, as `cmd | sandtrace ... /dev/stdin` and `<(cmd)` give. Its writer was set up by whoever
 * started sandtrace, so reading it cannot block for ever the way a named FIFO without a writer can.
 */
export async function isInheritedPipe(path: string, st: Stats): Promise<boolean> {
  if (!st.isFIFO()) return false;
  const m = INHERITED_FD.exec(path);
  if (!m || (m[1] !== undefined && Number(m[1]) !== process.pid)) return false;
  const l = await lstat(path).catch(() => undefined);
  return l?.isSymbolicLink() === true;
}

/**
 * The check every input passes before it is read: stat'ed, never opened, so that a FIFO without a
 * writer cannot block the command and a device (/dev/zero) is not read as a file. Inputs are regular
 * files, or directories where `directory` allows one, or a pipe handed over as /dev/stdin,
 * /dev/fd/N or /proc/self/fd/N (see isInheritedPipe; read once, like a file). Missing:
 * INPUT_MISSING; a directory where a file is wanted: INPUT_IS_DIRECTORY; a named FIFO, socket or
 * device: INPUT_UNREADABLE naming what it is. `what` names the input in the message ('model
 * file', 'sample', ...). Returns the stats.
 */
export async function checkInputFile(path: string, what = '', opts: { directory?: boolean } = {}): Promise<Stats> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new SandtraceError('INPUT_MISSING', `${what}${what ? ' ' : ''}${path} does not exist`, { cause: e, details: { path } });
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read ${what}${what ? ' ' : ''}${path}: ${code ?? String(e)}`, { cause: e, details: { path } });
  }
  if (st.isDirectory() && !opts.directory) throw new SandtraceError('INPUT_IS_DIRECTORY', `${what}${what ? ' ' : ''}${path} is a directory, not a file`, { details: { path } });
  const kind = specialFileKind(st);
  if (kind && !(await isInheritedPipe(path, st))) throw notRegular(path, what, kind);
  return st;
}

/**
 * Refuses a named FIFO, socket or device (see checkInputFile) and lets everything else through,
 * a pipe handed over as /dev/stdin or /dev/fd/N included, for readers that report a missing or
 * unreadable file in their own way (rule files: a diagnostic).
 */
export async function refuseSpecialFile(path: string, what = ''): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  const kind = st && specialFileKind(st);
  if (kind && !(await isInheritedPipe(path, st))) throw notRegular(path, what, kind);
}

/** A sample described, and how it will be started when not by the kernel alone (`launch`). */
export interface InspectedSample { info: SampleInfo; launch?: Launch }

/**
 * Checks and describes a sample: hashes, type, and how to start it (sampleLaunch). `interpreter`,
 * the user's choice (`analyze --interpreter`), overrides that choice and its refusals: a custom
 * image may hold a runtime for what sandtrace would refuse.
 */
export async function inspectSample(path: string, args: string[] = [], interpreter?: string): Promise<InspectedSample> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new SandtraceError('INPUT_MISSING', `sample not found: ${path}`);
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read sample ${path}: ${code ?? String(e)}`);
  }
  if (st.isDirectory()) throw new SandtraceError('INPUT_IS_DIRECTORY', `sample is a directory, not a file: ${path}`);
  const kind = specialFileKind(st);
  if (kind && (await isInheritedPipe(path, st))) {
    // read once, a pipe could be hashed but never then copied into the sandbox
    throw new SandtraceError('INPUT_UNREADABLE', `sample ${path} is a pipe: analyze needs the sample as a regular file (it is hashed, then copied into the sandbox); save it to a file first`, { details: { path } });
  }
  if (kind) throw notRegular(path, 'sample', kind);
  if (st.size === 0) throw new SandtraceError('INPUT_EMPTY', `sample is empty: ${path}`);
  if (st.size > MAX_SAMPLE_BYTES) {
    throw new SandtraceError('INPUT_TOO_LARGE', `sample is ${st.size} bytes; the limit is ${MAX_SAMPLE_BYTES}`, { details: { size: st.size } });
  }
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read sample ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  const md5 = createHash('md5');
  let head: Buffer | undefined;
  try {
    for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      if (!head) head = chunk.subarray(0, 512);
      sha256.update(chunk);
      sha1.update(chunk);
      md5.update(chunk);
    }
  } catch (e) {
    throw new SandtraceError('INPUT_UNREADABLE', `cannot read sample ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  } finally {
    await fh.close().catch(() => undefined);
  }
  const name = basename(path);
  const first = head ?? Buffer.alloc(0);
  const launch = interpreter !== undefined ? { interpreter: [interpreter], why: 'as --interpreter asked' } : sampleLaunch(name, first);
  const info: SampleInfo = {
    name, size: st.size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex'), md5: md5.digest('hex'),
    type: fileType(first), args, ...(launch ? { interpreter: launch.interpreter } : {}),
  };
  return launch ? { info, launch } : { info };
}

export interface Launch {
  /** The program (and its one argument, from a `#!` line) the sample is handed to: `interpreter... SAMPLE args...`. */
  interpreter: string[];
  /** Why, for the report's SAMPLE_INTERPRETED warning. */
  why: string;
}

/** ELF machines (e_machine) by name, for the refusal of a program for another CPU. */
const ELF_MACHINES: Readonly<Record<number, string>> = {
  2: 'SPARC', 4: 'Motorola 68000', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC 64-bit', 22: 'IBM S/390', 40: 'ARM',
  42: 'SuperH', 43: 'SPARC V9', 50: 'IA-64', 93: 'ARC', 183: 'ARM aarch64', 195: 'ARC', 243: 'RISC-V', 258: 'LoongArch',
};

/** File types that are not programs, by their first bytes: what an analyst may submit by mistake. */
const NOT_PROGRAMS: ReadonlyArray<[magic: string, at: number, what: string]> = [
  ['PK\x03\x04', 0, 'a Zip archive (or a JAR or Office document): extract the program from it and analyze that'],
  ['\x1f\x8b', 0, 'gzip compressed data: decompress it and analyze the program inside'],
  ['ustar', 257, 'a tar archive: extract the program from it and analyze that'],
  ['7z\xbc\xaf\x27\x1c', 0, 'a 7-Zip archive: extract the program from it and analyze that'],
  ['\xfd7zXZ\x00', 0, 'xz compressed data: decompress it and analyze the program inside'],
  ['BZh', 0, 'bzip2 compressed data: decompress it and analyze the program inside'],
  ['Rar!\x1a\x07', 0, 'a RAR archive: extract the program from it and analyze that'],
  ['%PDF-', 0, 'a PDF document: sandtrace runs Linux programs and scripts, not documents'],
  ['\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1', 0, 'a Microsoft Office (OLE) document: sandtrace runs Linux programs and scripts, not documents'],
  ['\xcf\xfa\xed\xfe', 0, 'a macOS (Mach-O) program: sandtrace runs Linux programs'],
  ['\xce\xfa\xed\xfe', 0, 'a macOS (Mach-O) program: sandtrace runs Linux programs'],
  ['\xca\xfe\xba\xbe', 0, 'a macOS universal (Mach-O) program or a Java class: sandtrace runs Linux programs'],
];

/** Interpreters for a script without a `#!` line, by the file's extension; anything else goes to /bin/sh. */
const BY_EXTENSION: Readonly<Record<string, string>> = { '.py': '/usr/bin/python3', '.pl': '/usr/bin/perl' };

const isText = (head: Buffer): boolean => head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128);

/**
 * How the sandbox starts the sample, from its first bytes and its name: undefined when the kernel
 * runs the file itself (an ELF for x86-64 or i386, a script with a working `#!` line, or data the
 * kernel is left to refuse: SAMPLE_NOT_STARTED); otherwise the program to hand it to, as a victim's
 * shell would: a text file without `#!` (a shell's execvp runs it with /bin/sh on ENOEXEC; `.py`
 * with python3, `.pl` with perl), or a `#!` line ending in a carriage return (a script saved with
 * CRLF line ends: the kernel looks for an interpreter named `sh\r`, so it never runs as `./x`, but
 * `sh x` runs it, which is how such droppers are started). A file no Linux x86 system runs (a
 * Windows program, an ELF for another CPU, an archive, a document) is refused with the reason:
 * INPUT_UNSUPPORTED, before any sandbox starts.
 */
export function sampleLaunch(name: string, head: Buffer): Launch | undefined {
  const refuse = (what: string) => new SandtraceError('INPUT_UNSUPPORTED', `sample ${name} is ${what}`, { details: { name } });
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) {
    if (head.length < 20) throw refuse('a truncated ELF file (its header is cut short)');
    const le = head[5] !== 2;
    const etype = le ? head.readUInt16LE(16) : head.readUInt16BE(16);
    const mach = le ? head.readUInt16LE(18) : head.readUInt16BE(18);
    if (mach !== 62 && mach !== 3) {
      throw refuse(`an ELF program for ${ELF_MACHINES[mach] ?? `machine ${mach}`} (${head[4] === 2 ? '64' : '32'}-bit ${le ? 'little' : 'big'}-endian): sandtrace runs programs for x86-64 and i386, the host's CPU`);
    }
    if (etype !== 2 && etype !== 3) throw refuse(`an ELF ${etype === 1 ? 'relocatable object (.o)' : etype === 4 ? 'core dump' : `file of type ${etype}`}, not a program`);
    return undefined;
  }
  if (head[0] === 0x4d && head[1] === 0x5a && !isText(head)) throw refuse('a Windows (PE/MS-DOS) program: sandtrace runs Linux programs and scripts');
  for (const [magic, at, what] of NOT_PROGRAMS) {
    if (head.length >= at + magic.length && head.subarray(at, at + magic.length).toString('latin1') === magic) throw refuse(what);
  }
  if (head[0] === 0x23 && head[1] === 0x21) {
    const nl = head.indexOf(0x0a);
    if (nl < 0 || head[nl - 1] !== 0x0d) return undefined;
    const words = head.subarray(2, nl - 1).toString('latin1').trim().split(/[ \t]+/).filter((w) => w !== '');
    // the kernel passes everything after the interpreter as one argument, and so does this
    const [interp, ...rest] = words;
    if (!interp) return undefined;
    return { interpreter: [interp, ...(rest.length ? [rest.join(' ')] : [])], why: 'its #! line ends in a carriage return (CRLF line ends), so the kernel cannot start it' };
  }
  if (head.length === 0 || !isText(head)) return undefined;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot).toLowerCase() : '';
  const by = BY_EXTENSION[ext];
  return { interpreter: [by ?? '/bin/sh'], why: `it is text without a #! line${by ? ` named ${ext}` : ''}, which the kernel cannot start${by ? '' : ' and a shell runs with /bin/sh'}` };
}

/** A short description of the content from its first bytes (like file(1), for the common cases). */
export function fileType(head: Buffer): string {
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    const bits = head[4] === 2 ? '64-bit' : '32-bit';
    const endian = head[5] === 1 ? 'LSB' : 'MSB';
    const etype = head[5] === 1 ? head.readUInt16LE(16) : head.readUInt16BE(16);
    const kind = etype === 2 ? 'executable' : etype === 3 ? 'shared object or PIE executable' : etype === 1 ? 'relocatable' : 'file';
    const mach = head[5] === 1 ? head.readUInt16LE(18) : head.readUInt16BE(18);
    const arch = mach === 62 ? 'x86-64' : mach === 3 ? 'Intel 80386' : mach === 183 ? 'ARM aarch64' : mach === 40 ? 'ARM' : `machine ${mach}`;
    return `ELF ${bits} ${endian} ${kind}, ${arch}`;
  }
  if (head[0] === 0x23 && head[1] === 0x21) {
    const line = head.subarray(2, head.indexOf(0x0a) > 0 ? head.indexOf(0x0a) : 128).toString('latin1').trim();
    const interp = line.split(/\s+/);
    const prog = interp[0]?.endsWith('/env') ? interp[1] : interp[0];
    return `script, interpreter ${prog ?? 'unknown'}`;
  }
  if (head[0] === 0x4d && head[1] === 0x5a) return 'PE/MS-DOS executable';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip compressed data';
  if (head.subarray(0, 4).toString('latin1') === 'PK\x03\x04') return 'Zip archive';
  if (head.length > 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'POSIX tar archive';
  return isText(head) ? 'text' : 'data';
}
