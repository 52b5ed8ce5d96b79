/* x86_64, static, not PIE: socket calls through the i386 socketcall multiplexer (int $0x80, nr 102,
 * the call number in ebx and a 32-bit pointer to an array of u32 arguments in ecx), as static i386
 * malware makes them; then, in a second child, the calls whose address the kernel writes back
 * (accept, accept4, getsockname, getpeername, recvfrom, recvmsg) as direct 64-bit calls and as
 * direct i386 ones (int $0x80), with buffers smaller than the address, a recvmsg that asks for no
 * address, and an accept that a signal interrupts. Only
 * the guest's own loopback (127.0.0.1), which it brings up first. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "int80.h"
#include <sys/time.h>
#include <sys/wait.h>

#ifndef PORT
#define PORT 39123 /* TCP; UDP uses PORT + 1 */
#endif

static uint32_t a[6];
static struct sockaddr_in tcp_sa, udp_sa, name_sa, peer_sa, pn_sa, from_sa, rfrom_sa;
static uint32_t name_len, peer_len, pn_len, from_len, val_len;
static int one = 1, val, sv[2];
static char buf[16], ubuf[16], mbuf[16];
static struct msghdr32 msg, rmsg;
static struct iovec32 iov, riov;

/* Argument arrays (and an address) in read-only data, each alone in a 64 KiB-aligned block (the
 * kernel's fault-around maps at most that much around a touched page): a forked child, which
 * shares no page-table entries of them with its parent, has not mapped them when it first calls,
 * so they cannot be read at the call, only at its return. socket(AF_INET, SOCK_STREAM, 0), then
 * connect(3, 127.0.0.1:PORT+2, 16) (nothing listens there: ECONNREFUSED). */
#define STR(x) STR2(x)
#define STR2(x) #x
extern const uint32_t ro_socket[3], ro_connect[3];
__asm__(".section .rodata.sc,\"a\"\n.balign 65536\nro_socket:\n.long 2, 1, 0\n.balign 65536\n"
        "ro_connect:\n.long 3, ro_sa, 16\nro_sa:\n.byte 2, 0, (" STR(PORT) " + 2) >> 8, (" STR(PORT) " + 2) & 255, 127, 0, 0, 1\n.zero 8\n"
        ".balign 65536\n.previous\n");

#define SC(call, ...) (memcpy(a, (uint32_t[6]){ __VA_ARGS__ }, sizeof a), socketcall32(call, a))

static int listener(int port) {
  struct sockaddr_in sa = lo(port);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 4) < 0) return -1;
  return s;
}
static int dialer(int port) {
  struct sockaddr_in sa = lo(port);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  return connect(s, (struct sockaddr *)&sa, sizeof sa) < 0 ? -1 : s;
}
static int udp_self(int port) {
  struct sockaddr_in sa = lo(port);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || sendto(s, "d", 1, 0, (struct sockaddr *)&sa, sizeof sa) != 1) return -1;
  return s;
}
static void on_alarm(int sig) { (void)sig; }

/* i386 buffers: below 4 GiB, where 32-bit pointers reach (the stack is not) */
static struct sockaddr_in n32, p32, q32, c32, f32, g32;
static uint32_t n32len, p32len, q32len, c32len, f32len;
static char d32[16], e32[4];
static struct msghdr32 m32;
static struct iovec32 v32;

/* Addresses the kernel writes back, direct calls (64-bit, then i386 by int $0x80), TCP on PORT + 3
 * and PORT + 5, UDP on PORT + 4 and PORT + 6. Prints what the guest saw. */
static int direct(void) {
  struct sockaddr_in name, peer, pn, cut, planted, from, eintr;
  socklen_t nlen = sizeof name, alen = sizeof peer, plen = sizeof pn, clen = 8, tlen = 4, flen = sizeof from, elen = sizeof eintr;
  char b[16];
  int srv = listener(PORT + 3);
  int gn = getsockname(srv, (struct sockaddr *)&name, &nlen);
  int cli = dialer(PORT + 3);
  int acc = accept(srv, (struct sockaddr *)&peer, &alen);
  int gp = getpeername(cli, (struct sockaddr *)&pn, &plen);
  /* an 8-byte buffer: the kernel copies 8 bytes and says 16 */
  int gc = getpeername(acc, (struct sockaddr *)&cut, &clen);
  /* a 4-byte buffer over a planted address: only family and port are the kernel's */
  int cli2 = dialer(PORT + 3);
  planted = lo(0);
  planted.sin_addr.s_addr = htonl(0x0a0b0c0d); /* 10.11.12.13 */
  int a4 = accept4(srv, (struct sockaddr *)&planted, &tlen, SOCK_CLOEXEC);
  int udp = udp_self(PORT + 4);
  long rf = recvfrom(udp, b, sizeof b, 0, (struct sockaddr *)&from, &flen);
  /* recvmsg: the sender's address through msg_name; none asked for (msg_name NULL, a length
   * regardless); a 4-byte msg_name over a planted address: only family and port are the kernel's */
  struct sockaddr_in self4 = lo(PORT + 4), mfrom, mcut;
  char mb[4];
  struct iovec mio = { mb, sizeof mb };
  struct msghdr mh = { .msg_name = &mfrom, .msg_namelen = sizeof mfrom, .msg_iov = &mio, .msg_iovlen = 1 };
  sendto(udp, "m", 1, 0, (struct sockaddr *)&self4, sizeof self4);
  long rm = recvmsg(udp, &mh, 0);
  unsigned rmlen = mh.msg_namelen;
  sendto(udp, "n", 1, 0, (struct sockaddr *)&self4, sizeof self4);
  mh.msg_name = NULL;
  mh.msg_namelen = sizeof mfrom;
  long rmnull = recvmsg(udp, &mh, 0);
  sendto(udp, "c", 1, 0, (struct sockaddr *)&self4, sizeof self4);
  mcut = lo(0);
  mcut.sin_addr.s_addr = htonl(0x0a0b0c0d); /* 10.11.12.13 */
  mh.msg_name = &mcut;
  mh.msg_namelen = 4;
  long rmcut = recvmsg(udp, &mh, 0);
  unsigned rmcutlen = mh.msg_namelen;
  /* an accept a signal interrupts: nothing written, the planted address is no peer */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART */
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = { { 0, 0 }, { 0, 300000 } };
  setitimer(ITIMER_REAL, &it, NULL);
  eintr = lo(0);
  eintr.sin_addr.s_addr = htonl(0x0a0b0c0d);
  int ei = accept(srv, (struct sockaddr *)&eintr, &elen);
  int eno = errno;

  int srv32 = listener(PORT + 5);
  n32len = sizeof n32;
  long gn32 = sys32(367, srv32, P(&n32), P(&n32len), 0, 0, 0); /* getsockname */
  int cli32 = dialer(PORT + 5);
  p32len = sizeof p32;
  long acc32 = sys32(364, srv32, P(&p32), P(&p32len), 0, 0, 0); /* accept4 */
  q32len = sizeof q32;
  long gp32 = sys32(368, cli32, P(&q32), P(&q32len), 0, 0, 0); /* getpeername */
  c32len = 8;
  long gc32 = sys32(368, acc32, P(&c32), P(&c32len), 0, 0, 0);
  int udp32 = udp_self(PORT + 6);
  f32len = sizeof f32;
  long rf32 = sys32(371, udp32, P(d32), sizeof d32, 0, P(&f32), P(&f32len)); /* recvfrom */
  struct sockaddr_in self6 = lo(PORT + 6);
  sendto(udp32, "m", 1, 0, (struct sockaddr *)&self6, sizeof self6);
  v32 = (struct iovec32){ P(e32), sizeof e32 };
  m32 = (struct msghdr32){ P(&g32), sizeof g32, P(&v32), 1, 0, 0, 0 };
  long rm32 = sys32(372, udp32, P(&m32), 0, 0, 0, 0); /* recvmsg (struct compat_msghdr) */
  printf("direct pid=%d srv=%d getsockname=%d:%u cli=%d accept=%d:%u getpeername=%d:%u cut=%d:%u:%u cli2=%d accept4=%d:%u:%u "
         "udp=%d recvfrom=%ld:%u recvmsg=%ld:%u:%u recvmsgnull=%ld recvmsgcut=%ld:%u:%u eintr=%d:%d srv32=%d getsockname32=%ld:%u cli32=%d accept32=%ld:%u getpeername32=%ld:%u "
         "cut32=%ld:%u:%u udp32=%d recvfrom32=%ld:%u recvmsg32=%ld:%u:%d\n",
         (int)getpid(), srv, gn, ntohs(name.sin_port), cli, acc, ntohs(peer.sin_port), gp, ntohs(pn.sin_port), gc, ntohs(cut.sin_port),
         (unsigned)clen, cli2, a4, ntohs(planted.sin_port), (unsigned)tlen, udp, rf, ntohs(from.sin_port), rm, ntohs(mfrom.sin_port), rmlen, rmnull, rmcut,
         ntohs(mcut.sin_port), rmcutlen, ei, eno, srv32, gn32,
         ntohs(n32.sin_port), cli32, acc32, ntohs(p32.sin_port), gp32, ntohs(q32.sin_port), gc32, ntohs(c32.sin_port), c32len, udp32,
         rf32, ntohs(f32.sin_port), rm32, ntohs(g32.sin_port), m32.namelen);
  fflush(stdout);
  return 0;
}

int main(void) {
  if ((uintptr_t)a > 0xffffffffu) return 20;
  /* the guest's loopback is down at boot: bring it up (64-bit calls) */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return 21;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return 22;
  close(s);

  pid_t child = fork();
  if (child == 0) {
    long cs = socketcall32(1, ro_socket), cc = socketcall32(3, ro_connect);
    char line[64];
    int n = snprintf(line, sizeof line, "child socket=%ld connect=%ld\n", cs, cc);
    write(1, line, (size_t)n);
    _exit(0);
  }
  int cst = -1;
  if (child < 0 || waitpid(child, &cst, 0) != child || cst != 0) return 23;

  tcp_sa.sin_family = AF_INET; tcp_sa.sin_port = htons(PORT); tcp_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  udp_sa.sin_family = AF_INET; udp_sa.sin_port = htons(PORT + 1); udp_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  long srv = SC(1, AF_INET, SOCK_STREAM, 0);                                       /* SYS_SOCKET */
  long so = SC(14, srv, SOL_SOCKET, SO_REUSEADDR, P(&one), sizeof one);              /* SYS_SETSOCKOPT */
  long bd = SC(2, srv, P(&tcp_sa), sizeof tcp_sa);                                 /* SYS_BIND */
  long ls = SC(4, srv, 4);                                                         /* SYS_LISTEN */
  name_len = sizeof name_sa;
  long gn = SC(6, srv, P(&name_sa), P(&name_len));                                  /* SYS_GETSOCKNAME */
  long cli = SC(1, AF_INET, SOCK_STREAM, 0);
  long cn = SC(3, cli, P(&tcp_sa), sizeof tcp_sa);                                 /* SYS_CONNECT */
  peer_len = sizeof peer_sa;
  long acc = SC(5, srv, P(&peer_sa), P(&peer_len));                                /* SYS_ACCEPT */
  pn_len = sizeof pn_sa;
  long gp = SC(7, cli, P(&pn_sa), P(&pn_len));                                    /* SYS_GETPEERNAME */
  val_len = sizeof val;
  long go = SC(15, cli, SOL_SOCKET, SO_TYPE, P(&val), P(&val_len));                /* SYS_GETSOCKOPT */
  long sn = SC(9, cli, P("ping"), 4, 0);                                           /* SYS_SEND */
  long rv = SC(10, acc, P(buf), sizeof buf, 0);                                    /* SYS_RECV */
  long sh = SC(13, cli, SHUT_WR);                                                  /* SYS_SHUTDOWN */
  long udp = SC(1, AF_INET, SOCK_DGRAM, 0);
  long ub = SC(2, udp, P(&udp_sa), sizeof udp_sa);
  long st = SC(11, udp, P("u"), 1, 0, P(&udp_sa), sizeof udp_sa);                  /* SYS_SENDTO */
  from_len = sizeof from_sa;
  long rf = SC(12, udp, P(ubuf), sizeof ubuf, 0, P(&from_sa), P(&from_len));        /* SYS_RECVFROM */
  iov = (struct iovec32){ P("mm"), 2 };
  msg = (struct msghdr32){ P(&udp_sa), sizeof udp_sa, P(&iov), 1, 0, 0, 0 };
  long sm = SC(16, udp, P(&msg), 0);                                               /* SYS_SENDMSG */
  riov = (struct iovec32){ P(mbuf), sizeof mbuf };
  rmsg = (struct msghdr32){ P(&rfrom_sa), sizeof rfrom_sa, P(&riov), 1, 0, 0, 0 };
  long rm = SC(17, udp, P(&rmsg), 0);                                              /* SYS_RECVMSG */
  long sp = SC(8, AF_UNIX, SOCK_STREAM, 0, P(sv));                                 /* SYS_SOCKETPAIR */
  long a4 = SC(18, udp, 0, 0, SOCK_NONBLOCK);                                      /* SYS_ACCEPT4 on a datagram socket: EOPNOTSUPP */
  long bad = socketcall32(3, (const void *)0x10);                                  /* an unreadable argument array */
  long inval = SC(99, 0, 0, 0);                                                    /* no such call */
  fflush(stdout);
  pid_t dchild = fork();
  if (dchild == 0) _exit(direct());
  int dst = -1;
  if (dchild < 0 || waitpid(dchild, &dst, 0) != dchild || dst != 0) return 24;
  printf("socketcall pid=%d srv=%ld so=%ld bind=%ld listen=%ld getsockname=%ld:%u cli=%ld connect=%ld accept=%ld getpeername=%ld:%u "
         "getsockopt=%ld:%d send=%ld recv=%ld:%.4s shutdown=%ld udp=%ld ubind=%ld sendto=%ld recvfrom=%ld sendmsg=%ld recvmsg=%ld "
         "socketpair=%ld:%d:%d accept4=%ld bad=%ld inval=%ld child=%d peer=%u from=%u rfrom=%u direct=%d\n",
         (int)getpid(), srv, so, bd, ls, gn, ntohs(name_sa.sin_port), cli, cn, acc, gp, ntohs(pn_sa.sin_port), go, val, sn, rv, buf,
         sh, udp, ub, st, rf, sm, rm, sp, sv[0], sv[1], a4, bad, inval, (int)child, ntohs(peer_sa.sin_port), ntohs(from_sa.sin_port),
         ntohs(rfrom_sa.sin_port), (int)dchild);
  fflush(stdout);
  return 0;
}
