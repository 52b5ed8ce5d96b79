/* Record layout shared by the eBPF program and its loader; decoded by
 * src/capture/ebpf/decode.ts. Every record is REC_FIXED bytes plus data_len bytes of data. */
#ifndef SANDTRACE_H
#define SANDTRACE_H

#define REC_SYSCALL 1
#define REC_FORK 2
#define REC_EXEC 3
#define REC_EXIT 4
#define REC_SIGNAL 5 /* a signal dequeued for a task whose syscall exited with a restart code */
/* Written by the loader, not the kernel. */
#define REC_READY 100
#define REC_STATS 101

#define F_COMPAT 1   /* i386 syscall (args are bx,cx,dx,si,di,bp); exec: an i386 image */
#define F_NORET 2    /* the call never returned (task exited or was killed inside it) */
#define F_THREAD 4   /* fork: CLONE_THREAD; exit: the thread group lives on */
#define F_TRUNC 8    /* some argument was cut short (which one: rec.cut) */
#define F_NOENTER 16 /* no sys_enter was seen (e.g. seccomp denied the call): data read at exit */
#define F_SOCKETCALL 32 /* i386 socketcall(102) unpacked: nr and args are the direct call's */
#define F_REREAD 64  /* arguments unreadable at entry were read at exit (the sample could have changed them) */
#define F_INTERP 128 /* exec: the file (a[0], a[1]) is the interpreter of a #! script or binfmt_misc file */

/* A signal record's disposition (a[1]): what get_signal() is about to do with the signal. */
#define SIG_DISP_DEFAULT 0 /* SIG_DFL */
#define SIG_DISP_IGNORE 1  /* SIG_IGN */
#define SIG_DISP_HANDLER 2 /* a handler runs (a[2] & SA_RESTART says whether the call restarts) */

/* rec.cut and rec.bad bits: which argument was cut at its buffer / could not be read at all.
 * On exec records A_PATH is the executable's name. */
#define A_PATH 1
#define A_PATH2 2
#define A_ARGV 4
#define A_ADDR 8
/* rec.bad only: an argument unreadable at entry taken from the kernel's own state at exit, not
 * re-read from the caller's memory (sandtrace.bpf.c): the path, the kernel's name of the file an
 * open returned (kernel_path); the address, the peer a connect connected to (kernel_peer) */
#define K_PATH 16
#define K_ADDR 32

#define DATA_MAX 8192   /* data bytes per record (power of two) */
#define STR_MAX 4096    /* one path: PATH_MAX, so no path the kernel accepts is cut */
#define ARG_MAX_LEN 256 /* one argv element */
#define ARGV_MAX 32     /* argv elements */
#define ADDR_MAX 128    /* sizeof(struct sockaddr_storage) */
#define EXEC_ARGS_MAX 4096

struct rec {
	unsigned char type;
	unsigned char flags;
	unsigned short data_len;
	int nr;                    /* syscall number; exec: 0; signal: the pending call's (orig_ax) */
	unsigned int pid, tid;     /* in the target pid namespace */
	unsigned long long ts;     /* bpf_ktime_get_ns */
	char comm[16];
	unsigned long long a[6];   /* syscall args; fork: a[0]=child pid, a[1]=child tid;
	                            * exec: a[0]=s_dev (kernel encoding), a[1]=i_ino of the file loaded;
	                            * signal: a[0]=signal, a[1]=SIG_DISP_*, a[2]=sa_flags */
	long long ret;             /* syscall return; exit: raw exit code (wait status);
	                            * signal: the restart code the call's return still holds */
	unsigned short len_path, len_path2, len_argv, len_addr;
	unsigned short argc;       /* argv elements read (exec: the new image's argc, saturated) */
	unsigned char cut, bad;    /* A_* bits: cut at its buffer; unreadable (bad pointer, unmapped page) */
	unsigned int uid;
	/* data: path | path2 | argv (NUL-separated) | addr
	 * sendmmsg/recvmmsg (x86_64 307/299; i386 345/337/417, direct or through socketcall): the addr
	 * region (len_addr bytes) is a list of entries, one per message read, in order:
	 * [u16 word][word & MM_LEN bytes of sockaddr]. MM_LEN 0 is a null entry (msg_name NULL or
	 * msg_namelen 0: no address); MM_CUT: the address shown is a prefix (it did not fit: ADDR_MAX,
	 * or recvmmsg's room, msg_namelen at the call); MM_BAD: that message's header (or the address
	 * it points at) could not be read, no bytes follow and the list ends there. At most
	 * MMSG_ADDR_MAX entries. sendmmsg: each message's msg_name, read at entry, for the first
	 * min(vlen, MMSG_ADDR_MAX) messages (the decoder keeps those the call handled: the first ret,
	 * or the first one when it failed). recvmmsg: read at the return, for the first
	 * min(ret, MMSG_ADDR_MAX) messages: the sender the kernel wrote where msg_name pointed at the
	 * call (msg_name and room noted at entry in the stash). rec.cut/rec.bad's A_ADDR is set too
	 * (sys_exit reads a sendmmsg list again from its first unreadable entry, if the call sent that
	 * message: reread_sendmmsg), but the decoder takes the marks from the entries it keeps. A
	 * recvmmsg whose socketcall arguments were unpacked only at sys_exit takes msg_name and room
	 * from the headers then (stash.mm_set: noted at this call's entry). */
};
#define MMSG_ADDR_MAX 16
#define MM_LEN 0x0fff
#define MM_BAD 0x4000
#define MM_CUT 0x8000
#define REC_FIXED 112

struct rec_buf {
	struct rec r;
	unsigned char data[DATA_MAX + 2 * STR_MAX]; /* slack so masked offsets stay in bounds */
};

struct stash {
	unsigned int valid;
	int nr;
	/* recvmsg: msg_name as the msghdr held it at the call (NAME_UNKNOWN: unreadable then). The
	 * kernel writes the sender there, whatever another thread points msg_name at meanwhile. */
	unsigned long long msg_name;
	/* recvmmsg: each message's msg_name and room (msg_namelen) at the call, for the first
	 * min(vlen, MMSG_ADDR_MAX) messages (NAME_UNKNOWN / ROOM_UNKNOWN: header unreadable then) */
	unsigned long long mm_name[MMSG_ADDR_MAX];
	unsigned int mm_room[MMSG_ADDR_MAX];
	unsigned int mm_set; /* mm_name/mm_room were noted at this call's entry */
	struct rec_buf b;
};
#define NAME_UNKNOWN (~0ULL)
#define ROOM_UNKNOWN 0xffffffffu

#endif
