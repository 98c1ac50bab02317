/**
 * What `typebox/type` builds, as plain JSON Schema objects, for the CLI bundle (scripts/bundle-cli.mjs puts this
 * module where `typebox/type` is imported). steward's schemas are declared once with TypeBox, for their
 * TypeScript types (`Static<…>`, erased at build) and their JSON, which is all the running code reads: ajv
 * compiles it, `defaultsOf` reads its defaults, a precompiled validator is matched to its text. TypeBox itself
 * is ≈ 80 KB of bundle whose functions V8 compiles at their first call, at every start, to build that JSON
 * (≈ 8 ms of `steward plan` on Node 24, measured: issue 12). These builders write the same JSON — same keys, in
 * the same order — for the builders and options steward uses; test/core/typebox-json.test.ts compares every
 * steward schema built both ways. TypeBox's own hidden `~kind`/`~optional` marks are not JSON; only
 * `~optional` is kept (non-enumerable, as TypeBox keeps it), for `Object` to leave such a key out of `required`.
 */

type Schema = Record<string, unknown>;
type Options = Record<string, unknown>;

const OPTIONAL = '~optional';

function _Object(properties: Record<string, Schema>, options: Options = {}): Schema {
  const required = Object.keys(properties).filter((k) => properties[k]?.[OPTIONAL] !== true);
  return required.length > 0
    ? { type: 'object', required, properties, ...options }
    : { type: 'object', properties, ...options };
}
const _String = (options: Options = {}): Schema => ({ type: 'string', ...options });
const _Number = (options: Options = {}): Schema => ({ type: 'number', ...options });
const _Integer = (options: Options = {}): Schema => ({ type: 'integer', ...options });
const _Boolean = (options: Options = {}): Schema => ({ type: 'boolean', ...options });
const _Null = (options: Options = {}): Schema => ({ type: 'null', ...options });
const _Unknown = (options: Options = {}): Schema => ({ ...options });
const _Literal = (value: string | number | boolean, options: Options = {}): Schema => ({
  type: typeof value,
  const: value,
  ...options,
});
const _Union = (anyOf: Schema[], options: Options = {}): Schema => ({ anyOf, ...options });
const _Array = (items: Schema, options: Options = {}): Schema => ({ type: 'array', items, ...options });
const _Enum = (values: ReadonlyArray<string | number>, options: Options = {}): Schema => ({
  enum: [...values],
  ...options,
});
/** `Type.Record(Type.String(), value)`: any key. Other key schemas are not used by steward (and refused here). */
function _Record(key: Schema, value: Schema, options: Options = {}): Schema {
  if (key['type'] !== 'string' || Object.keys(key).length !== 1)
    throw new Error('typebox-json: Record takes Type.String() keys only');
  return { type: 'object', patternProperties: { '^.*$': value }, ...options };
}
function _Optional(schema: Schema): Schema {
  const copy = { ...schema };
  Object.defineProperty(copy, OPTIONAL, {
    value: true,
    writable: true,
    enumerable: false,
    configurable: true,
  });
  return copy;
}

export {
  _Array as Array,
  _Boolean as Boolean,
  _Enum as Enum,
  _Integer as Integer,
  _Literal as Literal,
  _Null as Null,
  _Number as Number,
  _Object as Object,
  _Optional as Optional,
  _Record as Record,
  _String as String,
  _Union as Union,
  _Unknown as Unknown,
};
