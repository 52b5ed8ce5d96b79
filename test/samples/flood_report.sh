#!/bin/sh
# flood_report: tries to blind the report's inventories (files[] and network[] list 20,000 entries
# each) by touching junk names before its payload: 20,500 empty files under /aaa (/tmp/aaa where /
# is not writable) and 20,500 refused connects to 127.0.0.1; then it reads /etc/shadow, drops
# /tmp/payload and runs it, and connects to its own listener at 127.0.0.2:8443 (the "C2": loopback of
# the sandbox's own network namespace). The report must
# still list /etc/shadow, /tmp/payload (written and executed) and that connect, and say how many
# entries it left out and where (under /aaa, to 127.0.0.1).
set -e
J=/aaa
mkdir -p "$J" 2>/dev/null || J=/tmp/aaa
mkdir -p "$J"
python3 - "$J" <<'PY'
import os, socket, sys
d = sys.argv[1]
for i in range(20500):
    os.close(os.open('%s/j%05d' % (d, i), os.O_WRONLY | os.O_CREAT, 0o644))
for i in range(20500):
    s = socket.socket()
    try:
        s.connect(('127.0.0.1', 20000 + i))
    except OSError:
        pass
    s.close()
PY
cat /etc/shadow > /dev/null
printf '#!/bin/sh\necho payload ran\n' > /tmp/payload
chmod 755 /tmp/payload
/tmp/payload
python3 - <<'PY'
import socket
srv = socket.socket()
srv.bind(('127.0.0.2', 8443))
srv.listen(1)
s = socket.socket()
s.connect(('127.0.0.2', 8443))
print('c2: connected')
PY
