/* sandtrace-shim: runs `runc create` as a child subreaper, so that the container's first process
 * (re-parented here once runc exits) can be reaped and its exit status reported. Node cannot
 * become a subreaper itself. Usage: sandtrace-shim STATUS_FD PIDFILE -- runc ... create ...
 * Writes to STATUS_FD: "created RC", then "pid N", then "exit CODE SIGNAL" when that pid ends.
 * If the owner (node) dies, the shim kills the container's first process, and with it the whole
 * pid namespace: a sample never outlives its analysis. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t g_runc = 0, g_init = 0;

static void on_owner_death(int sig) {
  (void)sig;
  if (g_init > 0) kill(g_init, SIGKILL);
  if (g_runc > 0) kill(g_runc, SIGKILL);
  _exit(1);
}

int main(int argc, char **argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: sandtrace-shim STATUS_FD PIDFILE -- COMMAND...\n");
    return 2;
  }
  int sfd = atoi(argv[1]);
  if (fcntl(sfd, F_SETFD, FD_CLOEXEC) < 0) return 2;
  /* if node dies, the shim takes the container down with it (leftover mounts and cgroups are
   * reaped by the next sandbox created) */
  pid_t owner = getppid();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_owner_death;
  sigaction(SIGTERM, &sa, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != owner) on_owner_death(SIGTERM);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) { dprintf(sfd, "created 125\n"); return 1; }
  pid_t runc = fork();
  if (runc < 0) { dprintf(sfd, "created 125\n"); return 1; }
  if (runc == 0) {
    signal(SIGTERM, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, 0);
    execvp(argv[4], argv + 4);
    _exit(127);
  }
  g_runc = runc;
  int st = 0;
  while (waitpid(runc, &st, 0) < 0 && errno == EINTR) {}
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  dprintf(sfd, "created %d\n", rc);
  if (rc != 0) return 1;
  FILE *f = fopen(argv[2], "r");
  int init = 0;
  if (!f || fscanf(f, "%d", &init) != 1 || init <= 0) { dprintf(sfd, "error no-pid\n"); return 1; }
  fclose(f);
  g_runc = 0;
  g_init = init;
  dprintf(sfd, "pid %d\n", init);
  /* reap everything re-parented here; report the container's first process when it ends */
  for (;;) {
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p == init && init > 0) {
      if (WIFEXITED(st)) dprintf(sfd, "exit %d 0\n", WEXITSTATUS(st));
      else dprintf(sfd, "exit -1 %d\n", WTERMSIG(st));
      init = -1;
      g_init = 0;
    }
  }
  if (init > 0) dprintf(sfd, "error not-reaped\n");
  return 0;
}
