#!/bin/sh
# file_ops: creates /tmp/created.txt ("created\n"), modifies the image file /etc/motd (appends a
# line), deletes the image file /etc/issue.net, and renames /tmp/a.txt to /tmp/renamed.txt. The
# report (and changes()) must show /tmp/created.txt and /tmp/renamed.txt created, /etc/motd
# modified, /etc/issue.net deleted; the trace shows openat/unlink/rename calls on those paths.
set -e
printf 'created\n' > /tmp/created.txt
printf 'pwned\n' >> /etc/motd
rm /etc/issue.net
printf 'renamed\n' > /tmp/a.txt
mv /tmp/a.txt /tmp/renamed.txt
echo "file ops done"
