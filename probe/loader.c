// SPDX-License-Identifier: GPL-2.0
/* sandtrace-probe: loads sandtrace.bpf.c, points it at one cgroup (or host pid), and copies ring
 * records to stdout as [u32 length][record][pad to 4]. Freezes the target when the reader falls behind; on
 * SIGTERM/SIGINT/stdin EOF it detaches, drains everything and ends with a STATS record. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "sandtrace.h"
#include "sandtrace.skel.h"

#define OUT_CAP (256u << 20) /* beyond this the loader stops draining and the ring may overflow */

static volatile sig_atomic_t stop_flag;
static char last_err[512];

struct out {
	unsigned char *buf;
	size_t start, end, cap;
	unsigned long long records;
};
static struct out out;

/* Keeps a one-line reason: libbpf's failure line plus the verifier's last words. */
static char verifier_last[256];

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char msg[1 << 20];
	char *line, *save = NULL;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (getenv("SANDTRACE_PROBE_VERBOSE"))
		fputs(msg, stderr);
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "PROG LOAD LOG") || !strncmp(line, "processed ", 10) || line[0] == ';')
			continue;
		if (strncmp(line, "libbpf: ", 8) != 0) {
			snprintf(verifier_last, sizeof(verifier_last), "%s", line);
			continue;
		}
		if (!last_err[0] || strstr(line, "failed to load object"))
			snprintf(last_err, sizeof(last_err), "%s%s%s", line + 8,
				 verifier_last[0] ? ": " : "", verifier_last);
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int out_reserve(size_t len)
{
	if (out.end + len <= out.cap)
		return 0;
	if (out.start > 0) {
		memmove(out.buf, out.buf + out.start, out.end - out.start);
		out.end -= out.start;
		out.start = 0;
	}
	if (out.end + len > out.cap) {
		size_t cap = out.cap ? out.cap : 1 << 20;
		unsigned char *nb;

		while (cap < out.end + len)
			cap *= 2;
		nb = realloc(out.buf, cap);
		if (!nb)
			return -1;
		out.buf = nb;
		out.cap = cap;
	}
	return 0;
}

/* Frames a record as [u32 length][record][zero padding to 4 bytes], so that the reader can use
 * aligned 32-bit loads. */
static int out_append(const void *data, unsigned int len)
{
	unsigned int padded = (len + 3) & ~3u;

	if (out_reserve(padded + 4))
		return -1;
	memcpy(out.buf + out.end, &len, 4);
	memcpy(out.buf + out.end + 4, data, len);
	memset(out.buf + out.end + 4 + len, 0, padded - len);
	out.end += padded + 4;
	out.records++;
	return 0;
}

static size_t out_pending(void)
{
	return out.end - out.start;
}

/* Writes what stdout takes without blocking; -1 when stdout is gone. */
static int out_flush(void)
{
	while (out_pending()) {
		ssize_t n = write(1, out.buf + out.start, out_pending());

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		out.start += n;
	}
	out.start = out.end = 0;
	return 0;
}

static int on_sample(void *ctx, void *data, size_t len)
{
	(void)ctx;
	if (out_append(data, (unsigned int)len))
		return -1;
	/* Stop draining when the buffer is huge: the ring then holds (or counts as lost) the rest. */
	return out_pending() > OUT_CAP ? -1 : 0;
}

struct freezer {
	const char *path;
	int v1; /* freezer.state (FROZEN/THAWED) rather than cgroup.freeze (1/0) */
	int frozen;
	unsigned long long times, since, total_ns;
};

static void set_frozen(struct freezer *f, int on)
{
	int fd;
	const char *v;

	if (!f->path || f->frozen == on)
		return;
	v = f->v1 ? (on ? "FROZEN" : "THAWED") : (on ? "1" : "0");
	fd = open(f->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) < 0) {
		/* Say it once and stop trying: the capture goes on, without back-pressure. */
		fprintf(stderr, "sandtrace-probe: cannot write %s: %s; no more freezing\n", f->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		f->path = NULL;
		return;
	}
	close(fd);
	f->frozen = on;
	if (on) {
		f->times++;
		f->since = mono_ns();
	} else {
		f->total_ns += mono_ns() - f->since;
	}
}

/* Arguments of the running kernel's sched_process_exit tracepoint: 2 on recent kernels (task,
 * group_dead; 6.18), 1 on older ones (6.1, 5.15). Read from the typedef
 * btf_trace_sched_process_exit, a pointer to a FUNC_PROTO whose first parameter is the ctx.
 * 0 when the kernel's BTF does not say. */
static int exit_tp_args(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	const struct btf_type *t;
	int id, n = 0;

	if (!vmlinux || libbpf_get_error(vmlinux)) /* NULL in libbpf 1.x, an error pointer in 0.x */
		return 0;
	id = btf__find_by_name_kind(vmlinux, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(vmlinux, id) : NULL;
	if (t)
		t = btf__type_by_id(vmlinux, t->type);
	if (t && btf_is_ptr(t))
		t = btf__type_by_id(vmlinux, t->type);
	if (t && btf_is_func_proto(t))
		n = btf_vlen(t) - 1;
	btf__free(vmlinux);
	return n;
}

static void usage(void)
{
	fprintf(stderr, "usage: sandtrace-probe (--cgroup DIR | --pid HOSTPID) [--ns-level N --ns-inum I] "
			"[--ring BYTES] [--freeze FILE] | --check\n");
}

int main(int argc, char **argv)
{
	const char *cgroup_dir = NULL, *freeze_path = NULL;
	unsigned long ring = 64u << 20, ns_level = 0, ns_inum = 0, pid = 0;
	int check = 0, cg_fd = -1, err, i;
	struct sandtrace_bpf *skel;
	struct ring_buffer *rb = NULL;
	struct freezer fz = { 0 };
	volatile unsigned long *cons_pos, *prod_pos;
	long page = sysconf(_SC_PAGESIZE);
	struct sigaction sa = { .sa_handler = on_signal };
	int stdin_open = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--check")) {
			check = 1;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		if (!strcmp(a, "--cgroup"))
			cgroup_dir = v;
		else if (!strcmp(a, "--pid"))
			pid = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--ns-level"))
			ns_level = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--ns-inum"))
			ns_inum = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--ring"))
			ring = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--freeze"))
			freeze_path = v;
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (!check && !cgroup_dir && !pid) {
		usage();
		return 2;
	}
	/* The ring must be a power of two and a multiple of the page size. */
	if (ring < (unsigned long)page || (ring & (ring - 1))) {
		fprintf(stderr, "sandtrace-probe: --ring must be a power of two >= %ld\n", page);
		return 2;
	}

	libbpf_set_print(on_libbpf_print);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cgroup_dir) {
		cg_fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg_fd < 0) {
			fprintf(stderr, "sandtrace-probe: cannot open cgroup %s: %s\n", cgroup_dir, strerror(errno));
			return 1;
		}
	}

	skel = sandtrace_bpf__open();
	if (!skel) {
		fprintf(stderr, "sandtrace-probe: open failed: %s\n", last_err[0] ? last_err : strerror(errno));
		return 1;
	}
	skel->rodata->ns_level = ns_level;
	skel->rodata->ns_inum = ns_inum;
	skel->rodata->filter_tgid = cgroup_dir ? 0 : pid;
	skel->rodata->wakeup_bytes = ring / 16 < (256u << 10) ? ring / 16 : (256u << 10);
	bpf_map__set_max_entries(skel->maps.rb, ring);
	{
		/* Load the exit hook that matches the tracepoint; the other one would be rejected.
		 * SANDTRACE_PROBE_FORCE_EXIT_V1=1 (tests) takes the 1-argument one on any kernel. */
		const char *force = getenv("SANDTRACE_PROBE_FORCE_EXIT_V1");
		int forced = force && !strcmp(force, "1");
		int two = !forced && exit_tp_args() >= 2;

		bpf_program__set_autoload(two ? skel->progs.on_proc_exit_v1 : skel->progs.on_proc_exit, false);
		fprintf(stderr, "sandtrace-probe: exit hook: %s tracepoint%s\n", two ? "2-arg" : "1-arg",
			forced ? " (forced)" : "");
	}

	err = sandtrace_bpf__load(skel);
	if (err) {
		fprintf(stderr, "sandtrace-probe: load failed: %s\n", last_err[0] ? last_err : strerror(-err));
		return 1;
	}
	if (cg_fd >= 0) {
		unsigned int k = 0;

		if (bpf_map_update_elem(bpf_map__fd(skel->maps.cgroup), &k, &cg_fd, BPF_ANY)) {
			fprintf(stderr, "sandtrace-probe: cgroup filter: %s\n", strerror(errno));
			return 1;
		}
	} else if (pid) {
		unsigned int k = pid;
		unsigned char one = 1;

		bpf_map_update_elem(bpf_map__fd(skel->maps.tracked), &k, &one, BPF_ANY);
	}
	err = sandtrace_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "sandtrace-probe: attach failed: %s\n", last_err[0] ? last_err : strerror(-err));
		return 1;
	}
	if (check) {
		sandtrace_bpf__destroy(skel);
		return 0;
	}

	rb = ring_buffer__new(bpf_map__fd(skel->maps.rb), on_sample, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "sandtrace-probe: ring buffer: %s\n", strerror(errno));
		return 1;
	}
	/* Our own view of the ring positions, to measure the backlog (libbpf 1.1 has no ring__ API). */
	cons_pos = mmap(NULL, page, PROT_READ, MAP_SHARED, bpf_map__fd(skel->maps.rb), 0);
	prod_pos = mmap(NULL, page, PROT_READ, MAP_SHARED, bpf_map__fd(skel->maps.rb), page);
	if (cons_pos == MAP_FAILED || prod_pos == MAP_FAILED) {
		fprintf(stderr, "sandtrace-probe: mmap ring positions: %s\n", strerror(errno));
		return 1;
	}
	if (freeze_path) {
		size_t n = strlen(freeze_path);

		fz.path = freeze_path;
		fz.v1 = n >= 13 && !strcmp(freeze_path + n - 13, "freezer.state");
	}
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
	/* Be scheduled promptly when the ring asks for a drain, even on a busy host (best effort). */
	setpriority(PRIO_PROCESS, 0, -15);

	{
		struct { unsigned char type, pad[7]; unsigned long long ktime, ring; } ready = {
			.type = REC_READY, .ktime = mono_ns(), .ring = ring };

		out_append(&ready, sizeof(ready));
	}

	while (!stop_flag && stdin_open) {
		struct pollfd p[3] = {
			{ .fd = out_pending() <= OUT_CAP ? ring_buffer__epoll_fd(rb) : -1, .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
			{ .fd = 1, .events = out_pending() ? POLLOUT : 0 },
		};
		unsigned long long backlog;

		if (poll(p, 3, 20) < 0 && errno != EINTR)
			break;
		if (p[1].revents) {
			char tmp[256];
			ssize_t n = read(0, tmp, sizeof(tmp));

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				stdin_open = 0;
		}
		if (out_pending() <= OUT_CAP)
			ring_buffer__consume(rb);
		if (out_flush() < 0)
			goto done; /* the reader is gone */
		/* Freeze when the ring is half full or the reader has left twice the ring's size unread
		 * (the buffer absorbs a reader that is briefly starved of CPU); thaw once both are low. */
		backlog = *prod_pos - *cons_pos;
		if (!fz.frozen && (backlog > ring / 2 || out_pending() > 2 * (size_t)ring)) {
			set_frozen(&fz, 1);
			/* the sandbox gives the sample the time it spends frozen (Sandbox.wait()): at each
			 * freeze and thaw, the time frozen before and whether it is frozen now; on stderr,
			 * which is read at once, not behind the events the reader has yet to take */
			if (fz.frozen)
				fprintf(stderr, "sandtrace-probe-paused %llu 1\n", fz.total_ns);
		} else if (fz.frozen && backlog < ring / 8 && out_pending() < ring / 4) {
			set_frozen(&fz, 0);
			fprintf(stderr, "sandtrace-probe-paused %llu 0\n", fz.total_ns);
		}
	}

	/* Detach first so that nothing is added, then drain the ring and the buffer completely. */
	sandtrace_bpf__detach(skel);
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) & ~O_NONBLOCK);
	while (ring_buffer__consume(rb) > 0 || *prod_pos != *cons_pos) {
		if (out_flush() < 0)
			goto done;
	}
	set_frozen(&fz, 0);
	{
		unsigned int k = 0;
		int ncpu = libbpf_num_possible_cpus();
		unsigned long long *vals = calloc(ncpu > 0 ? ncpu : 1, sizeof(*vals)), lost = 0;
		struct { unsigned char type, pad[7]; unsigned long long lost, freezes, frozen_ns, records; } st = {
			.type = REC_STATS };

		if (vals && !bpf_map_lookup_elem(bpf_map__fd(skel->maps.lost), &k, vals))
			for (i = 0; i < ncpu; i++)
				lost += vals[i];
		st.lost = lost;
		st.freezes = fz.times;
		st.frozen_ns = fz.total_ns;
		st.records = out.records;
		out_append(&st, sizeof(st));
	}
	out_flush();
done:
	set_frozen(&fz, 0);
	ring_buffer__free(rb);
	sandtrace_bpf__destroy(skel);
	return 0;
}
