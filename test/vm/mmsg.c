/* x86_64, static, not PIE: batched UDP datagrams (sendmmsg, recvmmsg) on the guest's loopback, as
 * DNS resolvers and flood tools send them, made three ways: as direct 64-bit calls (struct
 * mmsghdr), as direct i386 calls by int $0x80 (sendmmsg 345, recvmmsg 337, recvmmsg_time64 417:
 * struct compat_mmsghdr) and through the i386 socketcall multiplexer (SYS_SENDMMSG 20,
 * SYS_RECVMMSG 19). Each way, on its own ports (B, B + 1 receivers; B + 2, B + 3 senders):
 *   - a sendmmsg of 3 messages (to B, to B + 1, a message with no name) on an unconnected socket:
 *     the third fails (no destination), 2 sent;
 *   - the same on a bad descriptor (EBADF) and, after connect(B), again: 3 sent (the nameless one
 *     to B);
 *   - a recvmmsg of 4 messages at B: the second asks for no sender (msg_name NULL), the third has
 *     a 4-byte room over a planted address (only family and port are the kernel's);
 *   - a sendmmsg of MANY messages to B + 1 and a recvmmsg of MANY at B + 1 (more than 16).
 * Then, in a child, on PORT + 30 (receiver) and PORT + 32 (sender): a recvmsg and a recvmmsg of 2 whose msghdr
 * and vector lie in pages the program has not touched yet, 64-bit and i386, which the kernel faults
 * in during the call (the capture reads them at the return).
 * Prints what the guest saw. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "int80.h"

#ifndef PORT
#define PORT 39223
#endif
#define MANY 20
#define PLANTED 0x0a0b0c0d /* 10.11.12.13 */

static uint32_t a[6];

static int udp(int port) {
  struct sockaddr_in sa = lo(port);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  return s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 ? -1 : s;
}

/* ---- direct 64-bit calls ---- */
static struct sockaddr_in t1, t2, from[4], many_from[MANY];
static struct mmsghdr m[3], in[4], many[MANY], many_in[MANY];
static struct iovec io = { "mmsg", 4 }, rio[MANY];
static char rbuf[MANY][8];

static void direct64(int b) {
  int r1 = udp(b), r2 = udp(b + 1), s = udp(b + 2), s2 = udp(b + 3);
  t1 = lo(b); t2 = lo(b + 1);
  m[0].msg_hdr = (struct msghdr){ .msg_name = &t1, .msg_namelen = sizeof t1, .msg_iov = &io, .msg_iovlen = 1 };
  m[1].msg_hdr = (struct msghdr){ .msg_name = &t2, .msg_namelen = sizeof t2, .msg_iov = &io, .msg_iovlen = 1 };
  m[2].msg_hdr = (struct msghdr){ .msg_iov = &io, .msg_iovlen = 1 };
  long unc = sendmmsg(s, m, 3, 0);
  long bad = sendmmsg(99, m, 3, 0) < 0 ? -errno : 0;
  connect(s, (struct sockaddr *)&t1, sizeof t1);
  long con = sendmmsg(s, m, 3, 0);
  sendto(s2, "x", 1, 0, (struct sockaddr *)&t1, sizeof t1);
  for (int i = 0; i < 4; i++) {
    rio[i] = (struct iovec){ rbuf[i], sizeof rbuf[i] };
    from[i] = lo(0);
    from[i].sin_addr.s_addr = htonl(PLANTED);
    in[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &rio[i], .msg_iovlen = 1 };
  }
  in[1].msg_hdr.msg_name = NULL;
  in[2].msg_hdr.msg_namelen = 4;
  long rv = recvmmsg(r1, in, 4, MSG_DONTWAIT, NULL);
  for (int i = 0; i < MANY; i++) {
    many[i].msg_hdr = (struct msghdr){ .msg_name = &t2, .msg_namelen = sizeof t2, .msg_iov = &io, .msg_iovlen = 1 };
    rio[i] = (struct iovec){ rbuf[i], sizeof rbuf[i] };
    many_in[i].msg_hdr = (struct msghdr){ .msg_name = &many_from[i], .msg_namelen = sizeof many_from[i], .msg_iov = &rio[i], .msg_iovlen = 1 };
  }
  long mn = sendmmsg(s2, many, MANY, 0);
  long mr = recvmmsg(r2, many_in, MANY, MSG_DONTWAIT, NULL);
  printf("mmsg64 pid=%d unc=%ld bad=%ld con=%ld recv=%ld:%u:%u:%u:%u:%u many=%ld manyrecv=%ld:%u:%u\n", (int)getpid(), unc, bad, con, rv,
         ntohs(from[0].sin_port), ntohs(from[2].sin_port), in[2].msg_hdr.msg_namelen, ntohs(from[3].sin_port),
         from[2].sin_addr.s_addr == htonl(PLANTED), mn, mr, ntohs(many_from[0].sin_port), ntohs(many_from[15].sin_port));
  fflush(stdout);
  close(r1); close(r2); close(s); close(s2);
}

/* ---- i386 calls (int $0x80), direct or through socketcall: buffers below 4 GiB ---- */
struct mmsghdr32 { struct msghdr32 hdr; uint32_t len; };
_Static_assert(sizeof(struct mmsghdr32) == 32, "struct compat_mmsghdr");
static struct mmsghdr32 m32[3], in32[4], many32[MANY], many_in32[MANY];
static struct iovec32 io32, rio32[MANY];
static struct sockaddr_in u1, u2, from32[4], many_from32[MANY];

static long send32(int sc, int fd, struct mmsghdr32 *v, uint32_t n) {
  if (!sc) return sys32(345, fd, P(v), n, 0, 0, 0);
  memcpy(a, (uint32_t[6]){ fd, P(v), n, 0, 0, 0 }, sizeof a);
  return socketcall32(20, a); /* SYS_SENDMMSG: 4 words */
}
static long recv32(int sc, long nr, int fd, struct mmsghdr32 *v, uint32_t n) {
  if (!sc) return sys32(nr, fd, P(v), n, MSG_DONTWAIT, 0, 0);
  memcpy(a, (uint32_t[6]){ fd, P(v), n, MSG_DONTWAIT, 0, 0 }, sizeof a);
  return socketcall32(19, a); /* SYS_RECVMMSG: 5 words */
}

static void calls32(int sc, int b) {
  int r1 = udp(b), r2 = udp(b + 1), s = udp(b + 2), s2 = udp(b + 3);
  u1 = lo(b); u2 = lo(b + 1);
  io32 = (struct iovec32){ P("mmsg"), 4 };
  m32[0].hdr = (struct msghdr32){ P(&u1), sizeof u1, P(&io32), 1, 0, 0, 0 };
  m32[1].hdr = (struct msghdr32){ P(&u2), sizeof u2, P(&io32), 1, 0, 0, 0 };
  m32[2].hdr = (struct msghdr32){ 0, 0, P(&io32), 1, 0, 0, 0 };
  long unc = send32(sc, s, m32, 3);
  long bad = send32(sc, 99, m32, 3);
  connect(s, (struct sockaddr *)&u1, sizeof u1);
  long con = send32(sc, s, m32, 3);
  sendto(s2, "x", 1, 0, (struct sockaddr *)&u1, sizeof u1);
  for (int i = 0; i < 4; i++) {
    rio32[i] = (struct iovec32){ P(rbuf[i]), sizeof rbuf[i] };
    from32[i] = lo(0);
    from32[i].sin_addr.s_addr = htonl(PLANTED);
    in32[i].hdr = (struct msghdr32){ P(&from32[i]), sizeof from32[i], P(&rio32[i]), 1, 0, 0, 0 };
  }
  in32[1].hdr.name = 0;
  in32[2].hdr.namelen = 4;
  long rv = recv32(sc, 337, r1, in32, 4);
  for (int i = 0; i < MANY; i++) {
    many32[i].hdr = (struct msghdr32){ P(&u2), sizeof u2, P(&io32), 1, 0, 0, 0 };
    rio32[i] = (struct iovec32){ P(rbuf[i]), sizeof rbuf[i] };
    many_in32[i].hdr = (struct msghdr32){ P(&many_from32[i]), sizeof many_from32[i], P(&rio32[i]), 1, 0, 0, 0 };
  }
  long mn = send32(sc, s2, many32, MANY);
  long mr = recv32(sc, 417, r2, many_in32, MANY); /* direct: recvmmsg_time64 (no timeout) */
  printf("%s pid=%d unc=%ld bad=%ld con=%ld recv=%ld:%u:%u:%d:%u:%u many=%ld manyrecv=%ld:%u:%u\n", sc ? "mmsgsc" : "mmsg32", (int)getpid(),
         unc, bad, con, rv, ntohs(from32[0].sin_port), ntohs(from32[2].sin_port), in32[2].hdr.namelen, ntohs(from32[3].sin_port),
         from32[2].sin_addr.s_addr == htonl(PLANTED), mn, mr, ntohs(many_from32[0].sin_port), ntohs(many_from32[15].sin_port));
  fflush(stdout);
  close(r1); close(r2); close(s); close(s2);
}

/* ---- headers in pages not touched yet: a private mapping of a memfd the program wrote but never
 * mapped before, below 2 GiB (i386 pointers) ---- */
static void *untouched(const void *data, size_t n) {
  static char page[4096];
  int fd = memfd_create("hdr", 0);
  memset(page, 0, sizeof page);
  memcpy(page, data, n);
  if (fd < 0 || write(fd, page, sizeof page) != (ssize_t)sizeof page) return NULL;
  void *p = mmap(NULL, sizeof page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_32BIT, fd, 0);
  close(fd);
  return p == MAP_FAILED ? NULL : p;
}

static struct sockaddr_in ufrom[6];

static void unpaged(int b) {
  int r = udp(b), s = udp(b + 2);
  struct sockaddr_in to = lo(b);
  for (int i = 0; i < 6; i++) { rio[i] = (struct iovec){ rbuf[i], sizeof rbuf[i] }; rio32[i] = (struct iovec32){ P(rbuf[i]), sizeof rbuf[i] }; ufrom[i] = lo(0); }
  struct msghdr h = { .msg_name = &ufrom[0], .msg_namelen = sizeof ufrom[0], .msg_iov = &rio[0], .msg_iovlen = 1 };
  struct mmsghdr v[2];
  memset(v, 0, sizeof v);
  for (int i = 0; i < 2; i++) v[i].msg_hdr = (struct msghdr){ .msg_name = &ufrom[1 + i], .msg_namelen = sizeof ufrom[0], .msg_iov = &rio[1 + i], .msg_iovlen = 1 };
  struct msghdr32 h32 = { P(&ufrom[3]), sizeof ufrom[0], P(&rio32[3]), 1, 0, 0, 0 };
  struct mmsghdr32 v32[2];
  memset(v32, 0, sizeof v32);
  for (int i = 0; i < 2; i++) v32[i].hdr = (struct msghdr32){ P(&ufrom[4 + i]), sizeof ufrom[0], P(&rio32[4 + i]), 1, 0, 0, 0 };
  struct msghdr *hp = untouched(&h, sizeof h);
  struct mmsghdr *vp = untouched(v, sizeof v);
  struct msghdr32 *hp32 = untouched(&h32, sizeof h32);
  struct mmsghdr32 *vp32 = untouched(v32, sizeof v32);
  if (!hp || !vp || !hp32 || !vp32) { printf("unpaged mmap failed\n"); return; }
  for (int i = 0; i < 6; i++) sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
  long rm = recvmsg(r, hp, MSG_DONTWAIT);
  long rmm = recvmmsg(r, vp, 2, MSG_DONTWAIT, NULL);
  long rm32 = sys32(372, r, P(hp32), MSG_DONTWAIT, 0, 0, 0);
  long rmm32 = sys32(337, r, P(vp32), 2, MSG_DONTWAIT, 0, 0);
  printf("unpaged pid=%d recvmsg=%ld recvmmsg=%ld recvmsg32=%ld recvmmsg32=%ld from=%u:%u:%u:%u:%u:%u\n", (int)getpid(), rm, rmm, rm32, rmm32,
         ntohs(ufrom[0].sin_port), ntohs(ufrom[1].sin_port), ntohs(ufrom[2].sin_port), ntohs(ufrom[3].sin_port), ntohs(ufrom[4].sin_port),
         ntohs(ufrom[5].sin_port));
  fflush(stdout);
  close(r); close(s);
}

int main(void) {
  if ((uintptr_t)a > 0xffffffffu) return 20;
  /* the guest's loopback is down at boot: bring it up */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return 21;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return 22;
  close(s);
  direct64(PORT);
  calls32(0, PORT + 10);
  calls32(1, PORT + 20);
  /* in a child, so that its calls are told from the ones above by pid */
  pid_t c = fork();
  if (c == 0) { unpaged(PORT + 30); _exit(0); }
  return c < 0 || waitpid(c, NULL, 0) != c ? 23 : 0;
}
