// The TLS side of the connection catcher (sessions.ts): a self-signed certificate the catcher
// presents to a sample's TLS ClientHello, as INetSim and FakeNet-NG do. A sample that checks
// certificates refuses it and is logged with its server name only; one that does not (malware
// often does not) completes the handshake, and what it sends next, an HTTPS request above all,
// is read in the clear.
//
// The certificate is made here, once per process, with Node's own crypto: an ECDSA P-256 key and
// a minimal X.509 v3 certificate (RFC 5280) signed by it, so that no key material is kept on disk
// and no tool is run for it.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

/** The name the certificate carries (subject and issuer). */
export const SINKHOLE_CERT_NAME = 'localhost';

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
const name = (cn: string) => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));

/** A self-signed certificate for `cn`, valid from a day ago for a year, and its key; both PEM. */
export function selfSignedCertificate(cn = SINKHOLE_CERT_NAME, now = new Date()): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) || 1; // positive, and no leading zero byte
  const tbs = seq(
    tlv(0xa0, uint(Buffer.from([2]))), // v3
    uint(serial),
    ecdsaWithSha256,
    name(cn),
    seq(utcTime(new Date(now.getTime() - 86_400_000)), utcTime(new Date(now.getTime() + 365 * 86_400_000))),
    name(cn),
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
  const pem = (label: string, b: Buffer) => `-----BEGIN ${label}-----\n${b.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: pem('CERTIFICATE', der) };
}

let context: SecureContext | undefined;
/** The catcher's TLS server context: made on first use, then kept for the process. */
export function sinkholeTlsContext(): SecureContext {
  context ??= createSecureContext(selfSignedCertificate());
  return context;
}
