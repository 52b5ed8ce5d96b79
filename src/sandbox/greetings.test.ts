// The server-first protocols of the connection catcher: the SMTP dialogue on whole, piecemeal and
// hostile input (the catcher itself greeting real sockets is tested in sessions.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GREETED, SmtpDialogue } from './greetings.js';

const DIALOGUE = 'EHLO bot.example.test\r\nMAIL FROM:<promo@shop.example.test> SIZE=120\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n'
  + 'From: promo@shop.example.test\r\nSubject: You won a prize\r\n\r\nClick here.\r\n.\r\nQUIT\r\n';

test('SmtpDialogue: answers each command and takes the envelope and subject of the first message, whole or fed a byte at a time; it ends at the message', () => {
  const whole = new SmtpDialogue();
  const replies = whole.feed(Buffer.from(DIALOGUE));
  assert.deepEqual(replies.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3)), ['250', '250', '250', '250', '250', '354', '250']);
  assert.equal(whole.done, true);
  assert.deepEqual(whole.envelope, { helo: 'bot.example.test', from: 'promo@shop.example.test', to: ['a@example.test', 'b@example.test'], recipients: 2, subject: 'You won a prize' });
  const piecemeal = new SmtpDialogue();
  let said = '';
  for (let i = 1; i <= DIALOGUE.length && !piecemeal.done; i++) said += piecemeal.feed(Buffer.from(DIALOGUE.slice(0, i)));
  assert.equal(said, replies);
  assert.deepEqual(piecemeal.envelope, whole.envelope);
  assert.ok(GREETED.get('smtp')?.ports.includes(25));
  assert.ok(GREETED.get('ftp')?.ports.includes(21));
});

test('SmtpDialogue: STARTTLS is refused, unknown commands get 502, an empty message and QUIT end it; hostile fields are cut, escaped and the recipients counted past 16', () => {
  const d = new SmtpDialogue();
  assert.match(d.feed(Buffer.from('STARTTLS\r\nXYZZY\r\n')), /^454 [\s\S]*\r\n502 /);
  assert.equal(d.done, false);
  const empty = new SmtpDialogue();
  empty.feed(Buffer.from('HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\n'));
  assert.equal(empty.done, true);
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
