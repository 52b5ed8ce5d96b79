// The sandbox contract: one isolated, disposable run of a sample. Implemented by the runc
// container sandbox (root) and the rootless sandbox; the VM sandbox follows the same shape.
import type { DnsLog, DnsMode } from './dns.js';
import type { SinkholeSession } from './sessions.js';
import { SandtraceError } from '../errors.js';

export interface SandboxLimits {
  memoryMiB: number;
  pids: number;
  /** CPU quota in cores (e.g. 1 = one core). */
  cpus: number;
  /** Size of the writable layer in MiB (what the sample can write at most); sandbox default when absent. */
  diskMiB?: number;
}

/**
 * The longest timeout a run takes, in seconds (23 days). Node's timers wait at most 2^31-1 ms and
 * fire at once beyond it, which would kill the sample as it starts and call the run benign; the
 * VM sandbox's host timer adds its boot allowance on top.
 */
export const MAX_TIMEOUT_S = 2_000_000;

/** A run's timeout in seconds: positive, finite and at most MAX_TIMEOUT_S, else a USAGE error. */
export function checkTimeout(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_TIMEOUT_S) {
    throw new SandtraceError('USAGE', `timeout must be more than 0 and at most ${MAX_TIMEOUT_S} s (23 days), got ${seconds}`);
  }
  return seconds;
}

export interface SandboxOptions {
  /** Host path of the sample; copied into the container, never bind-mounted writable. */
  sample: string;
  args: string[];
  /** Runs `interpreter... SAMPLE args...` instead of the sample itself (a script the kernel cannot start: sampleLaunch). */
  interpreter?: string[];
  /** How the DNS sinkhole answers (dns.ts); default 'sinkhole'. */
  dns?: DnsMode;
  /** Seconds before the whole container is frozen and killed. */
  timeout: number;
  /** A docker-save or OCI-layout archive to use as the base image instead of the built-in one. */
  image?: string;
  limits?: Partial<SandboxLimits>;
  /** Host directory for this analysis' bundle and overlay (removed by destroy()). */
  workDir?: string;
}

export interface SandboxStartInfo {
  id: string;
  /** cgroup v2 directory of the container (under the unified hierarchy): the capture filter. */
  cgroupPath: string;
  /** Host pid of the container's first process (waiting to start the sample). */
  hostPid: number;
  /** Path of the sample inside the container. */
  samplePath: string;
  /** cgroup v1 freezer directory of the container, where the host has one (capture back-pressure). */
  freezerPath?: string;
  /**
   * The pid (in the container's pid namespace) of the sandbox's own process that runs the sample
   * and reaps what it leaves (src/sandbox/init.c): captured with the rest, and none of its events
   * are the sample's behaviour. Absent when the sample is the first process.
   */
  hiddenPid?: number;
}

export interface FileChange {
  /** Path inside the container. */
  path: string;
  change: 'created' | 'modified' | 'deleted';
  size: number;
  /** null for a deletion, a file that is not a regular one, or one not hashed (unhashed). */
  sha256: string | null;
  /** Host path of the copy (in the output dir), when copied; hard links of one file share one copy. */
  copy?: string;
  truncated: boolean;
  /**
   * A regular file larger than what was left of the hashing budget (ChangeLimits.hashBytes; a
   * sparse file can claim exabytes without using the disk): its size and first bytes, no sha256.
   */
  unhashed?: true;
}

/** A directory and how many entries were there (dir '': elsewhere, the places not named). */
export interface Place { dir: string; count: number }

/** What a change listing left out, and where (ChangeWalk in changes.ts). */
export interface ChangeOmissions {
  /** Changes found (also those the walk's memory bound counted without keeping), and listed. */
  found: number;
  listed: number;
  /** Changes found and not listed, with where most of them were. */
  notListed: number;
  notListedAt: Place[];
  /** Entries of the writable layer examined; whether the walk stopped there (ChangeLimits.maxWalk). */
  walked: number;
  walkStopped: boolean;
  /** Directories below ChangeLimits.maxDepth, not walked. */
  deepDirs: number;
  deepDirsAt: Place[];
  /** Listed files the total copy budget left uncopied, or copied in part, and the bytes it left out. */
  notCopied: number;
  cutCopies: number;
  copyBytesLeftOut: number;
  notCopiedAt: Place[];
}

/**
 * The changes, sorted by path; `omitted` (not enumerable: the list compares and serialises as a
 * plain array) when the sandbox says what its budgets left out.
 */
export interface ChangeList extends Array<FileChange> {
  omitted?: ChangeOmissions;
}

export interface SandboxDns extends DnsLog {
  unavailable?: string;
  /** The sample's TCP connections off its loopback, caught (sessions.ts); absent where none could be. */
  sessions?: SinkholeSession[];
  /** Connections past SESSION_MAX, or refused past SESSION_MAX_OPEN at once. */
  sessionsOmitted?: number;
  /** Why connections were not caught (no nftables): they failed as unrouted. */
  sessionsUnavailable?: string;
  /** Why IPv6 connections were not caught while IPv4 ones were (the namespace has no IPv6): they failed as unrouted. */
  ipv6Unavailable?: string;
}

export interface SandboxResult {
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  /** Seconds from start() to the end of the sample. */
  duration: number;
  /** Console output of the sample (stdout+stderr), capped. */
  console: string;
}

export interface Sandbox {
  /** Generate the bundle and create the container; the sample has not started yet. */
  create(): Promise<SandboxStartInfo>;
  /** Let the sample run. */
  start(): Promise<void>;
  /**
   * Resolve when the sample's processes have all exited (the first one and what it left running),
   * or at the timeout after freezing and killing everything. `paused`: seconds the sample has spent frozen by the capture so far; the timeout
   * is extended by them (up to the timeout again), so a sample that floods the capture cannot
   * spend its own time frozen and end the analysis before it shows what it does.
   */
  wait(opts?: { paused?: () => number }): Promise<SandboxResult>;
  /** Pause and resume every process of the container (cgroup freezer); used by capture back-pressure. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /**
   * Files created, modified and deleted, from the overlay upper layer; copies created/modified
   * files to outDir (size-capped). Within its budgets by priority; what they left out in `omitted`.
   */
  changes(outDir: string): Promise<ChangeList>;
  /**
   * What the sandbox's DNS sinkhole (dns.ts) was asked and answered; absent where the sandbox has
   * none (VM). `unavailable`: why it did not run.
   */
  dns?(): SandboxDns;
  /** The name the DNS sinkhole gave `address` for (known from the moment it answered). */
  dnsName?(address: string): string | undefined;
  /** Kill what is left and remove container, mounts, cgroups and bundle. Idempotent. */
  destroy(): Promise<void>;
}
