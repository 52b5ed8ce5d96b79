// `sandtrace model train|score|info`: build normal-behaviour models from recorded or imported
// traces, score traces against them, show what a model file holds.
import { integerFlag, noExtraArgs, parseFlags, numberFlag } from '../args.js';
import { SandtraceError } from '../../errors.js';
import { checkOutFile, refuseInputAsOutput } from '../../outpath.js';
import type { Abi } from '../../capture/events.js';
import { expandPaths, readTraces, TRACE_FORMATS, type FileTraces, type ImportOptions, type TraceFormat } from '../../capture/replay/index.js';
import { AnomalyModel, checkModelAbi, loadModel, saveModel, trainModelFile, MODEL_KINDS, type ModelKind } from '../../engine/models/index.js';
import { termSafe, termSafeJson } from '../terminal.js';

export const summary = 'normal-behaviour models: train on normal traces, score traces, show a model';

const TRAIN_USAGE = 'sandtrace model train TRACES... (--out|-o) MODEL [--force] [--abi i386] [--kind stide|vmm|mix] [--n N] [--far RATE] [--format FMT] [--json]';
const SCORE_USAGE = 'sandtrace model score MODEL TRACES... [--json] [--abi i386] [--format FMT]';
const INFO_USAGE = 'sandtrace model info MODEL';
// errors name one subcommand's usage (one line); --help shows all three
const USAGE = [TRAIN_USAGE, SCORE_USAGE, INFO_USAGE].join('\n       ');
export const usage = USAGE;

function abiOf(v: string | undefined): Abi {
  if (v === undefined || v === 'x86_64') return 'x86_64';
  if (v === 'i386') return 'i386';
  throw new SandtraceError('USAGE', `--abi must be x86_64 or i386, got '${v}'`);
}

function formatOf(v: string | undefined): TraceFormat | undefined {
  if (v === undefined) return undefined;
  if (!(TRACE_FORMATS as readonly string[]).includes(v)) throw new SandtraceError('USAGE', `--format must be one of ${TRACE_FORMATS.join(', ')}`);
  return v as TraceFormat;
}

/** The files TRACES name (directories read recursively), checked before anything is read. */
async function inputFiles(paths: string[], usage: string): Promise<string[]> {
  if (paths.length === 0) throw new SandtraceError('USAGE', `no trace files given; usage: ${usage}`);
  const files = await expandPaths(paths);
  if (files.length === 0) throw new SandtraceError('INPUT_EMPTY', `no trace files under ${paths.join(' ')}`);
  return files;
}

/** What a file's traces lack, for a one-line warning: cut short, corrupt, a trailer that disagrees, bad lines. */
function shortfall(f: FileTraces): string | undefined {
  const bad = f.issues.reduce((a, i) => a + (i.lines ?? 1), 0);
  const parts = [f.shortfall ?? '', bad > 0 ? `${bad} bad line(s) skipped` : ''].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

export interface InputWarning { path: string; message: string }

/**
 * Read every file; bad lines go to stderr with their file and line number, and every file that
 * was cut short or had bad lines gets one warning line (returned too, for --json), since what was
 * learned or scored is then less than the file was meant to hold.
 */
async function readAll(files: string[], abi: Pick<ImportOptions, 'abi' | 'defaultAbi'>, format: TraceFormat | undefined, what: string): Promise<{ files: FileTraces[]; warnings: InputWarning[] }> {
  const out: FileTraces[] = [];
  const warnings: InputWarning[] = [];
  let shown = 0;
  for (const f of files) {
    const r = await readTraces(f, { ...abi, ...(format ? { format } : {}) });
    for (const i of r.issues) {
      if (shown++ < 20) process.stderr.write(`${f}:${i.line}: ${i.message}\n`);
    }
    out.push(r);
    const short = shortfall(r);
    if (short) warnings.push({ path: f, message: `${short}; ${what}` });
  }
  if (shown > 20) process.stderr.write(`(${shown - 20} more bad lines)\n`);
  for (const w of warnings) process.stderr.write(`sandtrace model: warning: ${w.path}: ${w.message}\n`);
  return { files: out, warnings };
}

async function train(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    out: { type: 'string', short: 'o' }, abi: { type: 'string' }, kind: { type: 'string' }, n: { type: 'string' },
    far: { type: 'string' }, format: { type: 'string' }, json: { type: 'boolean' }, force: { type: 'boolean' },
  }, TRAIN_USAGE);
  if (!values.out) throw new SandtraceError('USAGE', `--out MODEL is required; usage: ${TRAIN_USAGE}`);
  const inputs = await inputFiles(positionals, TRAIN_USAGE);
  // a model never replaces its own training data, nor an earlier model without --force
  refuseInputAsOutput(values.out, inputs, '--out');
  checkOutFile(values.out, { overwrite: values.force === true });
  const kind = (values.kind ?? 'vmm') as ModelKind;
  if (!MODEL_KINDS.includes(kind)) throw new SandtraceError('USAGE', `--kind must be one of ${MODEL_KINDS.join(', ')}`);
  const abi = abiOf(values.abi);
  const n = values.n === undefined ? undefined : integerFlag(values.n, 'n', 0);
  const far = values.far === undefined ? undefined : numberFlag(values.far, 'far', 0.01);
  if (far !== undefined && far >= 1) throw new SandtraceError('USAGE', '--far is a rate below 1 (e.g. 0.01)');
  const { files, warnings } = await readAll(inputs, { abi }, formatOf(values.format), 'trained on what could be read');
  // a model learns the calls of one ABI (a recording's or strace log's are x86_64 whatever --abi says)
  for (const f of files) if (f.abi !== abi) throw new SandtraceError('USAGE', `${f.path} holds ${f.abi} calls, not ${abi} (--abi): a model learns the calls of one ABI`);
  const traces: string[][] = [];
  const byExe = new Map<string, string[][]>();
  for (const f of files) {
    for (const t of f.traces) {
      if (t.calls.length === 0) continue;
      if (t.exe === '') traces.push(t.calls);
      else {
        const l = byExe.get(t.exe) ?? [];
        l.push(t.calls);
        byExe.set(t.exe, l);
      }
    }
  }
  const data = trainModelFile({ traces, byExe, source: positionals.join(' ') }, {
    kind, abi, ...(n !== undefined ? { n } : {}), ...(far !== undefined ? { far } : {}),
  });
  await saveModel(values.out, data);
  // said on stderr as input warnings are, and in --json's warnings with the model file as the path
  const silent = silentThresholds(new AnomalyModel(data));
  for (const message of silent) {
    warnings.push({ path: values.out, message });
    process.stderr.write(`sandtrace model train: warning: ${termSafe(message)}\n`);
  }
  const g = data.global;
  const info = {
    out: values.out, kind: data.kind, smoothing: g?.smoothing, ...(g?.lambda !== undefined ? { lambda: g.lambda } : {}), abi, traces: data.training.traces, calls: data.training.calls,
    programs: Object.keys(data.programs).length, n: g?.n, threshold: g?.calibration.threshold,
    calibration: g?.calibration.method, seconds: Math.round(data.training.seconds * 100) / 100,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
  if (values.json) process.stdout.write(JSON.stringify(info) + '\n');
  else {
    process.stdout.write(`trained ${data.kind}${g?.smoothing ? `-${g.smoothing}` : ''} n=${g?.n}${g?.lambda !== undefined ? ` (neural weight ${g.lambda})` : ''} on ${info.traces} traces (${info.calls} calls, ${info.programs} program model(s) + global) in ${info.seconds}s\n`);
    process.stdout.write(`threshold ${g?.calibration.threshold.toFixed(4)} (${g?.calibration.method}); wrote ${values.out}\n`);
  }
  return 0;
}

/** One line for each threshold calibration put at the model's maximum, so that its kind of alert never fires. */
function silentThresholds(m: AnomalyModel): string[] {
  return m.silentThresholds().map((t) => {
    const unit = m.data.kind === 'stide' ? ' (every window unseen)' : ' bits a call';
    return `${t.where === 'the global model' ? 'the global model' : `the model of ${t.where}`}: ${t.what} ${round(t.value)} is the most it can score${unit}: more than ${t.far * 100}% of held-out normal ${t.what === 'threshold' ? 'traces' : 'windows'} score that much, so ${t.what === 'threshold' ? 'whole-trace' : 'window'} alerts never fire (the other threshold still judges; more varied training data, or a higher --far, would give it room)`;
  });
}

const round = (x: number) => Math.round(x * 10000) / 10000;

async function score(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' }, abi: { type: 'string' }, format: { type: 'string' },
  }, SCORE_USAGE);
  const [modelPath, ...paths] = positionals;
  if (!modelPath) throw new SandtraceError('USAGE', `usage: ${SCORE_USAGE}`);
  const model = await loadModel(modelPath);
  if (values.abi !== undefined && abiOf(values.abi) !== model.abi) throw new SandtraceError('USAGE', `--abi ${values.abi} does not match the model: ${modelPath} was trained on ${model.abi} system calls`);
  // numeric traces are numbered as the model's calls unless --abi says; each file must be of the model's ABI
  const inputs = await inputFiles(paths, SCORE_USAGE);
  const { files, warnings } = await readAll(inputs, values.abi === undefined ? { defaultAbi: model.abi } : { abi: abiOf(values.abi) }, formatOf(values.format), 'scored what could be read');
  for (const f of files) checkModelAbi(model, f.abi, f.path);
  const rows = [];
  for (const f of files) {
    for (const t of f.traces) {
      if (t.calls.length === 0) continue;
      const m = model.forExe(t.exe);
      if (!m) {
        rows.push({ trace: t.id, exe: t.exe, pid: t.pid, calls: t.calls.length, model: null, score: null, threshold: null, anomalous: null, window: [] as string[] });
        continue;
      }
      const s = m.score(t.calls);
      const c = m.data.calibration;
      const by = m.exceeded(s);
      const unknown = s.ids.reduce((a, x) => a + (x === 0 ? 1 : 0), 0);
      rows.push({
        trace: t.id, exe: t.exe, pid: t.pid, calls: t.calls.length, model: `${model.programs.has(t.exe) ? t.exe : 'global'}:${m.name}`,
        score: round(s.score), threshold: round(c.threshold),
        windowScore: round(s.windowScore), windowThreshold: round(c.windowThreshold),
        anomalous: by.length > 0, unknownCalls: unknown,
        window: t.calls.slice(s.windowStart, s.windowStart + s.windowLength),
        // what decided an anomalous verdict: the trace's mean, its most anomalous window, or both
        // (a window verdict with a trace score below its threshold would otherwise look wrong)
        anomalousBy: by, ...(by.length > 0 ? { reason: by.map((b) => (b === 'trace' ? `score=${round(s.score)} > ${round(c.threshold)}` : `window=${round(s.windowScore)} > ${round(c.windowThreshold)}`)).join(', ') } : {}),
      });
    }
  }
  // nothing to judge is no verdict: refused as training refuses it (a header-only recording, a
  // file of bad lines only), rather than "0 of 0 trace(s) anomalous" and exit 0
  if (rows.length === 0) throw new SandtraceError('INPUT_EMPTY', `no system calls to score in ${paths.join(' ')}`);
  if (values.json) {
    process.stdout.write(termSafeJson(JSON.stringify({ model: modelPath, traces: rows, ...(warnings.length > 0 ? { warnings } : {}) })) + '\n');
  } else {
    for (const r of rows) {
      const verdict = r.anomalous === null ? 'no model' : r.anomalous ? 'ANOMALOUS' : 'normal';
      const reason = 'reason' in r ? ` ${r.reason}:` : '';
      process.stdout.write(`${verdict.padEnd(9)}${reason} score=${r.score ?? '-'} threshold=${r.threshold ?? '-'} calls=${r.calls} ${termSafe(r.trace)}${r.exe ? ` (${termSafe(r.exe)})` : ''}\n`);
    }
    const bad = rows.filter((r) => r.anomalous).length;
    process.stdout.write(`${bad} of ${rows.length} trace(s) anomalous\n`);
  }
  return 0;
}

async function info(argv: string[]): Promise<number> {
  const { positionals } = parseFlags(argv, {}, INFO_USAGE);
  if (!positionals[0]) throw new SandtraceError('USAGE', `usage: ${INFO_USAGE}`);
  noExtraArgs(positionals, 1, INFO_USAGE);
  const m = await loadModel(positionals[0]);
  const d = m.data;
  const describe = (p: typeof d.global) => p && ({ kind: p.kind, n: p.n, ...(p.neural ? { lambda: p.lambda, neural: p.neural.config } : {}), abi: p.abi, vocabulary: p.vocab.length, ngrams: p.table.length, calibration: p.calibration, training: p.training });
  process.stdout.write(JSON.stringify({
    format: d.format, version: d.version, created: d.created, kind: d.kind, abi: d.abi, training: d.training,
    global: describe(d.global), programs: Object.fromEntries(Object.entries(d.programs).map(([k, v]) => [k, describe(v)])),
  }, null, 2) + '\n');
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'train') return train(rest);
  if (sub === 'score') return score(rest);
  if (sub === 'info') return info(rest);
  throw new SandtraceError('USAGE', `${sub === undefined ? 'no subcommand' : `unknown subcommand '${sub}'`} (train, score or info); see 'sandtrace model --help'`);
}
