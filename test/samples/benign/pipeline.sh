#!/bin/sh
# Benign: find, sort, grep and friends over system documentation and the sample's own files.
set -e
find /usr/share/doc -maxdepth 2 -name 'copyright' | sort | head -n 20
find /etc -maxdepth 1 -type f -name '*.conf' | xargs -r wc -l | sort -n | tail -n 5
grep -h '^Package:' /var/lib/dpkg/status | sort | uniq -c | sort -rn | head -n 3
ls /usr/bin | grep -c '^g'
cut -d: -f1,7 /etc/passwd | sort -t: -k2 | head -n 5
