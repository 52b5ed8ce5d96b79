// The IRC side of the connection catcher: the dialogue a bot is led through, line by line, and
// what is kept of it (the catcher itself, with real clients, is in sessions.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IrcDialogue, isIrcStart } from './irc.js';

const lines = (...l: string[]) => Buffer.from(l.map((x) => `${x}\r\n`).join(''), 'latin1');

test('isIrcStart: a first whole line of PASS, NICK, USER or CAP LS is IRC; HTTP, a half line, a bare NICK or other text is not', () => {
  for (const yes of ['NICK bot123\r\n', 'nick bot\n', 'USER x 0 * :y\r\nNICK z\r\n', 'PASS secret\r\n', 'CAP LS 302\r\n']) assert.equal(isIrcStart(Buffer.from(yes)), true, yes);
  for (const no of ['NICK bot123', 'GET / HTTP/1.1\r\n\r\n', 'NICK\r\n', 'NICKNAME x\r\n', 'hello\n', '']) assert.equal(isIrcStart(Buffer.from(no)), false, no);
});

test('IrcDialogue: the welcome and end of MOTD come once both NICK and USER did (either first); JOIN is echoed with its names list; PING is answered; channels with keys, messages and the server password are kept; QUIT ends it', () => {
  const d = new IrcDialogue();
  assert.equal(d.feed(lines('PASS srvpw', 'NICK [x86|US]a1b2')), '', 'no welcome before USER');
  const welcome = d.feed(lines('USER a1b2 0 * :Linux 5.10 x86_64'));
  assert.match(welcome, /^:irc\.example\.test 001 \[x86\|US\]a1b2 :Welcome/);
  assert.match(welcome, / 376 \[x86\|US\]a1b2 :End of \/MOTD command\.\r\n$/);
  assert.equal(d.feed(lines('USER again 0 * :again')), '', 'welcomed once');
  assert.equal(d.feed(lines('PING :irc.example.test')), ':irc.example.test PONG irc.example.test :irc.example.test\r\n');
  const join = d.feed(lines('JOIN #bots,#x86 k3y'));
  assert.match(join, /^:\[x86\|US\]a1b2!a1b2@sandbox JOIN :#bots\r\n.* 366 \[x86\|US\]a1b2 #bots :End of \/NAMES list\.\r\n:\[x86\|US\]a1b2!a1b2@sandbox JOIN :#x86\r\n/s);
  d.feed(lines('MODE [x86|US]a1b2 +x', 'PRIVMSG #bots :up 3 days', 'NOTICE op :ok'));
  assert.equal(d.done, false);
  assert.equal(d.feed(lines('QUIT :bye')), 'ERROR :Closing Link\r\n');
  assert.equal(d.done, true);
  assert.deepEqual(d.session, {
    password: 'srvpw', nick: '[x86|US]a1b2', user: 'a1b2', realname: 'Linux 5.10 x86_64',
    channels: [{ name: '#bots', key: 'k3y' }, { name: '#x86' }],
    messages: [{ command: 'PRIVMSG', target: '#bots', text: 'up 3 days' }, { command: 'NOTICE', target: 'op', text: 'ok' }],
    lines: 10,
  });
  // USER first, then NICK: welcomed at the NICK
  const e = new IrcDialogue();
  assert.equal(e.feed(lines('USER u 8 * :r')), '');
  assert.match(e.feed(lines('NICK n')), / 001 n :/);
});

test('IrcDialogue on hostile input: fields are escaped and cut, control bytes never echoed back, channels and messages capped at 16, an over-long line counted and ignored', () => {
  const d = new IrcDialogue();
  const reply = d.feed(lines('NICK ev\x01il\x1b[31m', 'USER u 0 * :r', `JOIN ${Array.from({ length: 20 }, (_, i) => `#c${i}`).join(',')}`));
  assert.ok(!/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(reply), 'no control bytes in the replies');
  assert.equal(d.session.nick, 'ev\\x01il\\x1b[31m');
  assert.equal(d.session.channels.length, 16);
  for (let i = 0; i < 20; i++) d.feed(lines(`PRIVMSG #c0 :${'m'.repeat(300)}`));
  assert.equal(d.session.messages.length, 16);
  assert.equal(d.session.messages[0]!.text.length, 256);
  d.feed(Buffer.from(`PASS ${'p'.repeat(10_000)}\r\n`));
  assert.equal(d.session.password, undefined, 'an over-long line is not read');
  assert.equal(d.session.lines, 3 + 20 + 1);
});
