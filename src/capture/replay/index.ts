// Traces in and out: the recording format (RecordingWriter, RecordingCollector) and importers for
// traces made elsewhere (ADFA-LD, pid/syscall pairs, sysdig text, strace -f).
export { RecordingWriter, RECORDING_FORMAT, RECORDING_VERSION, type RecordingHeader, type RecordingTrailer } from './recording.js';
export { RecordingCollector, readTraces, expandPaths, detectFileFormat, type ReplayOptions, type ProcessTrace, type FileTraces } from './collector.js';
export { detectFormat, createImporter, TRACE_FORMATS, type TraceFormat, type ImportIssue, type ImportOptions } from './importers.js';
