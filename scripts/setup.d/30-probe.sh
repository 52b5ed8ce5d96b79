# The eBPF probe and its loader (probe/build/sandtrace-probe): rebuilt when a source is newer.
# vmlinux.h comes from this kernel's BTF, so it is regenerated when the kernel changes.
_probe_bin="$ROOT/probe/build/sandtrace-probe"
_probe_stale=""
[ -x "$_probe_bin" ] || _probe_stale=1
for _f in "$ROOT"/probe/*.c "$ROOT"/probe/*.h "$ROOT"/probe/Makefile; do
  [ "$_f" -nt "$_probe_bin" ] && _probe_stale=1
done
if [ -f "$ROOT/probe/build/vmlinux.h" ] && [ "$(cat "$ROOT/probe/build/.kernel" 2>/dev/null)" != "$(uname -r)" ]; then
  rm -f "$ROOT/probe/build/vmlinux.h"; _probe_stale=1
fi
if [ -n "$_probe_stale" ]; then
  [ -r /sys/kernel/btf/vmlinux ] || die "the kernel has no BTF (/sys/kernel/btf/vmlinux): the eBPF probe cannot be built"
  log "building the eBPF probe"
  make -C "$ROOT/probe" -s >/dev/null || die "probe build failed (make -C probe)"
  uname -r > "$ROOT/probe/build/.kernel"
fi
unset _probe_bin _probe_stale _f
