# VM introspection: QEMU >= 9.2 from bookworm-backports (pinned to qemu packages only), Debian's
# kernel image (downloaded and extracted, never installed on the host), busybox for the initramfs,
# and the QEMU TCG plugin.
_vm_setup() {
  local mirror src pin
  mirror=$(debian_mirror)
  src=/etc/apt/sources.list.d/sandtrace-backports.sources
  pin=/etc/apt/preferences.d/sandtrace-backports
  if [ ! -f "$src" ] || ! grep -q "^URIs: $mirror\$" "$src"; then
    log "apt: adding bookworm-backports ($mirror)"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" >"$src"
    # Only qemu packages may come from backports; everything else stays on bookworm.
    printf 'Package: *\nPin: release n=bookworm-backports\nPin-Priority: 100\n\nPackage: qemu-* src:qemu\nPin: release n=bookworm-backports\nPin-Priority: 990\n' >"$pin"
    apt-get update -q >/dev/null
    _apt_updated=1
  fi
  local qv
  qv=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
  if [ -z "$qv" ] || dpkg --compare-versions "$qv" lt 1:9.2; then
    log "apt: installing qemu-system-x86 from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
  fi
  apt_install busybox-static cpio xz-utils zstd e2fsprogs
  # Debian's kernel image: fetched as a package and unpacked into the cache.
  local vmdir="$SANDTRACE_CACHE/vm"
  mkdir -p "$vmdir"
  if ! ls "$vmdir"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64"
    log "vm: downloading $pkg"
    (cd "$vmdir" && rm -f linux-image-*.deb && apt-get download -q "$pkg" >/dev/null 2>&1) || die "cannot download $pkg"
    rm -rf "$vmdir/kernel.tmp" && mkdir -p "$vmdir/kernel.tmp"
    dpkg-deb -x "$vmdir"/linux-image-*.deb "$vmdir/kernel.tmp"
    rm -rf "$vmdir/kernel" && mv "$vmdir/kernel.tmp" "$vmdir/kernel"
  fi
  # The TCG plugin (C), rebuilt when stale.
  make -s -C "$ROOT/qemu-plugin" >/dev/null
}
_vm_setup
# The guest's Debian disk (the base image as ext4), cached by the base image's hash.
if [ -f "$SANDTRACE_CACHE/images/base/manifest.json" ]; then
  (cd "$ROOT" && node --import tsx -e "import('./src/vm/rootfs.ts').then((m) => m.ensureDiskImage())") || die "cannot build the guest disk image"
fi
