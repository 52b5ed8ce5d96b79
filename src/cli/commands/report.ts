// `sandtrace report DIR`: re-renders report.html and the ATT&CK layer from DIR/report.json.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { noExtraArgs, parseFlags } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { refuseSpecialFile } from '../../sample.js';
import { REPORT_SCHEMA, REPORT_VERSION, type Report } from '../../report/schema.js';
import { renderOutputs } from '../../report/render.js';

export const summary = 'render report.html and the ATT&CK Navigator layer again from a saved report.json (report DIR)';

export const usage = 'sandtrace report DIR';

export async function loadReport(dir: string): Promise<Report> {
  const st = await stat(dir).catch(() => null);
  if (!st) throw new SandtraceError('INPUT_MISSING', `${dir}: no such directory`);
  const file = st.isDirectory() ? join(dir, 'report.json') : dir;
  await refuseSpecialFile(file, 'report'); // a FIFO would block the read
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new SandtraceError('INPUT_MISSING', `${file}: cannot read report.json`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new SandtraceError('INPUT_CORRUPT', `${file}: not JSON (${(e as Error).message})`);
  }
  const r = data as Partial<Report> | null;
  if (!r || typeof r !== 'object' || r.schema !== REPORT_SCHEMA) {
    throw new SandtraceError('INPUT_FORMAT_UNKNOWN', `${file}: not a sandtrace report (schema '${String(r?.schema)}')`);
  }
  const obj = r as Record<string, unknown>;
  const missing: string[] = ['analysis', 'sample', 'capture', 'syscalls', 'verdict'].filter((k) => !obj[k] || typeof obj[k] !== 'object');
  for (const k of ['processes', 'files', 'dropped', 'deleted', 'network', 'findings']) if (!Array.isArray(obj[k])) missing.push(k);
  if (missing.length) throw new SandtraceError('INPUT_CORRUPT', `${file}: report.json lacks ${missing.join(', ')}`);
  for (const k of ['processes', 'files', 'dropped', 'network', 'findings']) {
    const bad = (obj[k] as unknown[]).findIndex((x) => !x || typeof x !== 'object');
    if (bad >= 0) throw new SandtraceError('INPUT_CORRUPT', `${file}: ${k}[${bad}] is not an object`);
  }
  const major = String(r.version ?? '').split('.')[0];
  if (major !== REPORT_VERSION.split('.')[0]) {
    throw new SandtraceError('INPUT_FORMAT_UNKNOWN', `${file}: report version ${String(r.version)} is not readable by this version (${REPORT_VERSION})`);
  }
  return r as Report;
}

export async function run(argv: string[]): Promise<number> {
  const { positionals } = parseFlags(argv, {}, usage);
  const [dir] = positionals;
  if (!dir) throw new SandtraceError('USAGE', `usage: ${usage}`);
  noExtraArgs(positionals, 1, usage);
  const report = await loadReport(dir);
  const outDir = (await stat(dir)).isDirectory() ? dir : dirname(dir);
  let written: string[];
  try {
    written = await renderOutputs(report, outDir);
  } catch (e) {
    // a field of the wrong type somewhere in a hand-edited or damaged report
    if (e instanceof TypeError) throw new SandtraceError('INPUT_CORRUPT', `${dir}: report.json has a value of the wrong type (${e.message})`, { cause: e });
    throw e;
  }
  for (const p of written) process.stdout.write(`${p}\n`);
  return 0;
}
