/* Test workload for calls a signal cuts into (test/vm/probe-6.1.test.ts): pause() cut short by a
 * handler without SA_RESTART (EINTR), then a read() on a pipe the kernel makes again after a
 * handler with SA_RESTART (a child writes well after the alarm). Prints what it saw. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_alarm(int sig)
{
	(void)sig;
}

static void arm(int restart)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 0 }, { 0, 200000 } };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

int main(void)
{
	int p[2], r;
	char c;
	pid_t w;

	setvbuf(stdout, NULL, _IOLBF, 0);
	arm(0);
	r = pause();
	printf("pause %d\n", r);
	if (pipe(p) != 0)
		return 1;
	w = fork();
	if (w == 0) {
		usleep(1000000);
		_exit(write(p[1], "x", 1) == 1 ? 0 : 1);
	}
	arm(1);
	r = read(p[0], &c, 1);
	printf("read %d\n", r);
	waitpid(w, NULL, 0);
	return 0;
}
