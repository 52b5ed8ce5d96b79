#!/bin/sh
# Benign: make some files, archive and compress them, list and extract the archive.
set -e
mkdir -p /tmp/work/docs && cd /tmp/work
for i in 1 2 3 4 5 6; do seq 1 200 | sed "s/^/record $i /" > docs/part$i.txt; done
tar -cf docs.tar docs
gzip -k docs.tar
xz -k docs.tar
bzip2 -k docs/part1.txt
tar -tzf docs.tar.gz
mkdir -p restore && tar -xzf docs.tar.gz -C restore
ls -l docs.tar* restore/docs
