/** `health:` in steward.yaml (SPEC §11): the shape, the defaults, and every problem placed at file:line:col. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../agent/config.js';
import { formatProblem, isStewardError, type SourceProblem } from '../../core/errors.js';

const file = join('/etc/steward', 'steward.yaml');
const head = 'source: { url: https://git.example.org/infra/desired.git }\n';
const parse = (health: string) => parseConfig(`${head}health:\n${health}`, file, { env: {} });

/** The CONFIG_INVALID problems for a `health:` block, as `line:col: message` (fails when it parses). */
function problems(health: string): string[] {
  try {
    parse(health);
  } catch (e) {
    assert.ok(isStewardError(e, 'CONFIG_INVALID'), String(e));
    return (e.details['problems'] as SourceProblem[]).map((p) => formatProblem(p).replace(`${file}:`, ''));
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('health: config', () => {
  it('takes the SPEC §11 example, with defaults filled and a relative program resolved next to the config', () => {
    const c = parse(
      [
        '  - { name: web, http: { url: "http://127.0.0.1:8080/healthz", expectStatus: 200, timeout: 2s } }',
        '  - { name: app, command: ["./bin/check-app", "--quick"], timeout: 5s, interval: 1m }',
        '  - { name: errors, prometheus: { url: "http://prom:9090", query: "sum(rate(http_5xx[1m])) < 1" } }',
        '  - { name: bare, command: [/bin/true] }',
      ].join('\n'),
    );
    assert.deepEqual(c.health, [
      {
        name: 'web',
        intervalMs: 30_000,
        kind: 'http',
        timeoutMs: 2_000,
        url: 'http://127.0.0.1:8080/healthz',
        expectStatus: 200,
      },
      {
        name: 'app',
        intervalMs: 60_000,
        kind: 'command',
        timeoutMs: 5_000,
        argv: ['/etc/steward/bin/check-app', '--quick'],
        cwd: '/etc/steward',
      },
      {
        name: 'errors',
        intervalMs: 30_000,
        kind: 'prometheus',
        timeoutMs: 5_000,
        url: 'http://prom:9090',
        query: 'sum(rate(http_5xx[1m])) < 1',
      },
      {
        name: 'bare',
        intervalMs: 30_000,
        kind: 'command',
        timeoutMs: 5_000,
        argv: ['/bin/true'],
        cwd: '/etc/steward',
      },
    ]);
  });

  it('is empty when not written', () => {
    assert.deepEqual(parseConfig(head, file, { env: {} }).health, []);
  });

  it('rejects a duplicate name at the second one', () => {
    assert.deepEqual(
      problems(
        [
          '  - { name: web, command: [/bin/true] }',
          '  - name: web',
          '    http: { url: "http://127.0.0.1/" }',
        ].join('\n'),
      ),
      ['4:5: health[1].name: "web" is already the name of health[0]; check names must be unique'],
    );
  });

  it('needs exactly one of http, command or prometheus', () => {
    assert.deepEqual(
      problems('  - { name: a }\n  - { name: b, command: [/bin/true], http: { url: "http://x/" } }'),
      [
        '3:5: health[0]: needs exactly one of http, command or prometheus',
        '4:5: health[1]: needs exactly one of http, command or prometheus',
      ],
    );
  });

  it('rejects bad URLs, names, statuses, an empty argv and keys in the wrong place, each where it is written', () => {
    assert.deepEqual(
      problems(
        [
          '  - { name: a, http: { url: "ftp://x/" } }',
          '  - { name: "b c", http: { url: "http://u:p@x/", expectStatus: 99 } }',
          '  - { name: c, command: [] }',
          '  - { name: d, http: { url: "http://x/" }, timeout: 1s }',
          '  - { name: e, prometheus: { url: "http://prom:9090/?x=1", query: "up" } }',
          '  - { name: g, command: "true" }',
          '  - { name: h, shell: "true" }',
        ].join('\n'),
      ),
      [
        '3:24: health[0].http.url: must be an http:// or https:// URL',
        '4:7: health[1].name: "b c" is not a valid check name (letters, digits, "-", "_", "."; starting with a letter or digit)',
        '4:28: health[1].http.url: must not embed credentials (user:password@); put the secret in a file and reference it instead',
        '4:50: health[1].http.expectStatus: must be at least 100 and at most 599, got 99',
        '5:16: health[2].command: must name the program to run: [program, args…]',
        '6:44: health[3].timeout: only a command check takes timeout here; write http.timeout',
        "7:30: health[4].prometheus.url: must be the server's base URL (e.g. http://prometheus:9090), without a query; the query goes in prometheus.query",
        '8:16: health[5].command: expected a list, got a string',
        '9:5: health[6]: needs exactly one of http, command or prometheus',
        '9:16: unknown key "health[6].shell" (commands run without a shell: write "command" as a list of arguments)',
      ],
    );
  });
});
