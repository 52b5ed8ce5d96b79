// SPDX-License-Identifier: GPL-2.0
/* sandtrace's syscall probe: every system call (one record, at exit), fork, exec and exit of the
 * tasks in one cgroup v2 subtree, streamed through a ring buffer. Pointer arguments (paths, argv,
 * socket addresses) are copied at entry (again at exit if unreadable then); whatever is cut or
 * unreadable is marked on the record. All interpretation happens in TypeScript. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sandtrace.h"

char LICENSE[] SEC("license") = "GPL";

/* Hides a value from the optimiser so that a following mask is kept for the verifier. */
#define opaque(v) asm volatile("" : "+r"(v))

/* Set by the loader before load. */
const volatile __u32 ns_level = 0;  /* level of the pid namespace pids are reported in */
const volatile __u32 ns_inum = 0;   /* its inode number */
const volatile __u64 wakeup_bytes = 1 << 18; /* wake the loader once this much is queued */
const volatile __u32 filter_tgid = 0; /* host tgid to follow (with its descendants) instead of a cgroup */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 26); /* resized by the loader */
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} cgroup SEC(".maps");

/* Host tgids followed in pid mode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u8);
} tracked SEC(".maps");

/* Records that did not fit in the ring: reported exactly as `lost`. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stash);
} stashes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct rec_buf);
} scratch SEC(".maps");

static __always_inline bool wanted(void)
{
	if (filter_tgid) {
		u32 tgid = bpf_get_current_pid_tgid() >> 32;
		return bpf_map_lookup_elem(&tracked, &tgid) != NULL;
	}
	return bpf_current_task_under_cgroup(&cgroup, 0) == 1;
}

__u64 target_ns = 0;

/* The task's number in the target pid namespace (0 when it is not in it). Direct loads through
 * BTF pointers (no helper calls): this runs on every syscall of the target. */
static __always_inline u32 pid_in_ns(struct pid *p)
{
	struct upid u = {};

	if (!p || p->level < ns_level)
		return 0;
	bpf_probe_read_kernel(&u, sizeof(u), &p->numbers[ns_level]);
	if (!u.ns)
		return 0;
	/* Remember the namespace's address once its inode matched: one compare from then on. */
	if ((u64)u.ns == target_ns)
		return u.nr;
	if (ns_inum && BPF_CORE_READ(u.ns, ns.inum) != ns_inum) /* no --ns-inum: the initial namespace */
		return 0;
	target_ns = (u64)u.ns;
	return u.nr;
}

/* pid, tid and comm of t, which is always the current task here. */
static __always_inline void fill_task(struct rec *r, struct task_struct *t)
{
	r->tid = pid_in_ns(t->thread_pid);
	r->pid = pid_in_ns(t->group_leader->thread_pid);
	bpf_get_current_comm(&r->comm, sizeof(r->comm));
}

/* Per-CPU memo of the last task's pid, tid and comm: consecutive syscalls on a CPU are mostly
 * the same task's. Any fork, exec, exit or prctl in the target bumps task_epoch and drops it. */
struct task_memo {
	u64 pid_tgid, epoch, count;
	u32 pid, tid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct task_memo);
} memo SEC(".maps");

__u64 task_epoch = 0;

/* Fills pid, tid and comm; returns true when it is time to look at the ring's fill level. */
static __always_inline bool fill_task_cached(struct rec *r, struct task_struct *t)
{
	u32 k = 0;
	u64 id = bpf_get_current_pid_tgid();
	struct task_memo *m = bpf_map_lookup_elem(&memo, &k);

	if (!m) {
		fill_task(r, t);
		return true;
	}
	if (m->pid_tgid == id && m->epoch == task_epoch) {
		r->pid = m->pid;
		r->tid = m->tid;
		__builtin_memcpy(r->comm, m->comm, 16);
	} else {
		fill_task(r, t);
		m->pid_tgid = id;
		m->epoch = task_epoch;
		m->pid = r->pid;
		m->tid = r->tid;
		__builtin_memcpy(m->comm, r->comm, 16);
	}
	return (++m->count & 15) == 0;
}

static __always_inline void count_lost(void)
{
	u32 k = 0;
	u64 *n = bpf_map_lookup_elem(&lost, &k);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline u64 wake_flag(void)
{
	return bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void output(struct rec_buf *b)
{
	u32 len = REC_FIXED + b->r.data_len;

	if (len > sizeof(*b))
		len = sizeof(*b);
	if (bpf_ringbuf_output(&rb, b, len, wake_flag()))
		count_lost();
}

static __always_inline void mark_cut(struct rec_buf *b, u8 bit)
{
	b->r.cut |= bit;
	b->r.flags |= F_TRUNC;
}

/* Appends a user string at data[off]; returns the bytes written (with the NUL). Nothing is lost
 * silently: a string longer than max or past the end of the record marks `bit` in cut, a pointer
 * that cannot be read (bad address, or a page not faulted in yet) marks it in bad. */
static __always_inline u32 put_ustr(struct rec_buf *b, u32 off, u64 ptr, u32 max, u8 bit)
{
	long n;

	if (!ptr)
		return 0;
	if (off >= DATA_MAX) {
		mark_cut(b, bit);
		return 0;
	}
	opaque(off);
	opaque(max);
	n = bpf_probe_read_user_str(&b->data[off & (DATA_MAX - 1)], max & (STR_MAX - 1 + STR_MAX), (void *)ptr);
	if (n <= 0) {
		b->r.bad |= bit;
		return 0;
	}
	if ((u32)n == max) {
		/* Full buffer: cut unless the source's last byte read is its NUL (exactly max-1 bytes). */
		char c = 1;

		bpf_probe_read_user(&c, 1, (void *)(ptr + max - 1));
		if (c)
			mark_cut(b, bit);
	}
	return n;
}

static __always_inline void put_path(struct rec_buf *b, u64 ptr)
{
	u32 n = put_ustr(b, b->r.data_len, ptr, STR_MAX, A_PATH);

	b->r.len_path = n;
	b->r.data_len += n;
}

static __always_inline void put_path2(struct rec_buf *b, u64 ptr)
{
	u32 n = put_ustr(b, b->r.data_len, ptr, STR_MAX, A_PATH2);

	b->r.len_path2 = n;
	b->r.data_len += n;
}

static __always_inline void put_addr(struct rec_buf *b, u64 ptr, u64 len)
{
	u32 off = b->r.data_len;

	if (!ptr || len == 0)
		return;
	if (off >= DATA_MAX) {
		mark_cut(b, A_ADDR);
		return;
	}
	if (len > ADDR_MAX) { /* connect/bind refuse these (EINVAL); accept reports the full length */
		len = ADDR_MAX;
		mark_cut(b, A_ADDR);
	}
	opaque(off);
	opaque(len);
	if (bpf_probe_read_user(&b->data[off & (DATA_MAX - 1)], len & (ADDR_MAX * 2 - 1), (void *)ptr)) {
		b->r.bad |= A_ADDR;
		return;
	}
	b->r.len_addr = len;
	b->r.data_len += len;
}

/* argv is an array of 8-byte pointers, or of 4-byte ones for an i386 (compat) execve. */
static __always_inline void put_argv(struct rec_buf *b, u64 argv, bool compat)
{
	u32 total = 0;
	u32 step = compat ? 4 : 8;

	if (!argv)
		return;
	for (int i = 0; i < ARGV_MAX; i++) {
		u64 p = 0;
		u32 n;

		if (bpf_probe_read_user(&p, step, (void *)(argv + i * step))) {
			b->r.bad |= A_ARGV;
			return;
		}
		if (!p)
			return;
		n = put_ustr(b, b->r.data_len, p, ARG_MAX_LEN, A_ARGV);
		if (!n) /* unreadable element, or the record is full: both marked */
			return;
		b->r.data_len += n;
		total += n;
		b->r.len_argv = total;
		b->r.argc = i + 1;
	}
	{
		u64 p = 0;

		if (bpf_probe_read_user(&p, step, (void *)(argv + ARGV_MAX * step)))
			b->r.bad |= A_ARGV;
		else if (p)
			mark_cut(b, A_ARGV);
	}
}

/* x86_64 syscalls whose pointer arguments are read at entry. Returns false when there is none. */
static __always_inline bool has_enter_data(long nr)
{
	switch (nr) {
	case 2: case 4: case 6: case 21: case 42: case 44: case 46: case 49: case 59: case 76: case 80:
	case 82: case 83: case 84: case 85: case 86: case 87: case 88: case 89: case 90: case 92:
	case 94: case 132: case 133: case 137: case 155: case 161: case 163: case 165: case 166:
	case 167: case 188: case 189: case 191: case 192: case 194: case 195: case 197: case 198:
	case 235: case 254: case 257: case 258: case 259: case 260: case 261: case 262: case 263:
	case 264: case 265: case 266: case 267: case 268: case 269: case 280: case 316: case 319:
	case 322: case 332: case 437: case 439: case 452:
	case 60: case 231: /* exit, exit_group: never return, reported at task exit */
	case 43: case 288: case 45: case 51: case 52: case 47: /* the caller's address buffer size (at_exit_addr) */
	case 307: case 299: /* sendmmsg's destinations; recvmmsg's msg_name and room (stash_recvmmsg) */
		return true;
	}
	return false;
}

/* The size of the caller's address buffer (*lenp at entry) for a call the kernel writes an
 * address back to: afterwards *lenp holds the address's full size, and only this many bytes of
 * it were copied. ROOM_UNKNOWN when it cannot be read. */
static __always_inline u32 addr_room(u64 lenp)
{
	int len = 0;

	if (!lenp || bpf_probe_read_user(&len, sizeof(len), (void *)lenp))
		return ROOM_UNKNOWN;
	return len < 0 ? 0 : (u32)len;
}

/* The head of a msghdr: msg_name and msg_namelen, as struct user_msghdr or (compat) struct
 * compat_msghdr (u32 msg_name, s32 msg_namelen) lays them out. False when it cannot be read. */
static __always_inline bool msg_name(u64 msg, bool compat, u64 *name, int *namelen)
{
	if (compat) {
		u32 m[2] = {};

		if (!msg || bpf_probe_read_user(m, sizeof(m), (void *)msg))
			return false;
		*name = m[0];
		*namelen = (int)m[1];
	} else {
		struct { u64 name; int namelen; } m = {};

		if (!msg || bpf_probe_read_user(&m, 12, (void *)msg))
			return false;
		*name = m.name;
		*namelen = m.namelen;
	}
	return true;
}

/* recvmsg: the room for the sender's address is msg_namelen at entry (the kernel writes the
 * address's full size back there). */
static __always_inline u32 msg_room(u64 msg, bool compat)
{
	u64 name = 0;
	int len = 0;

	if (!msg_name(msg, compat, &name, &len))
		return ROOM_UNKNOWN;
	return len < 0 ? 0 : (u32)len;
}

/* sendmmsg/recvmmsg: struct mmsghdr is a user_msghdr and a u32 msg_len, 64 bytes; i386's
 * compat_mmsghdr a compat_msghdr and a u32, 32 bytes. */
static __always_inline u64 mmsg_at(u64 vec, bool compat, u32 i)
{
	return vec + (u64)i * (compat ? 32 : 64);
}

/* Appends one entry of a sendmmsg/recvmmsg address list (sandtrace.h): len bytes of the sockaddr
 * at ptr (ptr 0 or len 0: a null entry), `word` holding MM_CUT or MM_BAD already. Returns false
 * when the list ends here (MM_BAD: this entry, or the address, could not be read). At most
 * MMSG_ADDR_MAX entries of 2 + ADDR_MAX bytes, and nothing else in such a record: always room. */
static __always_inline bool put_mm_entry(struct rec_buf *b, u64 ptr, u32 len, u32 word)
{
	u32 off = b->r.data_len;

	if (off > DATA_MAX - 2 - ADDR_MAX)
		return false;
	if (!ptr || (word & MM_BAD))
		len = 0;
	if (len > ADDR_MAX) { /* as sendmsg's: the kernel uses no more than sizeof(sockaddr_storage) */
		len = ADDR_MAX;
		word |= MM_CUT;
	}
	opaque(off);
	off &= DATA_MAX - 1;
	if (len) {
		opaque(len);
		if (bpf_probe_read_user(&b->data[off + 2], len & (ADDR_MAX * 2 - 1), (void *)ptr)) {
			word |= MM_BAD;
			len = 0;
		}
	}
	if (word & MM_BAD)
		b->r.bad |= A_ADDR;
	if (word & MM_CUT)
		mark_cut(b, A_ADDR);
	word |= len;
	b->data[off] = word & 0xff;
	b->data[off + 1] = (word >> 8) & 0xff;
	b->r.data_len = off + 2 + len;
	b->r.len_addr += 2 + len;
	return !(word & MM_BAD);
}

/* sendmmsg(fd, msgvec, vlen, flags): each message's destination, msg_name as its header holds it
 * at the call, for the first min(vlen, MMSG_ADDR_MAX) messages. Which of them the call sent is
 * known at the return only: the decoder keeps those (the first ret, or the first one when the
 * call failed). */
static __noinline void collect_sendmmsg(struct rec_buf *b, u64 vec, u32 vlen, bool compat, u32 from)
{
	for (u32 i = 0; i < MMSG_ADDR_MAX; i++) {
		u64 name = 0;
		int namelen = 0;

		if (i < from)
			continue;
		if (i >= vlen)
			break;
		if (!msg_name(mmsg_at(vec, compat, i), compat, &name, &namelen)) {
			put_mm_entry(b, 0, 0, MM_BAD);
			break;
		}
		if (!put_mm_entry(b, name, namelen ? (u32)namelen : 0, 0))
			break;
	}
}

/* recvmmsg, at entry: each message's msg_name (where the kernel will write the sender, whatever
 * another thread points it at meanwhile) and room (msg_namelen), for the first
 * min(vlen, MMSG_ADDR_MAX) messages. */
static __noinline void stash_recvmmsg(struct stash *s, u64 vec, u32 vlen, bool compat)
{
	for (u32 i = 0; i < MMSG_ADDR_MAX; i++) {
		u64 name = 0;
		int len = 0;

		if (i >= vlen)
			break;
		if (msg_name(mmsg_at(vec, compat, i), compat, &name, &len)) {
			s->mm_name[i] = name;
			s->mm_room[i] = len < 0 ? 0 : (u32)len;
		} else {
			s->mm_name[i] = NAME_UNKNOWN;
			s->mm_room[i] = ROOM_UNKNOWN;
		}
	}
	s->mm_set = 1;
}

static __always_inline void collect_enter(struct rec_buf *b, long nr, const u64 *a)
{
	switch (nr) {
	/* path in arg 0 */
	case 2: case 4: case 6: case 21: case 76: case 80: case 83: case 84: case 85: case 87:
	case 89: case 90: case 92: case 94: case 132: case 133: case 137: case 161: case 163:
	case 166: case 167: case 188: case 189: case 191: case 192: case 194: case 195: case 197:
	case 198: case 235: case 319:
		put_path(b, a[0]);
		break;
	/* path in arg 1 (dirfd-relative, or the inotify watch) */
	case 254: case 257: case 258: case 259: case 260: case 261: case 262: case 263: case 267:
	case 268: case 269: case 280: case 332: case 437: case 439: case 452:
		put_path(b, a[1]);
		break;
	/* two paths in args 0 and 1 */
	case 82: case 86: case 88: case 155: case 165:
		put_path(b, a[0]);
		put_path2(b, a[1]);
		break;
	/* renameat, renameat2, linkat: args 1 and 3 */
	case 264: case 265: case 316:
		put_path(b, a[1]);
		put_path2(b, a[3]);
		break;
	case 266: /* symlinkat(target, newdirfd, linkpath) */
		put_path(b, a[0]);
		put_path2(b, a[2]);
		break;
	case 59: /* execve */
		put_path(b, a[0]);
		put_argv(b, a[1], false);
		break;
	case 322: /* execveat */
		put_path(b, a[1]);
		put_argv(b, a[2], false);
		break;
	case 42: case 49: /* connect, bind */
		put_addr(b, a[1], a[2]);
		break;
	case 44: /* sendto */
		put_addr(b, a[4], a[5]);
		break;
	case 43: case 288: case 51: case 52: /* accept, accept4, getsockname, getpeername */
		b->r.uid = addr_room(a[2]);
		break;
	case 45: /* recvfrom */
		b->r.uid = addr_room(a[5]);
		break;
	case 47: /* recvmsg */
		b->r.uid = msg_room(a[1], false);
		break;
	case 307: /* sendmmsg: each message's msg_name */
		collect_sendmmsg(b, a[1], (u32)a[2], false, 0);
		break;
	case 46: { /* sendmsg: msg_name */
		struct user_msghdr m = {};

		if (!a[1])
			break;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)a[1]))
			b->r.bad |= A_ADDR;
		else
			put_addr(b, (u64)m.msg_name, (u64)(u32)m.msg_namelen);
		break;
	}
	}
}

/* The same for i386 (compat: int 0x80 or sysenter) calls, in i386 numbering: paths, execve argv,
 * and the addresses of the direct socket calls (not of the socketcall multiplexer). */
static __always_inline bool has_enter_data32(long nr)
{
	switch (nr) {
	case 5: case 8: case 9: case 10: case 11: case 12: case 14: case 15: case 16: case 18: case 21:
	case 22: case 30: case 33: case 38: case 39: case 40: case 51: case 52: case 61: case 83: case 84:
	case 85: case 86: case 87: case 92: case 99: case 106: case 107: case 115: case 182: case 193:
	case 195: case 196: case 198: case 212: case 217: case 226: case 227: case 229: case 230: case 232:
	case 233: case 235: case 236: case 268: case 271: case 292: case 295: case 296: case 297: case 298:
	case 299: case 300: case 301: case 302: case 303: case 304: case 305: case 306: case 307: case 320:
	case 353: case 356: case 358: case 383: case 412: case 437: case 439: case 452:
	case 361: case 362: case 369: case 370: /* bind, connect, sendto, sendmsg */
	case 1: case 252: /* exit, exit_group: never return, reported at task exit */
	case 102: /* socketcall: unpacked into the direct call (unpack_socketcall) */
	case 364: case 371: case 367: case 368: case 372: /* the caller's address buffer size (at_exit_addr) */
	case 345: case 337: case 417: /* sendmmsg; recvmmsg, recvmmsg_time64 (stash_recvmmsg) */
		return true;
	}
	return false;
}

static __always_inline void collect_enter32(struct rec_buf *b, long nr, const u64 *a)
{
	switch (nr) {
	/* path in arg 0 */
	case 5: case 8: case 10: case 12: case 14: case 15: case 16: case 18: case 22: case 30: case 33:
	case 39: case 40: case 51: case 52: case 61: case 84: case 85: case 86: case 87: case 92: case 99:
	case 106: case 107: case 115: case 182: case 193: case 195: case 196: case 198: case 212: case 226:
	case 227: case 229: case 230: case 232: case 233: case 235: case 236: case 268: case 271: case 356:
		put_path(b, a[0]);
		break;
	/* path in arg 1 */
	case 292: case 295: case 296: case 297: case 298: case 299: case 300: case 301: case 305: case 306:
	case 307: case 320: case 383: case 412: case 437: case 439: case 452:
		put_path(b, a[1]);
		break;
	/* link, mount, rename, symlink, pivot_root: args 0 and 1 */
	case 9: case 21: case 38: case 83: case 217:
		put_path(b, a[0]);
		put_path2(b, a[1]);
		break;
	/* renameat, linkat, renameat2: args 1 and 3 */
	case 302: case 303: case 353:
		put_path(b, a[1]);
		put_path2(b, a[3]);
		break;
	case 304: /* symlinkat(target, newdirfd, linkpath) */
		put_path(b, a[0]);
		put_path2(b, a[2]);
		break;
	case 11: /* execve */
		put_path(b, a[0]);
		put_argv(b, a[1], true);
		break;
	case 358: /* execveat */
		put_path(b, a[1]);
		put_argv(b, a[2], true);
		break;
	case 361: case 362: /* bind, connect */
		put_addr(b, a[1], a[2]);
		break;
	case 369: /* sendto */
		put_addr(b, a[4], a[5]);
		break;
	case 364: case 367: case 368: /* accept4, getsockname, getpeername */
		b->r.uid = addr_room(a[2]);
		break;
	case 371: /* recvfrom */
		b->r.uid = addr_room(a[5]);
		break;
	case 372: /* recvmsg */
		b->r.uid = msg_room(a[1], true);
		break;
	case 345: /* sendmmsg: struct compat_mmsghdr, 32 bytes */
		collect_sendmmsg(b, a[1], (u32)a[2], true, 0);
		break;
	case 370: { /* sendmsg: struct compat_msghdr opens with u32 msg_name, s32 msg_namelen */
		u32 m[2] = {};

		if (!a[1])
			break;
		if (bpf_probe_read_user(m, sizeof(m), (void *)a[1]))
			b->r.bad |= A_ADDR;
		else
			put_addr(b, m[0], m[1]);
		break;
	}
	}
}

/* socketcall(call, u32 *args): the i386 multiplexer older and static libcs (uclibc: much ELF
 * malware) use for every socket call. Unpacked into the direct call it stands for, in i386
 * numbering, so that its address and descriptor are decoded like a direct call's; F_SOCKETCALL
 * says how it was made. The kernel reads the same array (after the entry hook), so what a racing
 * thread writes between the two reads can differ, as for any argument read at entry. */
static __always_inline void unpack_socketcall(struct rec_buf *b)
{
	u32 v[6] = {};
	u64 ptr = b->r.a[1];
	int nr, n;

	/* SYS_SOCKET..SYS_SENDMMSG: the direct call and how many u32 arguments it takes. accept has
	 * no direct i386 call: accept4 with flags 0; send/recv are sendto/recvfrom without an address. */
	switch (b->r.a[0]) {
	case 1: nr = 359; n = 3; break;  /* socket */
	case 2: nr = 361; n = 3; break;  /* bind */
	case 3: nr = 362; n = 3; break;  /* connect */
	case 4: nr = 363; n = 2; break;  /* listen */
	case 5: nr = 364; n = 3; break;  /* accept */
	case 6: nr = 367; n = 3; break;  /* getsockname */
	case 7: nr = 368; n = 3; break;  /* getpeername */
	case 8: nr = 360; n = 4; break;  /* socketpair */
	case 9: nr = 369; n = 4; break;  /* send */
	case 10: nr = 371; n = 4; break; /* recv */
	case 11: nr = 369; n = 6; break; /* sendto */
	case 12: nr = 371; n = 6; break; /* recvfrom */
	case 13: nr = 373; n = 2; break; /* shutdown */
	case 14: nr = 366; n = 5; break; /* setsockopt */
	case 15: nr = 365; n = 5; break; /* getsockopt */
	case 16: nr = 370; n = 3; break; /* sendmsg */
	case 17: nr = 372; n = 3; break; /* recvmsg */
	case 18: nr = 364; n = 4; break; /* accept4 */
	case 19: nr = 337; n = 5; break; /* recvmmsg */
	case 20: nr = 345; n = 4; break; /* sendmmsg */
	default: return; /* the kernel refuses it (EINVAL): reported as socketcall */
	}
	if (bpf_probe_read_user(v, n * sizeof(u32), (void *)ptr)) {
		b->r.bad |= A_ADDR; /* EFAULT for the kernel too */
		return;
	}
	b->r.nr = nr;
	b->r.flags |= F_SOCKETCALL;
	for (int i = 0; i < 6; i++)
		b->r.a[i] = v[i];
}

/* An i386 call's data at entry: socketcall unpacked first. */
static __always_inline void prepare32(struct rec_buf *b, long nr)
{
	if (nr == 102)
		unpack_socketcall(b);
	collect_enter32(b, b->r.nr, b->r.a);
}

/* sendmmsg's list as read at entry (the whole record's data): the index of the first entry that
 * could not be read (MM_BAD), and its offset in *at; MMSG_ADDR_MAX when every entry was read. */
static __noinline u32 mm_first_bad(struct rec_buf *b, u32 *at)
{
	u32 off = 0;

	for (u32 i = 0; i < MMSG_ADDR_MAX; i++) {
		u32 word;

		if (off + 2 > b->r.data_len)
			break;
		opaque(off);
		off &= DATA_MAX - 1;
		word = b->data[off] | ((u32)b->data[off + 1] << 8);
		if (word & MM_BAD) {
			*at = off;
			return i;
		}
		off += 2 + (word & MM_LEN);
	}
	return MMSG_ADDR_MAX;
}

/* sendmmsg, at the return, when a message header or address could not be read at entry: read
 * again from that message on, and only if the call got that far (the first ret messages, or the
 * first when it failed). What was read at entry before it stands: a thread could have repointed
 * it since the kernel sent it. */
static __noinline void reread_sendmmsg(struct rec_buf *b, long ret)
{
	u32 at = 0, k = mm_first_bad(b, &at);
	u32 sent = ret > 0 ? (u32)ret : 1;

	if (k >= sent || k >= MMSG_ADDR_MAX)
		return; /* not sent: the decoder keeps only the messages before it */
	b->r.bad &= ~A_ADDR;
	b->r.len_addr = at;
	b->r.data_len = at;
	collect_sendmmsg(b, b->r.a[1], (u32)b->r.a[2], (b->r.flags & F_COMPAT) != 0, k);
	b->r.flags |= F_REREAD;
}

static __always_inline bool is_sendmmsg(long nr, bool compat)
{
	return nr == (compat ? 345 : 307);
}

static __noinline void reread(struct rec_buf *b, long nr)
{
	/* the caller's buffer size as read at entry (*lenp has changed since); unknown for a socketcall
	 * whose arguments could not be unpacked then */
	u32 room = (b->r.flags & F_COMPAT) && b->r.nr == 102 ? ROOM_UNKNOWN : b->r.uid;

	b->r.data_len = 0;
	b->r.len_path = b->r.len_path2 = b->r.len_argv = b->r.len_addr = 0;
	b->r.argc = 0;
	b->r.cut = b->r.bad = 0;
	b->r.flags &= ~F_TRUNC;
	if (b->r.flags & F_COMPAT)
		prepare32(b, b->r.nr); /* unpacked socketcall: the direct call; else unpacked now */
	else
		collect_enter(b, nr, b->r.a);
	b->r.uid = room;
}

/* open, creat, openat, openat2 (x86_64 2/85/257/437; i386 5/8/295/437): the call's path names the
 * file behind the descriptor it returns. */
static __always_inline bool is_open(long nr, bool compat)
{
	return compat ? nr == 5 || nr == 8 || nr == 295 || nr == 437 : nr == 2 || nr == 85 || nr == 257 || nr == 437;
}

/* The file behind a task's descriptor, from its file table (NULL: none). */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct file **fds, *f = NULL;
	struct fdtable *fdt;

	if (fd < 0 || fd > 0x7fffffff)
		return NULL;
	fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || (u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

#define KPATH_STEPS 64 /* path components plus mount crossings walked; deeper: not resolved */

static __always_inline struct mount *real_mount(struct vfsmount *m)
{
	return (struct mount *)((void *)m - bpf_core_field_offset(struct mount, mnt));
}

/* kernel_path's walk, one step per bpf_loop() iteration (an unrolled or bounded loop of such
 * branching steps is more than the verifier will explore). The components are written backwards,
 * ending at tmp[STR_MAX]. */
struct kwalk {
	unsigned char *tmp;
	struct dentry *d, *root_d;
	struct vfsmount *vm, *root_m;
	struct mount *m;
	u32 pos;
	int found; /* reached the task's root */
};

static long kwalk_step(u32 i, void *ctx)
{
	struct kwalk *w = ctx;
	/* locals: BPF_CORE_READ's relocations must name kernel types only, not struct kwalk */
	struct dentry *d = w->d, *parent;
	struct vfsmount *vm = w->vm;
	struct mount *m = w->m;
	const unsigned char *name;
	u32 n, pos = w->pos;

	if (d == w->root_d && vm == w->root_m) {
		w->found = 1;
		return 1;
	}
	if (d == BPF_CORE_READ(vm, mnt_root)) { /* the top of a mount: on to where it is mounted */
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		if (up == m)
			return 1; /* the namespace's root, not the task's: outside the task's root */
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->m = up;
		w->vm = &up->mnt;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d)
		return 1; /* a filesystem's root that is no mount's top: not reachable from the root */
	n = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	if (n == 0 || n > 255 || pos > STR_MAX || pos < n + 1 + 256)
		return 1; /* room for the next one kept too: a path longer than STR_MAX - 256 is not named */
	pos -= n;
	if (bpf_probe_read_kernel(&w->tmp[pos & (STR_MAX - 1)], n & 255, name))
		return 1;
	pos--;
	w->tmp[pos & (STR_MAX - 1)] = '/';
	w->pos = pos;
	w->d = parent;
	return 0;
}

/* An open whose path could not be read at entry: the name of the file the kernel opened, from the
 * descriptor it returned (the task's file table at sys_exit), walked up dentry by dentry to the
 * task's root, as d_path() would (bpf_d_path() itself needs an fentry program, refused here).
 * Unlike a re-read of the caller's string, another thread cannot change it after the kernel
 * resolved it. Written as the record's path, marked K_PATH in rec.bad. False, record untouched,
 * when it cannot be had: no such descriptor, a file without a name (O_TMPFILE, or unlinked
 * meanwhile: its dentry is unhashed, and not a filesystem's root), outside the task's root, or deeper than KPATH_STEPS. */
static __noinline bool kernel_path(struct rec_buf *b, struct task_struct *t, long fd)
{
	struct kwalk w = { .tmp = &b->data[DATA_MAX], .pos = STR_MAX };
	struct file *f = fd_file(t, fd);
	struct dentry *d;
	struct vfsmount *vm;
	u32 n;

	if (!f)
		return false;
	d = BPF_CORE_READ(f, f_path.dentry);
	vm = BPF_CORE_READ(f, f_path.mnt);
	/* unlinked, as d_path() tells it: unhashed and not a filesystem's root (which never is hashed) */
	if (!d || !vm || (!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d))
		return false;
	w.d = d;
	w.vm = vm;
	w.m = real_mount(vm);
	w.root_d = BPF_CORE_READ(t, fs, root.dentry);
	w.root_m = BPF_CORE_READ(t, fs, root.mnt);
	bpf_loop(KPATH_STEPS, kwalk_step, &w, 0);
	if (!w.found || w.pos > STR_MAX)
		return false;
	if (w.pos == STR_MAX) /* the root itself */
		w.tmp[--w.pos & (STR_MAX - 1)] = '/';
	n = STR_MAX - w.pos;
	opaque(n);
	if (bpf_probe_read_kernel(&b->data[0], n & (STR_MAX - 1), &w.tmp[w.pos & (STR_MAX - 1)]))
		return false;
	b->data[n & (STR_MAX - 1)] = 0;
	b->r.len_path = n + 1;
	b->r.data_len = n + 1;
	b->r.bad = (b->r.bad & ~A_PATH) | K_PATH;
	b->r.cut &= ~A_PATH;
	return true;
}

/* connect (x86_64 42; i386 362, direct or unpacked from socketcall at entry) */
static __always_inline bool is_connect(long nr, bool compat)
{
	return nr == (compat ? 362 : 42);
}

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define AF_INET 2
#define AF_INET6 10

/* A connect whose address could not be read at entry and that connected (0, or EINPROGRESS for a
 * non-blocking socket): the peer the kernel connected the socket to, from the socket itself
 * (sk->__sk_common: family, daddr or v6_daddr, dport), as getpeername() would give it, not a
 * re-read of the caller's sockaddr, which another thread can rewrite while a blocking connect
 * waits for the handshake. Written as the record's address, marked K_ADDR in rec.bad. False,
 * record untouched, for other families (unix, netlink, ...), or no peer set. */
static __noinline bool kernel_peer(struct rec_buf *b, struct task_struct *t, long fd)
{
	struct file *f = fd_file(t, fd);
	struct socket *sock;
	struct sock *sk;
	u32 off = b->r.data_len, n;
	u16 fam, port;
	struct {
		u16 family;
		u16 port;   /* network order */
		u32 flow;   /* sockaddr_in: the address; sockaddr_in6: flowinfo */
		u8 a6[16];  /* sockaddr_in: sin_zero (8 bytes, then unused) */
		u32 scope;
	} sa = {};

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK || off >= DATA_MAX)
		return false;
	sock = BPF_CORE_READ(f, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk)
		return false;
	fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (!port)
		return false;
	sa.family = fam;
	sa.port = port;
	if (fam == AF_INET) {
		sa.flow = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		if (!sa.flow)
			return false;
		n = 16;
	} else if (fam == AF_INET6) {
		if (bpf_core_read(sa.a6, sizeof(sa.a6), &sk->__sk_common.skc_v6_daddr))
			return false;
		n = 28;
	} else {
		return false;
	}
	opaque(off);
	if (bpf_probe_read_kernel(&b->data[off & (DATA_MAX - 1)], n & 31, &sa))
		return false;
	b->r.len_addr = n;
	b->r.data_len = off + n;
	b->r.bad = (b->r.bad & ~A_ADDR) | K_ADDR;
	b->r.cut &= ~A_ADDR;
	return true;
}

/* Addresses the kernel writes back: accept, accept4, recvfrom, getsockname, getpeername, recvmsg. */
static __always_inline bool has_exit_data(long nr)
{
	return nr == 43 || nr == 288 || nr == 45 || nr == 51 || nr == 52 || nr == 47;
}

/* i386: accept4, recvfrom, getsockname, getpeername, recvmsg (direct, or unpacked socketcall). */
static __always_inline bool has_exit_data32(long nr)
{
	return nr == 364 || nr == 371 || nr == 367 || nr == 368 || nr == 372;
}

/* An address of `len` bytes (the size the kernel wrote back) at ptr, of which the kernel copied
 * at most `room`. */
static __always_inline void put_written_addr(struct rec_buf *b, u64 ptr, int len, u32 room)
{
	/* the kernel copied no more than the caller's buffer held: what lies beyond is the
	 * caller's own memory, not the address (the address shown is then a prefix) */
	if (len > 0 && (u32)len > room) {
		len = room;
		b->r.cut |= A_ADDR;
	}
	if (len > 0)
		put_addr(b, ptr, (u64)len);
}

/* recvfrom (addr_in_4) has the address in args 4 and 5, the others in args 1 and 2. */
static __always_inline void collect_exit(struct rec_buf *b, bool addr_in_4, const u64 *a, long ret, u32 room)
{
	u64 ptr, lenp;
	int len = 0;

	if (ret < 0)
		return;
	if (addr_in_4) {
		ptr = a[4];
		lenp = a[5];
	} else {
		ptr = a[1];
		lenp = a[2];
	}
	if (!ptr || !lenp)
		return;
	if (bpf_probe_read_user(&len, sizeof(len), (void *)lenp)) {
		b->r.bad |= A_ADDR;
		return;
	}
	put_written_addr(b, ptr, len, room);
}

/* recvmsg: the sender's address at msg_name, msg_namelen bytes of it as the kernel wrote that
 * back (0: the socket gave no address). Both are read from the msghdr again at the return. */
static __always_inline void collect_exit_msg(struct rec_buf *b, u64 msg, bool compat, long ret, u32 room, u64 at_call)
{
	u64 name = 0;
	int len = 0;

	if (ret < 0 || !msg)
		return;
	if (!msg_name(msg, compat, &name, &len)) {
		b->r.bad |= A_ADDR;
		return;
	}
	/* where the kernel wrote: msg_name at the call (a pointer swapped since would name a made-up
	 * sender); when the msghdr could not be read then (not paged in yet), msg_name now, and said so */
	if (at_call != NAME_UNKNOWN)
		name = at_call;
	else if (name)
		b->r.flags |= F_REREAD;
	if (name) /* NULL: no address asked for, none written */
		put_written_addr(b, name, len, room);
}

/* recvmmsg, at the return: the sender of each message received (the first ret, at most
 * MMSG_ADDR_MAX), written where its msg_name pointed at the call, msg_namelen as the kernel wrote
 * it back, cut at the room msg_namelen gave at the call. s: the stash with msg_name and room at
 * the call (NULL when the entry was not seen: taken from the header now, room unknown). */
static __noinline void collect_recvmmsg(struct rec_buf *b, struct stash *s, long ret)
{
	bool compat = (b->r.flags & F_COMPAT) != 0;
	u64 vec = b->r.a[1];

	for (u32 i = 0; i < MMSG_ADDR_MAX; i++) {
		u64 name = 0, at_call = NAME_UNKNOWN;
		u32 room = ROOM_UNKNOWN, word = 0;
		int len = 0;

		if ((long)i >= ret)
			break;
		if (!msg_name(mmsg_at(vec, compat, i), compat, &name, &len)) {
			put_mm_entry(b, 0, 0, MM_BAD);
			break;
		}
		if (s) {
			at_call = s->mm_name[i];
			room = s->mm_room[i];
		}
		if (at_call != NAME_UNKNOWN)
			name = at_call;
		else if (name) /* the header was not readable at the call: msg_name now, and said so */
			b->r.flags |= F_REREAD;
		if (len < 0)
			len = 0;
		if ((u32)len > room) { /* the kernel copied no more than room: the rest is the caller's memory */
			len = room;
			word = MM_CUT;
		}
		if (!put_mm_entry(b, name, name ? (u32)len : 0, word))
			break;
	}
}

static __always_inline bool is_recvmmsg(long nr, bool compat)
{
	return compat ? nr == 337 || nr == 417 : nr == 299;
}

/* The address the kernel wrote back (accept, accept4, recvfrom, getsockname, getpeername,
 * recvmsg, direct or through socketcall), at most `room` bytes of it; recvmmsg's senders. */
static __always_inline void at_exit_addr(struct rec_buf *b, long ret, u32 room, u64 msg_name_at_call, struct stash *s)
{
	bool compat = (b->r.flags & F_COMPAT) != 0;
	long nr = b->r.nr;

	if (nr == (compat ? 372 : 47))
		collect_exit_msg(b, b->r.a[1], compat, ret, room, msg_name_at_call);
	else if (is_recvmmsg(nr, compat)) {
		if (ret > 0)
			collect_recvmmsg(b, s, ret);
	}
	else if (compat ? has_exit_data32(nr) : has_exit_data(nr))
		collect_exit(b, nr == (compat ? 371 : 45), b->r.a, ret, room);
}

static __always_inline bool is_compat(struct task_struct *t)
{
	return (t->thread_info.status & 0x0002) != 0; /* TS_COMPAT */
}

static __always_inline void regs_args(struct pt_regs *regs, bool compat, u64 *a)
{
	if (compat) {
		a[0] = (u32)regs->bx;
		a[1] = (u32)regs->cx;
		a[2] = (u32)regs->dx;
		a[3] = (u32)regs->si;
		a[4] = (u32)regs->di;
		a[5] = (u32)regs->bp;
	} else {
		a[0] = regs->di;
		a[1] = regs->si;
		a[2] = regs->dx;
		a[3] = regs->r10;
		a[4] = regs->r8;
		a[5] = regs->r9;
	}
}

static __always_inline void init_rec(struct rec_buf *b, struct task_struct *t, u8 type, long nr)
{
	b->r.type = type;
	b->r.flags = 0;
	b->r.data_len = 0;
	b->r.nr = nr;
	b->r.ts = bpf_ktime_get_ns();
	b->r.len_path = b->r.len_path2 = b->r.len_argv = b->r.len_addr = 0;
	b->r.argc = 0;
	b->r.cut = b->r.bad = 0;
	b->r.uid = type == REC_EXEC ? (u32)bpf_get_current_uid_gid() : 0;
	b->r.ret = 0;
	fill_task(&b->r, t);
}

static __always_inline struct rec_buf *get_scratch(void)
{
	u32 k = 0;

	return bpf_map_lookup_elem(&scratch, &k);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t;
	struct stash *s;
	bool in64 = has_enter_data(id), in32 = has_enter_data32(id), compat;

	if (!in64 && !in32)
		return 0;
	t = bpf_get_current_task_btf();
	compat = is_compat(t);
	if (compat ? !in32 : !in64)
		return 0;
	if (!wanted())
		return 0;
	s = bpf_task_storage_get(&stashes, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return 0;
	init_rec(&s->b, t, REC_SYSCALL, id);
	regs_args(regs, compat, s->b.r.a);
	if (compat) {
		s->b.r.flags = F_COMPAT;
		prepare32(&s->b, id);
	} else {
		collect_enter(&s->b, id, s->b.r.a);
	}
	s->msg_name = NAME_UNKNOWN;
	s->mm_set = 0;
	if (s->b.r.nr == (compat ? 372 : 47)) { /* recvmsg, direct or unpacked from socketcall */
		u64 name = 0;
		int len = 0;

		if (msg_name(s->b.r.a[1], compat, &name, &len))
			s->msg_name = name;
	} else if (is_recvmmsg(s->b.r.nr, compat)) /* direct or unpacked from socketcall */
		stash_recvmmsg(s, s->b.r.a[1], (u32)s->b.r.a[2], compat);
	s->nr = id;
	s->valid = 1;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t;
	struct stash *s;
	struct rec_buf *b;
	struct rec *r;
	long nr;
	bool compat;

	if (!wanted())
		return 0;
	t = bpf_get_current_task_btf();
	nr = regs->orig_ax;
	compat = is_compat(t);
	if (nr == -1) /* rt_sigreturn clears orig_ax */
		nr = compat ? 173 : 15;
	/* A new task's first return to user space passes sys_exit with the parent's clone: skip it. */
	if (ret == 0 && !compat && (nr == 56 || nr == 57 || nr == 58 || nr == 435))
		return 0;
	if (ret == 0 && compat && (nr == 120 || nr == 2 || nr == 190 || nr == 435))
		return 0;
	/* A successful exec returns as the new ABI's execve (set_personality_*() rewrites orig_ax),
	 * with cleared registers: an execveat (fexecve: fileless programs) returns as execve, and an
	 * execve between 32- and 64-bit programs in the other mode. The stash says what the call was
	 * and how it entered. */
	if (ret == 0 && nr == (compat ? 11 : 59)) {
		s = bpf_task_storage_get(&stashes, t, 0, 0);
		if (s && s->valid && (s->nr == 59 || s->nr == 322 || s->nr == 11 || s->nr == 358)) {
			compat = (s->b.r.flags & F_COMPAT) != 0;
			nr = s->nr;
		}
	}

	if (compat ? has_enter_data32(nr) : has_enter_data(nr)) {
		s = bpf_task_storage_get(&stashes, t, 0, 0);
		if (s && s->valid && s->nr == nr) {
			s->valid = 0;
			/* A string in a page not faulted in yet cannot be read at entry, but the kernel has
			 * faulted it in since: read the arguments again. Not after a successful execve (the
			 * caller's memory is gone); a bad pointer stays unreadable. */
			if (s->b.r.bad && is_sendmmsg(s->b.r.nr, compat)) /* direct or unpacked from socketcall */
				reread_sendmmsg(&s->b, ret);
			else if ((s->b.r.bad & A_PATH) && ret >= 0 && is_open(nr, compat) && kernel_path(&s->b, t, ret))
				; /* the file the kernel opened, named by the kernel: no re-read of the caller's string */
			else if ((s->b.r.bad & A_ADDR) && (ret == 0 || ret == -115) && is_connect(s->b.r.nr, compat) &&
				 kernel_peer(&s->b, t, (long)s->b.r.a[0]))
				; /* the peer the kernel connected to (-115: EINPROGRESS) */
			else if (s->b.r.bad && !(ret == 0 && (compat ? (nr == 11 || nr == 358) : (nr == 59 || nr == 322)))) {
				reread(&s->b, nr);
				/* what the kernel used may differ, should another thread have changed it */
				s->b.r.flags |= F_REREAD;
			}
			/* recvmmsg's msg_name and room at the call: not noted when the call was a socketcall
			 * whose arguments could be unpacked only now (taken from the headers at the return) */
			at_exit_addr(&s->b, ret, s->b.r.uid, s->msg_name, s->mm_set ? s : NULL);
			s->b.r.uid = 0; /* only exec records carry the uid */
			s->b.r.ret = ret;
			/* Stamp the completion, and who the task is now (execve changes comm, maybe tid). */
			s->b.r.ts = bpf_ktime_get_ns();
			fill_task(&s->b.r, t);
			output(&s->b);
			return 0;
		}
		/* No entry seen: seccomp returned an errno before sys_enter. Args are still in regs. */
		b = get_scratch();
		if (!b)
			return 0;
		init_rec(b, t, REC_SYSCALL, nr);
		regs_args(regs, compat, b->r.a);
		if (compat) {
			b->r.flags = F_NOENTER | F_COMPAT;
			prepare32(b, nr);
		} else {
			b->r.flags = F_NOENTER;
			collect_enter(b, nr, b->r.a);
		}
		/* the caller's buffer size is gone (*lenp now holds the address's size): read it whole */
		at_exit_addr(b, ret, ROOM_UNKNOWN, NAME_UNKNOWN, NULL);
		b->r.uid = 0;
		b->r.ret = ret;
		output(b);
		return 0;
	}

	/* The common case: a fixed-size record straight into the ring. */
	r = bpf_ringbuf_reserve(&rb, REC_FIXED, 0);
	if (!r) {
		count_lost();
		return 0;
	}
	r->type = REC_SYSCALL;
	r->flags = compat ? F_COMPAT : 0;
	r->data_len = 0;
	r->nr = nr;
	r->ts = bpf_ktime_get_ns();
	r->len_path = r->len_path2 = r->len_argv = r->len_addr = 0;
	r->argc = 0;
	r->cut = r->bad = 0;
	r->uid = 0; /* only exec records carry the uid */
	r->ret = ret;
	if (nr == (compat ? 172 : 157)) /* prctl, maybe PR_SET_NAME */
		task_epoch++;
	regs_args(regs, compat, r->a);
	/* The fill level is looked at on every 16th record of a CPU only: this is the hot path. */
	bpf_ringbuf_submit(r, fill_task_cached(r, t) ? wake_flag() : BPF_RB_NO_WAKEUP);
	return 0;
}

/* A signal get_signal() dequeued for delivery, before it acts on the signal's disposition. When
 * the task is on its way out of a system call that exited with a kernel-internal restart code,
 * what the program sees of that call depends on the signal (src/capture/signals.ts): the record
 * says which signal, what it is set to do, and its sa_flags. The test is the kernel's own
 * (arch_do_signal_or_restart, handle_signal): pt_regs of a system call (orig_ax != -1) whose
 * return value still is ERESTART*. Once a handler runs, handle_signal() rewrites it (-EINTR, or
 * the call's number to restart it), so later signals of the same return are not reported; other
 * entries into the kernel (interrupts, faults) have orig_ax == -1. */
SEC("tp_btf/signal_deliver")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct task_struct *t;
	struct pt_regs *regs;
	struct rec *r;
	unsigned long handler;
	long nr, ret;
	bool compat;

	if (!wanted())
		return 0;
	t = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	nr = (int)BPF_CORE_READ(regs, orig_ax); /* syscall_get_nr() */
	if (nr == -1)
		return 0;
	compat = is_compat(t);
	ret = BPF_CORE_READ(regs, ax);
	if (compat) /* syscall_get_error(): an i386 call's return is sign-extended from 32 bits */
		ret = (int)ret;
	if (ret != -512 && ret != -513 && ret != -514 && ret != -516)
		return 0;
	r = bpf_ringbuf_reserve(&rb, REC_FIXED, 0);
	if (!r) {
		count_lost();
		return 0;
	}
	__builtin_memset(r, 0, REC_FIXED);
	r->type = REC_SIGNAL;
	r->flags = compat ? F_COMPAT : 0;
	r->nr = nr;
	r->ts = bpf_ktime_get_ns();
	fill_task(r, t);
	handler = (unsigned long)BPF_CORE_READ(ka, sa.sa_handler);
	r->a[0] = sig;
	r->a[1] = handler == 0 ? SIG_DISP_DEFAULT : handler == 1 ? SIG_DISP_IGNORE : SIG_DISP_HANDLER;
	r->a[2] = BPF_CORE_READ(ka, sa.sa_flags);
	r->ret = ret;
	bpf_ringbuf_submit(r, wake_flag());
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct rec_buf *b;
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u32 ctgid = BPF_CORE_READ(child, tgid);

	if (filter_tgid) {
		u8 one = 1;

		if (!bpf_map_lookup_elem(&tracked, &ptgid))
			return 0;
		if (ctgid != ptgid)
			bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY);
	} else if (!wanted()) {
		return 0;
	}
	task_epoch++;
	b = get_scratch();
	if (!b)
		return 0;
	init_rec(b, parent, REC_FORK, 0);
	b->r.a[0] = pid_in_ns(child->group_leader->thread_pid);
	b->r.a[1] = pid_in_ns(child->thread_pid);
	if (ctgid == ptgid)
		b->r.flags |= F_THREAD;
	output(b);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct rec_buf *b;
	const char *filename;
	u64 start, end, len;
	long n;

	if (!wanted())
		return 0;
	task_epoch++;
	b = get_scratch();
	if (!b)
		return 0;
	init_rec(b, p, REC_EXEC, 0);
	/* The file the new image was loaded from (not its path, which can be swapped before anyone
	 * looks it up again): its superblock's device (kernel dev_t) and inode number. For a #!
	 * script (or binfmt_misc) that is the interpreter, and binprm.interp then differs from
	 * filename: F_INTERP. */
	{
		struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);

		b->r.a[0] = BPF_CORE_READ(ino, i_sb, s_dev);
		b->r.a[1] = BPF_CORE_READ(ino, i_ino);
		if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename))
			b->r.flags |= F_INTERP;
	}
	/* the new image's ABI: exec has just set the task up for it (TS_COMPAT for an i386 program) */
	if (is_compat(p))
		b->r.flags |= F_COMPAT;
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(b->data, STR_MAX, filename);
	if (n <= 0 || n > STR_MAX) {
		b->r.bad |= A_PATH;
		n = 0;
	} else if (n == STR_MAX) {
		char c = 1;

		bpf_probe_read_kernel(&c, 1, filename + STR_MAX - 1);
		if (c)
			mark_cut(b, A_PATH);
	}
	b->r.len_path = n;
	b->r.data_len = n;
	/* The new image's argv as the kernel laid it out (a script's interpreter comes first, as in ps
	 * and Falco); the execve record keeps the argv as passed. */
	start = BPF_CORE_READ(p, mm, arg_start);
	end = BPF_CORE_READ(p, mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > EXEC_ARGS_MAX) {
		len = EXEC_ARGS_MAX;
		mark_cut(b, A_ARGV);
	}
	opaque(n);
	opaque(len);
	if (len && !bpf_probe_read_user(&b->data[n & (STR_MAX * 2 - 1)], len & (EXEC_ARGS_MAX * 2 - 1), (void *)start)) {
		u32 argc = BPF_CORE_READ(bprm, argc);

		b->r.len_argv = len;
		b->r.data_len = n + len;
		b->r.argc = argc > 0xffff ? 0xffff : argc;
	} else if (len) {
		b->r.bad |= A_ARGV;
	}
	output(b);
	return 0;
}

/* Task exit. group_dead says whether the thread group died with this task. */
static __always_inline int proc_exit(struct task_struct *p, bool group_dead)
{
	struct rec_buf *b;
	struct stash *s;

	if (filter_tgid) {
		u32 tgid = BPF_CORE_READ(p, tgid);

		if (!bpf_map_lookup_elem(&tracked, &tgid))
			return 0;
		if (group_dead && tgid != filter_tgid)
			bpf_map_delete_elem(&tracked, &tgid);
	} else if (!wanted()) {
		return 0;
	}
	task_epoch++;
	/* A call that entered but will never return (exit, exit_group, killed while blocked). */
	s = bpf_task_storage_get(&stashes, p, 0, 0);
	if (s && s->valid) {
		s->valid = 0;
		s->b.r.flags |= F_NORET;
		s->b.r.ts = bpf_ktime_get_ns();
		output(&s->b);
	}
	b = get_scratch();
	if (!b)
		return 0;
	init_rec(b, p, REC_EXIT, 0);
	b->r.ret = BPF_CORE_READ(p, exit_code);
	if (!group_dead)
		b->r.flags |= F_THREAD;
	output(b);
	return 0;
}

/* The loader loads exactly one of these two, after the running kernel's tracepoint prototype
 * (probe/README.md, "Kernel support"). Recent kernels (6.18 here) pass group_dead too. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_proc_exit, struct task_struct *p, bool group_dead)
{
	return proc_exit(p, group_dead);
}

/* Older ones (6.1, 5.15) pass the task only. do_exit() has just taken group_dead from
 * atomic_dec_and_test(&signal->live), so live == 0 is the same fact, except when the last two
 * threads exit at once: the one that decremented first may also see 0. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_proc_exit_v1, struct task_struct *p)
{
	return proc_exit(p, BPF_CORE_READ(p, signal, live.counter) == 0);
}
