import type { UploadFigures } from '../admission/saturation.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

/** What the upload pool reports: the figures admission's saturation ratio reads (the interface is admission's). */
export type StorageStats = UploadFigures;

export interface StoredObject {
  bucket: string;
  key: string;
  url: string;
  etag: string;
  bytes: number;
  uploadMs: number;
}

export interface UploadRequest {
  image: Buffer;
  format: ImageFormat;
  /** The client's key (validated, stored under S3_PREFIX); a time-sortable unique key when absent. */
  key?: string;
  metadata: { sourceUrl?: string; width: number; height: number; format: string; nodeId: string };
}

export interface UploadReservation {
  /** Upload the captured image; the reservation's backlog bytes become the real size. Rejects with ShotError upload_failed (502). */
  upload(req: UploadRequest, signal?: AbortSignal): Promise<StoredObject>;
  /** The render failed or the client left before upload: give the reserved room back. Idempotent. */
  release(): void;
}

export interface Storage {
  bucket: string;
  /** Throws ShotError invalid_request (400) with details.field 'key' for a bad key (.., leading /, > 512 bytes, unsafe chars). */
  validateKey(key: string): void;
  /** Called BEFORE rendering: reserve backlog room for one image; throws shed('upload_backlog') when the upload queue or backlog bytes are full. */
  reserve(format: ImageFormat, pixels: number): UploadReservation;
  /** At start: bucket reachable and writable? Rejects with a message that says what is wrong and what to do. */
  check(): Promise<void>;
  stats(): StorageStats;
  /** Shutdown: resolves when queued and in-flight uploads are done, or after graceMs. */
  drain(graceMs: number): Promise<void>;
}
