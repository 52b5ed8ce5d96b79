// Program identity: which program a process runs, as the anomaly models key it.

/**
 * Exec paths that name "the program this process runs" rather than a file: /proc/self/exe (busybox
 * re-executing itself), /proc/PID/fd/N and /dev/fd/N (fexecve). Groups: the owner, and what it names.
 */
export const EXE_ALIAS = /^\/proc\/(self|thread-self|\d+)\/(exe|fd\/\d+)$|^\/dev\/fd\/\d+$/;

/** Multi-call binaries: one file, many programs, told apart by the name they are run as. */
const MULTI_CALL = new Set(['busybox', 'toybox']);

/**
 * The program a process runs, as models key it: its exe path; for a multi-call binary (busybox in
 * Alpine images and initramfs guests) the exe and the applet it runs as (`/bin/busybox:nc`), since
 * `sleep` and `nc` from one file behave nothing alike.
 */
export function programKey(p: { exe: string; argv: readonly string[]; name: string }): string {
  const base = p.exe.slice(p.exe.lastIndexOf('/') + 1);
  if (!MULTI_CALL.has(base)) return p.exe;
  // a login shell's argv[0] is '-sh'
  const name = (s: string | undefined) => (s ?? '').slice((s ?? '').lastIndexOf('/') + 1).replace(/^-/, '');
  // `busybox nc ...` names the applet in argv[1]; a link named nc, in argv[0]
  let applet = name(p.argv[0]);
  if (applet === base || applet === '') applet = name(p.argv[1]);
  if (applet === '' || applet === base) applet = p.name;
  return applet && applet !== base ? `${p.exe}:${applet}` : p.exe;
}
