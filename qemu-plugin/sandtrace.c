/*
 * sandtrace QEMU TCG plugin: agentless syscall capture for x86_64 Linux guests.
 * Finds the KASLR slide from entry_SYSCALL_64's first bytes, hooks the first instruction of
 * do_syscall_64 (pt_regs: number and arguments; current task; pointer arguments) and the
 * instruction after `call do_syscall_64` (return value); both run on the kernel's page tables
 * and GS base, so page-table isolation does not matter, and streams compact binary records to a file or
 * FIFO. i386 (compat) calls the same way, when the profile found their entry points: int $0x80
 * (do_int80_syscall_32 or do_int80_emulation) and sysenter/syscall from 32-bit code
 * (do_fast_syscall_32), as ENTER32/RET32 records in i386 numbering. It reads memory and
 * registers only; all interpretation is done by sandtrace (TypeScript): an i386 socketcall, for
 * one, comes with the words of its argument array and the address they point to, as read. An
 * address the kernel writes back (accept, recvfrom, recvmsg, getsockname, getpeername) is read at
 * the return, no more of it than the caller's buffer held at the call. sendmmsg and recvmmsg: the
 * address of each of their first 16 messages (one blob a message), read at the call or, for
 * recvmmsg, at the return, where the call's msg_name pointers and rooms say. A call a signal handler
 * interrupts returns into the handler: its result is read from the signal frame. An open whose path
 * could not be read at the call is named at the return by the file the descriptor it returned
 * refers to (the task's file table, its dentries walked up to the task's root), not read again; a
 * connect whose address could not be read, by the peer its socket was connected to (sk_common).
 * Debian ships no qemu-plugin.h, so the documented API functions used are declared here
 * (QEMU include/qemu/qemu-plugin.h, plugin API version 4 = QEMU 9.2/10.0).
 */
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- the QEMU plugin API subset (declarations only; QEMU provides the definitions) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_register;
typedef struct { struct qemu_plugin_register *handle; const char *name; const char *feature; } qemu_plugin_reg_descriptor;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
/* glib types as QEMU passes them (GArray / GByteArray share this layout) */
typedef struct { uint8_t *data; unsigned int len; } GByteArray;
typedef struct { char *data; unsigned int len; } GArray;

void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest, size_t len);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray *data, size_t len);
void qemu_plugin_outs(const char *string);
/* glib, already loaded in QEMU */
GByteArray *g_byte_array_new(void);
void g_array_free(GArray *a, int free_segment);
GByteArray *g_byte_array_set_size(GByteArray *a, unsigned int len);

EXPORT int qemu_plugin_version = SANDTRACE_QEMU_PLUGIN_VERSION;

/* ---- configuration (plugin arguments key=value; addresses are link-time, hex) ---- */
static uint64_t cfg_entry, cfg_after, cfg_cur, cfg_dosys, cfg_init_task;
/* compat (i386) hooks, 0 when absent: entries (pt_regs in rdi) and returns (pt_regs at rsp) */
static uint64_t cfg_int80, cfg_int80_ret, cfg_fast, cfg_fast_ret, cfg_sysenter_ret;
static int64_t off_tasks = -1, off_cred = -1, off_uid = -1;
static uint8_t cfg_entry_bytes[16];
static size_t cfg_entry_len;
static int64_t off_pid = -1, off_tgid = -1, off_comm = -1, off_parent = -1, off_mm = -1, off_exe = -1,
               off_fpath_dentry = -1, off_dname = -1, off_dparent = -1,
               off_arg_start = -1, off_arg_end = -1, off_env_end = -1;
/* mount crossing for exe paths (optional: without them a path stops at its mount's root) */
static int64_t off_fpath_mnt = -1, off_mount_mnt = -1, off_mnt_parent = -1, off_mnt_mountpoint = -1, off_mnt_root = -1;
/* the working directory at exec (task->fs->pwd: dentry and vfsmount), to place a relative path (optional) */
static int64_t off_task_fs = -1, off_pwd_dentry = -1, off_pwd_mnt = -1;
/* an open's file by its descriptor (task->files->fdt->fd[fd], below fdt->max_fds), whether its dentry
 * is hashed (d_hash.pprev), and the task's root (task->fs->root: dentry and vfsmount) to walk it up
 * to (optional: without them such a path is read again at the return) */
static int64_t off_task_files = -1, off_files_fdt = -1, off_fdt_fd = -1, off_fdt_max = -1, off_dhash_pprev = -1, off_root_dentry = -1,
               off_root_mnt = -1;
/* a connect's socket by its descriptor (the file table above): file->f_inode->i_mode (S_IFSOCK),
 * file->private_data (struct socket), socket->sk, and in the sock's __sk_common the family, the
 * peer's port and IPv4 or IPv6 address (optional: without them such an address is read again) */
static int64_t off_file_inode = -1, off_inode_mode = -1, off_file_private = -1, off_socket_sk = -1, off_sk_family = -1, off_sk_dport = -1,
               off_sk_daddr = -1, off_sk_v6daddr = -1;
static int out_fd = -1;

static volatile int slide_known;
static int64_t slide;

/* ---- output: buffered records; the reader's pipe applies back-pressure, nothing is dropped ---- */
#define OUTBUF (256 * 1024)
static uint8_t outbuf[OUTBUF];
static size_t outlen;
static uint64_t last_flush_ns, write_errors;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

enum { REC_ENTER = 1, REC_RET = 2, REC_INFO = 3, REC_PROC = 4, REC_ENTER32 = 5, REC_RET32 = 6 };
/* ENTER flags for execve: argv could not be read completely (pages not mapped yet) */
#define ARGV_INCOMPLETE 0x80000000u
/* ENTER flags of socket calls: the sockaddr could not be read / was cut at 128 bytes; the i386
 * socketcall's argument array could not be read (the call stays an opaque socketcall) */
#define ADDR_UNREAD 0x40000000u
#define ADDR_CUT 0x20000000u
#define SCARGS_UNREAD 0x10000000u
/* ENTER flag of sendmmsg (direct or through socketcall): a message header or address could not be
 * read (its MMSG blobs say which; read again at the return) */
#define MMSG_UNREAD 0x08000000u
enum { BLOB_PATH = 1, BLOB_PATH2 = 2, BLOB_ARGV = 3, BLOB_SOCKADDR = 4, BLOB_EXE = 5, BLOB_COMM = 6, BLOB_NEWARGV = 7, BLOB_EXECFN = 8, BLOB_UID = 9, BLOB_CWD = 10,
       BLOB_SCARGS = 11, BLOB_OUTADDR = 12, BLOB_MMSG = 13, BLOB_OUTMMSG = 14, BLOB_FDPATH = 15, BLOB_PEER = 16 };
/*
 * RET of an open, creat, openat or openat2 (either ABI) whose path could not be read at the call and
 * that returned a descriptor: instead of the caller's string read again (BLOB_PATH, RET_REREAD), the
 * name of the file the descriptor refers to, as BLOB_CWD: "/", then one blob per component, leaf
 * first, up to the task's root (blob_fdpath). No RET_REREAD then.
 */
/*
 * RET of a connect (x86_64 42; i386 362, direct or through socketcall 102 whose argument array was
 * read at the call) whose address could not be read at the call and that connected (0, or
 * -EINPROGRESS): instead of the caller's sockaddr read again (BLOB_SOCKADDR, RET_REREAD), the peer
 * the kernel connected the socket to, as getpeername() gives it: one PEER blob, a sockaddr_in (16
 * bytes) or sockaddr_in6 (28, flowinfo and scope 0) (blob_peer). No RET_REREAD then.
 */
/*
 * sendmmsg/recvmmsg: one MMSG blob (sendmmsg's msg_name, read at the call: ENTER, or RET when read
 * again) or OUTMMSG blob (recvmmsg's sender, written back by the kernel: RET) per message, in
 * order, for at most MMSG_MAX messages: a flags byte (MM_*), then the address's bytes (none: the
 * message names no address). MM_END: the message's header could not be read; the list ends there.
 */
#define MMSG_MAX 16
#define MM_CUT 0x1u
#define MM_UNREAD 0x2u
#define MM_END 0x4u

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void flush_locked(void) {
    size_t off = 0;
    while (off < outlen && out_fd >= 0) {
        ssize_t n = write(out_fd, outbuf + off, outlen - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            write_errors++;
            break;
        }
        off += (size_t)n;
    }
    outlen = 0;
}

static void emit(const uint8_t *rec, size_t len, uint64_t ts) {
    pthread_mutex_lock(&out_lock);
    if (outlen + len > OUTBUF) flush_locked();
    memcpy(outbuf + outlen, rec, len);
    outlen += len;
    /* stream within ~50 ms so a live monitor sees events while the guest runs */
    if (outlen > OUTBUF / 2 || ts - last_flush_ns > 50000000ull) {
        flush_locked();
        last_flush_ns = ts;
    }
    pthread_mutex_unlock(&out_lock);
}

/* ---- guest access ---- */
enum { R_RDI, R_RSP, R_GS, R_N };
static const char *reg_names[R_N] = { "rdi", "rsp", "gs_base" };
static struct qemu_plugin_register *regs[R_N];
static __thread GByteArray *rbuf, *mbuf;

static uint64_t reg(int r) {
    if (!regs[r]) return 0;
    if (!rbuf) rbuf = g_byte_array_new();
    g_byte_array_set_size(rbuf, 0); /* reads append to the array */
    int n = qemu_plugin_read_register(regs[r], rbuf);
    uint64_t v = 0;
    if (n > 0) memcpy(&v, rbuf->data, n < 8 ? (size_t)n : 8);
    return v;
}

static bool mem(uint64_t addr, void *dst, size_t len) {
    if (!mbuf) mbuf = g_byte_array_new();
    if (len == 0 || !qemu_plugin_read_memory_vaddr(addr, mbuf, len)) return false;
    memcpy(dst, mbuf->data, len);
    return true;
}

static uint64_t mem64(uint64_t addr) { uint64_t v = 0; mem(addr, &v, 8); return v; }
static uint32_t mem32(uint64_t addr) { uint32_t v = 0; mem(addr, &v, 4); return v; }

/* A NUL-terminated string, read page by page so a short string near an unmapped page still reads. */
static ssize_t mem_str(uint64_t addr, char *dst, size_t max) {
    size_t got = 0;
    while (got < max - 1) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        if (chunk > max - 1 - got) chunk = max - 1 - got;
        if (!mem(addr + got, dst + got, chunk)) {
            if (got == 0) return -1; /* not mapped (yet): the caller may retry at the return */
            break;
        }
        void *z = memchr(dst + got, 0, chunk);
        if (z) { got = (size_t)((char *)z - dst); dst[got] = 0; return (ssize_t)got; }
        got += chunk;
    }
    dst[got] = 0;
    return (ssize_t)got;
}

struct hdr {
    uint16_t type, len;
    uint32_t tid, tgid, ppid;
    uint64_t ts;
} __attribute__((packed));

/* fill pid/tgid/ppid from a task_struct pointer */
static void task_ids(uint64_t task, struct hdr *h) {
    if (!task) return;
    uint32_t ids[2] = { 0, 0 };
    mem(task + (uint64_t)off_pid, ids, 8); /* pid, tgid are adjacent */
    h->tid = ids[0];
    h->tgid = ids[1];
    uint64_t parent = mem64(task + (uint64_t)off_parent);
    if (parent) h->ppid = mem32(parent + (uint64_t)off_tgid);
}

/*
 * Per-vCPU cache of parent and comm by (task pointer, pid, tgid): pid/tgid are read on every
 * call (so a reused task_struct misses), the rest only on a miss. Exec and prctl drop the entry
 * (comm changes); a re-parented task keeps its old ppid until then.
 */
#define TCACHE 4096
struct tcache { uint64_t task; uint32_t pid, tgid, ppid; char comm[16]; };
static struct tcache *tcaches;
static unsigned max_vcpus = 1;

static struct tcache *tslot(unsigned vcpu, uint64_t task) {
    return &tcaches[(size_t)(vcpu % max_vcpus) * TCACHE + (size_t)((task >> 6) % TCACHE)];
}

static void task_info(unsigned vcpu, uint64_t task, struct hdr *h, char comm[16]) {
    if (!task) return;
    uint32_t ids[2] = { 0, 0 };
    mem(task + (uint64_t)off_pid, ids, 8);
    h->tid = ids[0];
    h->tgid = ids[1];
    struct tcache *c = tslot(vcpu, task);
    if (c->task != task || c->pid != ids[0] || c->tgid != ids[1]) {
        c->task = task; c->pid = ids[0]; c->tgid = ids[1]; c->ppid = 0;
        uint64_t parent = mem64(task + (uint64_t)off_parent);
        if (parent) c->ppid = mem32(parent + (uint64_t)off_tgid);
        memset(c->comm, 0, 16);
        mem(task + (uint64_t)off_comm, c->comm, 16);
    }
    h->ppid = c->ppid;
    if (comm) memcpy(comm, c->comm, 16);
}

static uint8_t *blob(uint8_t *p, uint8_t *end, int kind, const void *data, size_t len) {
    if (p + 4 + len > end) return p;
    p[0] = (uint8_t)kind; p[1] = 0;
    uint16_t l = (uint16_t)len;
    memcpy(p + 2, &l, 2);
    memcpy(p + 4, data, len);
    return p + 4 + len;
}

static uint8_t *blob_str_ok(uint8_t *p, uint8_t *end, int kind, uint64_t addr, bool *ok) {
    char s[512];
    *ok = true;
    if (!addr) return p;
    ssize_t n = mem_str(addr, s, sizeof s);
    if (n < 0) { *ok = false; return p; }
    return blob(p, end, kind, s, (size_t)n);
}

static uint8_t *blob_str(uint8_t *p, uint8_t *end, int kind, uint64_t addr) {
    bool ok;
    return blob_str_ok(p, end, kind, addr, &ok);
}

/*
 * Where the kernel writes an address back (accept, accept4, getsockname, getpeername, recvfrom,
 * recvmsg: msg_name, its length in the caller's msghdr):
 * the buffer, the addrlen pointer and the caller's room, *addrlen before the call (ROOM_UNKNOWN
 * when it cannot be read). The kernel copies no more than the room but writes back the address's
 * full length, so the room, not what *addrlen says at the return, bounds what is read: beyond it
 * lies the caller's own memory, not the address. msg: a recvmsg msghdr that could not be read at the
 * call (a page not touched yet, which the kernel faults in): read at the return instead.
 */
#define ROOM_UNKNOWN 0xffffffffu
struct outaddr { uint64_t ptr, lenp; uint32_t room; uint64_t msg; };
/*
 * recvmmsg: where the kernel writes each message's sender (set: a recvmmsg with messages): the
 * vector of struct mmsghdr (ptr: the size of a user pointer, which also gives the layout), each of
 * the first n messages' msg_name and room (msg_namelen at the call); late: a bit per message whose
 * header could not be read at the call (read at the return instead, room unknown).
 */
struct outmm { uint64_t vec; uint64_t name[MMSG_MAX]; uint32_t room[MMSG_MAX]; uint16_t late; uint8_t n, ptr, set; };

/*
 * Path and socket arguments in pages the task has not touched yet (a forked child's .rodata)
 * cannot be read at entry; the kernel faults them in while copying, so they are read again at
 * the return (what: RETRY_*), which then says so (RET flags: RET_REREAD). The same table keeps a
 * written-back address's buffer until the return (RETRY_OUT), with the user ip and sp at the call
 * (came_back: the kernel wrote the address only if the call completed).
 */
#define RETRY_SLOTS 1024
enum { RETRY_PATH = 1, RETRY_PATH2 = 2, RETRY_SOCK = 4, RETRY_OUT = 8 };
#define RET_REREAD 0x1u
/* RET flags of the written-back address: cut at the caller's buffer (or 128 bytes); unreadable */
#define RET_OUT_CUT 0x2u
#define RET_OUT_UNREAD 0x4u
/* RET flags of a signal at the return: a handler's frame holds the call's registers (the result
 * is the one it saved); the kernel makes the call again (the result is no result) */
#define RET_SIGFRAME 0x8u
#define RET_RESTART 0x10u
struct retry { uint64_t task, nr, a[6], ip, sp; struct outaddr out; uint32_t what; int via; struct outmm mm; uint64_t connfd; };
static struct retry retries[RETRY_SLOTS];
static int retry_count;
static pthread_mutex_t retry_lock = PTHREAD_MUTEX_INITIALIZER;

static void retry_put(uint64_t task, const struct retry *in) {
    pthread_mutex_lock(&retry_lock);
    for (unsigned i = 0; i < 8; i++) {
        struct retry *r = &retries[((task >> 6) + i) % RETRY_SLOTS];
        if (r->task == 0 || r->task == task) {
            if (r->task == 0) retry_count++;
            uint64_t was = r->task;
            *r = *in;
            r->task = was;
            __atomic_store_n(&r->task, task, __ATOMIC_RELEASE);
            break;
        }
    }
    pthread_mutex_unlock(&retry_lock);
}

static bool retry_take(uint64_t task, uint64_t nr, struct retry *out) {
    bool found = false, mine = false;
    if (__atomic_load_n(&retry_count, __ATOMIC_RELAXED) == 0) return false;
    /* (a task blocked in accept keeps an entry: the other tasks' returns do not take the lock) */
    for (unsigned i = 0; i < 8 && !mine; i++) mine = __atomic_load_n(&retries[((task >> 6) + i) % RETRY_SLOTS].task, __ATOMIC_ACQUIRE) == task;
    if (!mine) return false;
    pthread_mutex_lock(&retry_lock);
    for (unsigned i = 0; i < 8; i++) {
        struct retry *r = &retries[((task >> 6) + i) % RETRY_SLOTS];
        if (r->task == task) {
            found = r->nr == nr;
            *out = *r;
            __atomic_store_n(&r->task, 0, __ATOMIC_RELAXED);
            retry_count--;
            break;
        }
    }
    pthread_mutex_unlock(&retry_lock);
    return found;
}

/*
 * Tasks inside an exec call, marked at its entry (either ABI): a successful exec's return does not
 * name the call. The kernel rewrites orig_ax for the new image (set_personality_64bit: 59,
 * __set_personality_ia32: 11), so an i386 execve of a 64-bit program returns "59" and a 64-bit
 * execve of an i386 program "11" (x86_64 munmap).
 */
#define EXEC_SLOTS 256
static uint64_t in_exec[EXEC_SLOTS];

static void exec_mark(uint64_t task) {
    for (unsigned i = 0; i < 8; i++) {
        uint64_t *s = &in_exec[((task >> 6) + i) % EXEC_SLOTS], z = 0;
        if (__atomic_load_n(s, __ATOMIC_RELAXED) == task ||
            __atomic_compare_exchange_n(s, &z, task, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return;
    }
}

static bool exec_take(uint64_t task) {
    bool found = false;
    for (unsigned i = 0; i < 8; i++) {
        uint64_t *s = &in_exec[((task >> 6) + i) % EXEC_SLOTS], t = task;
        if (__atomic_load_n(s, __ATOMIC_RELAXED) == task &&
            __atomic_compare_exchange_n(s, &t, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) found = true;
    }
    return found;
}

/* Which arguments carry paths, argv, a sockaddr and its length, a msghdr (sendmsg: its
 * msg_name, msg_namelen), a buffer the kernel writes an address to and its addrlen pointer, or a
 * msghdr the kernel writes an address through (recvmsg: to msg_name, its length to msg_namelen),
 * a vector of struct mmsghdr read at the call (sendmmsg) or written through (recvmmsg) and its
 * length (x86_64 numbering); index+1, 0 = none. */
struct argspec { uint8_t path, path2, argv, sa, salen, msg, oa, oalen, omsg, smm, rmm, mlen; };
static struct argspec spec[512], spec32[512];

/*
 * i386 socketcall(call, u32 *args) (102): how many u32 words the kernel copies for each call
 * (net/socket.c nargs), and where among them a sockaddr or msghdr sits. The words are passed on
 * (BLOB_SCARGS); sandtrace turns the call into the direct one it stands for.
 */
#define NR32_SOCKETCALL 102
static const uint8_t sc_nargs[21] = { 0, 3, 3, 3, 2, 3, 3, 3, 4, 4, 4, 6, 6, 2, 5, 5, 3, 3, 4, 5, 4 };
static const struct argspec sc_spec[21] = {
    [2] = { .sa = 2, .salen = 3 },  /* bind */
    [3] = { .sa = 2, .salen = 3 },  /* connect */
    [11] = { .sa = 5, .salen = 6 }, /* sendto */
    [16] = { .msg = 2 }, /* sendmsg */
    [5] = { .oa = 2, .oalen = 3 },  /* accept */
    [6] = { .oa = 2, .oalen = 3 },  /* getsockname */
    [7] = { .oa = 2, .oalen = 3 },  /* getpeername */
    [18] = { .oa = 2, .oalen = 3 }, /* accept4 */
    [12] = { .oa = 5, .oalen = 6 }, /* recvfrom */
    [17] = { .omsg = 2 },           /* recvmsg */
    [20] = { .smm = 2, .mlen = 3 }, /* sendmmsg */
    [19] = { .rmm = 2, .mlen = 3 }, /* recvmmsg */
};

/* The calls each ABI's hooks must recognise, in its own numbering. */
struct abi { int enter, ret; struct argspec *spec; uint64_t execve, execveat, exit_group, prctl, clone, fork, vfork, clone3, restart; unsigned ptr; };
static const struct abi abi64 = { REC_ENTER, REC_RET, spec, 59, 322, 231, 157, 56, 57, 58, 435, 219, 8 };
static const struct abi abi32 = { REC_ENTER32, REC_RET32, spec32, 11, 358, 252, 172, 120, 2, 190, 435, 0, 4 };

static void init_specs(void) {
    static const int p0[] = { 2, 4, 6, 21, 76, 80, 83, 84, 85, 87, 89, 90, 92, 94, 133, 137, 161, 166, 188, 189, 191, 194, 197 };
    for (size_t i = 0; i < sizeof p0 / sizeof *p0; i++) spec[p0[i]].path = 1;
    static const int p1[] = { 257, 258, 259, 260, 261, 262, 263, 267, 268, 269, 280, 332, 437, 439, 452 };
    for (size_t i = 0; i < sizeof p1 / sizeof *p1; i++) spec[p1[i]].path = 2;
    spec[82] = (struct argspec){ .path = 1, .path2 = 2 };   /* rename */
    spec[86] = (struct argspec){ .path = 1, .path2 = 2 };   /* link */
    spec[88] = (struct argspec){ .path = 1, .path2 = 2 };   /* symlink: target, then the new link (as the eBPF probe) */
    spec[264] = (struct argspec){ .path = 2, .path2 = 4 };  /* renameat */
    spec[265] = (struct argspec){ .path = 2, .path2 = 4 };  /* linkat */
    spec[266] = (struct argspec){ .path = 1, .path2 = 3 };  /* symlinkat(target, newdirfd, linkpath) */
    spec[316] = (struct argspec){ .path = 2, .path2 = 4 };  /* renameat2 */
    spec[165] = (struct argspec){ .path = 1, .path2 = 2 };  /* mount: source, target */
    spec[59] = (struct argspec){ .path = 1, .argv = 2 };   /* execve */
    spec[322] = (struct argspec){ .path = 2, .argv = 3 };  /* execveat */
    spec[42] = (struct argspec){ .sa = 2, .salen = 3 };   /* connect */
    spec[49] = (struct argspec){ .sa = 2, .salen = 3 };   /* bind */
    spec[44] = (struct argspec){ .sa = 5, .salen = 6 };   /* sendto */
    spec[46] = (struct argspec){ .msg = 2 };   /* sendmsg: its msghdr's msg_name */
    /* accept, accept4, getsockname, getpeername; recvfrom: the address the kernel writes back */
    spec[43] = spec[288] = spec[51] = spec[52] = (struct argspec){ .oa = 2, .oalen = 3 };
    spec[45] = (struct argspec){ .oa = 5, .oalen = 6 };
    spec[47] = (struct argspec){ .omsg = 2 }; /* recvmsg: the sender, through its msghdr */
    spec[307] = (struct argspec){ .smm = 2, .mlen = 3 }; /* sendmmsg: each message's msg_name */
    spec[299] = (struct argspec){ .rmm = 2, .mlen = 3 }; /* recvmmsg: each message's sender */
    /* i386 numbering (the eBPF probe's list): path in arg 1, in arg 2, two paths, exec, sockets */
    static const int q0[] = { 5, 8, 10, 12, 14, 15, 16, 18, 22, 30, 33, 39, 40, 51, 52, 61, 84, 85, 86, 87, 92, 99, 106, 107, 115,
                              182, 193, 195, 196, 198, 212, 226, 227, 229, 230, 232, 233, 235, 236, 268, 271, 356 };
    for (size_t i = 0; i < sizeof q0 / sizeof *q0; i++) spec32[q0[i]].path = 1;
    static const int q1[] = { 292, 295, 296, 297, 298, 299, 300, 301, 305, 306, 307, 320, 383, 412, 437, 439, 452 };
    for (size_t i = 0; i < sizeof q1 / sizeof *q1; i++) spec32[q1[i]].path = 2;
    spec32[9] = spec32[38] = spec32[83] = (struct argspec){ .path = 1, .path2 = 2 }; /* link, rename, symlink */
    spec32[21] = (struct argspec){ .path = 1, .path2 = 2 };                          /* mount: source, target */
    spec32[302] = spec32[303] = spec32[353] = (struct argspec){ .path = 2, .path2 = 4 }; /* renameat, linkat, renameat2 */
    spec32[304] = (struct argspec){ .path = 1, .path2 = 3 };  /* symlinkat */
    spec32[11] = (struct argspec){ .path = 1, .argv = 2 };   /* execve */
    spec32[358] = (struct argspec){ .path = 2, .argv = 3 };  /* execveat */
    spec32[361] = spec32[362] = (struct argspec){ .sa = 2, .salen = 3 }; /* bind, connect */
    spec32[369] = (struct argspec){ .sa = 5, .salen = 6 };  /* sendto */
    spec32[370] = (struct argspec){ .msg = 2 }; /* sendmsg (struct compat_msghdr) */
    spec32[364] = spec32[367] = spec32[368] = (struct argspec){ .oa = 2, .oalen = 3 }; /* accept4, getsockname, getpeername */
    spec32[371] = (struct argspec){ .oa = 5, .oalen = 6 }; /* recvfrom */
    spec32[372] = (struct argspec){ .omsg = 2 }; /* recvmsg (struct compat_msghdr) */
    spec32[345] = (struct argspec){ .smm = 2, .mlen = 3 }; /* sendmmsg (struct compat_mmsghdr) */
    spec32[337] = spec32[417] = (struct argspec){ .rmm = 2, .mlen = 3 }; /* recvmmsg, recvmmsg_time64 */
}

static uint32_t task_uid(uint64_t task) {
    uint64_t cred = mem64(task + (uint64_t)off_cred);
    return cred ? mem32(cred + (uint64_t)off_uid) : 0xffffffffu;
}

/*
 * The process list, walked from init_task along task_struct.tasks (one record per thread-group
 * leader): at the first system call, and whenever sandtrace asks by writing a byte to the socket.
 */
static void walk_tasks(void) {
    uint64_t init = cfg_init_task + (uint64_t)slide;
    uint64_t t = init;
    for (int i = 0; i < 32768; i++) {
        uint8_t rec[sizeof(struct hdr) + 32];
        struct hdr h = { REC_PROC, sizeof rec, 0, 0, 0, now_ns() };
        task_ids(t, &h);
        memcpy(rec, &h, sizeof h);
        char comm[16] = { 0 };
        mem(t + (uint64_t)off_comm, comm, 16);
        uint64_t mm = mem64(t + (uint64_t)off_mm);
        uint32_t uid = task_uid(t);
        memcpy(rec + sizeof h, comm, 16);
        memcpy(rec + sizeof h + 16, &mm, 8);
        memcpy(rec + sizeof h + 24, &uid, 4);
        memset(rec + sizeof h + 28, 0, 4);
        emit(rec, sizeof rec, h.ts);
        uint64_t next = mem64(t + (uint64_t)off_tasks);
        if (!next) break;
        t = next - (uint64_t)off_tasks;
        if (t == init) break;
    }
}

/*
 * A path (dentry, vfsmount) as blobs of `kind`, one per component, leaf first, as d_path builds
 * it: at a mount's root, continue from its mountpoint in the parent mount (/tmp on tmpfs is /tmp,
 * not /); a pseudo file (memfd) is its own root and keeps its name. The walk ends at the root of
 * the mount namespace (exe, working directory) or, when `stop` is given (an open's file), at that
 * path, the task's root, as d_path does: *how says where it ended.
 */
static bool mounts_known(void) {
    return off_fpath_mnt >= 0 && off_mount_mnt >= 0 && off_mnt_parent >= 0 && off_mnt_mountpoint >= 0 && off_mnt_root >= 0;
}

/* A component no file name can be (names never hold '/'): the path was cut here, at the record's
 * room or the depth limit, and its upper part is missing. */
#define CUT_MARK "//"
#define CUT_ROOM 6 /* its blob: always left free while components are added */

/* One component (the dentry's name), or the cut mark when it cannot be read or no longer fits:
 * false then. */
static bool component(uint8_t **p, uint8_t *end, int kind, uint64_t d) {
    char s[512];
    ssize_t n = mem_str(mem64(d + (uint64_t)off_dname), s, sizeof s);
    if (n < 0 || *p + 4 + (size_t)n + CUT_ROOM > end) {
        *p = blob(*p, end, kind, CUT_MARK, 2);
        return false;
    }
    *p = blob(*p, end, kind, s, (size_t)n);
    return true;
}

struct walk_root { uint64_t dentry, vfs; };
/* where a walk ended: at the root (`stop`, or the namespace's when none is given); cut (CUT_MARK
 * written); anywhere else (a pseudo file's own root, an unreadable dentry, the namespace's root
 * when `stop` was not met on the way: a file outside the task's root) */
enum { WALK_ROOT, WALK_CUT, WALK_OTHER };

static uint8_t *blob_path(uint8_t *p, uint8_t *end, int kind, uint64_t d, uint64_t vfs, const struct walk_root *stop, int *how) {
    uint64_t mnt = vfs && mounts_known() ? vfs - (uint64_t)off_mount_mnt : 0;
    *how = WALK_OTHER;
    if (d && (kind == BLOB_CWD || kind == BLOB_FDPATH)) p = blob(p, end, kind, "/", 1); /* read, even when it is / (no component) */
    for (int i = 0; d; i++) {
        if (stop && mnt && d == stop->dentry && mnt + (uint64_t)off_mount_mnt == stop->vfs) { *how = WALK_ROOT; break; }
        if (i >= 64) { /* deeper than any path the kernel takes: cut, never skipped */
            p = blob(p, end, kind, CUT_MARK, 2);
            *how = WALK_CUT;
            break;
        }
        uint64_t parent = mem64(d + (uint64_t)off_dparent);
        uint64_t root = mnt ? mem64(mnt + (uint64_t)off_mount_mnt + (uint64_t)off_mnt_root) : 0;
        if (d == root || parent == d) {
            uint64_t up = mnt ? mem64(mnt + (uint64_t)off_mnt_parent) : 0;
            if (d == root && up && up != mnt) {
                d = mem64(mnt + (uint64_t)off_mnt_mountpoint);
                mnt = up;
                continue;
            }
            if (d != root && mnt) component(&p, end, kind, d);
            else if (!stop) *how = WALK_ROOT;
            break;
        }
        if (!component(&p, end, kind, d)) { *how = WALK_CUT; break; }
        d = parent;
    }
    return p;
}

/* mm->exe_file's path */
static uint8_t *blob_exe(uint8_t *p, uint8_t *end, uint64_t mm) {
    uint64_t file = mm ? mem64(mm + (uint64_t)off_exe) : 0;
    int how;
    if (!file) return p;
    return blob_path(p, end, BLOB_EXE, mem64(file + (uint64_t)off_fpath_dentry), mounts_known() ? mem64(file + (uint64_t)off_fpath_mnt) : 0, NULL,
                     &how);
}

/* open, creat, openat, openat2 (x86_64 2/85/257/437; i386 5/8/295/437): the call's path names the
 * file behind the descriptor it returns. */
static bool is_open(uint64_t nr, unsigned ptr) {
    return ptr == 8 ? nr == 2 || nr == 85 || nr == 257 || nr == 437 : nr == 5 || nr == 8 || nr == 295 || nr == 437;
}

static bool fdtable_known(void) {
    return off_task_files >= 0 && off_files_fdt >= 0 && off_fdt_fd >= 0 && off_fdt_max >= 0;
}

static bool fdpath_known(void) {
    return mounts_known() && fdtable_known() && off_dhash_pprev >= 0 && off_task_fs >= 0 && off_root_dentry >= 0 && off_root_mnt >= 0;
}

/* The struct file behind descriptor fd of task (task->files->fdt->fd[fd], below fdt->max_fds), 0
 * when there is none (fdtable_known() first). */
static uint64_t fd_file(uint64_t task, uint64_t fd) {
    uint64_t files = mem64(task + (uint64_t)off_task_files), fdt = files ? mem64(files + (uint64_t)off_files_fdt) : 0, fds;
    uint32_t max = 0;
    if (!fdt || !mem(fdt + (uint64_t)off_fdt_max, &max, 4) || fd >= max) return 0;
    fds = mem64(fdt + (uint64_t)off_fdt_fd);
    return fds ? mem64(fds + 8 * fd) : 0;
}

/*
 * The name of the file descriptor fd of task refers to (an open's result), as d_path gives it: its
 * dentries walked up to the task's root (task->fs->root), across mounts (BLOB_FDPATH blobs). Unlike
 * the caller's string read again, no other thread can change it once the kernel resolved it. p
 * unchanged when there is no name: no such descriptor, a file that has none (unlinked, d_unlinked:
 * an O_TMPFILE file, or one removed meanwhile; a pseudo file), one outside the task's root, or a path
 * too deep or too long for the record (cut).
 */
static uint8_t *blob_fdpath(uint8_t *p, uint8_t *end, uint64_t task, uint64_t fd) {
    uint64_t file = fd_file(task, fd), d, vfs, pprev, fs;
    if (!file) return p;
    d = mem64(file + (uint64_t)off_fpath_dentry);
    vfs = mem64(file + (uint64_t)off_fpath_mnt);
    /* unlinked as d_path sees it: unhashed, and not a filesystem's root (never hashed: /tmp's own) */
    if (!d || !vfs || !mem(d + (uint64_t)off_dhash_pprev, &pprev, 8) || (!pprev && mem64(d + (uint64_t)off_dparent) != d)) return p;
    fs = mem64(task + (uint64_t)off_task_fs);
    struct walk_root r = { fs ? mem64(fs + (uint64_t)off_root_dentry) : 0, fs ? mem64(fs + (uint64_t)off_root_mnt) : 0 };
    if (!r.dentry || !r.vfs) return p;
    int how;
    uint8_t *q = blob_path(p, end, BLOB_FDPATH, d, vfs, &r, &how);
    return how == WALK_ROOT ? q : p;
}

/* connect: x86_64 42, i386 362 (also what socketcall's call 3 stands for) */
static bool is_connect(uint64_t nr, unsigned ptr) { return nr == (ptr == 8 ? 42u : 362u); }
#define NO_FD (~0ull)

static bool peer_known(void) {
    return fdtable_known() && off_file_inode >= 0 && off_inode_mode >= 0 && off_file_private >= 0 && off_socket_sk >= 0 && off_sk_family >= 0 &&
           off_sk_dport >= 0 && off_sk_daddr >= 0 && off_sk_v6daddr >= 0;
}

#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000
/*
 * The peer the socket behind descriptor fd of task is connected to (a connect's result), as
 * getpeername() gives it: its sock's family, destination port and address (sk->__sk_common), as a
 * sockaddr_in or sockaddr_in6 in a PEER blob. Unlike the caller's sockaddr read again, no other
 * thread can change it once the kernel connected. p unchanged when there is none: no such
 * descriptor, not a socket, a family other than inet and inet6 (unix, netlink...), no peer (port 0;
 * an IPv4 address 0).
 */
static uint8_t *blob_peer(uint8_t *p, uint8_t *end, uint64_t task, uint64_t fd) {
    uint64_t file = fd_file(task, fd), inode = file ? mem64(file + (uint64_t)off_file_inode) : 0, sock, sk;
    uint16_t mode = 0, fam = 0, port = 0;
    if (!inode || !mem(inode + (uint64_t)off_inode_mode, &mode, 2) || (mode & S_IFMT_) != S_IFSOCK_) return p;
    sock = mem64(file + (uint64_t)off_file_private);
    sk = sock ? mem64(sock + (uint64_t)off_socket_sk) : 0;
    if (!sk || !mem(sk + (uint64_t)off_sk_family, &fam, 2) || !mem(sk + (uint64_t)off_sk_dport, &port, 2) || !port) return p;
    uint8_t sa[28] = { 0 }; /* family, port (network order), then sin_addr or sin6_flowinfo, sin6_addr */
    size_t n;
    memcpy(sa, &fam, 2);
    memcpy(sa + 2, &port, 2);
    if (fam == AF_INET) {
        uint32_t a = 0;
        if (!mem(sk + (uint64_t)off_sk_daddr, &a, 4) || !a) return p;
        memcpy(sa + 4, &a, 4);
        n = 16;
    } else if (fam == AF_INET6) {
        if (!mem(sk + (uint64_t)off_sk_v6daddr, sa + 8, 16)) return p;
        n = 28;
    } else {
        return p;
    }
    return blob(p, end, BLOB_PEER, sa, n);
}

/*
 * Processes announced to sandtrace (by tgid): the first system call of a process the plugin has
 * not seen since that pid last exited carries what it runs (exe path, argv). That names what the
 * kernel itself exec'd (init, usermode helpers such as modprobe: no execve call to see).
 */
#define PID_LIMIT (1u << 22) /* the kernel's PID_MAX_LIMIT on 64-bit */
static uint8_t announced[PID_LIMIT / 8];

static bool announce_once(uint32_t tgid) {
    if (tgid == 0 || tgid >= PID_LIMIT) return false;
    uint8_t bit = (uint8_t)(1u << (tgid & 7));
    return (__atomic_fetch_or(&announced[tgid >> 3], bit, __ATOMIC_RELAXED) & bit) == 0;
}

static void announce_clear(uint32_t tgid) {
    if (tgid && tgid < PID_LIMIT) __atomic_fetch_and(&announced[tgid >> 3], (uint8_t)~(1u << (tgid & 7)), __ATOMIC_RELAXED);
}

/* the running image's argv (mm->arg_start..arg_end), as /proc/PID/cmdline reads it */
static uint8_t *blob_args(uint8_t *p, uint8_t *end, uint64_t mm) {
    uint64_t as = mem64(mm + (uint64_t)off_arg_start), ae = mem64(mm + (uint64_t)off_arg_end);
    uint8_t buf[4096];
    size_t n = ae > as ? (size_t)(ae - as) : 0;
    if (n > sizeof buf) n = sizeof buf;
    if (n && mem(as, buf, n)) p = blob(p, end, BLOB_NEWARGV, buf, n);
    return p;
}

static int walked;
static uint64_t entry_calls;

static void maybe_walk(void) {
    if (!walked) { walked = 1; walk_tasks(); return; }
    if ((++entry_calls & 1023) != 0 || out_fd < 0) return;
    char c[16];
    ssize_t n = recv(out_fd, c, sizeof c, MSG_DONTWAIT);
    if (n > 0) walk_tasks();
}

/* A socket address (at most 128 bytes: ADDR_CUT beyond), or ADDR_UNREAD in *flags. */
static uint8_t *blob_sa(uint8_t *p, uint8_t *end, uint64_t ptr, uint64_t len, uint32_t *flags) {
    uint8_t sa[128];
    if (!ptr || !len) return p;
    if (len > sizeof sa) { len = sizeof sa; *flags |= ADDR_CUT; }
    if (!mem(ptr, sa, len)) { *flags |= ADDR_UNREAD; return p; }
    return blob(p, end, BLOB_SOCKADDR, sa, len);
}

/* One message's MMSG/OUTMMSG blob: its MM_* flags, then the address's n bytes. */
static uint8_t *blob_mm(uint8_t *p, uint8_t *end, int kind, uint8_t fl, const uint8_t *sa, size_t n) {
    if (p + 5 + n > end) return p;
    uint16_t l = (uint16_t)(1 + n);
    p[0] = (uint8_t)kind; p[1] = 0;
    memcpy(p + 2, &l, 2);
    p[4] = fl;
    if (n) memcpy(p + 5, sa, n);
    return p + 5 + n;
}

/* struct mmsghdr: a msghdr and the u32 msg_len; 64 bytes (x86_64), 32 (struct compat_mmsghdr). */
static uint64_t mm_stride(unsigned ptr) { return ptr == 8 ? 64 : 32; }

/* Message i's msg_name and msg_namelen (the first two members of its msghdr). */
static bool mm_header(uint64_t vec, uint32_t i, unsigned ptr, uint64_t *name, int32_t *namelen) {
    uint8_t b[12];
    if (!mem(vec + (uint64_t)i * mm_stride(ptr), b, ptr + 4u)) return false;
    *name = 0;
    memcpy(name, b, ptr);
    memcpy(namelen, b + ptr, 4);
    return true;
}

/* sendmmsg: the msg_name of each of its first MMSG_MAX messages, as sendmsg's (at most 128
 * bytes: MM_CUT beyond; MM_UNREAD), one MMSG blob each; a header that cannot be read ends them
 * (MM_END). MMSG_UNREAD in *flags when anything could not be read. */
static uint8_t *blob_mmsg(uint8_t *p, uint8_t *end, uint64_t vec, uint32_t vlen, unsigned ptr, uint32_t *flags) {
    uint32_t n = vlen < MMSG_MAX ? vlen : MMSG_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t name;
        int32_t namelen;
        if (!mm_header(vec, i, ptr, &name, &namelen)) { *flags |= MMSG_UNREAD; return blob_mm(p, end, BLOB_MMSG, MM_END, NULL, 0); }
        uint8_t sa[128], fl = 0;
        uint32_t len = (uint32_t)namelen;
        if (!name || !len) { p = blob_mm(p, end, BLOB_MMSG, 0, NULL, 0); continue; }
        if (len > sizeof sa) { len = sizeof sa; fl |= MM_CUT; }
        if (!mem(name, sa, len)) { fl |= MM_UNREAD; len = 0; *flags |= MMSG_UNREAD; }
        p = blob_mm(p, end, BLOB_MMSG, fl, sa, len);
    }
    return p;
}

/* The socket address arguments of spec s over the arguments a (msghdr: pointer-sized msg_name,
 * then the u32 msg_namelen; sendmmsg: each message's). */
static uint8_t *blob_sa_args(uint8_t *p, uint8_t *end, struct argspec s, const uint64_t *a, unsigned ptr, uint32_t *flags) {
    if (s.sa) return blob_sa(p, end, a[s.sa - 1], a[s.salen - 1], flags);
    if (s.smm) return blob_mmsg(p, end, a[s.smm - 1], (uint32_t)a[s.mlen - 1], ptr, flags);
    if (s.msg && a[s.msg - 1]) {
        uint64_t name = 0;
        uint32_t namelen = 0;
        if (!mem(a[s.msg - 1], &name, ptr) || !mem(a[s.msg - 1] + ptr, &namelen, 4)) { *flags |= ADDR_UNREAD; return p; }
        return blob_sa(p, end, name, namelen, flags);
    }
    return p;
}

/* The buffer of spec s's written-back address over the arguments a, and the caller's room
 * (recvmsg: msg_name, and msg_namelen in the caller's msghdr, which the kernel rewrites; ptr is
 * the size of a user pointer). */
static void out_addr(struct argspec s, const uint64_t *a, unsigned ptr, struct outaddr *o) {
    int32_t len = 0;
    if (s.omsg && a[s.omsg - 1]) {
        uint64_t name = 0;
        if (!mem(a[s.omsg - 1], &name, ptr)) { o->msg = a[s.omsg - 1]; return; } /* not paged in yet, or EFAULT: see at the return */
        if (!name) return; /* no address asked for */
        o->ptr = name;
        o->lenp = a[s.omsg - 1] + ptr;
    } else {
        if (!s.oa || !a[s.oa - 1] || !a[s.oalen - 1]) return;
        o->ptr = a[s.oa - 1];
        o->lenp = a[s.oalen - 1];
    }
    o->room = mem(o->lenp, &len, 4) ? (len < 0 ? 0 : (uint32_t)len) : ROOM_UNKNOWN;
}

/* recvmmsg (spec s over the arguments a): each of its first MMSG_MAX messages' msg_name and room
 * (msg_namelen before the call), kept until the return; a header not readable now is read then. */
static void out_mmsg(struct argspec s, const uint64_t *a, unsigned ptr, struct outmm *m) {
    uint32_t vlen = (uint32_t)a[s.mlen - 1], n = vlen < MMSG_MAX ? vlen : MMSG_MAX;
    if (!n) return;
    m->set = 1; m->vec = a[s.rmm - 1]; m->ptr = (uint8_t)ptr; m->n = (uint8_t)n; m->late = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t name;
        int32_t namelen;
        if (!mm_header(m->vec, i, ptr, &name, &namelen)) { m->name[i] = 0; m->room[i] = ROOM_UNKNOWN; m->late |= (uint16_t)(1u << i); continue; }
        m->name[i] = name;
        m->room[i] = namelen < 0 ? 0 : (uint32_t)namelen;
    }
}

/* The socket address of a call (spec s over its arguments a); for an i386 socketcall, the words
 * of its argument array, as the kernel copies them, and the address they point to (a call number
 * out of range: the kernel refuses it, EINVAL; nothing to read). *o: where an address will be
 * written back; *connfd (when given): a connect's descriptor, as the kernel takes it (a socketcall's
 * only when its array could be read), else NO_FD. */
static uint8_t *blob_sock(uint8_t *p, uint8_t *end, const struct abi *ab, uint64_t nr, const uint64_t *a, uint32_t *flags, struct outaddr *o,
                          struct outmm *m, uint64_t *connfd) {
    p = blob_sa_args(p, end, ab->spec[nr], a, ab->ptr, flags);
    out_addr(ab->spec[nr], a, ab->ptr, o);
    if (ab->spec[nr].rmm) out_mmsg(ab->spec[nr], a, ab->ptr, m);
    if (connfd) *connfd = is_connect(nr, ab->ptr) ? (uint32_t)a[0] : NO_FD; /* (an int: a negative one is no descriptor) */
    if (ab->ptr == 4 && nr == NR32_SOCKETCALL && a[0] >= 1 && a[0] <= 20) {
        uint32_t w[6] = { 0 };
        if (!mem(a[1], w, sc_nargs[a[0]] * 4u)) { *flags |= SCARGS_UNREAD; return p; }
        p = blob(p, end, BLOB_SCARGS, w, sc_nargs[a[0]] * 4u);
        if (connfd && a[0] == 3) *connfd = w[0];
        uint64_t wa[6] = { w[0], w[1], w[2], w[3], w[4], w[5] };
        p = blob_sa_args(p, end, sc_spec[a[0]], wa, 4, flags);
        out_addr(sc_spec[a[0]], wa, 4, o);
        if (sc_spec[a[0]].rmm) out_mmsg(sc_spec[a[0]], wa, 4, m);
    }
    return p;
}

/* The address the kernel wrote back, as long as it says (*addrlen now) but no longer than the
 * caller's room or 128 bytes (RET_OUT_CUT); RET_OUT_UNREAD when it cannot be read. */
static uint8_t *blob_out(uint8_t *p, uint8_t *end, const struct outaddr *o, uint32_t *flags) {
    uint8_t sa[128];
    int32_t len = 0;
    if (!mem(o->lenp, &len, 4)) { *flags |= RET_OUT_UNREAD; return p; }
    if (len <= 0) return p;
    uint32_t n = (uint32_t)len;
    if (n > o->room) { n = o->room; *flags |= RET_OUT_CUT; }
    if (n > sizeof sa) { n = sizeof sa; *flags |= RET_OUT_CUT; }
    if (n == 0) return p;
    if (!mem(o->ptr, sa, n)) { *flags |= RET_OUT_UNREAD; return p; }
    return blob(p, end, BLOB_OUTADDR, sa, n);
}

/* recvmmsg: the sender the kernel wrote to each of the first ret (at most MMSG_MAX) messages, as
 * recvmsg's (its length from msg_namelen now, no more than the room or 128 bytes: MM_CUT;
 * MM_UNREAD), one OUTMMSG blob each; none for a message with no msg_name or a length of 0. A
 * header that could not be read at the call is read now, msg_name too (RET_REREAD in *flags: a
 * thread could have repointed it since); one that cannot be read now ends them (MM_END). */
static uint8_t *blob_outmm(uint8_t *p, uint8_t *end, const struct outmm *m, uint64_t ret, uint32_t *flags) {
    uint32_t n = ret < MMSG_MAX ? (uint32_t)ret : MMSG_MAX;
    for (uint32_t i = 0; i < n; i++) {
        int32_t len = 0;
        uint64_t name = m->name[i];
        bool late = (m->late >> i) & 1u;
        if (i >= m->n || (late ? !mm_header(m->vec, i, m->ptr, &name, &len)
                               : name && !mem(m->vec + (uint64_t)i * mm_stride(m->ptr) + m->ptr, &len, 4)))
            return blob_mm(p, end, BLOB_OUTMMSG, MM_END, NULL, 0);
        if (late && name) *flags |= RET_REREAD;
        uint8_t sa[128], fl = 0;
        uint32_t k = len > 0 ? (uint32_t)len : 0;
        if (!name || !k) { p = blob_mm(p, end, BLOB_OUTMMSG, 0, NULL, 0); continue; }
        if (k > m->room[i]) { k = m->room[i]; fl |= MM_CUT; }
        if (k > sizeof sa) { k = sizeof sa; fl |= MM_CUT; }
        if (k && !mem(name, sa, k)) { fl |= MM_UNREAD; k = 0; }
        p = blob_mm(p, end, BLOB_OUTMMSG, fl, sa, k);
    }
    return p;
}

/* How the hooked function was entered: the 64-bit syscall, int $0x80, or the compat fast path. */
enum { VIA_SYSCALL64 = 0, VIA_INT80 = 1, VIA_FAST32 = 2 };

/*
 * Every call's user ip and sp at the call, by task, to tell at the return how the call came back.
 * Direct-mapped and lock-free (a task is in one call at a time; its slot is checked before and
 * after the copy): another task's call in the same slot meanwhile loses it, and the return is then
 * taken as it stands (the retry table keeps its own copy for the calls whose address it reads).
 */
#define CALL_SLOTS 65536
struct callsite { uint64_t task, key, ip, sp, via; };
static struct callsite callsites[CALL_SLOTS];

static struct callsite *cslot(uint64_t task) { return &callsites[(task * 0x9e3779b97f4a7c15ull) >> 48]; }

static void callsite_put(uint64_t task, uint64_t key, uint64_t ip, uint64_t sp, int via) {
    struct callsite *c = cslot(task);
    __atomic_store_n(&c->task, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&c->key, key, __ATOMIC_RELAXED);
    __atomic_store_n(&c->ip, ip, __ATOMIC_RELAXED);
    __atomic_store_n(&c->sp, sp, __ATOMIC_RELAXED);
    __atomic_store_n(&c->via, (uint64_t)via, __ATOMIC_RELAXED);
    __atomic_store_n(&c->task, task, __ATOMIC_RELEASE);
}

static bool callsite_get(uint64_t task, uint64_t key, struct callsite *out) {
    struct callsite *c = cslot(task);
    if (__atomic_load_n(&c->task, __ATOMIC_ACQUIRE) != task) return false;
    out->key = __atomic_load_n(&c->key, __ATOMIC_RELAXED);
    out->ip = __atomic_load_n(&c->ip, __ATOMIC_RELAXED);
    out->sp = __atomic_load_n(&c->sp, __ATOMIC_RELAXED);
    out->via = __atomic_load_n(&c->via, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&c->task, __ATOMIC_RELAXED) == task && out->key == key;
}

/*
 * Signal frames, offsets from the frame's start (the handler's sp) from the guest's BTF, -1 when
 * not known: the 64-bit rt_sigframe and the ia32 rt_sigframe (info, uc, and the saved ax, ip, sp
 * in uc.uc_mcontext), the ia32 sigframe of a handler without SA_SIGINFO (ax, ip, sp in sc).
 */
struct sigframe { int64_t info, uc, ax, ip, sp; };
static struct sigframe sf64 = { -1, -1, -1, -1, -1 }, sfrt32 = { -1, -1, -1, -1, -1 }, sf32 = { -1, -1, -1, -1, -1 };

static void parse_frame(const char *v, struct sigframe *f, bool rt) {
    int64_t *o = rt ? &f->info : &f->ax;
    int n = rt ? 5 : 3;
    char *e = (char *)v;
    for (int i = 0; i < n; i++) {
        o[i] = strtoll(e, &e, 0);
        if (*e != (i + 1 < n ? ':' : 0)) { *f = (struct sigframe){ -1, -1, -1, -1, -1 }; return; }
        if (*e) e++;
    }
}

/* An i386 register as a 64-bit result: -4095..-1 are errors, anything else is unsigned (an address). */
static uint64_t result32(uint32_t v) { return v >= 0xfffff001u ? (uint64_t)(int64_t)(int32_t)v : v; }

/*
 * The interrupted context's ax, ip, sp in the signal frame at the return's sp, when the handler's
 * registers say one was just set up there (the kernel points them into it): 64-bit, si = &info and
 * dx = &uc; ia32 rt, dx = &info and cx = &uc; ia32 without SA_SIGINFO, ax = the signal, dx = cx = 0.
 * *wide: 64-bit registers (else 32-bit ones, compared as such).
 */
static bool frame_regs(const uint64_t *pr, uint64_t *ax, uint64_t *ip, uint64_t *sp, bool *wide) {
    uint64_t fsp = pr[9], cx = pr[1], dx = pr[2], si = pr[3];
    const struct sigframe *f = NULL;
    if (sf64.sp >= 0 && si == fsp + (uint64_t)sf64.info && dx == fsp + (uint64_t)sf64.uc) f = &sf64;
    else if (sfrt32.sp >= 0 && dx == fsp + (uint64_t)sfrt32.info && cx == fsp + (uint64_t)sfrt32.uc) f = &sfrt32;
    else if (sf32.sp >= 0 && dx == 0 && cx == 0 && pr[0] >= 1 && pr[0] <= 64) f = &sf32;
    if (!f) return false;
    *wide = f == &sf64;
    if (*wide) return mem(fsp + (uint64_t)f->ax, ax, 8) && mem(fsp + (uint64_t)f->ip, ip, 8) && mem(fsp + (uint64_t)f->sp, sp, 8);
    uint32_t a = 0, i = 0, s = 0;
    if (!mem(fsp + (uint64_t)f->ax, &a, 4) || !mem(fsp + (uint64_t)f->ip, &i, 4) || !mem(fsp + (uint64_t)f->sp, &s, 4)) return false;
    *ax = result32(a); *ip = i; *sp = s;
    return true;
}

/* The 2 bytes at ip are int $0x80 (a fast-path call restarts there: the vDSO's landing pad - 2). */
static bool at_int80(uint64_t ip) { uint16_t b = 0; return mem(ip, &b, 2) && b == 0x80cd; }

/*
 * How a call (made at c) came back, at the instruction after the call of the hooked function
 * (signals are delivered before it): where it was made (BACK_DONE); into a handler whose frame
 * holds the call's registers, *ax its result (BACK_FRAME: -EINTR if the signal cut it short);
 * back at its system call instruction, with ax the call's number (or restart_syscall's), to be
 * made again (BACK_RESTART: SA_RESTART, or no handler: a stop and continue). The fast path's ip at
 * the call is not where it returns (the vDSO's landing pad, its int $0x80 right before).
 */
enum { BACK_UNKNOWN, BACK_DONE, BACK_FRAME, BACK_RESTART };
static int came_back(const struct callsite *c, const uint64_t *pr, uint64_t orig, uint64_t restart_nr, uint64_t *ax) {
    uint64_t ip = pr[6], sp = pr[9];
    bool fast = c->via == VIA_FAST32;
    *ax = pr[0];
    if (sp == c->sp) {
        bool again = (*ax == orig || *ax == restart_nr) && (fast ? at_int80(ip) : ip == c->ip - 2);
        return again ? BACK_RESTART : fast || ip == c->ip ? BACK_DONE : BACK_UNKNOWN;
    }
    uint64_t fax = 0, fip = 0, fsp = 0;
    bool wide = true;
    if (!frame_regs(pr, &fax, &fip, &fsp, &wide)) return BACK_UNKNOWN;
    uint64_t csp = wide ? c->sp : (uint32_t)c->sp, cip = wide ? c->ip : (uint32_t)c->ip;
    if (fsp != csp) return BACK_UNKNOWN;
    /* (with a handler, restart_syscall's case fails with -EINTR instead) */
    if ((wide ? fax : (uint32_t)fax) == (wide ? orig : (uint32_t)orig) && (fast ? at_int80(fip) : fip == (uint64_t)(cip - 2)))
        return BACK_RESTART;
    if (!fast && fip != cip) return BACK_UNKNOWN;
    *ax = fax;
    return BACK_FRAME;
}

static void on_entry(unsigned int vcpu, void *ud) {
    int via = (int)(uintptr_t)ud;
    const struct abi *ab = via == VIA_SYSCALL64 ? &abi64 : &abi32;
    if (cfg_init_task && off_tasks >= 0) maybe_walk();
    uint8_t rec[16384];
    uint8_t *end = rec + sizeof rec;
    struct hdr h = { (uint16_t)ab->enter, 0, 0, 0, 0, now_ns() };
    /* do_syscall_64 / do_int80_* / do_fast_syscall_32 (struct pt_regs *regs): user registers as saved on entry */
    uint64_t pr[21];
    if (!mem(reg(R_RDI), pr, sizeof pr)) return;
    uint64_t nr = pr[15]; /* orig_ax */
    uint64_t a[6] = { pr[14], pr[13], pr[12], pr[7], pr[9], pr[8] }; /* di si dx r10 r8 r9 */
    if (via != VIA_SYSCALL64) {
        /* i386: bx cx dx si di bp, 32 bits each. The int 0x80 IDTENTRY (do_int80_emulation) still
         * has the number in ax (orig_ax -1); the fast path fetches bp from the user stack later, so
         * it is read here from where the vDSO put it (the u32 at regs->sp) */
        if ((int64_t)nr == -1) nr = (uint32_t)pr[10];
        nr = (uint32_t)nr;
        uint64_t b[6] = { (uint32_t)pr[5], (uint32_t)pr[11], (uint32_t)pr[12], (uint32_t)pr[13], (uint32_t)pr[14],
                          via == VIA_FAST32 ? mem32((uint32_t)pr[19]) : (uint32_t)pr[4] };
        memcpy(a, b, sizeof a);
    }
    uint64_t task = mem64(reg(R_GS) + cfg_cur);
    char comm[16] = { 0 };
    task_info(vcpu, task, &h, comm);
    uint8_t *p = rec + sizeof h;
    uint32_t nr32 = (uint32_t)nr, flags = 0;
    /* clone3 keeps its flags in memory: CLONE_THREAD (low 32 bits) tells threads from processes */
    if (nr == ab->clone3 && a[0]) flags = (uint32_t)mem64(a[0]);
    memcpy(p, &nr32, 4); memcpy(p + 4, &flags, 4); p += 8;
    memcpy(p, a, sizeof a); p += sizeof a;
    memcpy(p, comm, 16); p += 16;
    bool exec = nr == ab->execve || nr == ab->execveat;
    /* (a mark left by a task killed inside exec is dropped at its task's next call) */
    if (task) { if (exec) exec_mark(task); else exec_take(task); }
    if (nr < 512) {
        struct argspec s = ab->spec[nr];
        bool ok1 = true, ok2 = true;
        if (s.path) p = blob_str_ok(p, end, BLOB_PATH, a[s.path - 1], &ok1);
        if (s.path2) p = blob_str_ok(p, end, BLOB_PATH2, a[s.path2 - 1], &ok2);
        if (s.argv && a[s.argv - 1]) {
            /* an array of 8-byte pointers, or of 4-byte ones for i386 */
            for (int i = 0; i < 64; i++) {
                uint64_t ptr = 0;
                if (!mem(a[s.argv - 1] + ab->ptr * (uint64_t)i, &ptr, ab->ptr)) { flags |= ARGV_INCOMPLETE; break; }
                if (!ptr) break;
                bool ok;
                uint8_t *q = blob_str_ok(p, end, BLOB_ARGV, ptr, &ok);
                if (!ok || q == p) { flags |= ARGV_INCOMPLETE; break; }
                p = q;
            }
        }
        uint32_t sflags = 0;
        struct outaddr out = { 0, 0, 0, 0 };
        struct outmm mm;
        mm.set = 0;
        uint64_t connfd = NO_FD;
        p = blob_sock(p, end, ab, nr, a, &sflags, &out, &mm, &connfd);
        flags |= sflags;
        memcpy(rec + sizeof h + 4, &flags, 4);
        uint32_t what = (ok1 ? 0 : RETRY_PATH) | (ok2 ? 0 : RETRY_PATH2) | (sflags & (ADDR_UNREAD | SCARGS_UNREAD | MMSG_UNREAD) ? RETRY_SOCK : 0) |
                        (out.ptr || out.msg || mm.set ? RETRY_OUT : 0);
        if (what && task && !exec) {
            struct retry r = { 0, nr | (uint64_t)ab->enter << 32, { 0 }, pr[16], pr[19], out, what, via, { 0 }, connfd };
            memcpy(r.a, a, sizeof r.a);
            if (mm.set) r.mm = mm;
            retry_put(task, &r);
        }
    }
    if (task && !exec && nr != ab->exit_group) callsite_put(task, nr | (uint64_t)ab->enter << 32, pr[16], pr[19], via);
    if (task && announce_once(h.tgid)) {
        uint64_t mm = mem64(task + (uint64_t)off_mm);
        if (mm) { p = blob_exe(p, end, mm); p = blob_args(p, end, mm); }
    }
    /* the pid may be reused. Not at exit: it ends the calling thread only, the main one too, and
     * the process lives on in its other threads (a signal-killed process: cleared at the fork
     * that reuses its pid, on_return) */
    if (nr == ab->exit_group) announce_clear(h.tgid);
    h.len = (uint16_t)(p - rec);
    memcpy(rec, &h, sizeof h);
    emit(rec, (size_t)(p - rec), h.ts);
}

static void on_return(unsigned int vcpu, void *ud) {
    const struct abi *ab = ud ? &abi32 : &abi64;
    uint8_t rec[8192];
    uint8_t *end = rec + sizeof rec;
    struct hdr h = { (uint16_t)ab->ret, 0, 0, 0, 0, now_ns() };
    uint64_t task = mem64(reg(R_GS) + cfg_cur);
    task_info(vcpu, task, &h, NULL);
    /* pt_regs is at rsp: ax at 10*8 ... orig_ax at 15*8, ip at 16*8, sp at 19*8 */
    uint64_t pr[10] = { 0 };
    mem(reg(R_RSP) + 80, pr, sizeof pr);
    uint64_t ax = pr[0], orig = pr[5];
    if (ud) orig = (uint32_t)orig; /* i386: a 32-bit number (-1 after sigreturn reads 0xffffffff, as 64-bit's does) */
    bool exec = task && exec_take(task) && ax == 0;
    if (exec) tslot(vcpu, task)->task = 0;                  /* new comm */
    if (task && orig == ab->prctl) tslot(vcpu, task)->task = 0; /* prctl: maybe PR_SET_NAME */
    uint8_t *p = rec + sizeof h;
    uint32_t nr32 = (uint32_t)orig, rflags = 0;
    uint64_t key = orig | (uint64_t)ab->enter << 32;
    struct retry rt;
    bool retried = task && retry_take(task, key, &rt);
    /* where the call was made: the retry table's copy first (it is never lost to another task) */
    struct callsite c = { 0 };
    bool known = retried ? (c = (struct callsite){ task, key, rt.ip, rt.sp, (uint64_t)rt.via }, true) : task && !exec && callsite_get(task, key, &c);
    int back = known && !exec ? came_back(&c, pr, orig, ab->restart, &ax) : BACK_UNKNOWN;
    if (back == BACK_FRAME) rflags |= RET_SIGFRAME;
    if (back == BACK_RESTART) rflags |= RET_RESTART;
    memcpy(p, &nr32, 4); p += 8; /* then the flags */
    memcpy(p, &ax, 8); p += 8;
    if (retried) {
        struct argspec s = ab->spec[orig];
        struct outaddr out = rt.out, late = { 0, 0, 0, 0 };
        struct outmm *mm = rt.mm.set ? &rt.mm : NULL, late_mm;
        late_mm.set = 0;
        /* the call completed: it came back where it was made, or into a handler after it succeeded
         * (not cut short, not to be made again); then ax is its result */
        bool done = back == BACK_DONE || back == BACK_FRAME;
        /* an open that returned a descriptor: its file's name, not the caller's string again (a
         * thread could have rewritten it since the kernel copied it); read again when it has none */
        uint8_t *named = p, *peer;
        if ((rt.what & RETRY_PATH) && done && (int64_t)ax >= 0 && is_open(orig, ab->ptr) && fdpath_known()) named = blob_fdpath(p, end, task, ax);
        /* a connect that connected (0, or -EINPROGRESS: the peer is set, the handshake under way):
         * the peer of its socket, not the caller's sockaddr again (a thread could have rewritten it
         * while the connect waited); read again when there is none (another family, a failed call) */
        peer = named;
        if ((rt.what & RETRY_SOCK) && rt.connfd != NO_FD && done && ((int64_t)ax == 0 || (int64_t)ax == -115) && peer_known())
            peer = blob_peer(named, end, task, rt.connfd);
        if ((rt.what & RETRY_PATH2) || ((rt.what & RETRY_SOCK) && peer == named) || ((rt.what & RETRY_PATH) && named == p)) rflags |= RET_REREAD;
        if (named != p) p = named;
        else if (rt.what & RETRY_PATH) p = blob_str(p, end, BLOB_PATH, rt.a[s.path - 1]);
        if (rt.what & RETRY_PATH2) p = blob_str(p, end, BLOB_PATH2, rt.a[s.path2 - 1]);
        if (peer != named) p = peer;
        else if (rt.what & RETRY_SOCK) p = blob_sock(p, end, ab, orig, rt.a, &rflags, &late, &late_mm, NULL);
        /* a socketcall unpacked only now: *addrlen already holds what the kernel wrote, the
         * caller's room is not known (as in the eBPF probe) */
        if (!out.ptr && !out.msg && (late.ptr || late.msg)) { out = late; out.room = ROOM_UNKNOWN; }
        if (!mm && late_mm.set) { for (unsigned i = 0; i < MMSG_MAX; i++) late_mm.room[i] = ROOM_UNKNOWN; mm = &late_mm; }
        /* the kernel wrote the address if the call completed */
        if (out.msg && (int64_t)ax >= 0 && done) {
            /* recvmsg's msghdr, not paged in at the call: the kernel faulted it in; its msg_name
             * now (a thread could have repointed it since), the room unknown */
            uint64_t name = 0;
            if (!mem(out.msg, &name, ab->ptr)) rflags |= RET_OUT_UNREAD;
            else if (name) { out.ptr = name; out.lenp = out.msg + ab->ptr; out.room = ROOM_UNKNOWN; rflags |= RET_REREAD; }
        }
        if (out.ptr && (int64_t)ax >= 0 && done) p = blob_out(p, end, &out, &rflags);
        if (mm && (int64_t)ax > 0 && done) p = blob_outmm(p, end, mm, ax, &rflags);
    }
    memcpy(rec + sizeof h + 4, &rflags, 4);
    /* a new process (a fork returned its pid): whatever last held the pid, announce it afresh */
    if ((orig == ab->clone || orig == ab->fork || orig == ab->vfork || orig == ab->clone3) && (int64_t)ax > 0 && back != BACK_RESTART) announce_clear((uint32_t)ax);
    if (exec && task) {
        announce_once(h.tgid);
        /* after a successful exec: the new comm and the exe path, dentry by dentry (leaf first) */
        char comm[16] = { 0 };
        mem(task + (uint64_t)off_comm, comm, 16);
        p = blob(p, end, BLOB_COMM, comm, strnlen(comm, 16));
        if (off_cred >= 0 && off_uid >= 0) { uint32_t uid = task_uid(task); p = blob(p, end, BLOB_UID, &uid, 4); }
        uint64_t mm = mem64(task + (uint64_t)off_mm);
        if (mm) {
            /* the new image's argv and execfn, from its fresh stack (as /proc/PID/cmdline does) */
            uint64_t ee = mem64(mm + (uint64_t)off_env_end);
            p = blob_args(p, end, mm);
            if (ee) p = blob_str(p, end, BLOB_EXECFN, ee);
        }
        p = blob_exe(p, end, mm);
        if (off_task_fs >= 0 && off_pwd_dentry >= 0 && off_pwd_mnt >= 0) {
            uint64_t fs = mem64(task + (uint64_t)off_task_fs);
            int how;
            if (fs) p = blob_path(p, end, BLOB_CWD, mem64(fs + (uint64_t)off_pwd_dentry), mounts_known() ? mem64(fs + (uint64_t)off_pwd_mnt) : 0, NULL, &how);
        }
    }
    h.len = (uint16_t)(p - rec);
    memcpy(rec, &h, sizeof h);
    emit(rec, (size_t)(p - rec), h.ts);
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu) {
    (void)id; (void)vcpu;
    GArray *all = qemu_plugin_get_registers();
    qemu_plugin_reg_descriptor *d = (qemu_plugin_reg_descriptor *)all->data;
    for (unsigned i = 0; i < all->len; i++)
        for (int r = 0; r < R_N; r++)
            if (!regs[r] && strcmp(d[i].name, reg_names[r]) == 0) regs[r] = d[i].handle;
    g_array_free(all, 1);
    for (int r = 0; r < R_N; r++)
        if (!regs[r]) {
            char m[128];
            snprintf(m, sizeof m, "sandtrace: guest register %s not available\n", reg_names[r]);
            qemu_plugin_outs(m);
        }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        if (!slide_known) {
            /* KASLR: find entry_SYSCALL_64 by its first bytes at the same 2 MiB alignment */
            if (va < 0xffffffff80000000ull || ((va ^ cfg_entry) & 0x1fffff) || i + 1 >= n) continue;
            uint8_t b[16] = { 0 };
            size_t k = qemu_plugin_insn_data(insn, b, sizeof b);
            k += qemu_plugin_insn_data(qemu_plugin_tb_get_insn(tb, i + 1), b + k, sizeof b - k);
            if (k < cfg_entry_len || memcmp(b, cfg_entry_bytes, cfg_entry_len)) continue;
            slide = (int64_t)(va - cfg_entry);
            slide_known = 1;
            uint8_t rec[sizeof(struct hdr) + 8];
            struct hdr h = { REC_INFO, sizeof rec, 0, 0, 0, now_ns() };
            memcpy(rec, &h, sizeof h);
            memcpy(rec + sizeof h, &slide, 8);
            emit(rec, sizeof rec, h.ts);
        }
        uint64_t lva = va - (uint64_t)slide;
        if (lva == cfg_dosys)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_entry, QEMU_PLUGIN_CB_R_REGS, (void *)(uintptr_t)VIA_SYSCALL64);
        else if (lva == cfg_after)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_return, QEMU_PLUGIN_CB_R_REGS, NULL);
        else if (cfg_int80 && lva == cfg_int80)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_entry, QEMU_PLUGIN_CB_R_REGS, (void *)(uintptr_t)VIA_INT80);
        else if (cfg_fast && lva == cfg_fast)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_entry, QEMU_PLUGIN_CB_R_REGS, (void *)(uintptr_t)VIA_FAST32);
        else if ((cfg_int80_ret && lva == cfg_int80_ret) || (cfg_fast_ret && lva == cfg_fast_ret) || (cfg_sysenter_ret && lva == cfg_sysenter_ret))
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_return, QEMU_PLUGIN_CB_R_REGS, (void *)1);
    }
}

static void at_exit(qemu_plugin_id_t id, void *ud) {
    (void)id; (void)ud;
    pthread_mutex_lock(&out_lock);
    flush_locked();
    if (out_fd >= 0) close(out_fd);
    out_fd = -1;
    pthread_mutex_unlock(&out_lock);
}

static int hexbytes(const char *s, uint8_t *out, size_t max) {
    size_t n = 0;
    while (s[0] && s[1] && n < max) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) return -1;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return (int)n;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    if (!info->system_emulation || strcmp(info->target_name, "x86_64") != 0) {
        qemu_plugin_outs("sandtrace: needs qemu-system-x86_64\n");
        return -1;
    }
    const char *out = NULL, *sock = NULL;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        size_t kl = (size_t)(eq - argv[i]);
        const char *v = eq + 1;
#define K(name) (kl == strlen(name) && strncmp(argv[i], name, kl) == 0)
        if (K("out")) out = v;
        else if (K("sock")) sock = v;
        else if (K("entry")) cfg_entry = strtoull(v, NULL, 0);
        else if (K("dosys")) cfg_dosys = strtoull(v, NULL, 0);
        else if (K("after")) cfg_after = strtoull(v, NULL, 0);
        else if (K("cur")) cfg_cur = strtoull(v, NULL, 0);
        else if (K("int80")) cfg_int80 = strtoull(v, NULL, 0);
        else if (K("int80ret")) cfg_int80_ret = strtoull(v, NULL, 0);
        else if (K("fast32")) cfg_fast = strtoull(v, NULL, 0);
        else if (K("fast32ret")) cfg_fast_ret = strtoull(v, NULL, 0);
        else if (K("sysenterret")) cfg_sysenter_ret = strtoull(v, NULL, 0);
        else if (K("bytes")) { int n = hexbytes(v, cfg_entry_bytes, sizeof cfg_entry_bytes); cfg_entry_len = n > 0 ? (size_t)n : 0; }
        else if (K("pid")) off_pid = strtoll(v, NULL, 0);
        else if (K("tgid")) off_tgid = strtoll(v, NULL, 0);
        else if (K("comm")) off_comm = strtoll(v, NULL, 0);
        else if (K("parent")) off_parent = strtoll(v, NULL, 0);
        else if (K("mm")) off_mm = strtoll(v, NULL, 0);
        else if (K("exe")) off_exe = strtoll(v, NULL, 0);
        else if (K("fdentry")) off_fpath_dentry = strtoll(v, NULL, 0);
        else if (K("dname")) off_dname = strtoll(v, NULL, 0);
        else if (K("dparent")) off_dparent = strtoll(v, NULL, 0);
        else if (K("argstart")) off_arg_start = strtoll(v, NULL, 0);
        else if (K("argend")) off_arg_end = strtoll(v, NULL, 0);
        else if (K("envend")) off_env_end = strtoll(v, NULL, 0);
        else if (K("inittask")) cfg_init_task = strtoull(v, NULL, 0);
        else if (K("tasks")) off_tasks = strtoll(v, NULL, 0);
        else if (K("cred")) off_cred = strtoll(v, NULL, 0);
        else if (K("uid")) off_uid = strtoll(v, NULL, 0);
        else if (K("fmnt")) off_fpath_mnt = strtoll(v, NULL, 0);
        else if (K("mntvfs")) off_mount_mnt = strtoll(v, NULL, 0);
        else if (K("mntparent")) off_mnt_parent = strtoll(v, NULL, 0);
        else if (K("mntpoint")) off_mnt_mountpoint = strtoll(v, NULL, 0);
        else if (K("mntroot")) off_mnt_root = strtoll(v, NULL, 0);
        else if (K("taskfs")) off_task_fs = strtoll(v, NULL, 0);
        else if (K("pwd")) off_pwd_dentry = strtoll(v, NULL, 0);
        else if (K("pwdmnt")) off_pwd_mnt = strtoll(v, NULL, 0);
        else if (K("files")) off_task_files = strtoll(v, NULL, 0);
        else if (K("fdt")) off_files_fdt = strtoll(v, NULL, 0);
        else if (K("fdtfd")) off_fdt_fd = strtoll(v, NULL, 0);
        else if (K("maxfds")) off_fdt_max = strtoll(v, NULL, 0);
        else if (K("dhash")) off_dhash_pprev = strtoll(v, NULL, 0);
        else if (K("root")) off_root_dentry = strtoll(v, NULL, 0);
        else if (K("rootmnt")) off_root_mnt = strtoll(v, NULL, 0);
        else if (K("finode")) off_file_inode = strtoll(v, NULL, 0);
        else if (K("imode")) off_inode_mode = strtoll(v, NULL, 0);
        else if (K("fpriv")) off_file_private = strtoll(v, NULL, 0);
        else if (K("socksk")) off_socket_sk = strtoll(v, NULL, 0);
        else if (K("skfamily")) off_sk_family = strtoll(v, NULL, 0);
        else if (K("skdport")) off_sk_dport = strtoll(v, NULL, 0);
        else if (K("skdaddr")) off_sk_daddr = strtoll(v, NULL, 0);
        else if (K("skv6daddr")) off_sk_v6daddr = strtoll(v, NULL, 0);
        else if (K("sigrt")) parse_frame(v, &sf64, true);
        else if (K("sigrt32")) parse_frame(v, &sfrt32, true);
        else if (K("sig32")) parse_frame(v, &sf32, false);
#undef K
    }
    if ((!out && !sock) || !cfg_entry || !cfg_dosys || !cfg_after || !cfg_cur || !cfg_entry_len || off_pid < 0 || off_tgid != off_pid + 4 ||
        off_comm < 0 || off_parent < 0 || off_mm < 0 || off_exe < 0 || off_fpath_dentry < 0 || off_dname < 0 || off_dparent < 0 ||
        off_arg_start < 0 || off_arg_end < 0 || off_env_end < 0) {
        qemu_plugin_outs("sandtrace: missing or inconsistent plugin arguments (out, entry, after, cur, bytes, offsets)\n");
        return -1;
    }
    if (sock) {
        /* a unix stream socket sandtrace listens on: blocking writes give back-pressure */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strncpy(sa.sun_path, sock, sizeof sa.sun_path - 1);
        out_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (out_fd >= 0 && connect(out_fd, (struct sockaddr *)&sa, sizeof sa) < 0) { close(out_fd); out_fd = -1; }
    } else {
        out_fd = open(out, O_WRONLY | O_CLOEXEC);
    }
    if (out_fd < 0) {
        qemu_plugin_outs("sandtrace: cannot open the output\n");
        return -1;
    }
    init_specs();
    max_vcpus = info->system.max_vcpus > 0 ? (unsigned)info->system.max_vcpus : 1;
    tcaches = calloc((size_t)max_vcpus * TCACHE, sizeof *tcaches);
    if (!tcaches) return -1;
    last_flush_ns = now_ns();
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
