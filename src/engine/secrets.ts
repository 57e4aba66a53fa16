import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { TesseraError, invalidArgument, notFound, quote } from '../domain/errors.js';
import type { StoredSecret } from '../store/secrets.js';
import { deleteSecret, findSecret, listSecrets, upsertSecret } from '../store/secrets.js';
import type { Queryable } from '../store/db.js';

// Account secrets (/v1/auth/secrets): credentials for the customer's own buckets, used by the
// aws/gcp/storj sources and destinations. The secret key is sealed with AES-256-GCM before it
// reaches the database, bound to its account, type and id (a sealed value copied onto another
// row does not open), and it is never returned: the API shows only that it is set.

export const SECRET_TYPES = ['aws', 'gcp', 'storj', 'other'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const SEAL_VERSION = 'v1';

export interface SecretInput {
  secret?: { id?: unknown; name?: unknown; secretType?: unknown; accessKey?: unknown; expiresAt?: unknown; params?: unknown };
  secretKey?: unknown;
}

/** A secret as the API shows it: everything but the secret key. */
export interface SecretView {
  id: string;
  name: string;
  secretType: SecretType;
  accessKey: string;
  expiresAt: string | null;
  params: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  hasSecretKey: true;
}

/** `s3` is the older name of `aws`. */
export function secretTypeOf(raw: unknown, field: string): SecretType {
  const value = raw === 's3' ? 'aws' : raw;
  if (!SECRET_TYPES.includes(value as SecretType)) {
    throw invalidArgument(field, `secret type ${quote(raw)} is not one of ${SECRET_TYPES.join(', ')}`, 'aws (formerly s3), gcp and storj hold bucket credentials; other holds a value for apps');
  }
  return value as SecretType;
}

function secretIdOf(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || !ID_PATTERN.test(raw)) throw invalidArgument(field, `secret id ${quote(raw)} must be 1 to 128 letters, digits, ".", "_" or "-"`, 'for example "my-aws-keys"');
  return raw;
}

/** The 32-byte sealing key: TESSERA_SECRETS_KEY when the operator sets one, else the deployment's stored key. */
export function sealingKeyFrom(raw: string): Buffer {
  return createHash('sha256').update(raw).digest();
}

export function createSecrets(db: Queryable, sealingKey: Buffer) {
  const binding = (accountId: string, type: string, id: string) => Buffer.from(`${accountId}\n${type}\n${id}`);

  function seal(plain: string, accountId: string, type: string, id: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', sealingKey, iv);
    cipher.setAAD(binding(accountId, type, id));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [SEAL_VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  function open(secret: StoredSecret): string {
    const [version, iv, tag, body] = secret.sealedKey.split('.');
    try {
      if (version !== SEAL_VERSION || !iv || !tag || body === undefined) throw new Error('unknown format');
      const decipher = createDecipheriv('aes-256-gcm', sealingKey, Buffer.from(iv, 'base64url'));
      decipher.setAAD(binding(secret.accountId, secret.secretType, secret.id));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Never say more: the sealed value, the key and the cause stay out of messages and logs.
      throw new TesseraError('FAILED_PRECONDITION', `secret ${quote(secret.id)} cannot be opened with this server's secrets key`, {
        hint: 'the server runs with a different TESSERA_SECRETS_KEY than when the secret was saved; restore that key or save the secret again',
      });
    }
  }

  const view = (secret: StoredSecret): SecretView => ({
    id: secret.id,
    name: secret.name,
    secretType: secret.secretType as SecretType,
    accessKey: secret.accessKey,
    expiresAt: secret.expiresAt?.toISOString() ?? null,
    params: secret.params,
    createdAt: secret.createdAt.toISOString(),
    updatedAt: secret.updatedAt.toISOString(),
    hasSecretKey: true,
  });

  return {
    /** Creates or replaces a secret (same type and id). */
    async save(accountId: string, input: SecretInput): Promise<SecretView> {
      const secret = input.secret;
      if (!secret || typeof secret !== 'object') throw invalidArgument('secret', 'the body needs a "secret" object', 'for example {"secret":{"id":"my-keys","secretType":"aws","accessKey":"AKIA…"},"secretKey":"…"}');
      const secretType = secretTypeOf(secret.secretType, 'secret.secretType');
      const id = secretIdOf(secret.id, 'secret.id');
      const secretKey = input.secretKey;
      if (typeof secretKey !== 'string' || secretKey.length === 0 || secretKey.length > 8192) throw invalidArgument('secretKey', 'secretKey must be a non-empty string of at most 8192 characters', 'it is stored sealed and never shown again');
      const accessKey = secret.accessKey ?? '';
      if (typeof accessKey !== 'string' || accessKey.length > 1024) throw invalidArgument('secret.accessKey', `secret.accessKey ${quote(accessKey)} must be a string of at most 1024 characters`);
      if (secretType !== 'other' && accessKey.length === 0) throw invalidArgument('secret.accessKey', `${secretType === 'aws' ? 'an' : 'a'} ${secretType} secret needs its accessKey (the access key id)`, 'the secretKey is the secret access key');
      const name = secret.name ?? '';
      if (typeof name !== 'string' || name.length > 256) throw invalidArgument('secret.name', `secret.name ${quote(name)} must be a string of at most 256 characters`);
      const params = secret.params ?? {};
      if (typeof params !== 'object' || params === null || Array.isArray(params) || JSON.stringify(params).length > 16_384) throw invalidArgument('secret.params', 'secret.params must be an object of at most 16 KiB');
      let expiresAt: Date | null = null;
      if (secret.expiresAt !== undefined && secret.expiresAt !== null && secret.expiresAt !== '') {
        expiresAt = new Date(String(secret.expiresAt));
        if (typeof secret.expiresAt !== 'string' || Number.isNaN(expiresAt.getTime())) throw invalidArgument('secret.expiresAt', `secret.expiresAt ${quote(secret.expiresAt)} is not a date-time`, 'for example "2027-01-01T00:00:00Z"');
      }
      const stored = await upsertSecret(db, { accountId, secretType, id, name, accessKey, sealedKey: seal(secretKey, accountId, secretType, id), params: params as Record<string, unknown>, expiresAt });
      return view(stored);
    },

    async list(accountId: string): Promise<SecretView[]> {
      return (await listSecrets(db, accountId)).map(view);
    },

    async remove(accountId: string, rawType: string, rawId: string): Promise<void> {
      const secretType = secretTypeOf(rawType, 'secretType');
      if (!(await deleteSecret(db, accountId, secretType, secretIdOf(rawId, 'id')))) throw notFound(`${secretType} secret`, rawId, 'GET /v1/auth/secrets lists the secrets of this account');
    },

    /** The credentials of a bucket secret, for a source or destination of this account. */
    async credentials(accountId: string, secretType: SecretType, id: unknown, field: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
      const secretId = secretIdOf(id, field);
      const secret = await findSecret(db, accountId, secretType, secretId);
      if (!secret) throw new TesseraError('FAILED_PRECONDITION', `${field}: this account has no ${secretType} secret ${quote(secretId)}`, { hint: `save it first: POST /v1/auth/secrets {"secret":{"id":"${secretId}","secretType":"${secretType}","accessKey":"…"},"secretKey":"…"}` });
      if (secret.expiresAt && secret.expiresAt.getTime() < Date.now()) throw new TesseraError('FAILED_PRECONDITION', `${field}: secret ${quote(secretId)} expired at ${secret.expiresAt.toISOString()}`, { hint: 'save it again with fresh credentials' });
      return { accessKeyId: secret.accessKey, secretAccessKey: open(secret) };
    },
  };
}

export type Secrets = ReturnType<typeof createSecrets>;
