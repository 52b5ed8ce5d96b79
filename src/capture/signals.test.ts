import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SyscallEvent } from './events.js';
import { defaultAction, isRestartCode, noHandler, onDelivery, settle } from './signals.js';

const SIGALRM = 14, SIGTERM = 15, SIGKILL = 9, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19;
const handler = (restart: boolean) => ({ kind: 'handler', restart } as const);

test('a handler cuts a call short with EINTR unless SA_RESTART asks for ERESTARTSYS calls to be made again; ERESTARTNOINTR always restarts', () => {
  assert.equal(onDelivery(-512, SIGALRM, handler(false)), 'interrupted');
  assert.equal(onDelivery(-512, SIGALRM, handler(true)), 'restarted');
  assert.equal(onDelivery(-513, SIGALRM, handler(false)), 'restarted');
  // ERESTARTNOHAND (pause, sigsuspend) and ERESTART_RESTARTBLOCK (nanosleep) fail with EINTR whatever SA_RESTART says
  assert.equal(onDelivery(-514, SIGALRM, handler(true)), 'interrupted');
  assert.equal(onDelivery(-516, SIGALRM, handler(true)), 'interrupted');
});

test('no handler: a default kill ends the process before the call returns; ignored, stop and continue leave it pending, then it is made again', () => {
  assert.equal(onDelivery(-512, SIGTERM, { kind: 'default' }), 'killed');
  assert.equal(onDelivery(-512, SIGKILL, { kind: 'default' }), 'killed');
  assert.equal(onDelivery(-512, SIGTERM, { kind: 'ignore' }), undefined);
  for (const sig of [SIGCHLD, SIGCONT, SIGSTOP]) assert.equal(onDelivery(-512, sig, { kind: 'default' }), undefined, `signal ${sig}`);
  assert.equal(noHandler(), 'restarted');
  assert.deepEqual([SIGCHLD, SIGCONT, SIGSTOP, SIGTERM, 34].map(defaultAction), ['ignore', 'continue', 'stop', 'kill', 'kill']);
});

test('only the four kernel-internal restart codes count; settle rewrites the event to what the program saw', () => {
  assert.deepEqual([-512, -513, -514, -516, -515, -4, 0, null].map((r) => isRestartCode(r)), [true, true, true, true, false, false, false, false]);
  const ev = (): SyscallEvent => ({ type: 'syscall', seq: 1, ts: 0, pid: 1, tid: 1, abi: 'x86_64', nr: 288, name: 'accept4', args: [3, 0, 0, 0], ret: -512 });
  const a = ev(); settle(a, 'interrupted');
  assert.deepEqual([a.ret, a.signal], [-4, 'interrupted']);
  const b = ev(); settle(b, 'restarted');
  assert.deepEqual([b.ret, b.signal], [null, 'restarted']);
  const c = ev(); settle(c, 'killed');
  assert.deepEqual([c.ret, c.signal], [null, undefined]);
});

test('a sendmmsg the kernel makes again names no destination: the call made again sends the messages; one cut short keeps its first', () => {
  const a = { family: 'inet', address: '127.0.0.1', port: 53 } as const;
  const call = (): SyscallEvent => ({ type: 'syscall', seq: 1, ts: 0, pid: 1, tid: 1, abi: 'x86_64', nr: 307, name: 'sendmmsg', args: [3, 0, 2, 0], ret: -512, addrs: [a], truncated: ['addr'], unreadable: ['addr', 'path'] });
  const again = call();
  settle(again, 'restarted');
  assert.deepEqual([again.ret, again.addrs, again.truncated, again.unreadable], [null, undefined, undefined, ['path']]);
  // its first message unreadable at the call: the mark goes too, the call made again reads them
  const unread = call();
  delete unread.addrs; delete unread.truncated; unread.unreadable = ['addr'];
  settle(unread, 'restarted');
  assert.equal(unread.unreadable, undefined);
  const cut = call();
  settle(cut, 'interrupted');
  assert.deepEqual([cut.ret, cut.addrs], [-4, [a]]);
});
