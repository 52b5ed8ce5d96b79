// Typed errors with stable codes. The library throws these; only the CLI and HTTP edges turn
// them into messages and exit codes.

export type ErrorCode =
  // input
  | 'INPUT_MISSING' | 'INPUT_EMPTY' | 'INPUT_UNREADABLE' | 'INPUT_IS_DIRECTORY' | 'INPUT_TOO_LARGE' | 'INPUT_UNSUPPORTED'
  | 'INPUT_FORMAT_UNKNOWN' | 'INPUT_CORRUPT' | 'USAGE'
  // output
  | 'OUTPUT_UNWRITABLE'
  // environment
  | 'NOT_ROOT' | 'DEPENDENCY_MISSING' | 'SETUP_INCOMPLETE'
  // sandbox
  | 'SANDBOX_IMAGE_MISSING' | 'SANDBOX_IMAGE_INVALID' | 'SANDBOX_RUNTIME_FAILED' | 'SANDBOX_CLEANUP_FAILED'
  // capture
  | 'PROBE_BUILD_MISSING' | 'PROBE_LOAD_FAILED' | 'CAPTURE_FAILED' | 'TRACER_FAILED'
  // engine
  | 'RULES_INVALID' | 'MODEL_INVALID'
  // vm
  | 'VM_UNSUPPORTED' | 'VM_BOOT_FAILED' | 'VM_PROFILE_FAILED' | 'VM_KERNEL_MISSING'
  | 'INTERNAL';

export class SandtraceError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for machine-readable output (paths, limits, line numbers). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SandtraceError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isSandtraceError(e: unknown): e is SandtraceError {
  return e instanceof SandtraceError;
}
