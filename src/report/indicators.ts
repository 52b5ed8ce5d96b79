// The report's indicators: what an analyst copies into a blocklist, a ticket or a threat-intel
// platform, gathered from the rest of the report (nothing here is measured anew, so a replayed
// report has the same): the names looked up, the hard-coded endpoints, the URLs, user agents and
// TLS server names of the requests caught, the accounts logged in with, mail addresses, and the
// SHA-256 of every file written and every upload.
import { DNS_SERVER, DNS_SERVER6, isSinkholeAddress } from '../sandbox/dns.js';
import { mappedIpv4 } from '../semantics/state.js';
import type { Report, ReportIndicators } from './schema.js';

/** Entries kept per list (the rest of the report holds them all). */
export const INDICATORS_MAX = 1000;

/** Addresses that are the sandbox's own or the sample's loopback: never an indicator. */
function sandboxAddress(address: string): boolean {
  // the sinkhole's answers are named by their domain instead
  const v4 = mappedIpv4(address) ?? address;
  return address === '::1' || address === '::' || v4 === '0.0.0.0' || v4 === DNS_SERVER || v4.startsWith('127.') || isSinkholeAddress(v4) || address === DNS_SERVER6;
}

/** A list that keeps each value once, in the order first given, up to INDICATORS_MAX. */
function unique<T>(key: (v: T) => string = String): { add(v: T | undefined): void; list: T[] } {
  const seen = new Set<string>();
  const list: T[] = [];
  return {
    add(v) {
      if (v === undefined || list.length >= INDICATORS_MAX) return;
      const k = key(v);
      if (seen.has(k)) return;
      seen.add(k);
      list.push(v);
    },
    list,
  };
}

const SENDS = new Set(['connect', 'sendto', 'sendmsg', 'sendmmsg']);

export function indicatorsOf(r: Omit<Report, 'indicators'>): ReportIndicators {
  const domains = unique<string>();
  for (const q of r.dns ?? []) domains.add(q.name);
  const endpoints = unique<string>();
  for (const n of r.network) {
    if (!SENDS.has(n.op) || (n.family !== 'inet' && n.family !== 'inet6') || n.domain !== undefined || sandboxAddress(n.address)) continue;
    endpoints.add(n.family === 'inet6' ? `[${n.address}]${n.port !== null ? `:${n.port}` : ''}` : `${n.address}${n.port !== null ? `:${n.port}` : ''}`);
  }
  const urls = unique<string>();
  const userAgents = unique<string>();
  const serverNames = unique<string>();
  const accounts = unique<ReportIndicators['accounts'][number]>((a) => `${a.protocol} ${a.user} ${a.password}`);
  const mailAddresses = unique<string>();
  const hashes = unique<ReportIndicators['hashes'][number]>((h) => `${h.sha256} ${h.source} ${h.name}`);
  for (const d of r.dropped) if (d.sha256) hashes.add({ sha256: d.sha256, source: 'dropped', name: d.path });
  for (const s of r.sessions ?? []) {
    serverNames.add(s.sni);
    if (s.http) {
      const scheme = s.protocol === 'tls' ? 'https' : 'http';
      const port = s.port === null || s.port === (scheme === 'https' ? 443 : 80) ? '' : `:${s.port}`;
      const host = s.http.host ?? `${s.domain ?? (s.address.includes(':') ? `[${s.address}]` : s.address)}${port}`;
      const url = `${scheme}://${host}${s.http.path.startsWith('/') ? '' : '/'}${s.http.path}`;
      urls.add(url);
      userAgents.add(s.http.userAgent);
      if (s.http.body && !s.http.body.incomplete) hashes.add({ sha256: s.http.body.sha256, source: 'upload', name: url });
    }
    if (s.smtp?.auth) accounts.add({ protocol: 'smtp', user: s.smtp.auth.user, password: s.smtp.auth.password });
    if (s.ftp?.user !== undefined) accounts.add({ protocol: 'ftp', user: s.ftp.user, password: s.ftp.password ?? '' });
    if (s.login) accounts.add({ protocol: s.protocol, user: s.login.user, password: s.login.password });
    // an IRC server's password, and each channel's key (the channel as the account it opens)
    if (s.irc?.password !== undefined) accounts.add({ protocol: 'irc', user: s.irc.nick ?? s.irc.user ?? '', password: s.irc.password });
    for (const c of s.irc?.channels ?? []) if (c.key !== undefined) accounts.add({ protocol: 'irc', user: c.name, password: c.key });
    mailAddresses.add(s.smtp?.from || undefined);
    for (const to of s.smtp?.to ?? []) mailAddresses.add(to);
  }
  return {
    domains: domains.list, endpoints: endpoints.list, urls: urls.list, userAgents: userAgents.list, serverNames: serverNames.list,
    accounts: accounts.list, mailAddresses: mailAddresses.list, hashes: hashes.list,
  };
}
