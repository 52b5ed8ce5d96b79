#!/bin/sh
# Guest test sample: reports its own pid, spawns a child that writes a file, then execs ls.
echo "sample pid=$$ ppid=$PPID"
echo hello > /work/out.txt
/bin/sh -c 'echo "child pid=$$ ppid=$PPID"; cat /work/out.txt > /work/copy.txt'
# a connection attempt to loopback (the guest has no network device)
nc -w 1 127.0.0.1 9 </dev/null 2>/dev/null
exec /bin/ls /work
