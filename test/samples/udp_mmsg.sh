#!/bin/sh
# udp_mmsg: UDP datagrams sent and received in batches (sendmmsg, recvmmsg), as DNS resolvers and
# flood tools do, all on 127.0.0.1. A sender bound to port ${3:-4450} sends one sendmmsg of three
# datagrams to receivers on ports ${1:-4448} and ${2:-4449} (each message names its own
# destination), and a second sender on ${4:-4451} sends one more. The first receiver takes its
# three datagrams with one recvmmsg whose second message asks for no sender (msg_name NULL): the
# capture must name 127.0.0.1:${3:-4450} and :${4:-4451} as senders, and nothing else. A
# sendmmsg on a connected socket names no destination of its own; the connect does.
exec python3 - "${1:-4448}" "${2:-4449}" "${3:-4450}" "${4:-4451}" <<'PY'
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint32)]
P1, P2, P3, P4 = (int(p) for p in sys.argv[1:5])
r1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r1.bind(('127.0.0.1', P1))
r2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r2.bind(('127.0.0.1', P2))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', P3))
s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s2.bind(('127.0.0.1', P4))
keep = []
def sockaddr(port):
    b = ctypes.create_string_buffer(16)
    b.raw = socket.AF_INET.to_bytes(2, 'little') + port.to_bytes(2, 'big') + socket.inet_aton('127.0.0.1') + bytes(8)
    keep.append(b)
    return b
def batch(n, names, room=128):
    msgs = (mmsghdr * n)()
    for i in range(n):
        buf = ctypes.create_string_buffer(64); keep.append(buf)
        io = iovec(ctypes.cast(buf, ctypes.c_void_p), 64 if names is None else 5); keep.append(io)
        name = names[i] if names is not None else ctypes.create_string_buffer(room)
        if name is not None: keep.append(name)
        msgs[i].hdr = msghdr(ctypes.cast(name, ctypes.c_void_p) if name is not None else None,
                             len(name) if name is not None else 0, ctypes.pointer(io), 1, None, 0, 0)
    return msgs
out = batch(3, [sockaddr(P1), sockaddr(P2), sockaddr(P1)])
print('sent', libc.sendmmsg(s.fileno(), out, 3, 0))
s2.sendto(b'hello', ('127.0.0.1', P1))
inb = batch(4, None)
inb[1].hdr.name = None; inb[1].hdr.namelen = 0
print('received', libc.recvmmsg(r1.fileno(), inb, 4, socket.MSG_DONTWAIT, None))
print('other', r2.recv(64))
s.connect(('127.0.0.1', P2))
print('connected', libc.sendmmsg(s.fileno(), batch(2, [None, None]), 2, 0))
PY
