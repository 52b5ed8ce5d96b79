#!/bin/sh
# fork_exec_chain: sh -> sh -> exec ls. The sample forks a child that execs /bin/sh, which in turn
# execs /bin/ls (exe /usr/bin/ls) in the same process. The report must show the sample with one
# child whose execs are /bin/sh then /bin/ls with argv [/bin/ls, -la, /etc/hostname]; the
# console shows the ls line and "chain done".
/bin/sh -c 'exec /bin/ls -la /etc/hostname'
echo "chain done"
