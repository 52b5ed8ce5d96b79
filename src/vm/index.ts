// Guests for sandtrace: what the rest of the pipeline uses from src/vm/.
//  - createVmSandbox(opts): a Sandbox (src/sandbox/types.ts) for `analyze --vm`; its collector()
//    is the VmiCollector (backend 'vmi'); vmIsolation() describes it for the report.
//  - runInVm(opts): the lower-level one-shot guest (collector + done promise with exit, output, files).
//  - monitorGuest(opts): `monitor --vm`: the user's QEMU arguments plus the plugin, every process.
export { createVmSandbox, vmIsolation, type VmSandbox, type VmSandboxOptions } from './sandbox.js';
export { runInVm, assertTcg, checkVmEnvironment, type VmRun, type VmRunOptions, type VmResult } from './guest.js';
export { monitorGuest, type MonitorOptions, type MonitoredGuest } from './monitor.js';
export { loadProfile, defaultKernel, type KernelProfile } from '../vmi/profile.js';
