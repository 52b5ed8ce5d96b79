/* x86_64, static, not PIE: opens whose path lies in a page the program has not touched yet (a
 * MAP_PRIVATE, PROT_READ|PROT_WRITE mapping of a file it wrote with write(), below 2 GiB for the
 * i386 call), which the capture cannot read at the call. For the opens that return a descriptor the
 * path is the kernel's name of the file opened; the others are read again at the return.
 *   - race: openat of a FIFO without a writer, which blocks; meanwhile a second thread waits ~1 s,
 *     rewrites the string to "/etc/hostname" (the kernel has copied it long before) and opens the
 *     FIFO for writing, which lets the open return. A re-read of the string at the return would
 *     name /etc/hostname, a file never opened;
 *   - link: open (2) of a symbolic link: the kernel names the file behind it;
 *   - compat: the i386 open (5, int $0x80);
 *   - creat (85) of a relative path: named from the root (the working directory is the tmpfs /work);
 *   - mountroot: openat of /tmp, a mount's root directory (O_DIRECTORY);
 *   - missing: openat of a file that does not exist (ENOENT): nothing to name, read again;
 *   - tmpfile: openat of /tmp with O_TMPFILE, a file without a name: read again;
 *   - plain: openat of a path in memory already touched: as given, neither read again nor named;
 *   - then, in a child chroot'ed to /tmp/jail with its working directory left outside (/tmp): an
 *     open of "/f" is named from the task's root (/f, not /tmp/jail/f); an open of a file outside
 *     its root (openpath.target, relative to /tmp) has no name there: read again.
 * Prints what the guest saw. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "int80.h"

#define FIFO "/tmp/openpath.fifo"
#define TARGET "/tmp/openpath.target"
#define LINK "/tmp/openpath.link"

/* A fresh page holding s that the program never touches: a private mapping of a file written with
 * write() and never mapped before (the file is gone once mapped; its page stays in the cache). */
static char *untouched(const char *s) {
  static char page[4096];
  static int n;
  char name[64];
  snprintf(name, sizeof name, "/tmp/openpath.page%d", n++);
  memset(page, 0, sizeof page);
  strcpy(page, s);
  int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, page, sizeof page) != (ssize_t)sizeof page) return NULL;
  char *p = mmap(NULL, sizeof page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_32BIT, fd, 0);
  close(fd);
  unlink(name);
  return p == MAP_FAILED ? NULL : p;
}

static char *race_path;
static int writer_fd = -2;

static void *writer(void *unused) {
  (void)unused;
  usleep(1000 * 1000);
  /* the blocked open's string, rewritten after the kernel copied it */
  memcpy(race_path, "/etc/hostname", sizeof "/etc/hostname");
  writer_fd = open(FIFO, O_WRONLY);
  return NULL;
}

static long err(long r) { return r < 0 ? -errno : r; }

/* the child in /tmp/jail: prints what it saw */
static int jailed(void) {
  char *inside = untouched("/f"), *outside = untouched("openpath.target");
  if (!inside || !outside || chdir("/tmp") < 0 || chroot("/tmp/jail") < 0) return 30;
  long r_inside = err(open(inside, O_RDONLY)), r_outside = err(open(outside, O_RDONLY));
  printf("jail pid=%d inside=%ld outside=%ld\n", (int)getpid(), r_inside, r_outside);
  fflush(stdout);
  return 0;
}

int main(void) {
  int t = open(TARGET, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (t < 0 || write(t, "x", 1) != 1) return 20;
  close(t);
  if (symlink(TARGET, LINK) < 0 || mkfifo(FIFO, 0600) < 0) return 21;
  char *race = untouched(FIFO), *link = untouched(LINK), *compat = untouched(TARGET), *rel = untouched("openpath.new");
  char *mroot = untouched("/tmp"), *missing = untouched("/tmp/openpath.missing"), *tmpdir = untouched("/tmp");
  if (!race || !link || !compat || !rel || !mroot || !missing || !tmpdir) return 22;
  if ((uintptr_t)compat > 0xffffffffu) return 23;
  char plain[64];
  strcpy(plain, TARGET);

  race_path = race;
  pthread_t th;
  if (pthread_create(&th, NULL, writer, NULL)) return 24;
  long r_race = err(openat(AT_FDCWD, race, O_RDONLY));
  pthread_join(th, NULL);
  long r_link = err(syscall(SYS_open, link, O_RDONLY));
  long r_compat = sys32(5, P(compat), O_RDONLY, 0, 0, 0, 0);
  long r_creat = err(syscall(SYS_creat, rel, 0600));
  long r_mroot = err(openat(AT_FDCWD, mroot, O_RDONLY | O_DIRECTORY));
  long r_missing = err(openat(AT_FDCWD, missing, O_RDONLY));
  long r_tmpfile = err(openat(AT_FDCWD, tmpdir, O_TMPFILE | O_RDWR, 0600));
  long r_plain = err(openat(AT_FDCWD, plain, O_RDONLY));
  printf("openpath pid=%d race=%ld writer=%d link=%ld compat=%ld creat=%ld mountroot=%ld missing=%ld tmpfile=%ld plain=%ld rewritten=%s\n",
         (int)getpid(), r_race, writer_fd, r_link, r_compat, r_creat, r_mroot, r_missing, r_tmpfile, r_plain, race);
  fflush(stdout);
  int jf = (mkdir("/tmp/jail", 0700), open("/tmp/jail/f", O_WRONLY | O_CREAT | O_TRUNC, 0600));
  if (jf < 0) return 25;
  close(jf);
  pid_t c = fork();
  if (c == 0) _exit(jailed());
  int st = -1;
  if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 26;
  unlink(FIFO); unlink(LINK); unlink(TARGET); unlink("openpath.new"); unlink("/tmp/jail/f"); rmdir("/tmp/jail");
  return 0;
}
