/* Test workload for the exit hook (src/capture/ebpf/exit-hook.test.ts, test/vm/probe-6.1.test.ts):
 * three threads that exit one after the other, then a fork -> fork -> exit chain. Prints its pids. */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *run(void *arg)
{
	usleep(20000 * (long)arg); /* staggered: the threads never exit together */
	printf("thread %ld\n", (long)syscall(SYS_gettid));
	return NULL;
}

int main(void)
{
	pthread_t t[3];
	pid_t child, grandchild;
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, run, (void *)(i + 1));
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	child = fork();
	if (child == 0) {
		grandchild = fork();
		if (grandchild == 0)
			_exit(4);
		waitpid(grandchild, &st, 0);
		printf("grandchild %d\n", grandchild);
		_exit(3);
	}
	waitpid(child, &st, 0);
	printf("main %d child %d\n", getpid(), child);
	return 5;
}
