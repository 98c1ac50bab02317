/** The admin commands' pure parts: relative times, aligned tables, change summaries, the fleet view. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changeSummary, relativeTime, renderFleet, table } from '../../../agent/cli/admin.js';
import type { FleetView } from '../../../agent/fleet/types.js';

const NOW = Date.parse('2026-12-02T12:00:00.000Z');
const before = (s: number) => new Date(NOW - s * 1000).toISOString();

test('relativeTime: seconds, minutes, hours, days; ahead says "in"; none is "-"', () => {
  assert.equal(relativeTime(before(5), NOW), '5s ago');
  assert.equal(relativeTime(before(125), NOW), '2m ago');
  assert.equal(relativeTime(before(7300), NOW), '2h ago');
  assert.equal(relativeTime(before(3 * 86_400 + 5), NOW), '3d ago');
  assert.equal(relativeTime(before(-600), NOW), 'in 10m');
  assert.equal(relativeTime(null, NOW), '-');
  assert.equal(relativeTime('not a time', NOW), 'not a time');
});

test('table: columns padded to their widest cell, the last one not padded', () => {
  assert.deepEqual(
    table(
      ['A', 'LONG HEADER', 'Z'],
      [
        ['wide cell', 'x', 'last'],
        ['b', '', ''],
      ],
    ),
    ['A          LONG HEADER  Z', 'wide cell  x            last', 'b'],
  );
});

test('changeSummary: create, delete, or each op with its value (long values cut); content and digests by name', () => {
  assert.equal(
    changeSummary([
      { op: 'replace', path: '/spec/ensure', value: 'present' },
      { op: 'add', path: '/spec/content' },
    ]),
    'create',
  );
  assert.equal(changeSummary([{ op: 'replace', path: '/spec/ensure', value: 'absent' }]), 'delete');
  assert.equal(
    changeSummary([
      { op: 'replace', path: '/spec/mode', value: '0600' },
      { op: 'replace', path: '/spec/content', diff: '@@ -1 +1 @@' },
      { op: 'replace', path: '/spec/secret', before: null, after: null },
      { op: 'add', path: '/spec/tags/Env', value: 'x'.repeat(60) },
    ]),
    `replace /spec/mode = "0600", replace /spec/content (content), replace /spec/secret (digest), add /spec/tags/Env = "${'x'.repeat(38)}…`,
  );
});

test('renderFleet: the agents table, then the waves of the rollout and why it halted', () => {
  const sha = 'c'.repeat(40);
  const view: FleetView = {
    backend: 'postgres',
    self: 'web-1',
    agents: [
      {
        id: 'web-1',
        labels: { role: 'web' },
        revision: sha,
        wave: 0,
        healthy: true,
        health: [{ name: 'web', kind: 'http', ok: true, detail: 'HTTP 200', at: NOW, durationMs: 3 }],
        lastCycleAt: before(4),
        lastSeenAt: before(2),
        alive: true,
        frozen: false,
        drifted: 0,
      },
      {
        id: 'web-2',
        labels: {},
        revision: null,
        wave: 1,
        healthy: false,
        health: [{ name: 'app', kind: 'command', ok: false, detail: 'exit 1', at: NOW, durationMs: 9 }],
        lastCycleAt: null,
        lastSeenAt: before(400),
        alive: false,
        frozen: true,
        drifted: 3,
      },
    ],
    rollout: {
      revision: sha,
      waves: [
        { index: 0, agents: ['web-1'], state: 'done', openedAt: before(300), bakeUntil: before(180) },
        { index: 1, agents: ['web-2'], state: 'halted', openedAt: before(120), bakeUntil: null },
      ],
      halted: { at: before(60), reason: 'health check app failed', agents: ['web-2'], checks: ['app'] },
    },
  };
  assert.deepEqual(renderFleet(view, NOW), [
    '2 agents (state backend: postgres); this one is web-1',
    '',
    'AGENT         WAVE  REVISION      HEALTH        FROZEN  DRIFTED  LAST CYCLE  SEEN',
    'web-1 (self)  1     cccccccccccc  ok            no      0        4s ago      2s ago',
    'web-2         2     -             failing: app  yes     3        -           6m ago (gone)',
    '',
    'rollout of cccccccccccc:',
    'WAVE  STATE   AGENTS  OPENED  BAKE ENDS',
    '1     done    web-1   5m ago  3m ago',
    '2     halted  web-2   2m ago  -',
    'halted 1m ago: health check app failed (agents: web-2; checks: app)',
  ]);
  assert.deepEqual(renderFleet({ backend: 'files', self: 'h', agents: [], rollout: null }, NOW), [
    '0 agents (state backend: files); this one is h',
    '',
    'AGENT  WAVE  REVISION  HEALTH  FROZEN  DRIFTED  LAST CYCLE  SEEN',
  ]);
});
