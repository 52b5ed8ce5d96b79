// Backend choice for a capture: eBPF where the probe can load, ptrace (strace) otherwise. The
// reason is kept for the report's `capture.reason`, so an analyst sees why a capture was slower.
import { SandtraceError } from '../errors.js';
import { straceVersion } from './ptrace/collector.js';

export type BackendRequest = 'auto' | 'ebpf' | 'ptrace';
export interface BackendChoice { backend: 'ebpf' | 'ptrace'; reason: string }

type EbpfModule = { ebpfAvailable(): Promise<{ ok: boolean; reason: string }> };

/** Whether the eBPF probe can load here, with the probe's own reason when it cannot. */
export async function probeEbpf(): Promise<{ ok: boolean; reason: string }> {
  // Loaded by a computed path: the eBPF backend is optional in a build, and its absence is a reason, not a crash.
  const path = './ebpf/collector.js';
  let mod: EbpfModule;
  try {
    mod = (await import(path)) as EbpfModule;
  } catch (e) {
    return { ok: false, reason: `the eBPF backend is not available in this build (${(e as Error).message.split('\n')[0]})` };
  }
  if (typeof mod.ebpfAvailable !== 'function') return { ok: false, reason: 'the eBPF backend exports no ebpfAvailable()' };
  try {
    return await mod.ebpfAvailable();
  } catch (e) {
    return { ok: false, reason: `eBPF check failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

export async function chooseBackend(requested: BackendRequest): Promise<BackendChoice> {
  if (requested === 'ptrace') {
    if (!straceVersion()) throw new SandtraceError('DEPENDENCY_MISSING', 'strace is not installed (Debian package strace; run make setup)');
    return { backend: 'ptrace', reason: 'ptrace requested (--backend ptrace)' };
  }
  const ebpf = await probeEbpf();
  if (requested === 'ebpf') {
    if (!ebpf.ok) throw new SandtraceError('PROBE_LOAD_FAILED', `eBPF requested but unavailable: ${ebpf.reason}`);
    return { backend: 'ebpf', reason: `eBPF requested (--backend ebpf): ${ebpf.reason}` };
  }
  if (ebpf.ok) return { backend: 'ebpf', reason: `auto: the eBPF probe loads here (${ebpf.reason})` };
  if (!straceVersion()) {
    throw new SandtraceError('DEPENDENCY_MISSING', `no capture backend: eBPF unavailable (${ebpf.reason}) and strace is not installed`);
  }
  return { backend: 'ptrace', reason: `auto: eBPF unavailable (${ebpf.reason}); tracing with strace (ptrace), slower` };
}
