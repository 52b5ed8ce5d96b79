#!/bin/sh
# fork_sleep_forever: forks three children that sleep forever (one of them double-forks and
# calls setsid to escape its parent), then waits forever itself. The report must show the
# analysis timed out, and nothing of it may survive: every process is killed by cgroup.
sleep infinity &
sleep infinity &
setsid sh -c 'sleep infinity & exit 0' &
echo "forked"
wait
