/* x86_64, static, not PIE: connects whose sockaddr lies in a page the program has not touched yet
 * (a MAP_PRIVATE, PROT_READ|PROT_WRITE mapping of a file it wrote with write(), below 2 GiB for the
 * i386 calls), which the capture cannot read at the call. For the connects that connected the
 * address is the peer the kernel connected the socket to; the others are read again at the return.
 * Only the guest's own loopback, which it brings up first.
 *   - filler: a connect (readable address) that fills the accept queue of a listener with a
 *     backlog of 0, so the kernel drops the next SYN to it;
 *   - race: a blocking connect to that listener, which waits ~1 s for the SYN's retransmission;
 *     meanwhile a second thread waits ~0.3 s, rewrites the port in the sockaddr to a decoy
 *     listener's (the kernel copied it long before) and accepts the filler's connection, which
 *     makes room. A re-read of the sockaddr at the return would name the decoy;
 *   - nonblock: a non-blocking connect to the decoy (EINPROGRESS: the peer is set already);
 *   - unix: a connect to a unix stream socket: not inet, read again;
 *   - refused: a connect to a closed port (ECONNREFUSED): no peer, read again;
 *   - udp6: a UDP connect to [::1]:4242, when the guest has IPv6 loopback (ipv6=1);
 *   - c362: the i386 connect (362, int $0x80) to the decoy;
 *   - sc: the i386 socketcall (102, call 3) to the decoy, its argument array readable;
 *   - sclate: the same with the argument array itself in an untouched page: which call it is, and
 *     its descriptor, are known only at the return: read again (as the eBPF probe does).
 * Prints what the guest saw. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "int80.h"

#define UNIX_PATH "/tmp/connpeer.sock"

/* A fresh page holding n bytes of data that the program never touches: a private mapping of a file
 * written with write() and never mapped before (the file is gone once mapped; its page stays in the
 * cache), below 2 GiB. */
static void *untouched(const void *data, size_t n) {
  static char page[4096];
  static int k;
  char name[64];
  snprintf(name, sizeof name, "/tmp/connpeer.page%d", k++);
  memset(page, 0, sizeof page);
  memcpy(page, data, n);
  int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, page, sizeof page) != (ssize_t)sizeof page) return NULL;
  void *p = mmap(NULL, sizeof page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_32BIT, fd, 0);
  close(fd);
  unlink(name);
  return p == MAP_FAILED ? NULL : p;
}

static long err(long r) { return r < 0 ? -errno : r; }

static int listener(int backlog, int *port) {
  struct sockaddr_in sa = lo(0);
  socklen_t len = sizeof sa;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, backlog) < 0 || getsockname(s, (struct sockaddr *)&sa, &len) < 0) return -1;
  *port = ntohs(sa.sin_port);
  return s;
}

static int srv, srv_port, decoy_port;
static struct sockaddr_in *race_sa;
static long accepted = -2;

static void *swapper(void *unused) {
  (void)unused;
  usleep(300 * 1000);
  /* the blocked connect's sockaddr, rewritten after the kernel copied it */
  race_sa->sin_port = htons((uint16_t)decoy_port);
  accepted = err(accept(srv, NULL, NULL)); /* room for the retransmitted SYN */
  return NULL;
}

static uint32_t a[6];
static struct sockaddr_in late_sa;

int main(void) {
  /* the guest's loopback is down at boot: bring it up */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return 20;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return 21;
  close(s);
  /* IPv6 loopback: an inet6 socket can be bound to ::1 */
  struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  int probe6 = socket(AF_INET6, SOCK_DGRAM, 0);
  int ipv6 = probe6 >= 0 && bind(probe6, (struct sockaddr *)&any6, sizeof any6) == 0;
  if (probe6 >= 0) close(probe6);

  int decoy = listener(8, &decoy_port);
  srv = listener(0, &srv_port);
  if (srv < 0 || decoy < 0) return 22;
  /* the listener's accept queue (backlog 0) is full once this connection is in it */
  struct sockaddr_in fill = lo(srv_port);
  int filler = socket(AF_INET, SOCK_STREAM, 0);
  if (filler < 0 || connect(filler, (struct sockaddr *)&fill, sizeof fill) < 0) return 23;

  struct sockaddr_in sa_srv = lo(srv_port), sa_decoy = lo(decoy_port);
  race_sa = untouched(&sa_srv, sizeof sa_srv);
  void *nb_sa = untouched(&sa_decoy, sizeof sa_decoy);
  struct sockaddr_un un = { .sun_family = AF_UNIX };
  strcpy(un.sun_path, UNIX_PATH);
  void *un_sa = untouched(&un, sizeof un);
  int closed_port = 0, closed = listener(1, &closed_port);
  if (closed < 0) return 24;
  close(closed);
  struct sockaddr_in sa_closed = lo(closed_port);
  void *refused_sa = untouched(&sa_closed, sizeof sa_closed);
  struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(4242), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  void *udp6_sa = untouched(&sa6, sizeof sa6);
  void *c362_sa = untouched(&sa_decoy, sizeof sa_decoy), *sc_sa = untouched(&sa_decoy, sizeof sa_decoy);
  if (!race_sa || !nb_sa || !un_sa || !refused_sa || !udp6_sa || !c362_sa || !sc_sa) return 25;
  if ((uintptr_t)c362_sa > 0xffffffffu || (uintptr_t)sc_sa > 0xffffffffu || (uintptr_t)&late_sa > 0xffffffffu) return 26;

  pthread_t th;
  if (pthread_create(&th, NULL, swapper, NULL)) return 27;
  int c = socket(AF_INET, SOCK_STREAM, 0);
  long r_race = err(connect(c, (struct sockaddr *)race_sa, sizeof(struct sockaddr_in)));
  pthread_join(th, NULL);
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  int peer_port = getpeername(c, (struct sockaddr *)&peer, &plen) == 0 ? ntohs(peer.sin_port) : -1;

  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  long r_nb = err(connect(nb, nb_sa, sizeof(struct sockaddr_in)));

  int ul = socket(AF_UNIX, SOCK_STREAM, 0), uc = socket(AF_UNIX, SOCK_STREAM, 0);
  unlink(UNIX_PATH);
  if (ul < 0 || uc < 0 || bind(ul, (struct sockaddr *)&un, sizeof un) < 0 || listen(ul, 4) < 0) return 28;
  long r_unix = err(connect(uc, un_sa, sizeof un));

  int rc = socket(AF_INET, SOCK_STREAM, 0);
  long r_refused = err(connect(rc, refused_sa, sizeof(struct sockaddr_in)));

  long r_udp6 = -1000;
  if (ipv6) {
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    r_udp6 = err(connect(u6, udp6_sa, sizeof sa6));
  }

  /* i386: connect (362), and socketcall (102, call 3) with its array readable, then unreadable */
  int c32 = socket(AF_INET, SOCK_STREAM, 0), s32 = socket(AF_INET, SOCK_STREAM, 0), l32 = socket(AF_INET, SOCK_STREAM, 0);
  long r_362 = sys32(362, (uint32_t)c32, P(c362_sa), sizeof(struct sockaddr_in), 0, 0, 0);
  memcpy(a, (uint32_t[6]){ (uint32_t)s32, P(sc_sa), sizeof(struct sockaddr_in) }, sizeof a);
  long r_sc = socketcall32(3, a);
  late_sa = sa_decoy;
  uint32_t late_args[3] = { (uint32_t)l32, P(&late_sa), sizeof late_sa };
  void *late = untouched(late_args, sizeof late_args);
  if (!late || (uintptr_t)late > 0xffffffffu) return 29;
  long r_sclate = socketcall32(3, late);

  printf("connpeer pid=%d srv=%d decoy=%d closed=%d race=%ld accepted=%ld peer=%d rewritten=%d nonblock=%ld unix=%ld refused=%ld ipv6=%d udp6=%ld "
         "c362=%ld sc=%ld sclate=%ld\n",
         (int)getpid(), srv_port, decoy_port, closed_port, r_race, accepted, peer_port, ntohs(race_sa->sin_port), r_nb, r_unix, r_refused, ipv6,
         r_udp6, r_362, r_sc, r_sclate);
  fflush(stdout);
  unlink(UNIX_PATH);
  return 0;
}
