import { randomBytes } from 'node:crypto';
import { ShotError } from '../errors/shot-error.js';
import type { ImageFormat } from './types.js';

const maxKeyBytes = 512;
/** S3's "safe characters" plus `/` as the folder separator. */
const safeKey = /^[A-Za-z0-9!_.*'()\-/]+$/;

export const contentTypes: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };
const extensions: Record<ImageFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

/** Throws invalid_request (400, details.field 'key') unless `key` is a safe, relative S3 key. */
export function validateKey(key: string): void {
  const problem = keyProblem(key);
  if (problem) {
    throw new ShotError('invalid_request', `key ${problem}`, { field: 'key' });
  }
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'must be a non-empty string';
  if (Buffer.byteLength(key) > maxKeyBytes) return `must be at most ${maxKeyBytes} bytes`;
  if (key.startsWith('/')) return 'must not start with "/"; it is relative to the node\'s S3 prefix';
  if (key.includes('..')) return 'must not contain ".."';
  if (!safeKey.test(key)) return "may only use letters, digits, / ! _ . * ' ( ) and -";
  if (key.endsWith('/') || key.includes('//')) return 'must not have empty path segments';
  return undefined;
}

/**
 * Where an image is stored. Client keys go under the prefix too: the prefix is the operator's fence
 * (an IAM policy can grant exactly prefix/*), and a client must not be able to write outside it.
 */
export function objectKey(prefix: string, format: ImageFormat, clientKey?: string, now = new Date()): string {
  const path = clientKey ?? `${datePath(now)}/${timeSortableId(now.getTime())}.${extensions[format]}`;
  return prefix ? `${prefix}/${path}` : path;
}

function datePath(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}/${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}`;
}

const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48-bit millisecond time then 80 random bits, Crockford base32, so keys sort by time and never collide. */
export function timeSortableId(ms: number): string {
  let time = '';
  for (let i = 0, t = ms; i < 10; i++, t = Math.floor(t / 32)) time = crockford[t % 32] + time;
  const random = randomBytes(10);
  let rest = '';
  let bits = 0;
  let value = 0;
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rest += crockford[(value >> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return time + rest;
}
