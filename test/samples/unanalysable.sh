#!/bin/sh
# Tries to make itself unanalysable: an 8 EiB sparse file (no disk used, but hashing it would
# read exabytes of zeros), then renames one file through ever new 4,000-byte names until killed
# (every name a new entry for the report).
truncate -s 8E /root/big 2>/dev/null || truncate -s 1P /root/big
exec python3 - <<'PY'
import os
d = '/tmp/' + '/'.join(['D' * 250] * 15)
os.makedirs(d)
base = d + '/' + 'x' * 200
n = 0
prev = '%s%010d' % (base, n)
open(prev, 'w').close()
while True:
    n += 1
    p = '%s%010d' % (base, n)
    os.rename(prev, p)
    prev = p
PY
