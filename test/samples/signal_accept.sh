#!/bin/sh
# signal_accept: a server blocked in accept4 on 127.0.0.1:${1:-4447} is hit by SIGALRM twice. First
# its handler has no SA_RESTART: accept4 fails with EINTR (what the program sees; Python then runs
# the handler and calls accept4 again). Then with SA_RESTART (siginterrupt False): the kernel makes
# the call again by itself, and the program never sees it fail. A forked child connects well after
# each alarm, so each accept4 ends with a connection. Every capture must say which call was
# interrupted and which restarted, not the kernel-internal code (ERESTARTSYS) the call exits with.
exec python3 - "${1:-4447}" <<'PY'
import os, signal, socket, sys, time
port = int(sys.argv[1])
signal.signal(signal.SIGALRM, lambda *a: None)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port)); s.listen(4)
def phase(restart):
    signal.siginterrupt(signal.SIGALRM, not restart)
    child = os.fork()
    if child == 0:
        time.sleep(2.0)
        socket.create_connection(('127.0.0.1', port)).close()
        os._exit(0)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    conn, _ = s.accept()
    conn.close()
    os.waitpid(child, 0)
    print('restart' if restart else 'eintr', 'accepted', flush=True)
phase(False)
phase(True)
PY
