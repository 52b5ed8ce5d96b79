#!/bin/sh
# self_delete: deletes its own file ($0) and then checks that it is gone. The report must show an
# unlink/unlinkat of the sample's own path (e.g. /tmp/self_delete.sh) by the sample.
rm -f "$0"
[ -e "$0" ] && { echo "still here"; exit 1; }
echo "deleted $0"
