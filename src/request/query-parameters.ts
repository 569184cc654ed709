import type { z } from 'zod';
import { ShotError } from '../errors/shot-error.js';

/** How a query-string value becomes an option value. */
/** `booleanOrNumbers`: an option that is true/false or a list of numbers (failOnHttpStatus: `true` or `404,500`). */
export type ScalarKind = 'string' | 'number' | 'boolean' | 'booleanOrNumbers';

export interface QueryParameter {
  /** The flat query parameter name. */
  name: string;
  /** Where it goes in the request body: ['format'], or ['viewport', 'width']. */
  path: readonly string[];
  kind: ScalarKind;
}

/** The one object option whose scalar fields are flat GET parameters (width, height…), as in `<img src>` links. */
const flattenedObject = 'viewport';
/** Read by auth before the route runs: the token, and a signed link's expiry, signature and key id (src/http/auth.ts). */
const authParameters = new Set(['token', 'expires', 'signature', 'kid']);
/** A GET link must be safe to follow (an `<img src>`, a prefetch): writing to S3 takes a POST. */
const postOnly = new Set(['store', 'key']);

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; options?: z.ZodType[]; element?: z.ZodType };
const defOf = (t: z.ZodType) => (t as unknown as { def: Def }).def;

/** The value type under optional/default wrappers, or undefined when it is not a scalar. */
function scalarKind(t: z.ZodType): ScalarKind | undefined {
  let def = defOf(t);
  while (def.innerType && ['optional', 'default', 'prefault', 'nullable', 'readonly'].includes(def.type)) def = defOf(def.innerType);
  if (def.type === 'string' || def.type === 'enum') return 'string';
  if (def.type === 'number' || def.type === 'int') return 'number';
  if (def.type === 'boolean') return 'boolean';
  if (def.type === 'union' && def.options) {
    const kinds = def.options.map((o) =>
      defOf(o).type === 'array' && defOf(o).element && scalarKind(defOf(o).element!) === 'number' ? 'numbers' : scalarKind(o),
    );
    if (kinds.length === 2 && kinds.includes('boolean') && kinds.includes('numbers' as ScalarKind)) return 'booleanOrNumbers';
  }
  return undefined;
}

function objectShape(t: z.ZodType): Record<string, z.ZodType> | undefined {
  let def = defOf(t);
  while (def.innerType && ['optional', 'default', 'prefault', 'nullable', 'readonly'].includes(def.type)) def = defOf(def.innerType);
  return def.type === 'object' ? ((t as unknown as { shape?: Record<string, z.ZodType> }).shape ?? def.shape) : undefined;
}

/**
 * The GET /screenshot parameters, read from the request schema: every scalar option (string, enum, number,
 * boolean) but the ones that write, and the viewport's fields by their own names. A new option needs no edit here.
 */
export function queryParameters(schema: { shape: Record<string, z.ZodType> }): QueryParameter[] {
  const params: QueryParameter[] = [];
  for (const [name, field] of Object.entries(schema.shape)) {
    if (postOnly.has(name)) continue;
    const kind = scalarKind(field);
    if (kind) params.push({ name, path: [name], kind });
    else if (name === flattenedObject) {
      for (const [inner, innerField] of Object.entries(objectShape(field) ?? {})) {
        const innerKind = scalarKind(innerField);
        if (innerKind) params.push({ name: inner, path: [name, inner], kind: innerKind });
      }
    }
  }
  return params;
}

/** GET /screenshot: flat query parameters turned into a body for the same schema (which then validates it). */
export function queryToBody(params: readonly QueryParameter[], query: Record<string, string>): Record<string, unknown> {
  const byName = new Map(params.map((p) => [p.name, p]));
  const body: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(query)) {
    if (authParameters.has(name)) continue;
    const param = byName.get(name);
    if (!param) {
      throw new ShotError('invalid_request', `unknown query parameter "${name}"; GET takes ${[...byName.keys()].join(', ')} (POST takes every option)`, {
        fields: [{ field: name, message: 'unknown parameter' }],
      });
    }
    const value =
      param.kind === 'number'
        ? toNumber(name, raw)
        : param.kind === 'boolean'
          ? toBool(name, raw)
          : param.kind === 'booleanOrNumbers'
            ? /^\d/.test(raw)
              ? raw.split(',').map((part) => toNumber(name, part))
              : toBool(name, raw)
            : raw;
    let target = body;
    for (const step of param.path.slice(0, -1)) {
      target[step] ??= {};
      target = target[step] as Record<string, unknown>;
    }
    target[param.path[param.path.length - 1]] = value;
  }
  return body;
}

function toNumber(name: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) {
    throw new ShotError('invalid_request', `${name} must be a number`, { fields: [{ field: name, message: 'must be a number' }] });
  }
  return n;
}

function toBool(name: string, raw: string): boolean {
  if (raw === 'true' || raw === '1' || raw === '') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ShotError('invalid_request', `${name} must be true or false`, { fields: [{ field: name, message: 'must be true or false' }] });
}
