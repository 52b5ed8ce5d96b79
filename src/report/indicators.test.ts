// The report's indicators, gathered from a report's DNS log, network list, caught sessions and
// dropped files: each kind once, in the order first seen; the sandbox's own addresses never.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INDICATORS_MAX, indicatorsOf } from './indicators.js';
import type { Report } from './schema.js';

type Parts = Pick<Report, 'dns' | 'network' | 'sessions' | 'dropped'>;
const report = (p: Partial<Parts>): Omit<Report, 'indicators'> => ({ network: [], dropped: [], ...p }) as unknown as Omit<Report, 'indicators'>;
const net = (address: string, port: number | null, o: Partial<Report['network'][number]> = {}): Report['network'][number] =>
  ({ op: 'connect', proto: 'tcp', family: address.includes(':') ? 'inet6' : 'inet', address, port, result: 'ok', pid: 7, count: 1, ...o });

test('indicatorsOf: names, hard-coded endpoints (not loopback, not the sinkhole\'s own or its answers), URLs with their scheme, user agents, server names, accounts (IRC\'s server password and channel keys too), mail addresses and hashes of drops and whole uploads', () => {
  const i = indicatorsOf(report({
    dns: [{ name: 'c2.example.test', type: 'A', answer: '198.18.0.1', rcode: 'NOERROR', count: 2 }, { name: 'c2.example.test', type: 'AAAA', answer: null, rcode: 'NOERROR', count: 1 }, { name: 'mx.example.test', type: 'MX', answer: 'mx.example.test', rcode: 'NOERROR', count: 1 }],
    network: [
      net('198.18.0.1', 80, { domain: 'c2.example.test' }), net('203.0.113.7', 4444), net('203.0.113.7', 4444, { pid: 8 }), net('127.0.0.1', 9), net('192.0.2.53', 53, { proto: 'udp', op: 'sendto' }),
      net('2001:db8::7', 443), net('203.0.113.9', 7000, { proto: 'udp', op: 'sendto' }), net('0.0.0.0', 8080, { op: 'bind' }), net('198.51.100.3', 22, { op: 'accept' }),
    ],
    sessions: [
      { address: '198.18.0.1', port: 80, domain: 'c2.example.test', protocol: 'http', bytes: 90, preview: '', http: { method: 'POST', path: '/gate.php?id=1', host: 'c2.example.test', userAgent: 'implant/2.1', body: { bytes: 4, sha256: 'a'.repeat(64), preview: 'loot' } } },
      { address: '198.18.0.2', port: 8443, domain: 'secure.example.test', protocol: 'tls', sni: 'secure.example.test', bytes: 517, preview: '', decrypted: { bytes: 30, preview: '' }, http: { method: 'GET', path: '/x', body: { bytes: 9, sha256: 'b'.repeat(64), preview: '', incomplete: true } } },
      { address: '198.18.0.3', port: 587, domain: 'smtp.example.test', protocol: 'smtp', bytes: 80, preview: '', smtp: { from: 'pc@example.test', to: ['ops@example.test'], recipients: 1, auth: { mechanism: 'PLAIN', user: 'logs@example.test', password: 'pw' } } },
      { address: '198.18.0.4', port: 21, protocol: 'ftp', bytes: 30, preview: '', ftp: { user: 'ops', files: [], uploads: 0, downloads: 0 } },
      { address: '198.18.0.5', port: 143, protocol: 'imap', bytes: 30, preview: '', login: { mechanism: 'LOGIN', user: 'box', password: 'pw2' } },
      { address: '198.18.0.6', port: 6667, protocol: 'irc', bytes: 30, preview: '', irc: { nick: 'a1', password: 'srv', channels: [{ name: '#cmd', key: 'k3y' }, { name: '#open' }], messages: [], lines: 4 } },
    ],
    dropped: [{ path: '/tmp/.cache/loot.tgz', sha256: 'c'.repeat(64), size: 10, change: 'created', truncated: false }, { path: '/tmp/huge', sha256: null, size: 1e12, change: 'created', truncated: true }],
  }));
  assert.deepEqual(i, {
    domains: ['c2.example.test', 'mx.example.test'],
    endpoints: ['203.0.113.7:4444', '[2001:db8::7]:443', '203.0.113.9:7000'],
    urls: ['http://c2.example.test/gate.php?id=1', 'https://secure.example.test:8443/x'],
    userAgents: ['implant/2.1'],
    serverNames: ['secure.example.test'],
    accounts: [{ protocol: 'smtp', user: 'logs@example.test', password: 'pw' }, { protocol: 'ftp', user: 'ops', password: '' }, { protocol: 'imap', user: 'box', password: 'pw2' },
      { protocol: 'irc', user: 'a1', password: 'srv' }, { protocol: 'irc', user: '#cmd', password: 'k3y' }],
    mailAddresses: ['pc@example.test', 'ops@example.test'],
    hashes: [{ sha256: 'c'.repeat(64), source: 'dropped', name: '/tmp/.cache/loot.tgz' }, { sha256: 'a'.repeat(64), source: 'upload', name: 'http://c2.example.test/gate.php?id=1' }],
  });
});

test('indicatorsOf: each list stops at INDICATORS_MAX', () => {
  const dns = Array.from({ length: INDICATORS_MAX + 5 }, (_, n) => ({ name: `n${n}.example.test`, type: 'A', answer: null, rcode: 'NOERROR' as const, count: 1 }));
  assert.equal(indicatorsOf(report({ dns })).domains.length, INDICATORS_MAX);
});
