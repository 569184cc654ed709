import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * The manifest: one JSON line per input line as it finishes. It is append-only, so a line may appear
 * more than once across runs; the last record for a line wins. An `ok` record is written only after its
 * image is in place, so "ok in the manifest" always means "done".
 */
export interface ManifestRecord {
  line: number;
  /**
   * As the README has it: the input line's page URL (null for an `html` line), except on a stored
   * image, where it is the link the node returned (`key` + `url`) and the page URL moves to `source`.
   */
  url: string | null;
  /** The input line's page URL; always set, so a resumed run can match stored records too. */
  source: string | null;
  status: 'ok' | 'failed';
  /** The image, relative to the manifest's directory. */
  file?: string;
  /** With `store`: where the node put the image. */
  bucket?: string;
  key?: string;
  bytes?: number;
  format?: string;
  /** The node that answered (X-Shotfleet-Node). */
  node?: string;
  /** The node cut a fullPage capture at its height cap. */
  truncated?: true;
  attempts?: number;
  timings?: Timings;
  error?: ItemError;
}

export interface Timings {
  queueMs?: number;
  renderMs?: number;
  uploadMs?: number;
  /** Client side: the successful attempt, from request to the last byte. */
  totalMs?: number;
}

export interface ItemError {
  /** HTTP status when the node answered. */
  status?: number;
  code: string;
  message: string;
}

/** The last record per line, ignoring lines that are not records (e.g. one cut short by a crash). */
export async function readManifest(file: string): Promise<Map<number, ManifestRecord>> {
  const records = new Map<number, ManifestRecord>();
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return records;
    throw err;
  }
  for (const raw of text.split('\n')) {
    const record = parseRecord(raw);
    if (record) records.set(record.line, record);
  }
  return records;
}

function parseRecord(raw: string): ManifestRecord | undefined {
  if (!raw.trim()) return undefined;
  try {
    const value = JSON.parse(raw);
    if (Number.isInteger(value?.line) && (value.status === 'ok' || value.status === 'failed')) return value;
  } catch {
    // a line torn by an interrupted write: the item is simply done again
  }
  return undefined;
}

/**
 * Whether a previous run already finished this input line: same line, same URL, and its image (if it
 * wrote one) still on disk.
 */
export async function alreadyDone(record: ManifestRecord | undefined, url: string | null, manifestFile: string): Promise<boolean> {
  if (record?.status !== 'ok' || (record.source === undefined ? record.url : record.source) !== url) return false;
  if (record.file === undefined) return true;
  try {
    await fsp.access(path.resolve(path.dirname(manifestFile), record.file));
    return true;
  } catch {
    return false;
  }
}

export interface ManifestWriter {
  /** Queues a record; resolves once it is written. */
  append(record: ManifestRecord): Promise<void>;
  /** Waits for every queued record, then closes the file. */
  close(): Promise<void>;
}

export async function openManifest(file: string): Promise<ManifestWriter> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const startsMidLine = await endsWithoutNewline(file);
  const stream = fs.createWriteStream(file, { flags: 'a' });
  await once(stream, 'open');
  let pending: Promise<void> = startsMidLine ? write(stream, '\n') : Promise.resolve();
  return {
    append(record) {
      pending = pending.then(() => write(stream, `${JSON.stringify(record)}\n`));
      return pending;
    },
    async close() {
      await pending;
      await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    },
  };
}

function write(stream: fs.WriteStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())));
}

async function endsWithoutNewline(file: string): Promise<boolean> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(file, 'r');
    const { size } = await handle.stat();
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  } finally {
    await handle?.close();
  }
}

/** The path a manifest records for an image: relative to the manifest, so the two can move together. */
export function manifestPath(manifestFile: string, imageFile: string): string {
  return path
    .relative(path.dirname(path.resolve(manifestFile)), path.resolve(imageFile))
    .split(path.sep)
    .join('/');
}
