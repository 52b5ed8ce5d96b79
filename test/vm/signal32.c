/* i386, no libc: blocking calls a signal interrupts, through the vDSO's __kernel_vsyscall (the fast
 * compat path: sysenter or syscall) and one through int $0x80. First an accept4 over a planted
 * address that the parent stops and continues (no handler: the kernel makes the call again, by the
 * int $0x80 before the vDSO's landing pad), then SIGALRM handlers (the kernel's vDSO restorers):
 * with SA_SIGINFO (ia32 rt_sigframe) and without (ia32 sigframe), with and without SA_RESTART.
 * Prints what it saw: "sig32 pid=P via=V f=R:PORT a=R b=R c=R c2=R d=R e=R". */
#include "vsys32.h"
static int sys(int nr, int a, int b, int c, int d) { int v[6] = { a, b, c, d, 0, 0 }; return vcall(nr, v); }

#ifndef PORT
#define PORT 39200
#endif
enum { NR_EXIT_GROUP = 252, NR_READ = 3, NR_WRITE = 4, NR_GETPID = 20, NR_PIPE = 42, NR_SETITIMER = 104, NR_RT_SIGACTION = 174,
       NR_SOCKET = 359, NR_BIND = 361, NR_LISTEN = 363, NR_ACCEPT4 = 364 };
#define SIGALRM 14
#define SA_SIGINFO 4
#define SA_RESTART 0x10000000

static int pfd[2];
static void quiet(int sig) { (void)sig; }
static void feed(int sig) { (void)sig; sys(NR_WRITE, pfd[1], (int)"x", 1, 0); }

/* struct compat_sigaction (no SA_RESTORER: the kernel returns through the vDSO's sigreturn) */
static void handler(void (*h)(int), int flags) {
  static unsigned act[5];
  act[0] = (unsigned)h; act[1] = (unsigned)flags; act[2] = 0; act[3] = act[4] = 0;
  sys(NR_RT_SIGACTION, SIGALRM, (int)act, 0, 8);
}
/* SIGALRM in 200 ms (struct compat_itimerval) */
static void alarm200(void) {
  static int it[4];
  it[0] = it[1] = it[2] = 0; it[3] = 200000;
  sys(NR_SETITIMER, 0, (int)it, 0, 0);
}

static char line[256];
static int len;
static void put(const char *s) { while (*s) line[len++] = *s++; }
static void num(int v) {
  char b[12];
  int n = 0;
  unsigned u = v < 0 ? -(unsigned)v : (unsigned)v;
  do { b[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) line[len++] = '-';
  while (n) line[len++] = b[--n];
}

void cmain(unsigned *sp) {
  char **envp = (char **)(sp + 1 + sp[0] + 1);
  while (*envp) envp++;
  for (unsigned *aux = (unsigned *)(envp + 1); aux[0]; aux += 2) if (aux[0] == 32) vsys = aux[1]; /* AT_SYSINFO */
  if (!vsys) __asm__ volatile("int $0x80" : : "a"(NR_EXIT_GROUP), "b"(9));
  const unsigned char *k = (const unsigned char *)vsys;
  const char *via = "int80";
  for (int i = 0; i < 12; i++)
    if (k[i] == 0x0f && (k[i + 1] == 0x05 || k[i + 1] == 0x34)) { via = k[i + 1] == 0x05 ? "syscall" : "sysenter"; break; }
  put("sig32 pid="); num(sys(NR_GETPID, 0, 0, 0, 0)); put(" via="); put(via);

  /* f: accept4 over a planted 10.11.12.13, stopped and continued by the parent, then connected to */
  static unsigned char sa[16] = { 2, 0, PORT >> 8, PORT & 255, 127, 0, 0, 1 };
  static unsigned char peer[16];
  static unsigned plen;
  int s = sys(NR_SOCKET, 2, 1, 0, 0); /* AF_INET, SOCK_STREAM */
  if (sys(NR_BIND, s, (int)sa, 16, 0) < 0 || sys(NR_LISTEN, s, 4, 0, 0) < 0) sys(NR_EXIT_GROUP, 10, 0, 0, 0);
  static const unsigned char planted[16] = { 2, 0, 0, 1, 10, 11, 12, 13 };
  for (int i = 0; i < 16; i++) peer[i] = planted[i];
  plen = 16;
  int f = sys(NR_ACCEPT4, s, (int)peer, (int)&plen, 0);
  put(" f="); num(f); put(":"); num(peer[2] << 8 | peer[3]);

  char b[4];
  sys(NR_PIPE, (int)pfd, 0, 0, 0);
  /* a: SA_SIGINFO, no SA_RESTART: read fails with EINTR */
  handler(quiet, SA_SIGINFO);
  alarm200();
  put(" a="); num(sys(NR_READ, pfd[0], (int)b, 1, 0));
  /* b: no SA_SIGINFO (the ia32 sigframe), no SA_RESTART */
  handler(quiet, 0);
  alarm200();
  put(" b="); num(sys(NR_READ, pfd[0], (int)b, 1, 0));
  /* c: no SA_SIGINFO, SA_RESTART: the handler feeds the pipe, the read made again gets it */
  handler(feed, SA_RESTART);
  alarm200();
  put(" c="); num(sys(NR_READ, pfd[0], (int)b, 1, 0));
  /* c2: SA_SIGINFO, SA_RESTART */
  handler(feed, SA_SIGINFO | SA_RESTART);
  alarm200();
  put(" c2="); num(sys(NR_READ, pfd[0], (int)b, 1, 0));
  /* d: int $0x80, SA_SIGINFO, no SA_RESTART */
  handler(quiet, SA_SIGINFO);
  alarm200();
  int d;
  __asm__ volatile("int $0x80" : "=a"(d) : "a"(NR_READ), "b"(pfd[0]), "c"(b), "d"(1) : "memory");
  put(" d="); num(d);
  /* e: accept4 over the planted address, cut short by the handler: nothing written */
  for (int i = 0; i < 16; i++) peer[i] = planted[i];
  plen = 16;
  alarm200();
  put(" e="); num(sys(NR_ACCEPT4, s, (int)peer, (int)&plen, 0)); put(":"); num(peer[7]);
  put("\n");
  sys(NR_WRITE, 1, (int)line, len, 0);
  sys(NR_EXIT_GROUP, 0, 0, 0, 0);
}
