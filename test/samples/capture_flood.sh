#!/bin/sh
# capture_flood: makes failing open() calls on a 4,095-byte path as fast as it can, forever, to
# outrun the capture: the probe freezes it to drain the ring (nothing is lost), and the sandbox
# gives the frozen time back to the sample's timeout.
exec python3 -c '
import os
p = "/" + "a" * 4094
while True:
    try: os.open(p, 0)
    except OSError: pass
'
