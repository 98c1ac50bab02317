/**
 * The schema tooling (core/schema.ts) as the config, the state file and the
 * admin bodies use it: strict ajv, defaults filled, ajv's errors explained.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Type } from 'typebox';
import { DEFAULTS, parseConfig } from '../../agent/config.js';
import { CONFIG_FORMATS, ConfigSchema } from '../../agent/config/schema.js';
import { StewardError } from '../../core/errors.js';
import { compileSchema } from '../../core/schema.js';

describe('core/schema.ts', () => {
  it('is strict: a keyword ajv does not know is an error when compiling, not ignored', () => {
    assert.throws(() => compileSchema(Type.Object({ a: Type.String({ minLenght: 1 }) })), /strict mode/);
  });

  it('fills defaults, explains every error once, and names the whole value as asked', () => {
    const check = compileSchema(
      Type.Object(
        { n: Type.Integer({ minimum: 1, default: 3 }), s: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
      {},
      { root: 'the body' },
    );
    const ok = check({});
    assert.deepEqual(ok, { ok: true, value: { n: 3 } });
    assert.deepEqual(check({ n: 0, s: 5, colour: 1 }), {
      ok: false,
      issues: [
        { path: ['colour'], message: 'unknown key "colour"' },
        { path: ['n'], message: 'n: must be at least 1, got 0' },
        { path: ['s'], message: 's: expected a string, got number 5 (quote it if you meant text)' },
      ],
    });
    assert.deepEqual(check([]), {
      ok: false,
      issues: [{ path: [], message: 'the body: expected a mapping, got a list' }],
    });
  });

  it('reads DEFAULTS off the schema exactly as validation fills them', () => {
    const filled: Record<string, unknown> = { source: { url: 'https://g.example.org/r.git' } };
    assert.equal(compileSchema(ConfigSchema, CONFIG_FORMATS)(filled).ok, true);
    const { url: _url, ...source } = filled['source'] as Record<string, unknown>;
    assert.deepEqual(DEFAULTS, { ...filled, source });
  });

  it('says a value has the wrong type before anything else about it', () => {
    try {
      parseConfig('source: { url: https://g.example.org/r.git, auth: 5 }\n', '/tmp/steward.yaml', {
        env: {},
      });
      assert.fail('expected CONFIG_INVALID');
    } catch (e) {
      assert.ok(e instanceof StewardError);
      assert.equal(e.message, '/tmp/steward.yaml:1:45: source.auth: expected a mapping, got number 5');
    }
  });
});

describe('checks beyond the schema', () => {
  it('run on a valid slice while a sibling slice is invalid, and report both', () => {
    const text =
      'source: { url: https://g.example.org/r.git }\n' +
      'providers: { file: { root: / }, aws-ec2: { region: eu-west-1, endpoint: 5 } }\n';
    try {
      parseConfig(text, '/tmp/steward.yaml', { env: {} });
      assert.fail('expected CONFIG_INVALID');
    } catch (e) {
      assert.ok(e instanceof StewardError, String(e));
      assert.deepEqual(
        (e.details['problems'] as Array<{ message: string }>).map((p) => p.message),
        [
          'providers.file.root: must not be the filesystem root; name the folder that holds the managed files',
          'providers.aws-ec2.endpoint: expected a string, got number 5 (quote it if you meant text)',
        ],
      );
    }
  });
});
