#!/bin/sh
# connect_loopback: listens with nc on 127.0.0.1:${1:-4444} inside the sandbox and connects to
# it. The report must show a bind/listen on 127.0.0.1:PORT and a connect to 127.0.0.1:PORT that
# succeeds (inside the sandbox's own network namespace); the console shows "got: ping".
PORT=${1:-4444}
nc -l -s 127.0.0.1 -p "$PORT" > /tmp/received.txt &
i=0
until printf 'ping\n' | nc -N -w 2 127.0.0.1 "$PORT" 2>/dev/null; do
  i=$((i + 1)); [ "$i" -ge 50 ] && { echo "connect failed"; exit 1; }
  sleep 0.1
done
wait
echo "got: $(cat /tmp/received.txt)"
