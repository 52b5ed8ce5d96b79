#!/bin/sh
# rootless_probe.sh MARKER PORT: tries to read a host file and to reach a port on the host's
# loopback, writes a file and runs a program. The report must show the failed open of MARKER, the
# failed connect to 127.0.0.1:PORT, /tmp/probe-out created, and an exec of /bin/ls.
if cat "$1" 2>/dev/null; then echo "marker: visible"; else echo "marker: invisible"; fi
if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)' "$2" 2>/dev/null; then
  echo "net: reached"
else
  echo "net: unreachable"
fi
echo written > /tmp/probe-out
/bin/ls / > /dev/null
echo "uid: $(id -u)"
