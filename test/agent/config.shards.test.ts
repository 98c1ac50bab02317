/** fleet.shards and state.postgres in steward.yaml: defaults, the password from a file, what is refused. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../agent/config.js';
import { StewardError } from '../../core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'steward-cfg-shards-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'steward.yaml');
const SRC = 'source: { url: https://git.example.org/infra/desired.git }\n';

const problems = (text: string): string[] => {
  try {
    parseConfig(text, file);
  } catch (e) {
    assert.ok(e instanceof StewardError && e.code === 'CONFIG_INVALID', String(e));
    return (e.details['problems'] as Array<{ message: string }>).map((p) => p.message);
  }
  return [];
};

test('fleet.shards: defaults (64 shards, 15 s TTL) and the connection, password read from its file', () => {
  writeFileSync(join(dir, 'pg-password'), 's3cret\n');
  const c = parseConfig(
    `${SRC}agent: { id: ec2-a, labels: { zone: a } }\nstate:\n  postgres: { url: "postgres://steward@db/steward", passwordFile: pg-password }\nfleet: { shards: {} }\n`,
    file,
  );
  assert.deepEqual(c.fleet.shards, { count: 64, leaseTtlMs: 15_000 });
  assert.deepEqual(c.state.postgres, {
    url: 'postgres://steward@db/steward',
    password: 's3cret',
    poolSize: 4,
    connectTimeoutMs: 5_000,
  });
  assert.equal(c.state.backend, 'files');
  assert.deepEqual(c.agent, { id: 'ec2-a', labels: { zone: 'a' } });
  const d = parseConfig(
    `${SRC}state: { postgres: { url: "postgres://db/x" } }\nfleet: { shards: { count: 16, leaseTtl: 2s } }\n`,
    file,
  );
  assert.deepEqual(d.fleet.shards, { count: 16, leaseTtlMs: 2_000 });
  assert.equal(d.state.postgres?.password, null);
});

test('fleet.shards without state.postgres, a TTL under 1 s, a count out of range, an inline password: refused', () => {
  assert.deepEqual(problems(`${SRC}fleet: { shards: { count: 8 } }\n`), [
    'fleet.shards: the shard leases live in PostgreSQL; set state.postgres.url (every agent sharing the resources uses the same database)',
  ]);
  const pg = 'state: { postgres: { url: "postgres://db/x" } }\n';
  assert.match(problems(`${SRC}${pg}fleet: { shards: { leaseTtl: 500ms } }\n`).join('\n'), /at least 1s/);
  assert.match(problems(`${SRC}${pg}fleet: { shards: { count: 0 } }\n`).join('\n'), /count/);
  assert.match(
    problems(`${SRC}state: { postgres: { url: "postgres://db/x", password: x } }\n`).join('\n'),
    /never written inline/,
  );
  assert.match(
    problems(`${SRC}state: { backend: postgres }\n`).join('\n'),
    /needs state.postgres with at least its url/,
  );
});
