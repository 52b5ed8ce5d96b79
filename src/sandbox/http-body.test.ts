// HTTP request bodies as the connection catcher reads them: by Content-Length or chunked, whole or
// piecemeal, hashed and previewed, and bounded whatever the sample declares.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BODY_READ_MAX, HttpBodyReader } from './http-body.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const head = (...headers: string[]): Buffer => Buffer.from(['POST /up HTTP/1.1', 'Host: c2.example.test', ...headers].join('\r\n'));

test('HttpBodyReader: a Content-Length body is done at its last byte, whole or a byte at a time; its SHA-256 and first bytes are kept; a request without a body has no reader', () => {
  const data = Buffer.from('PK\x03\x04 loot \x00\xff'.repeat(40), 'latin1');
  const whole = HttpBodyReader.of(head(`Content-Length: ${data.length}`))!;
  whole.feed(data.subarray(0, 100));
  assert.equal(whole.done, false);
  whole.feed(Buffer.concat([data.subarray(100), Buffer.from('GET /next HTTP/1.1\r\n\r\n')]));
  assert.equal(whole.done, true);
  const r = whole.result();
  assert.deepEqual([r.bytes, r.sha256, r.incomplete], [data.length, sha(data), undefined]);
  assert.match(r.preview, /^PK\\x03\\x04 loot \\x00\\xffPK/);
  const bytewise = HttpBodyReader.of(head(`content-length: ${data.length}`))!;
  for (const b of data) bytewise.feed(Buffer.from([b]));
  assert.deepEqual(bytewise.result(), r);
  assert.equal(HttpBodyReader.of(Buffer.from('GET / HTTP/1.1\r\nHost: x')), undefined);
  assert.equal(HttpBodyReader.of(head('Content-Length: 0')), undefined);
  assert.equal(HttpBodyReader.of(head('Content-Length: -5')), undefined, 'a length that is no number: no body read');
  assert.equal(HttpBodyReader.of(head('Content-Length: 10', 'Expect: 100-continue'))?.expectsContinue, true);
});

test('HttpBodyReader: a chunked body is de-chunked (extensions and trailers skipped) and done after the trailer; broken framing ends it as incomplete; a body cut short is incomplete', () => {
  const chunked = HttpBodyReader.of(head('Transfer-Encoding: gzip, chunked'))!;
  const framed = '5;name=x\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: 1\r\n\r\n';
  for (const c of framed) chunked.feed(Buffer.from(c));
  assert.equal(chunked.done, true);
  assert.deepEqual(chunked.result(), { bytes: 12, sha256: sha('hello, world'), preview: 'hello, world' });
  const broken = HttpBodyReader.of(head('Transfer-Encoding: chunked'))!;
  broken.feed(Buffer.from('5\r\nhelloXX\r\n'));
  assert.deepEqual([broken.done, broken.result().bytes, broken.result().incomplete], [true, 5, true], 'no CRLF after the chunk');
  const notHex = HttpBodyReader.of(head('Transfer-Encoding: chunked'))!;
  notHex.feed(Buffer.from('zz\r\n'));
  assert.deepEqual([notHex.done, notHex.result().incomplete], [true, true]);
  const endless = HttpBodyReader.of(head('Transfer-Encoding: chunked'))!;
  endless.feed(Buffer.alloc(5000, 0x31));
  assert.deepEqual([endless.done, endless.result().incomplete], [true, true], 'a size line past 1 KiB');
  const short = HttpBodyReader.of(head('Content-Length: 100'))!;
  short.feed(Buffer.from('only this'));
  assert.deepEqual([short.done, short.result().bytes, short.result().incomplete], [false, 9, true]);
});

test('HttpBodyReader: a body larger than BODY_READ_MAX is read up to it and no further, and marked incomplete', () => {
  const r = HttpBodyReader.of(head(`Content-Length: ${BODY_READ_MAX * 4}`))!;
  const mib = Buffer.alloc(1 << 20, 0x41);
  let fed = 0;
  while (!r.done && fed < BODY_READ_MAX * 2) { r.feed(mib); fed += mib.length; }
  assert.equal(r.done, true);
  assert.equal(fed, BODY_READ_MAX);
  assert.deepEqual([r.result().bytes, r.result().incomplete], [BODY_READ_MAX, true]);
});
