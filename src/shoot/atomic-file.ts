import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/**
 * Streams a body into `file` through a hidden temp file in the same directory and renames it into place,
 * so `file` is either absent or complete, never half-written. Resolves with the byte count.
 */
export async function writeFileAtomically(file: string, body: WebReadableStream<Uint8Array>, signal?: AbortSignal): Promise<number> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(body), count, fs.createWriteStream(temp), { signal });
    await fsp.rename(temp, file);
    return bytes;
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}
