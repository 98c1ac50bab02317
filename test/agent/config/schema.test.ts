/**
 * docs/config.md is the reference for steward.yaml; the schema is the truth.
 * Every key of the schema is documented with its type and default, and every
 * key documented exists in the schema.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../../../agent/config/schema.js';

type Schema = Record<string, unknown> & {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
};

const doc = readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'config.md'),
  'utf8',
);

/** `section → key → { type, default }` as the tables of docs/config.md say. */
function documented(): Map<string, { type: string; dflt: string }> {
  const out = new Map<string, { type: string; dflt: string }>();
  let section = '';
  for (const line of doc.split('\n')) {
    const heading = /^## `([^`]+)`/.exec(line);
    if (heading) section = heading[1]!;
    else if (line.startsWith('## ')) section = '';
    const row = /^\| `([^`]+)` \| (.*?) \| (.*?) \| .* \|$/.exec(line);
    if (row && section !== '') out.set(`${section}.${row[1]}`, { type: row[2]!, dflt: row[3]! });
  }
  return out;
}

/** The type column for a schema, e.g. `integer ≥ 0`, `duration ≥ \`100ms\``, `` `observe` \| `enforce` ``. */
function typeText(s: Schema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  const formats: Record<string, string> = {
    duration: 'duration ≥ `1ms`',
    interval: 'duration ≥ `100ms`',
    path: 'path',
    'http-url': 'URL',
  };
  if (s.type === 'string') return (s.format && formats[s.format]) ?? 'string';
  if (s.type === 'object') return 'mapping';
  if (s.type === 'boolean') return 'boolean';
  if (s.type === 'array') return 'list';
  const name = s.type === 'integer' ? 'integer' : 'number';
  const low = s['exclusiveMinimum'] ?? s['minimum'];
  const high = s['maximum'] === Number.MAX_SAFE_INTEGER ? undefined : s['maximum'];
  if (high === undefined) return `${name} ${s['exclusiveMinimum'] !== undefined ? '>' : '≥'} ${low}`;
  return `${name} in ${s['exclusiveMinimum'] !== undefined ? '(' : '['}${low}, ${high}]`;
}

/** The default column: the schema's default as written, `**required…**`, or free text when there is none. */
function defaultText(key: string, s: Schema, required: boolean): string | RegExp {
  if (s.default === undefined) return required ? /^\*\*required/ : /^(?!\*\*required)/;
  if (Array.isArray(s.default) && s.items?.enum && s.default.length === s.items.enum.length)
    return `every ${key.split('.').pop()!.replace(/s$/, '')}`;
  const d = typeof s.default === 'object' ? JSON.stringify(s.default) : String(s.default);
  return `\`${d}\``;
}

/**
 * Every key a writer can set: `section.key`, with nested keys dotted. A group
 * that has a default (`massDrift`) is documented through its keys; an optional
 * mapping (`auth`) also as itself.
 */
function schemaKeys(): Map<string, { type: string; dflt: string | RegExp }> {
  const out = new Map<string, { type: string; dflt: string | RegExp }>();
  const walk = (parent: Schema, prefix: string): void => {
    for (const [k, s] of Object.entries(parent.properties ?? {})) {
      const key = `${prefix}.${k}`;
      const group = s.type === 'object' && s.properties !== undefined && s.default !== undefined;
      if (!group) {
        const required = (parent.required ?? []).includes(k);
        out.set(key, { type: typeText(s), dflt: defaultText(key, s, required) });
      }
      if (s.properties) walk(s, key);
    }
  };
  for (const [section, s] of Object.entries(ConfigSchema.properties as unknown as Record<string, Schema>)) {
    walk(s.type === 'array' ? s.items! : s, section);
  }
  return out;
}

describe('docs/config.md matches the schema', () => {
  const docs = documented();
  const keys = schemaKeys();

  it('documents every key of the schema, with its type and default', () => {
    const problems: string[] = [];
    for (const [key, want] of keys) {
      const got = docs.get(key);
      if (!got) {
        problems.push(`${key}: not documented`);
        continue;
      }
      if (!got.type.startsWith(want.type))
        problems.push(`${key}: type "${got.type}", schema says "${want.type}"`);
      const dfltOk =
        typeof want.dflt === 'string' ? got.dflt.startsWith(want.dflt) : want.dflt.test(got.dflt);
      if (!dfltOk) problems.push(`${key}: default "${got.dflt}", schema says ${String(want.dflt)}`);
    }
    assert.deepEqual(problems, []);
  });

  it('documents no key that the schema does not have', () => {
    assert.deepEqual(
      [...docs.keys()].filter((k) => !keys.has(k)),
      [],
    );
  });

  it('reads a table for every section', () => {
    assert.ok(docs.size >= 30, `only ${docs.size} keys found: has the table format changed?`);
  });
});
