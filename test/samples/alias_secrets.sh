#!/bin/sh
# alias_secrets: reads the decoy credentials and the password hashes through names that are not
# theirs: symlinks (to the file, to its folder, chained, relative, hard-linked), hard links, a
# rename, /proc's magic links (root, cwd, fd/N, of itself and of another process), /dev/fd/N,
# '..' after a symlinked folder, a trailing '/', and programs copied or linked under the name of
# a tool the rules trust. Every variant runs in its own process and opens its file under a name
# no other variant uses, so that test/alias-secrets.test.ts can tell their findings apart by
# fd.name. Nothing is written outside /tmp except the rename, which is undone.
A=/root/.aws/credentials; S=/etc/shadow; K=/root/.ssh/id_rsa
py() { python3 -c "$1" >/dev/null 2>&1; }

(ln -s $A /tmp/v02_l; cat /tmp/v02_l >/dev/null)                                   # symlink to the file
(ln -s /root/.aws /tmp/v03_d; cat /tmp/v03_d/credentials >/dev/null)                 # symlink to its folder
(ln -s $S /tmp/v04_a; ln -s /tmp/v04_a /tmp/v04_b; cat /tmp/v04_b >/dev/null)        # a chain of symlinks
(cd /tmp && ln -s ../root/.ssh/id_rsa v05_r && cat v05_r >/dev/null)                 # a relative symlink
(ln $S /tmp/v06_h && cat /tmp/v06_h >/dev/null)                                       # a hard link
(cat /proc/self/root/etc/shadow >/dev/null)                                           # /proc/self/root
(cd /root/.ssh && cat /proc/self/cwd/id_rsa >/dev/null)                               # /proc/self/cwd
(cat /proc/$$/root/root/.ssh/id_rsa >/dev/null)                                       # /proc/PID/root
(cat $S/ >/dev/null 2>&1)                                                             # a trailing '/' (ENOTDIR)
(ln -s /root/.aws /tmp/v14_d; cd /tmp/v14_d && cat credentials >/dev/null)           # cd through a symlink
py 'import os; d=os.open("/root/.aws", os.O_PATH); open(f"/dev/fd/{d}/credentials").read()'   # /dev/fd/N
py 'import os; d=os.open("/root/.ssh", os.O_PATH); open(f"/proc/self/fd/{d}/id_rsa").read()'  # /proc/self/fd/N
(mv /home/user/.aws/credentials /tmp/v20_m && cat /tmp/v20_m >/dev/null; mv /tmp/v20_m /home/user/.aws/credentials)  # a rename
(ln -s /root/.ssh /tmp/v29_d; cat /tmp/v29_d/../.aws/credentials >/dev/null)         # '..' after a symlinked folder
(ln -s $S /tmp/v30_l; ln /tmp/v30_l /tmp/v30_h; cat /tmp/v30_h >/dev/null)           # a hard link of a symlink
(mkdir -p /tmp/v31; ln -s ../../etc /tmp/v31/e; cat /tmp/v31/e/shadow >/dev/null)   # a relative symlink to /etc
(cd /root/.ssh && sleep 2 & sleep 0.5; cat /proc/$!/cwd/id_rsa >/dev/null; wait)     # another process's cwd
(cp /bin/cat /tmp/ssh; /tmp/ssh /home/user/.ssh/id_rsa >/dev/null)                   # cat copied to an ssh tool's name
(ln -s /bin/cat /tmp/login; /tmp/login /etc/gshadow >/dev/null)                      # cat linked to a shadow tool's name
py 'import os; os.symlink("/root/.ssh", "/tmp/v34_p"); os.chdir("/tmp"); os.read(os.open("v34_p/id_rsa", os.O_RDONLY), 9)'  # python
exit 0
