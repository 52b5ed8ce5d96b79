/* i386, no libc: calls through the vDSO's __kernel_vsyscall (sysenter or syscall: the fast compat
 * path), a socketcall among them, and one int $0x80 */
#include "vsys32.h"
static int sys(int nr, int a, int b, int c, int d, int e, int f) { int v[6] = { a, b, c, d, e, f }; return vcall(nr, v); }
static const char msg[] = "fast\n";
static const unsigned char sa[16] = { 2, 0, 0, 9, 127, 0, 0, 1 }; /* AF_INET 127.0.0.1:9 */
void cmain(unsigned *sp) {
  char **envp = (char **)(sp + 1 + sp[0] + 1);
  while (*envp) envp++;
  for (unsigned *aux = (unsigned *)(envp + 1); aux[0]; aux += 2) if (aux[0] == 32) vsys = aux[1]; /* AT_SYSINFO */
  int r = -1;
  if (vsys) {
    /* which entry the vDSO was patched to use (the kernel's alternatives): the sample says it */
    const unsigned char *k = (const unsigned char *)vsys;
    const char *via = "via int80\n";
    for (int i = 0; i < 12; i++)
      if (k[i] == 0x0f && (k[i + 1] == 0x05 || k[i + 1] == 0x34)) { via = k[i + 1] == 0x05 ? "via syscall\n" : "via sysenter\n"; break; }
    int n = 0;
    while (via[n]) n++;
    sys(4, 1, (int)via, n, 0, 0, 0);
    int fd = sys(5, (int)"/work/fast32.txt", 01101, 0644, 0, 0, 0); /* open O_WRONLY|O_CREAT|O_TRUNC */
    sys(4, fd, (int)msg, 5, 0, 0, 0);
    sys(6, fd, 0, 0, 0, 0, 0);
    int s = sys(359, 2, 2, 0, 0, 0, 0);             /* socket(AF_INET, SOCK_DGRAM, 0) */
    sys(369, s, (int)msg, 1, 0, (int)sa, 16);        /* sendto: the 6th argument from the user stack */
    static int cargs[3];
    cargs[0] = s; cargs[1] = (int)sa; cargs[2] = 16;
    sys(102, 3, (int)cargs, 0, 0, 0, 0);             /* socketcall(SYS_CONNECT): how static i386 code connects */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(39), "b"("/work/dir32"), "c"(0755) : "memory"); /* mkdir */
    sys(252, r == 0 ? 5 : 6, 0, 0, 0, 0, 0);       /* exit_group */
  }
  __asm__ volatile("int $0x80" : : "a"(252), "b"(9));
}
