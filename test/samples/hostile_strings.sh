#!/bin/sh
# hostile_strings: markup, terminal escapes, bidi controls and invalid UTF-8 in every string the
# sample controls (file and directory names, argv, env, comm, unix socket names, a DNS query, its
# console output), and a directory chain deeper than PATH_MAX named with escape sequences. The
# analyst's terminal and browser must show all of it as text: report.html runs no script but its
# own, report.json stays JSON, and the CLI writes no control character but the line ends.
printf '\033[2J\033[Hverdict: benign (score 0.0/10)\r\n\033]0;pwned\007'
exec python3 - <<'PY'
import os, socket, ctypes
H = '<script>alert(1)</script>"><img src=x onerror=alert(2)>\'`javascript:alert(3)<svg onload=alert(4)>'
E = '\x1b[2J\x1b[H\rverdict: benign\r\x1b]0;t\x07\u009b31m\u202e'
os.chdir('/tmp')
for n in [H.replace('/', '_'), E, 'javascript:alert(5)', 'a\nverdict: benign\r']:
    open(n, 'w').write('x')
open(b'bad\xff\xfe\xed\xa0\x80utf8\xc3', 'wb').write(b'x')
ctypes.CDLL(None).prctl(15, b'<img src=x>\x1b[2J', 0, 0, 0)
for p in [b'/tmp/<s>\x1b[31m.sock', b'\x00abs<script>\x1b\xff']:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(p); s.listen(1)
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(p)
# a DNS query for a name of markup and escapes, to the sandbox's own loopback
q = b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
for label in [b'<script>', b'\x1b[2J', b'\xff\xfe', b'x"onmouseover=alert(6)']:
    q += bytes([len(label)]) + label
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(q + b'\x00\x00\x01\x00\x01', ('127.0.0.1', 53))
os.spawnve(os.P_WAIT, '/bin/true', ['/bin/true', H, E, b'\xff\xfe', 'javascript:alert(7)'], {'X': H + E, 'Y<z>': E})
# a chain of directories named with escape sequences, longer than PATH_MAX in all
d = E.replace('/', '_') + 'd' * 200
for i in range(24):
    os.mkdir(d); os.chdir(d)
open('deep<b>' + E, 'w').write('x')
print(E + 'done')
PY
