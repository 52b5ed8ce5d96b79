#!/bin/sh
# udp_recvmsg: a UDP "C2" read with recvmsg on 127.0.0.1: from a sender bound to port
# ${2:-4446}, to a receiver on port ${1:-4445}. Three datagrams, three recvmsg calls: one asks for
# the sender (msg_name set: the capture must name 127.0.0.1:${2:-4446}), one passes msg_name NULL
# and one a msg_name with msg_namelen 0 (no sender asked for, none written: nothing may be made
# up, not even from the datagram, which reads like a decoded address).
exec python3 - "${1:-4445}" "${2:-4446}" <<'PY'
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', int(sys.argv[1])))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', int(sys.argv[2])))
data = ctypes.create_string_buffer(256)
name = ctypes.create_string_buffer(128)
def recvmsg(with_name, room):
    io = iovec(ctypes.cast(data, ctypes.c_void_p), len(data))
    m = msghdr(ctypes.cast(name, ctypes.c_void_p) if with_name else None, room, ctypes.pointer(io), 1, None, 0, 0)
    n = libc.recvmsg(r.fileno(), ctypes.byref(m), 0)
    return n, data.raw[:max(n, 0)]
fake = b'{sa_family=AF_INET, sin_port=htons(7), sin_addr=inet_addr("6.6.6.6")}'
s.sendto(b'beacon', r.getsockname())
print('named', recvmsg(True, len(name)))
s.sendto(fake, r.getsockname())
print('null', recvmsg(False, 0)[0])
s.sendto(fake, r.getsockname())
print('zero', recvmsg(True, 0)[0])
PY
