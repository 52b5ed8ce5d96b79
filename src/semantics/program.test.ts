import { test } from 'node:test';
import assert from 'node:assert/strict';
import { programKey } from './program.js';

test('programKey: an ordinary program is its exe; a busybox applet is the exe and the applet it runs as', () => {
  assert.equal(programKey({ exe: '/usr/bin/dash', argv: ['sh', '-c', 'x'], name: 'sh' }), '/usr/bin/dash');
  assert.equal(programKey({ exe: '/bin/busybox', argv: ['nc', '-w', '1', '127.0.0.1', '4444'], name: 'nc' }), '/bin/busybox:nc');
  assert.equal(programKey({ exe: '/bin/busybox', argv: ['/bin/sleep', '0.1'], name: 'sleep' }), '/bin/busybox:sleep');
  // run by its own name: the applet is the first argument
  assert.equal(programKey({ exe: '/bin/busybox', argv: ['busybox', 'sh', '-c', 'x'], name: 'busybox' }), '/bin/busybox:sh');
  assert.equal(programKey({ exe: '/bin/busybox', argv: ['-sh'], name: 'sh' }), '/bin/busybox:sh');
  // nothing says which applet: the file alone
  assert.equal(programKey({ exe: '/bin/busybox', argv: [], name: 'busybox' }), '/bin/busybox');
  assert.equal(programKey({ exe: '', argv: [], name: '' }), '');
});
