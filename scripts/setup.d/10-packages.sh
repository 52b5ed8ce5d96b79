# Debian packages every part needs: the container runtime, the probe toolchain, the tracer,
# the image builder and the rootless sandbox; python3 drives workloads in the capture tests.
apt_install runc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc \
  debootstrap strace bubblewrap iproute2 ca-certificates python3
