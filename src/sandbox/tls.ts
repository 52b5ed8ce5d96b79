// The TLS side of the connection catcher (sessions.ts), done as an interception proxy does it
// (mitmproxy for CAPE, INetSim with its own CA): each analysis's container trusts a certificate
// authority that exists only in this process's memory (trust.ts appends it to the image's CA
// bundle), and the catcher answers a ClientHello with a certificate that authority issued for
// the very name the sample asked for (its SNI, else the name the sinkhole gave the address) and
// for the address it connected to. A sample that checks certificates against the system's trust
// store (curl, wget, python's default context, Go's crypto/tls) then completes the handshake, and
// what it sends through it, an HTTPS request above all, is read in the clear. One that pins a key
// or carries its own CA list refuses it and is logged with its server name only.
//
// The keys and certificates are made here with Node's own crypto: ECDSA P-256 keys and minimal
// X.509 v3 certificates (RFC 5280) with the extensions strict verifiers ask for (basic
// constraints, key usage, key identifiers, subject alternative names). No key is ever written to
// disk, and no tool is run for them.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';

/** The authority's name: an enterprise inspection CA, as many real machines trust one. */
export const SANDBOX_CA_NAME = { organization: 'ACME Corp', commonName: 'ACME Corp Internal Root CA' } as const;

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a! + b!];
  for (const v of rest) {
    const groups: number[] = [];
    for (let x = v; ; x = Math.floor(x / 128)) {
      groups.unshift((x & 0x7f) | (groups.length ? 0x80 : 0));
      if (x < 128) break;
    }
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}
/** A positive INTEGER from big-endian bytes. */
const uint = (b: Buffer) => tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
/** UTCTime (RFC 5280 4.1.2.5.1: years up to 2049). */
const utcTime = (d: Date) => tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
/** A distinguished name of one attribute per RDN: organization (2.5.4.10), then common name (2.5.4.3). */
const name = (n: { organization?: string; commonName: string }) => seq(
  ...(n.organization ? [tlv(0x31, seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from(n.organization))))] : []),
  tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(n.commonName)))),
);
const TRUE = Buffer.from([0x01, 0x01, 0xff]);
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [TRUE] : []), tlv(0x04, value));
const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
const DAY = 86_400_000;
const pem = (label: string, b: Buffer) => `-----BEGIN ${label}-----\n${b.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
/** A key identifier: SHA-1 of the public key's DER (RFC 5280 4.2.1.2 allows any unique value). */
const keyId = (publicKey: KeyObject) => createHash('sha1').update(publicKey.export({ type: 'spki', format: 'der' })).digest();

interface Issuer { name: { organization?: string; commonName: string }; key: KeyObject; keyId: Buffer }

/** One signed certificate (DER), serial random and positive. */
function certificate(subject: { organization?: string; commonName: string }, publicKey: KeyObject, issuer: Issuer, notBefore: Date, notAfter: Date, extensions: Buffer[]): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) || 1; // positive, and no leading zero byte
  const tbs = seq(
    tlv(0xa0, uint(Buffer.from([2]))), // v3
    uint(serial),
    ecdsaWithSha256,
    name(issuer.name),
    seq(utcTime(notBefore), utcTime(notAfter)),
    name(subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, issuer.key); // DER ECDSA-Sig-Value
  return seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
}

/**
 * The name a leaf may carry as a dNSName: a host name of letters, digits, '-' and '_' (malware
 * hosts have them), lower-cased; anything else the sample sent as SNI (spaces, bytes, an address,
 * a trailing dot) gets no name, and the leaf names the address only.
 */
export function certificateName(serverName: string | undefined): string | undefined {
  if (serverName === undefined || serverName.length > 253 || isIPv4(serverName)) return undefined;
  const n = serverName.toLowerCase();
  return /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(n) ? n : undefined;
}

/** How many leaf contexts are kept; past it the cache starts again (a sample asking for endless names only costs signatures). */
const LEAF_CACHE = 1024;

/** What the catcher answers TLS with: a context for the server name asked (if any) on a connection to `address`. */
export interface SinkholeTls {
  context(serverName: string | undefined, address: string): SecureContext;
}

/** The sandbox's certificate authority and the leaves it issues; made once per process (`sandboxCa()`). */
export class SandboxCa implements SinkholeTls {
  /** The authority's certificate, PEM: what trust.ts adds to a container's CA bundle. */
  readonly certPem: string;
  private readonly issuer: Issuer;
  /** One key for every leaf, as interception proxies do: a key pair per name would cost a keygen each. */
  private readonly leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  private readonly leafKeyPem: string;
  private readonly leaves = new Map<string, SecureContext>();

  constructor(private readonly now: () => Date = () => new Date()) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.issuer = { name: SANDBOX_CA_NAME, key: privateKey, keyId: keyId(publicKey) };
    const t = this.now();
    const der = certificate(SANDBOX_CA_NAME, publicKey, this.issuer, new Date(t.getTime() - 365 * DAY), new Date(t.getTime() + 5 * 365 * DAY), [
      extension('2.5.29.19', true, seq(TRUE)), // basicConstraints: cA
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x01, 0x86]))), // keyUsage: digitalSignature, keyCertSign, cRLSign
      extension('2.5.29.14', false, tlv(0x04, this.issuer.keyId)), // subjectKeyIdentifier
    ]);
    this.certPem = pem('CERTIFICATE', der);
    this.leafKeyPem = this.leafKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  }

  /**
   * A leaf for `serverName` (when it is a host name, see certificateName) and for `address` (when
   * it is IPv4), PEM, with the key every leaf shares. Valid from a day ago for 90 days, for TLS
   * servers only, its issuer named by key identifier.
   */
  leaf(serverName: string | undefined, address: string): { cert: string; key: string } {
    const host = certificateName(serverName);
    const alt: Buffer[] = [];
    if (host) alt.push(tlv(0x82, Buffer.from(host))); // dNSName
    if (isIPv4(address)) alt.push(tlv(0x87, Buffer.from(address.split('.').map(Number)))); // iPAddress
    const t = this.now();
    const der = certificate({ commonName: host ?? (isIPv4(address) ? address : 'localhost') }, this.leafKey.publicKey, this.issuer,
      new Date(t.getTime() - DAY), new Date(t.getTime() + 90 * DAY), [
        extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))), // keyUsage: digitalSignature
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
        extension('2.5.29.35', false, seq(tlv(0x80, this.issuer.keyId))), // authorityKeyIdentifier
        ...(alt.length ? [extension('2.5.29.17', false, seq(...alt))] : []), // subjectAltName
      ]);
    return { cert: pem('CERTIFICATE', der), key: this.leafKeyPem };
  }

  context(serverName: string | undefined, address: string): SecureContext {
    const key = `${certificateName(serverName) ?? ''} ${address}`;
    let ctx = this.leaves.get(key);
    if (!ctx) {
      if (this.leaves.size >= LEAF_CACHE) this.leaves.clear();
      ctx = createSecureContext(this.leaf(serverName, address));
      this.leaves.set(key, ctx);
    }
    return ctx;
  }
}

let authority: SandboxCa | undefined;
/** The process's certificate authority: made on first use, then kept (in memory only) for the process. */
export function sandboxCa(): SandboxCa {
  authority ??= new SandboxCa();
  return authority;
}
