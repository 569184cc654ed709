import { imageSize } from 'image-size';
import { PNG } from 'pngjs';

export type Rgba = [r: number, g: number, b: number, a: number];

export interface DecodedPng {
  width: number;
  height: number;
  /** The pixel at (x, y) in image pixels. */
  at(x: number, y: number): Rgba;
}

export function decodePng(bytes: Buffer): DecodedPng {
  if (!isPng(bytes)) throw new Error(`not a PNG: starts with ${bytes.subarray(0, 8).toString('hex')} (${bytes.length} bytes)`);
  const png = PNG.sync.read(bytes);
  return {
    width: png.width,
    height: png.height,
    at(x, y) {
      if (x < 0 || y < 0 || x >= png.width || y >= png.height) throw new Error(`(${x}, ${y}) is outside the ${png.width}×${png.height} image`);
      const i = (png.width * y + x) * 4;
      return [png.data[i], png.data[i + 1], png.data[i + 2], png.data[i + 3]];
    },
  };
}

/** A valid 2×2 PNG, for stand-ins that answer with an image. */
export const tinyPng = PNG.sync.write(new PNG({ width: 2, height: 2 }));

export const isPng = (b: Buffer) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
export const isJpeg = (b: Buffer) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
export const isWebp = (b: Buffer) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP';

/** Width and height from the image's header, for any of png, jpeg and webp. */
export function dimensions(bytes: Buffer): { width: number; height: number; type: string } {
  const size = imageSize(bytes);
  return { width: size.width, height: size.height, type: size.type ?? 'unknown' };
}

/** True when every channel of `actual` is within `tolerance` of `expected` (alpha only when given). */
export function near(actual: Rgba, expected: [number, number, number] | Rgba, tolerance = 8): boolean {
  return expected.every((v, i) => Math.abs(actual[i] - v) <= tolerance);
}

/** A CSS rgb() string for a colour, so pages and assertions name the same value. */
export const css = ([r, g, b]: readonly number[]) => `rgb(${r},${g},${b})`;

/** Throws, naming the place and both colours, unless the pixel at (x, y) is near `expected`. */
export function assertColor(image: DecodedPng, x: number, y: number, expected: [number, number, number] | Rgba, tolerance = 8): void {
  const actual = image.at(x, y);
  if (!near(actual, expected, tolerance)) {
    throw new Error(`pixel (${x}, ${y}) is rgba(${actual.join(',')}), expected about ${expected.length === 4 ? 'rgba' : 'rgb'}(${expected.join(',')})`);
  }
}
