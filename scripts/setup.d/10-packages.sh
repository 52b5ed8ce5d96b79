# Debian packages every part needs: the container runtime, the probe toolchain, the tracer,
# the image builder and the rootless sandbox; iproute2, util-linux (nsenter) and nftables set up
# the DNS sinkhole and the catching of its connections in the sample's network namespace; python3
# finds that namespace's owner for the rootless sandbox and drives workloads in the capture tests.
# libc6-dev: the VM tests build static guest programs (gcc only recommends it). openssl: the TLS
# tests verify the sandbox's certificates with the verifier the container's programs use.
apt_install runc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc libc6-dev \
  debootstrap strace bubblewrap iproute2 util-linux nftables ca-certificates openssl python3
