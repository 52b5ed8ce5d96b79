#!/bin/sh
# bury_payload: tries to hide its payload from the dropped-files list by spending the change
# list's budgets, in a directory that sorts before it, before the payload is reached: 20,000 empty
# files (the list's 20,000 entries), four 16 MiB junk files (the 64 MiB copy budget) and a sparse
# file claiming what is left of the 1 GiB hashing budget; then it drops /tmp/payload (ELF magic,
# executable). The report must still list /tmp/payload, with its sha256 and a whole copy, and say
# where the entries it could not list were (under /aaa; /tmp/aaa where / is not writable, as in
# the rootless sandbox).
set -e
J=/aaa
mkdir -p "$J" 2>/dev/null || J=/tmp/aaa
mkdir -p "$J"
cd "$J"
seq -f 'j%05.0f' 1 20000 | xargs touch
for i in 1 2 3 4; do head -c 16777216 /dev/zero > "big$i"; done
truncate -s 1006632959 sparse 2>/dev/null || truncate -s 255M sparse # rootless: 256 MiB a file
printf '\177ELF\002\001\001\000sandtrace buried payload\n' > /tmp/payload
chmod 755 /tmp/payload
echo "buried under $J"
