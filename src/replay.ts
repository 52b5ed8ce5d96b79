// replay(): the analysis pipeline over a recorded or imported trace instead of a live sandbox.
// A sandtrace recording carries the sample's description and the live capture's statistics, so
// the report equals the live run's (its dropped and deleted files too, from the recording's
// trailer; the copies themselves stay in the live run's analysis directory).
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { CaptureStats } from './capture/collector.js';
import { RecordingCollector } from './capture/replay/index.js';
import { fileLines, parseHeader, type RecordedChange, type RecordingTrailer } from './capture/replay/recording.js';
import type { Abi } from './capture/events.js';
import { buildDetectors, finishReport, type AnalyzeResult } from './analyze.js';
import { runPipeline } from './pipeline.js';
import { ReportBuilder, type SampleInfo } from './report/build.js';
import type { Report, ReportDiagnostic } from './report/schema.js';
import { DENIED_SYSCALLS } from './sandbox/seccomp.js';
import { SemanticState } from './semantics/state.js';
import { makeOutDir } from './outpath.js';

export interface ReplayOptions {
  file: string;
  outDir: string;
  rules?: string[];
  model?: string;
  abi?: Abi;
}

export async function replay(opts: ReplayOptions): Promise<AnalyzeResult> {
  const collector = new RecordingCollector(opts.file, opts.abi ? { abi: opts.abi } : {});
  await collector.start(); // INPUT_* errors before anything is written
  const header = collector.detectedFormat === 'sandtrace' ? await readHeader(opts.file) : undefined;
  const meta = (header?.meta ?? {}) as Record<string, unknown>;
  const outDir = resolve(opts.outDir);
  makeOutDir(outDir);
  const errors: ReportDiagnostic[] = [];
  const warnings: ReportDiagnostic[] = [];
  // a live monitor's recording: judged as the monitor judged it (partial lives included)
  const detectors = await buildDetectors({ ...(opts.rules ? { rules: opts.rules } : {}), ...(opts.model ? { model: opts.model } : {}), live: meta['live'] === true }, errors, warnings);
  const users = Array.isArray(meta['users']) ? new Map(meta['users'] as [number, string][]) : undefined;
  const semantics = new SemanticState({
    ...(users ? { users } : {}), ...(typeof meta['cwd'] === 'string' ? { initialCwd: meta['cwd'] } : {}),
    // a sandbox recording: the processes ran in the analysis's container, as live
    ...(typeof meta['containerId'] === 'string' ? { containerId: meta['containerId'] } : {}),
    ...(typeof meta['containerName'] === 'string' ? { containerName: meta['containerName'] } : {}),
  });
  const builder = new ReportBuilder(DENIED_SYSCALLS);
  const started = new Date();
  await runPipeline({ collector, semantics, report: builder, detectors });
  const replayed = collector.stats();
  // The live capture's own statistics (events lost in the kernel, say) stay true of a replay.
  const trailer = await readTrailer(opts.file);
  const live = trailer?.stats;
  const capture: CaptureStats = live
    ? { ...live, notes: [...live.notes, ...replayed.notes, `replayed from ${basename(opts.file)}`], parseErrors: live.parseErrors + replayed.parseErrors, lost: live.lost + replayed.lost }
    : replayed;
  if (trailer?.badChanges) warnings.push({ code: 'INPUT_CORRUPT', message: `${trailer.badChanges} file change(s) in the recording's trailer are malformed and were left out`, where: opts.file });
  if (header && !live) warnings.push({ code: 'RECORDING_TRUNCATED', message: 'the recording has no trailer: it was cut short; events up to the cut were analysed' });
  for (const n of replayed.notes.filter((x) => x.startsWith('line '))) warnings.push({ code: 'INPUT_CORRUPT', message: n, where: opts.file });
  const sample = (meta['sample'] as SampleInfo | undefined) ?? await traceAsSample(opts.file);
  return finishReport({
    builder, detectors, semantics, errors, warnings, outDir,
    context: {
      id: typeof meta['id'] === 'string' ? meta['id'] : `replay-${started.getTime()}`, started,
      timeout: typeof meta['timeout'] === 'number' ? meta['timeout'] : 0, timedOut: false,
      isolation: (meta['isolation'] as Report['analysis']['isolation'] | undefined) ?? { kind: 'none', guarantees: [], weaker: ['replayed trace: no sandbox ran'] },
      sample, capture, captureReason: typeof meta['reason'] === 'string' ? meta['reason'] : `replay of ${collector.detectedFormat ?? 'a trace'}`,
      backend: live?.backend ?? 'replay', changes: trailer?.changes ?? [],
    },
  });
}

async function readHeader(file: string) {
  for await (const line of fileLines(file)) return parseHeader(line);
  return undefined;
}

async function readTrailer(file: string): Promise<{ stats?: CaptureStats; changes?: RecordedChange[]; badChanges: number } | undefined> {
  let last = '';
  for await (const line of fileLines(file)) if (line.trim()) last = line;
  try {
    const t = JSON.parse(last) as Partial<RecordingTrailer>;
    if (t.format !== 'sandtrace.events.end') return undefined;
    const changes = Array.isArray(t.changes) ? t.changes.filter(isRecordedChange).map(recordedChange) : undefined;
    const badChanges = Array.isArray(t.changes) ? t.changes.length - (changes?.length ?? 0) : 0;
    return { ...(t.stats ? { stats: t.stats } : {}), ...(changes ? { changes } : {}), badChanges };
  } catch {
    return undefined;
  }
}

async function traceAsSample(file: string): Promise<SampleInfo> {
  const st = await stat(file);
  return { name: basename(file), size: st.size, sha256: '', sha1: '', md5: '', type: 'trace', args: [] };
}

/** A trailer's file change, checked: a corrupt or hostile one is left out rather than trusted. */
function isRecordedChange(c: unknown): c is RecordedChange {
  const o = c as Partial<RecordedChange> | null;
  return typeof o === 'object' && o !== null && typeof o.path === 'string' && ['created', 'modified', 'deleted'].includes(o.change as string)
    && typeof o.size === 'number' && (o.sha256 === null || typeof o.sha256 === 'string') && typeof o.truncated === 'boolean';
}

/** Only the recorded fields: a copy's path, say, names a file of the live run's host, never the replay's. */
function recordedChange(c: RecordedChange): RecordedChange {
  return { path: c.path, change: c.change, size: c.size, sha256: c.sha256, truncated: c.truncated };
}
