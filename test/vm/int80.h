/* 64-bit test programs that make i386 calls by int $0x80 (socketcall-int80.c, mmsg.c): the
 * socketcall multiplexer, a direct i386 call with all six arguments, P() for a 32-bit pointer
 * (the programs are static and not PIE: their data lies below 4 GiB), the compat msghdr and iovec,
 * and lo(port), 127.0.0.1:port. */
#include <stdint.h>
#include <netinet/in.h>

static long socketcall32(long call, const void *args) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(102), "b"(call), "c"((long)(uint32_t)(uintptr_t)args) : "memory", "r8", "r9", "r10", "r11");
  return (int)r;
}
#define P(x) ((uint32_t)(uintptr_t)(x))

/* struct compat_msghdr and compat_iovec */
struct msghdr32 { uint32_t name; int32_t namelen; uint32_t iov; uint32_t iovlen; uint32_t control; uint32_t controllen; uint32_t flags; };
struct iovec32 { uint32_t base; uint32_t len; };

/* A direct i386 call by int $0x80: ebx, ecx, edx, esi, edi and ebp (from r12, which the kernel keeps). */
static long sys32(long nr, uint32_t b, uint32_t c, uint32_t d, uint32_t si, uint32_t di, uint32_t bp) {
  long r;
  register long r12 __asm__("r12") = bp;
  __asm__ volatile("xchg %%r12, %%rbp\n\tint $0x80\n\txchg %%r12, %%rbp"
                   : "=a"(r), "+r"(r12)
                   : "a"(nr), "b"((long)b), "c"((long)c), "d"((long)d), "S"((long)si), "D"((long)di)
                   : "memory", "r8", "r9", "r10", "r11");
  return (int)r;
}

static struct sockaddr_in lo(int port) {
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  return sa;
}
