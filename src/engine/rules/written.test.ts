// Files written during the capture, in bounded memory: whole names first, then hashes, then
// saturated (every program counts as possibly written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WrittenFiles } from './written.js';

test('names are kept whole up to the character budget and matched exactly or by a relative suffix', () => {
  const w = new WrittenFiles({ chars: 100, hashes: 10 });
  w.add('/tmp/payload');
  w.add('/opt/sub/tool');
  assert.equal(w.has('/tmp/payload'), true);
  assert.equal(w.has('/tmp/other'), false);
  assert.equal(w.hasSuffix('/payload'), true);
  assert.equal(w.hasSuffix('/sub/tool'), true);
  assert.equal(w.hasSuffix('/other/tool'), false, 'a suffix must match past the last component too');
  assert.equal(w.approximate, false);
});

test('past the budget, names are remembered by hash (an execution of a name written late is still seen), then the set saturates', () => {
  const w = new WrittenFiles({ chars: 12, hashes: 3 });
  w.add('/tmp/payload'); // 12 characters: kept whole, the budget used up
  w.add('/tmp/x'); // hashed
  assert.equal(w.approximate, true);
  assert.equal(w.has('/tmp/payload'), true);
  assert.equal(w.has('/tmp/x'), true);
  assert.equal(w.has('/tmp/never-written'), false);
  assert.equal(w.hasSuffix('/x'), true);
  assert.equal(w.hasSuffix('/never-written'), false);
  w.add('/x/1');
  w.add('/x/2');
  assert.equal(w.saturated, false);
  w.add('/x/3'); // the fourth hash: saturated
  assert.equal(w.saturated, true);
  assert.equal(w.has('/bin/anything'), true, 'saturated: any program may have been written');
});
