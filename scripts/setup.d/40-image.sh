# The sandbox's base image, built once and cached at $SANDTRACE_CACHE/images/base: a debootstrap
# minbase of bookworm, owned by the user-namespace range (uid 0 -> 100000) and personalised with a
# user and decoy credentials; plus the subreaper shim that reports the container's exit status, and
# the init the container runs the sample under.
IMG_SUITE=bookworm
IMG_PKGS=bash,coreutils,python3,ca-certificates,curl,wget,netcat-openbsd,cron,procps,gcc,libc6-dev,xz-utils,bzip2,file,findutils,grep,gzip,tar
IMG_SHIFT=100000
IMG_DIR=$SANDTRACE_CACHE/images
IMG_BASE=$IMG_DIR/base
# The recipe's version: a change to the suite, packages or shift rebuilds; a change to the
# personalisation code only re-personalises.
img_recipe=$(printf '%s\n' "v1 $IMG_SUITE minbase $IMG_PKGS shift=$IMG_SHIFT" | sha256sum | cut -d' ' -f1)
img_personal=$(cat "$ROOT/src/sandbox/image-build.ts" "$ROOT/src/sandbox/decoys.ts" "$ROOT/src/sandbox/config.ts" | sha256sum | cut -d' ' -f1)

mkdir -p "$SANDTRACE_CACHE/bin"
shim=$SANDTRACE_CACHE/bin/sandtrace-shim
if [ ! -x "$shim" ] || [ "$ROOT/src/sandbox/shim.c" -nt "$shim" ]; then
  log "image: building $shim"
  gcc -O2 -Wall -Wextra -o "$shim.tmp" "$ROOT/src/sandbox/shim.c" && mv -f "$shim.tmp" "$shim"
fi
# the container's first process, bound read-only into every container: static, so any image runs it
init=$SANDTRACE_CACHE/bin/sandtrace-init
if [ ! -x "$init" ] || [ "$ROOT/src/sandbox/init.c" -nt "$init" ]; then
  log "image: building $init"
  gcc -static -O2 -Wall -Wextra -o "$init.tmp" "$ROOT/src/sandbox/init.c" && chmod 755 "$init.tmp" && mv -f "$init.tmp" "$init"
fi

img_have=""
[ -f "$IMG_BASE/manifest.json" ] && img_have=$(sed -n 's/.*"recipe": *"\([0-9a-f]*\)".*/\1/p' "$IMG_BASE/manifest.json")
if [ "$img_have" != "$img_recipe" ]; then
  tmp=$IMG_DIR/base.new
  rm -rf "$tmp"; mkdir -p "$tmp"
  pre=$IMG_DIR/prebuild.tmp
  missing=""
  if [ -x "$pre/bin/sh" ] && [ -f "$pre/var/lib/dpkg/status" ]; then
    for p in ${IMG_PKGS//,/ }; do grep -q "^Package: $p\$" "$pre/var/lib/dpkg/status" || missing="$missing $p"; done
  fi
  if [ -x "$pre/bin/sh" ] && [ -z "$missing" ]; then
    log "image: using the prebuilt debootstrap at $pre"
    mv "$pre" "$tmp/rootfs"
  else
    mirror=$(debian_mirror)
    log "image: debootstrap --variant=minbase $IMG_SUITE (about a minute)"
    debootstrap --variant=minbase --include="$IMG_PKGS" "$IMG_SUITE" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
      || { tail -5 "$tmp/debootstrap.log" >&2; die "debootstrap failed (log: $tmp/debootstrap.log)"; }
  fi
  rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"* 2>/dev/null || true
  (cd "$ROOT" && node --import tsx src/sandbox/image-build.ts shift "$tmp/rootfs") >/dev/null
  printf '{\n  "recipe": "%s",\n  "personalised": "",\n  "idShift": %d,\n  "builtAt": "%s",\n  "source": "debootstrap %s minbase"\n}\n' \
    "$img_recipe" "$IMG_SHIFT" "$(date -u +%FT%TZ)" "$IMG_SUITE" >"$tmp/manifest.json"
  rm -rf "$IMG_BASE"
  mv "$tmp" "$IMG_BASE"
fi
if ! grep -q "\"personalised\": \"$img_personal\"" "$IMG_BASE/manifest.json"; then
  log "image: personalising (user, hostname, decoy credentials)"
  (cd "$ROOT" && node --import tsx src/sandbox/image-build.ts personalise "$IMG_BASE/rootfs")
  sed -i "s/\"personalised\": \"[0-9a-f]*\"/\"personalised\": \"$img_personal\"/" "$IMG_BASE/manifest.json"
fi
