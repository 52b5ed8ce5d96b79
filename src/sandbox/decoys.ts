// Decoy credentials planted in the base image: plausible, well-formed and fake. A sample that
// reads them is looking for secrets; the rule engine flags reads of DECOY_PATHS (image.ts).
import { generateKeyPairSync, createHash } from 'node:crypto';

export interface DecoyFile {
  /** Path inside the image. */
  path: string;
  content: string;
  mode: number;
  /** Owner inside the container (before the user-namespace shift). */
  uid: number;
}

/** The image's ordinary user. */
export const USER = { name: 'user', uid: 1000, home: '/home/user' } as const;

function sshPublicKey(n: Buffer, e: Buffer, comment: string): string {
  const mpint = (b: Buffer): Buffer => {
    let x = b;
    while (x.length > 1 && x[0] === 0) x = x.subarray(1);
    if ((x[0] ?? 0) & 0x80) x = Buffer.concat([Buffer.from([0]), x]);
    return x;
  };
  const field = (b: Buffer): Buffer => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
  const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(e)), field(mpint(n))]);
  return `ssh-rsa ${blob.toString('base64')} ${comment}\n`;
}

/** A fresh, well-formed RSA key pair (PEM private key + OpenSSH public key); nothing trusts it. */
export function fakeSshKey(comment: string): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const priv = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return { priv, pub: sshPublicKey(Buffer.from(jwk.n ?? '', 'base64url'), Buffer.from(jwk.e ?? '', 'base64url'), comment) };
}

// Deterministic fake tokens (documented-invalid shapes, derived from a fixed seed).
function token(seed: string, alphabet: string, len: number): string {
  let out = '';
  let h = createHash('sha256').update(seed).digest();
  while (out.length < len) {
    for (const b of h) { if (out.length < len) out += alphabet[b % alphabet.length]; }
    h = createHash('sha256').update(h).digest();
  }
  return out;
}
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Credential files for one home directory. */
export function homeDecoys(home: string, uid: number, login: string): DecoyFile[] {
  const key = fakeSshKey(`${login}@devbox`);
  const akid = 'AKIA' + token(home + 'akid', UPPER, 16);
  const secret = token(home + 'secret', B64, 40);
  const docker = Buffer.from(`${login}:${token(home + 'docker', B64, 20)}`).toString('base64');
  const hist = [
    'ls -la', 'cd ~/projects/billing-api', 'git pull', 'npm install', 'aws s3 ls s3://acme-prod-backups/',
    'ssh deploy@10.20.0.14', 'docker login registry.acme.internal', 'export AWS_PROFILE=prod',
    'kubectl get pods -n payments', 'vim ~/.aws/credentials', 'psql -h db.acme.internal -U billing', 'history | grep ssh',
  ].join('\n') + '\n';
  return [
    { path: `${home}/.ssh/id_rsa`, content: key.priv, mode: 0o600, uid },
    { path: `${home}/.ssh/id_rsa.pub`, content: key.pub, mode: 0o644, uid },
    { path: `${home}/.ssh/known_hosts`, content: `10.20.0.14 ${key.pub.split(' ').slice(0, 2).join(' ')}\n`, mode: 0o644, uid },
    { path: `${home}/.aws/credentials`, content: `[default]\naws_access_key_id = ${akid}\naws_secret_access_key = ${secret}\nregion = eu-west-1\n\n[prod]\naws_access_key_id = ${akid.slice(0, 12)}WXYZ\naws_secret_access_key = ${secret.slice(0, 36)}Q9zK\n`, mode: 0o600, uid },
    { path: `${home}/.docker/config.json`, content: JSON.stringify({ auths: { 'registry.acme.internal': { auth: docker } } }, null, 2) + '\n', mode: 0o600, uid },
    { path: `${home}/.config/gcloud/application_default_credentials.json`, content: JSON.stringify({
      client_id: `${token(home + 'gcid', '0123456789', 12)}-${token(home + 'gc', 'abcdefghijklmnopqrstuvwxyz0123456789', 32)}.apps.googleusercontent.com`,
      client_secret: token(home + 'gcs', B64.slice(0, 62), 24), refresh_token: '1//' + token(home + 'rt', B64.slice(0, 62), 60), type: 'authorized_user',
    }, null, 2) + '\n', mode: 0o600, uid },
    { path: `${home}/.netrc`, content: `machine git.acme.internal login ${login} password ${token(home + 'netrc', B64.slice(0, 62), 18)}\n`, mode: 0o600, uid },
    { path: `${home}/.bash_history`, content: hist, mode: 0o600, uid },
  ];
}

export function allDecoys(): DecoyFile[] {
  return [...homeDecoys(USER.home, USER.uid, USER.name), ...homeDecoys('/root', 0, 'root')];
}
