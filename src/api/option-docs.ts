import type { JsonSchema } from './request-schema.js';

/** One documented option, as the README table and the /docs page show it. */
export interface OptionDoc {
  name: string;
  /** Its type in a few words, limits included: `png` | `jpeg`, integer 1–100, bool… */
  type: string;
  /** The default as JSON, or undefined when the option is simply absent by default. */
  defaultValue?: string;
  description: string;
  example?: string;
}

type Schema = JsonSchema & {
  type?: string;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
  description?: string;
  examples?: unknown[];
};

const code = (value: unknown) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;

function range(s: Schema): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return ` ${s.minimum}–${s.maximum}`;
  if (s.maximum !== undefined) return ` ≤ ${s.maximum}`;
  if (s.minimum !== undefined) return ` ≥ ${s.minimum}`;
  return '';
}

/** A short type description of a JSON Schema, e.g. `png` | `jpeg`, integer 1–100, {width, height?}. */
export function typeText(s: Schema): string {
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return variants.map(typeText).join(' or ');
  if (s.enum) return s.enum.length <= 6 ? s.enum.map(code).join(' | ') : `one of ${s.enum.length} names (${s.enum.slice(0, 3).join(', ')}…)`;
  if (s.const !== undefined) return code(s.const);
  switch (s.type) {
    case 'boolean':
      return 'bool';
    case 'integer':
      return `integer${range(s)}`;
    case 'number':
      return `number${range(s)}`;
    case 'string':
      return 'string';
    case 'array':
      if (s.items?.enum && s.items.enum.length > 6) return `string[] of ${s.items.enum.length} names (${s.items.enum.slice(0, 3).join(', ')}…)`;
      return s.items ? `${typeText(s.items)}[]` : 'array';
    case 'object': {
      if (s.properties) {
        const required = new Set(s.required ?? []);
        return `{${Object.keys(s.properties)
          .map((k) => (required.has(k) || s.properties![k].default !== undefined ? k : `${k}?`))
          .join(', ')}}`;
      }
      if (typeof s.additionalProperties === 'object') return `object of ${typeText(s.additionalProperties)}s`;
      return 'object';
    }
    default:
      return 'any';
  }
}

/** The default an option takes when absent: its own, or for an object the defaults of its fields. */
function defaultText(s: Schema): string | undefined {
  if (s.default !== undefined) return JSON.stringify(s.default);
  if (s.type === 'object' && s.properties) {
    const inner = Object.entries(s.properties).filter(([, p]) => p.default !== undefined);
    if (inner.length > 0) return `{${inner.map(([k, p]) => `"${k}":${JSON.stringify(p.default)}`).join(',')}}`;
  }
  return undefined;
}

/** Every option of the request body schema, in its order, documented from the schema alone. */
export function optionDocs(body: { properties: Record<string, JsonSchema> }): OptionDoc[] {
  return Object.entries(body.properties as Record<string, Schema>).map(([name, s]) => ({
    name,
    type: typeText(s),
    defaultValue: defaultText(s),
    description: s.description ?? '',
    example: s.examples?.length ? JSON.stringify(s.examples[0]) : undefined,
  }));
}

/** The README's options table (Markdown), generated from the schema. */
export function optionsMarkdownTable(body: { properties: Record<string, JsonSchema> }): string {
  const cell = (text: string) => text.replace(/\n/g, ' ').replace(/(?<!\\)\|/g, '\\|');
  const rows = optionDocs(body).map(
    (o) =>
      `| \`${o.name}\` | ${cell(o.type)}${o.defaultValue !== undefined ? `, default ${cell(code(JSON.parse(o.defaultValue)))}` : ''} | ${cell(o.description)}${o.example ? ` e.g. ${cell(code(JSON.parse(o.example)))}` : ''} |`,
  );
  return ['| field | type / default | meaning |', '|---|---|---|', ...rows].join('\n');
}
