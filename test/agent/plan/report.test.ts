import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../../agent/detect.js';
import { diffOwned } from '../../../agent/diff.js';
import { fieldName, type PlanInput, planReport } from '../../../agent/plan/report.js';
import { freshState, type PersistedState } from '../../../agent/state/types.js';
import { KINDS } from '../../../providers/registry.js';
import type { DesiredResource, OwnedDoc } from '../../../providers/types.js';
import { guardrails, record } from '../../policies/fixtures.js';

const NOW = Date.UTC(2026, 0, 1);
const SHA = 'a'.repeat(40);

/** A File resource: its desired document as the kind builds it. */
function file(name: string, spec: Record<string, unknown>, extra: Partial<DesiredResource> = {}) {
  const kind = KINDS.get('File')!;
  const full = { path: name, ...spec };
  return {
    key: `File/${name}`,
    kind: 'File',
    name,
    spec: full,
    desired: kind.toDesired(full),
    origin: `fleet/${name}.yaml:1:1`,
    ...extra,
  } satisfies DesiredResource;
}

const present = (content: string, mode = '0644'): OwnedDoc => ({
  spec: { ensure: 'present', content, mode },
});
const absent: OwnedDoc = { spec: { ensure: 'absent' } };

/** Detection of `pairs` (resource, observed), diffed as the agent diffs; `managed` defaults to 100 (no mass drift). */
function detection(pairs: Array<[DesiredResource, OwnedDoc]>, managed = 100): Detection {
  const out: Detection = { managed, drift: [], converged: [], errors: [] };
  for (const [resource, observed] of pairs) {
    const patch = diffOwned(KINDS.get(resource.kind)!, resource.desired, observed);
    if (patch.length === 0) out.converged.push(resource);
    else out.drift.push({ resource, id: resource.name, patch, observed });
  }
  return out;
}

function input(
  d: Detection,
  overrides: Partial<PlanInput> = {},
  state: Partial<PersistedState> = {},
): PlanInput {
  return {
    sha: SHA,
    detection: d,
    state: { ...freshState(), ...state },
    guardrails: guardrails({ soak: { observeCycles: 0 } }),
    initialMode: 'enforce',
    kinds: KINDS,
    now: NOW,
    ...overrides,
  };
}

const motd = file('motd', { content: 'hello\n', mode: '0644' });
const edited: Array<[DesiredResource, OwnedDoc]> = [[motd, present('edited\n')]];

test('each action and each hold reason, decided by the guardrails a cycle uses', () => {
  const cases: Array<{
    name: string;
    input: PlanInput;
    expect: Array<{ name: string; action: string; held: string | null }>;
    exit: 0 | 1 | 2;
  }> = [
    {
      name: 'create, acted on now',
      input: input(detection([[motd, absent]])),
      expect: [{ name: 'motd', action: 'create', held: null }],
      exit: 2,
    },
    {
      name: 'update, acted on now',
      input: input(detection(edited)),
      expect: [{ name: 'motd', action: 'update', held: null }],
      exit: 2,
    },
    {
      name: 'delete (ensure: absent in Git)',
      input: input(detection([[file('old', { ensure: 'absent' }), present('x\n')]])),
      expect: [{ name: 'old', action: 'delete', held: null }],
      exit: 2,
    },
    {
      name: 'report only alone: exit 0',
      input: input(
        detection([[file('motd', { content: 'hello\n' }, { onDrift: 'report' }), present('x\n')]]),
      ),
      expect: [{ name: 'motd', action: 'report-only', held: null }],
      exit: 0,
    },
    {
      name: 'frozen',
      input: input(detection(edited), {}, { freeze: { reason: 'incident', by: 'ops', since: NOW - 1 } }),
      expect: [{ name: 'motd', action: 'update', held: 'frozen' }],
      exit: 2,
    },
    {
      name: 'observe: the config mode while the state names none',
      input: input(detection(edited), { initialMode: 'observe' }),
      expect: [{ name: 'motd', action: 'update', held: 'observe' }],
      exit: 2,
    },
    {
      name: 'observe: the persisted mode wins over the config',
      input: input(detection(edited), { initialMode: 'enforce' }, { mode: 'observe' }),
      expect: [{ name: 'motd', action: 'update', held: 'observe' }],
      exit: 2,
    },
    {
      name: 'soak: a revision the state has not soaked',
      input: input(detection(edited), { guardrails: guardrails() }),
      expect: [{ name: 'motd', action: 'update', held: 'soak' }],
      exit: 2,
    },
    {
      name: 'soaked already: acts',
      input: input(
        detection(edited),
        { guardrails: guardrails() },
        { soak: { sha: SHA, cyclesObserved: 1 } },
      ),
      expect: [{ name: 'motd', action: 'update', held: null }],
      exit: 2,
    },
    {
      name: 'backoff',
      input: input(
        detection(edited),
        {},
        {
          resources: {
            'File/motd': record({ attempts: 1, firstSeen: NOW - 5000, nextAttemptAt: NOW + 60_000 }),
          },
        },
      ),
      expect: [{ name: 'motd', action: 'update', held: 'backoff' }],
      exit: 2,
    },
    {
      name: 'cap: oldest drift first',
      input: input(
        detection([
          [file('a', { content: 'a\n' }), present('x\n')],
          [file('b', { content: 'b\n' }), present('x\n')],
        ]),
        { guardrails: guardrails({ soak: { observeCycles: 0 }, maxActionsPerCycle: 1 }) },
        {
          resources: {
            'File/b': record({ firstSeen: NOW - 10_000 }),
            'File/a': record({ firstSeen: NOW - 1 }),
          },
        },
      ),
      expect: [
        { name: 'a', action: 'update', held: 'cap' },
        { name: 'b', action: 'update', held: null },
      ],
      exit: 2,
    },
    {
      name: 'rate-limit: an empty bucket',
      input: input(detection(edited), {}, { bucket: { tokens: 0, updatedAt: NOW } }),
      expect: [{ name: 'motd', action: 'update', held: 'rate-limit' }],
      exit: 2,
    },
    {
      name: 'mass-drift',
      input: input(detection(edited, 1), {
        guardrails: guardrails({
          soak: { observeCycles: 0 },
          massDrift: { maxDrifted: 0, maxDriftedPercent: 100, minManaged: 1 },
        }),
      }),
      expect: [{ name: 'motd', action: 'update', held: 'mass-drift' }],
      exit: 2,
    },
    {
      name: 'mass-drift approved for this revision: acts',
      input: input(
        detection(edited, 1),
        {
          guardrails: guardrails({
            soak: { observeCycles: 0 },
            massDrift: { maxDrifted: 0, maxDriftedPercent: 100, minManaged: 1 },
          }),
        },
        { approvals: [{ sha: SHA, by: 'ops', at: NOW - 1, keys: null }] },
      ),
      expect: [{ name: 'motd', action: 'update', held: null }],
      exit: 2,
    },
  ];
  for (const c of cases) {
    const report = planReport(c.input);
    assert.deepEqual(
      report.resources.map((r) => ({ name: r.name, action: r.action, held: r.held })),
      c.expect,
      c.name,
    );
    assert.equal(report.exitCode, c.exit, c.name);
  }
});

test('old → new per field, digests for contents, report-only fields marked; inputs untouched', () => {
  const kind = KINDS.get('File')!;
  const r = file('motd', { content: 'a\nb\n', mode: '0600' });
  const observed = present('a\nB\n', '0644');
  const state = { ...freshState(), resources: { 'File/motd': record() } };
  const before = JSON.stringify(state);
  const report = planReport({
    ...input(detection([[r, observed]])),
    state,
    guardrails: guardrails({ soak: { observeCycles: 0 }, fieldPolicy: { File: { '/spec/mode': 'report' } } }),
  });
  assert.equal(JSON.stringify(state), before, 'the state passed in is not modified');
  assert.equal(kind.contentFields?.[0], '/spec/content');
  const [res] = report.resources;
  assert.equal(res!.action, 'update');
  const byPath = new Map(res!.changes.map((c) => [c.path, c]));
  assert.deepEqual(byPath.get('/spec/mode'), {
    op: 'replace',
    path: '/spec/mode',
    field: 'spec.mode',
    before: '0644',
    after: '0600',
    reportOnly: true,
  });
  const content = byPath.get('/spec/content')!;
  assert.equal(content.reportOnly, false);
  assert.equal(content.before, undefined, 'a content field is never shown whole');
  assert.equal(content.after, undefined);
  assert.equal(content.diff, '@@ -1,2 +1,2 @@\n a\n-B\n+b\n');
  assert.equal(content.digests?.after?.bytes, 4);
});

test('a sensitive resource: digests only, no diff, no value', () => {
  const canary = 'TOKEN=canary-7f3a\n';
  const r = file('secret', { content: canary, mode: '0600' }, { sensitive: true });
  const report = planReport(input(detection([[r, present('TOKEN=old\n', '0644')]])));
  const text = JSON.stringify(report);
  assert.ok(!text.includes('canary-7f3a') && !text.includes('TOKEN=old'), text);
  assert.ok(!text.includes('"0600"'), 'no value of any field of a sensitive resource');
  assert.ok(report.resources[0]!.changes.every((c) => c.digests !== undefined && c.diff === undefined));
  assert.equal(report.resources[0]!.sensitive, true);
});

test('unreadable resources exit 1; the summary counts each action and hold reason', () => {
  const d = detection([
    [file('new', { content: 'n\n' }), absent],
    [file('a', { content: 'a\n' }), present('x\n')],
    [file('r', { content: 'r\n' }, { onDrift: 'report' }), present('x\n')],
  ]);
  d.errors.push({
    resource: file('gone', { content: '' }),
    id: 'gone',
    code: 'OBSERVE_FAILED',
    error: 'EACCES',
  });
  const report = planReport(input(d, { initialMode: 'observe' }));
  assert.deepEqual(report.summary, {
    create: 1,
    update: 1,
    delete: 0,
    reportOnly: 1,
    held: { observe: 2 },
    unreadable: 1,
  });
  assert.equal(report.exitCode, 1);
});

test('field names as people write them', () => {
  assert.equal(fieldName('/spec/ingress/0/cidr'), 'spec.ingress[0].cidr');
  assert.equal(fieldName('/spec/tags/Owner'), 'spec.tags.Owner');
  assert.equal(fieldName('/spec/tags/a~1b c'), 'spec.tags["a/b c"]');
  assert.equal(
    fieldName('/spec/ingress/tcp 22-22 from 0.0.0.0~10'),
    'spec.ingress["tcp 22-22 from 0.0.0.0/0"]',
  );
});
