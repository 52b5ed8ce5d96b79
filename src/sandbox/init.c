/* sandtrace-init: the sandbox container's first process (pid 1 of its pid namespace), so that the
 * sample is not. When a pid namespace's first process exits, the kernel kills every process in
 * it: a sample that forks into the background and exits (a daemon, as most Linux malware makes
 * itself) would lose its children at once, and nothing they do would be seen. This runs the
 * sample as its child, reaps every process re-parented to it, and exits once none is left, with
 * the sample's status (128 + the signal when a signal ended it). Nothing else: no signal is
 * forwarded (the sandbox kills the whole cgroup at the timeout), nothing is read or written.
 * Static, so it runs in any image. Usage (as the container's process): init -- COMMAND... */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "--") != 0) {
    fprintf(stderr, "usage: init -- COMMAND...\n");
    return 2;
  }
  pid_t sample = fork();
  if (sample < 0) {
    perror("init: fork");
    return 125;
  }
  if (sample == 0) {
    /* a path is run as it is (execvp would hand a file the kernel refuses to /bin/sh) */
    if (strchr(argv[2], '/')) execv(argv[2], argv + 2);
    else execvp(argv[2], argv + 2);
    /* worded as runc words it, so the report's "never started" line reads the same */
    int e = errno;
    char msg[128];
    snprintf(msg, sizeof msg, "%s", strerror(e));
    msg[0] = (char)tolower((unsigned char)msg[0]);
    fprintf(stderr, "exec %s: %s\n", argv[2], msg);
    _exit(e == ENOENT ? 127 : 126);
  }
  int code = 0;
  for (;;) {
    int st;
    pid_t p = wait(&st);
    if (p < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: every process of the container is gone */
    }
    if (p == sample) code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  return code;
}
