// The server-first protocols of the connection catcher: the SMTP dialogue on whole, piecemeal and
// hostile input (the catcher itself greeting real sockets is tested in sessions.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FtpDataPorts, FtpDialogue, GREETERS, ImapDialogue, Pop3Dialogue, SmtpDialogue } from './greetings.js';

const DIALOGUE = 'EHLO bot.example.test\r\nMAIL FROM:<promo@shop.example.test> SIZE=120\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n'
  + 'From: promo@shop.example.test\r\nSubject: You won a prize\r\n\r\nClick here.\r\n.\r\nQUIT\r\n';

test('SmtpDialogue: answers each command and takes the envelope and subject of the first message, whole or fed a byte at a time; it ends at QUIT', () => {
  const whole = new SmtpDialogue();
  const replies = whole.feed(Buffer.from(DIALOGUE));
  assert.deepEqual(replies.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3)), ['250', '250', '250', '250', '250', '250', '354', '250', '221']);
  assert.equal(whole.done, true);
  assert.deepEqual(whole.envelope, { helo: 'bot.example.test', from: 'promo@shop.example.test', to: ['a@example.test', 'b@example.test'], recipients: 2, subject: 'You won a prize' });
  const piecemeal = new SmtpDialogue();
  let said = '';
  for (let i = 0; i < DIALOGUE.length && !piecemeal.done; i++) said += piecemeal.feed(Buffer.from(DIALOGUE[i]!));
  assert.equal(said, replies);
  assert.deepEqual(piecemeal.envelope, whole.envelope);
  assert.deepEqual(GREETERS.filter((g) => g.protocol === 'smtp').flatMap((g) => g.ports).sort(), [25, 2525, 465, 587]);
  assert.equal(new Set(GREETERS.map((g) => g.listen)).size, GREETERS.length, 'each listener names one protocol');
  assert.equal(new Set(GREETERS.flatMap((g) => g.ports)).size, GREETERS.flatMap((g) => g.ports).length, 'each port goes to one listener');
});

test('SmtpDialogue: a message of any size streams through (nothing of it kept but the subject) and later messages are answered and counted, the envelope staying the first one\'s; a lone dot ends a message only as a whole line', () => {
  const d = new SmtpDialogue();
  d.feed(Buffer.from('EHLO pc\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<ops@example.test>\r\nDATA\r\nSubject: loot\r\nContent-Type: application/zip\r\n\r\n'));
  const line = `${'QUFB'.repeat(19)}\r\n`;
  let said = '';
  for (let i = 0; i < 40_000; i++) said += d.feed(Buffer.from(line)); // 3 MB of base64
  said += d.feed(Buffer.from(`${'x'.repeat(10_000)}.\r\n..\r\n`)); // a dot at the end of a long line, a stuffed dot: neither ends it
  assert.equal(said, '');
  assert.match(d.feed(Buffer.from('.\r\n')), /^250 2\.0\.0 OK: queued\r\n$/);
  const second = d.feed(Buffer.from('MAIL FROM:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\nSubject: again\r\n\r\n.\r\nQUIT\r\n'));
  assert.match(second, /^250 2\.1\.0 OK\r\n250 2\.1\.5 OK\r\n354 [^\n]*\n250 2\.0\.0 OK: queued\r\n221 /);
  assert.deepEqual(d.envelope, { helo: 'pc', from: 'a@example.test', to: ['ops@example.test'], recipients: 1, subject: 'loot', messages: 2 });
  const long = new SmtpDialogue();
  assert.match(long.feed(Buffer.from(`EHLO ${'a'.repeat(5000)}\r\nNOOP\r\n`)), /^500 5\.5\.6 Line too long\r\n250 2\.0\.0 OK\r\n$/);
  assert.equal(long.envelope.helo, undefined);
});

test('SmtpDialogue: STARTTLS is refused without a certificate, unknown commands get 502, an empty message is taken, QUIT ends it; hostile fields are cut, escaped and the recipients counted past 16', () => {
  const d = new SmtpDialogue();
  assert.match(d.feed(Buffer.from('STARTTLS\r\nXYZZY\r\n')), /^454 [\s\S]*\r\n502 /);
  assert.equal(d.done, false);
  const empty = new SmtpDialogue();
  assert.match(empty.feed(Buffer.from('HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\n')), /250 2\.0\.0 OK: queued\r\n$/);
  assert.equal(empty.done, false, 'the dialogue goes on after a message, until QUIT');
  assert.equal(empty.envelope.subject, undefined);
  const quit = new SmtpDialogue();
  assert.match(quit.feed(Buffer.from('QUIT\r\n')), /^221 /);
  assert.equal(quit.done, true);
  const hostile = new SmtpDialogue();
  const rcpts = Array.from({ length: 20 }, (_, i) => `RCPT TO:<r${i}@example.test>\r\n`).join('');
  hostile.feed(Buffer.from(`EHLO \x1b[31mred\\${'A'.repeat(1000)}\r\nMAIL FROM:no-brackets@example.test\r\n${rcpts}`, 'latin1'));
  assert.equal(hostile.envelope.helo?.startsWith('\\x1b[31mred\\\\AAA'), true, hostile.envelope.helo);
  assert.equal(hostile.envelope.helo?.length, 256 + 3 + 1, 'cut at 256 characters before escaping');
  assert.equal(hostile.envelope.from, 'no-brackets@example.test');
  assert.equal(hostile.envelope.to.length, 16);
  assert.equal(hostile.envelope.recipients, 20);
});

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

test('SmtpDialogue: AUTH PLAIN and LOGIN are accepted (with the first answer on the command line or after a 334) and the account kept; other mechanisms get 504, `*` cancels, a second AUTH gets 503', () => {
  const plain = new SmtpDialogue();
  assert.match(plain.feed(Buffer.from(`EHLO pc\r\nAUTH PLAIN ${b64('\0logs@mail.example.test\0hunter2')}\r\n`)), /250 AUTH PLAIN LOGIN\r\n235 2\.7\.0/);
  assert.deepEqual(plain.envelope.auth, { mechanism: 'PLAIN', user: 'logs@mail.example.test', password: 'hunter2' });
  assert.match(plain.feed(Buffer.from('AUTH LOGIN\r\n')), /^503 /);
  const asked = new SmtpDialogue();
  assert.equal(asked.feed(Buffer.from('AUTH PLAIN\r\n')), '334 \r\n');
  assert.match(asked.feed(Buffer.from(`${b64('admin\0\0pw')}\r\n`)), /^235 /);
  assert.deepEqual(asked.envelope.auth, { mechanism: 'PLAIN', user: 'admin', password: 'pw' }, 'the authorization identity when the authentication identity is empty');
  const login = new SmtpDialogue();
  const said = login.feed(Buffer.from(`AUTH LOGIN\r\n${b64('stealer@example.test')}\r\n${b64('p\x1bss')}\r\n`, 'latin1'));
  assert.equal(said, '334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n');
  assert.deepEqual(login.envelope.auth, { mechanism: 'LOGIN', user: 'stealer@example.test', password: 'p\\x1bss' }, 'escaped as every field is');
  const initial = new SmtpDialogue();
  assert.match(initial.feed(Buffer.from(`AUTH LOGIN ${b64('u')}\r\n${b64('p')}\r\n`)), /^334 UGFzc3dvcmQ6\r\n235 /);
  assert.deepEqual(initial.envelope.auth, { mechanism: 'LOGIN', user: 'u', password: 'p' });
  const other = new SmtpDialogue();
  assert.match(other.feed(Buffer.from(`AUTH CRAM-MD5\r\nAUTH LOGIN\r\n*\r\nMAIL FROM:<a@b>\r\n`)), /^504 [\s\S]*\r\n334 [\s\S]*\r\n501 [\s\S]*\r\n250 2\.1\.0/);
  assert.equal(other.envelope.auth, undefined);
  assert.equal(other.envelope.from, 'a@b', 'commands are read again after a cancelled AUTH');
});

test('SmtpDialogue with STARTTLS offered: EHLO lists it, STARTTLS stops the dialogue at `upgrade` with what followed the line as `rest`, and restart() goes on with the bytes inside the TLS, where it is no longer offered', () => {
  const d = new SmtpDialogue({ starttls: true });
  const said = d.feed(Buffer.from('EHLO pc\r\nSTARTTLS\r\n\x16\x03\x01 hello', 'latin1'));
  assert.match(said, /250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n/);
  assert.match(said, /220 2\.0\.0 Ready to start TLS\r\n$/);
  assert.equal(d.upgrade, true);
  assert.equal(d.rest.toString('latin1'), '\x16\x03\x01 hello', 'the TLS starts right after the STARTTLS line');
  assert.equal(d.feed(Buffer.from('MAIL FROM:<x@y>\r\n')), '', 'nothing is read in the clear after STARTTLS');
  d.restart();
  const inside = d.feed(Buffer.from(`EHLO pc\r\nSTARTTLS\r\nMAIL FROM:<loot@example.test>\r\nRCPT TO:<ops@example.test>\r\nDATA\r\nSubject: passwords\r\n\r\n..\r\n.\r\nQUIT\r\n`));
  assert.doesNotMatch(inside, /STARTTLS/);
  assert.match(inside, /^250-mail\.example\.test[\s\S]*\r\n503 5\.5\.1 TLS already active\r\n250 2\.1\.0/);
  assert.equal(d.done, true);
  assert.deepEqual(d.envelope, { helo: 'pc', from: 'loot@example.test', to: ['ops@example.test'], recipients: 1, subject: 'passwords', starttls: true });
  const refused = new SmtpDialogue();
  assert.doesNotMatch(refused.feed(Buffer.from('EHLO pc\r\n')), /STARTTLS/, 'not offered when the catcher cannot answer TLS');
});

test('FtpDialogue: takes any login, names a passive port of the address connected to, answers each transfer 150 and 226 and keeps the files it names (uploads and downloads counted); a transfer without PASV gets 425; QUIT ends it; hostile paths are cut and escaped', () => {
  const d = new FtpDialogue('198.18.0.4');
  const said = d.feed(Buffer.from('USER ops@example.test\r\nPASS s3cret\r\nSYST\r\nTYPE I\r\nPASV\r\nSTOR PW_devbox.zip\r\nEPSV\r\nAPPE log.txt\r\nRETR cmd.txt\r\nSTOR no-pasv.bin\r\nPORT 10,0,0,1,4,1\r\nSTOR active.bin\r\n'));
  const lines = said.split('\r\n').filter(Boolean);
  assert.deepEqual(lines.map((l) => l.slice(0, 3)), ['331', '230', '215', '200', '227', '150', '226', '229', '150', '226', '425', '425', '200', '425'], 'each transfer takes a PASV of its own');
  const pasv = /^227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)$/.exec(lines[4] ?? '');
  assert.deepEqual(pasv?.slice(1, 5), ['198', '18', '0', '4'], 'the address the sample connected to');
  const port = Number(pasv?.[5]) * 256 + Number(pasv?.[6]);
  assert.ok(port >= 30000 && port < 40000, String(port));
  assert.match(lines[7] ?? '', /^229 Entering Extended Passive Mode \(\|\|\|3\d{4}\|\)$/);
  assert.equal(d.done, false);
  assert.deepEqual(d.session, {
    user: 'ops@example.test', password: 's3cret', uploads: 4, downloads: 1,
    files: [{ command: 'STOR', path: 'PW_devbox.zip' }, { command: 'APPE', path: 'log.txt' }, { command: 'RETR', path: 'cmd.txt' }, { command: 'STOR', path: 'no-pasv.bin' }, { command: 'STOR', path: 'active.bin' }],
  });
  assert.match(d.feed(Buffer.from('QUIT\r\n')), /^221 /);
  assert.equal(d.done, true);
  const hostile = new FtpDialogue('not an address');
  const stors = Array.from({ length: 20 }, (_, i) => `STOR f${i}\r\n`).join('');
  assert.match(hostile.feed(Buffer.from(`USER \x1b]0;x\x07${'A'.repeat(600)}\r\nPASV\r\n${stors}MKD a"b\r\n${'X'.repeat(5000)}\r\n`, 'latin1')), /^331 [^\n]*\n425 [\s\S]*257 "ab" created\r\n500 /);
  assert.equal(hostile.session.user?.startsWith('\\x1b]0;x\\x07AAA'), true, hostile.session.user);
  assert.equal(hostile.session.files.length, 16);
  assert.equal(hostile.session.uploads, 20);
});

test('FtpDataPorts: each analysis hands out passive ports from 30000 in turn; a connection to one is claimed once as its data connection, any other is not; at most 64 wait', () => {
  const ports = new FtpDataPorts();
  const a = ports.open('198.18.0.4');
  const b = ports.open('198.18.0.4');
  assert.deepEqual([a.port, b.port], [30000, 30001]);
  assert.equal(new FtpDataPorts().open('198.18.0.4').port, 30000, 'a new analysis starts again');
  assert.equal(ports.claim('198.18.0.5', 30000), undefined, 'another address');
  assert.equal(ports.claim('198.18.0.4', null), undefined, 'a port the catcher could not tell');
  assert.equal(ports.claim('198.18.0.4', 30000), a.transfer);
  assert.equal(ports.claim('198.18.0.4', 30000), undefined, 'claimed once');
  for (let i = 0; i < 64; i++) ports.open('198.18.0.6');
  assert.equal(ports.claim('198.18.0.4', 30001), undefined, 'the oldest waiting port was forgotten');
  assert.ok(ports.claim('198.18.0.6', 30065));
});

test('FtpDialogue with the analysis\'s ports: a download or a listing ends its data connection as soon as its command comes (or marks it, when the connection has not come yet); an upload leaves it to be read', () => {
  const ports = new FtpDataPorts();
  const d = new FtpDialogue('198.18.0.4', ports);
  const passive = (said: string) => Number(/\|\|\|(\d+)\|/.exec(said)?.[1]);
  const ended: string[] = [];
  // the download's connection came before RETR: ended at RETR
  const retr = ports.claim('198.18.0.4', passive(d.feed(Buffer.from('USER u\r\nPASS p\r\nEPSV\r\n'))))!;
  retr.end = () => ended.push('retr');
  assert.match(d.feed(Buffer.from('RETR stage2.bin\r\n')), /^150 [^\n]*\n226 /);
  assert.deepEqual([ended, retr.download], [['retr'], true]);
  // an upload's connection is never ended by the dialogue
  const stor = ports.claim('198.18.0.4', passive(d.feed(Buffer.from('EPSV\r\n'))))!;
  stor.end = () => ended.push('stor');
  d.feed(Buffer.from('STOR loot.zip\r\n'));
  assert.deepEqual([ended, stor.download], [['retr'], false]);
  // a listing whose connection comes after the command: marked, so the catcher ends it on arrival
  const port = passive(d.feed(Buffer.from('EPSV\r\nNLST\r\n')));
  assert.equal(ports.claim('198.18.0.4', port)?.download, true);
});

test('Pop3Dialogue and ImapDialogue: take any login (USER and PASS, APOP, AUTH PLAIN; LOGIN with quoted or atom arguments, AUTHENTICATE PLAIN) and hold no mail; each ends at QUIT or LOGOUT; a LOGIN they cannot read is refused, not guessed', () => {
  const pop = new Pop3Dialogue();
  const said = pop.feed(Buffer.from('CAPA\r\nUSER victim@example.test\r\nPASS s3cret\r\nSTAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n'));
  assert.equal(said, '+OK\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n+OK\r\n+OK logged in\r\n+OK 0 0\r\n+OK 0 messages\r\n.\r\n-ERR no such message\r\n+OK bye\r\n');
  assert.deepEqual(pop.login, { mechanism: 'USER', user: 'victim@example.test', password: 's3cret' });
  assert.equal(pop.done, true);
  const apop = new Pop3Dialogue();
  apop.feed(Buffer.from('APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n'));
  assert.deepEqual(apop.login, { mechanism: 'APOP', user: 'mrose', password: 'c4c9334bac560ecc979e58001b3e22fb' });
  const sasl = new Pop3Dialogue();
  assert.equal(sasl.feed(Buffer.from(`PASS early\r\nAUTH PLAIN\r\n${b64('\0u\0p')}\r\n`)), '-ERR USER first\r\n+ \r\n+OK logged in\r\n');
  assert.deepEqual(sasl.login, { mechanism: 'PLAIN', user: 'u', password: 'p' });
  const imap = new ImapDialogue();
  const replies = imap.feed(Buffer.from('a1 CAPABILITY\r\na2 LOGIN "ops@example.test" "pa\\"ss word"\r\na3 SELECT INBOX\r\na4 LOGOUT\r\n'));
  assert.match(replies, /^\* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na1 OK [^\n]*\na2 OK LOGIN completed\r\n\* 0 EXISTS\r\n[\s\S]*a3 OK \[READ-WRITE\] SELECT completed\r\n\* BYE\r\na4 OK LOGOUT completed\r\n$/);
  assert.deepEqual(imap.login, { mechanism: 'LOGIN', user: 'ops@example.test', password: 'pa"ss word' });
  assert.equal(imap.done, true);
  const atoms = new ImapDialogue();
  atoms.feed(Buffer.from('x LOGIN bot hunter2\r\n'));
  assert.deepEqual(atoms.login, { mechanism: 'LOGIN', user: 'bot', password: 'hunter2' });
  const literal = new ImapDialogue();
  assert.match(literal.feed(Buffer.from('x LOGIN {3}\r\n')), /^x BAD /);
  assert.equal(literal.login, undefined);
  const auth = new ImapDialogue();
  assert.equal(auth.feed(Buffer.from(`t1 AUTHENTICATE PLAIN\r\n${b64('\0admin\0admin')}\r\nt2 NOOP\r\n`)), '+ \r\nt1 OK AUTHENTICATE completed\r\nt2 OK NOOP completed\r\n');
  assert.deepEqual(auth.login, { mechanism: 'PLAIN', user: 'admin', password: 'admin' });
});
