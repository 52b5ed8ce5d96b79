#!/bin/sh
# daemonize: forks a child into a session of its own in the background and exits at once, as a
# daemon does. The child waits a second, then writes /tmp/daemon.out and reads /etc/hostname. The
# report must show the child's work: the sample exiting must not kill it.
setsid sh -c 'sleep 1; echo alive > /tmp/daemon.out; cat /etc/hostname' > /dev/null 2>&1 &
exit 0
