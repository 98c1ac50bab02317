import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Operation } from 'fast-json-patch';
import { seededRandom } from '../../policies/backoff.js';
import { type DecideDrift, type DecideInput, type DecideOutput, decide } from '../../policies/decide.js';
import { classifyPatch } from '../../policies/field-policy.js';
import { checkMassDrift } from '../../policies/mass-drift.js';
import { trackConvergence } from '../../policies/non-convergence.js';
import { refill } from '../../policies/rate-limit.js';
import type { Freeze, ResourceRecord } from '../../policies/types.js';
import { deepFreeze, drift, guardrails, record, replace } from './fixtures.js';

const NOW = 10_000_000;
const frozen: Freeze = { reason: 'maintenance', by: 'admin', since: 1 };

/** Five File drifts a..e among 100 managed resources: no mass drift, all may act. */
function baseInput(overrides: Partial<DecideInput> = {}): DecideInput {
  return {
    now: NOW,
    mode: 'enforce',
    freeze: null,
    revision: { sha: 'abc', approvedKeys: null, soaking: false },
    managed: 100,
    drift: ['a', 'b', 'c', 'd', 'e'].map((n) => drift(n)),
    records: new Map(),
    bucket: null,
    config: guardrails(),
    ...overrides,
  };
}

/** `key → reason` for holds and `key → 'act'` for actions. */
function summary(out: DecideOutput): Record<string, string> {
  const s: Record<string, string> = {};
  for (const a of out.act) s[a.drift.key] = 'act';
  for (const h of out.hold) s[h.drift.key] = h.reason;
  return s;
}

/** An approval that covers every drift of baseInput. */
const ALL: ReadonlySet<string> = new Set(['a', 'b', 'c', 'd', 'e'].map((n) => `File/${n}`));

const all = (value: string) => Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((n) => [`File/${n}`, value]));

const cases: Array<{ name: string; input: Partial<DecideInput>; expected: Record<string, string> }> = [
  { name: 'nothing in the way: all act', input: {}, expected: all('act') },
  { name: 'frozen', input: { freeze: frozen }, expected: all('frozen') },
  { name: 'observe mode', input: { mode: 'observe' }, expected: all('observe') },
  {
    name: 'frozen and observe: frozen wins',
    input: { mode: 'observe', freeze: frozen },
    expected: all('frozen'),
  },
  {
    name: 'soaking',
    input: { revision: { sha: 'abc', approvedKeys: null, soaking: true } },
    expected: all('soak'),
  },
  { name: 'change window closed', input: { window: { open: false } }, expected: all('window') },
  { name: 'change window open: all act', input: { window: { open: true } }, expected: all('act') },
  {
    name: 'window closed and frozen: frozen wins (an override never lifts a freeze)',
    input: { window: { open: false }, freeze: frozen },
    expected: all('frozen'),
  },
  {
    name: 'window closed and observe mode: observe wins',
    input: { window: { open: false }, mode: 'observe' },
    expected: all('observe'),
  },
  {
    name: 'window closed and soaking: window (it comes first)',
    input: { window: { open: false }, revision: { sha: 'abc', approvedKeys: null, soaking: true } },
    expected: all('window'),
  },
  {
    name: 'one in backoff',
    input: { records: new Map([['File/c', record({ attempts: 1, nextAttemptAt: NOW + 1 })]]) },
    expected: { ...all('act'), 'File/c': 'backoff' },
  },
  {
    name: 'backoff elapsed exactly now',
    input: { records: new Map([['File/c', record({ attempts: 1, nextAttemptAt: NOW })]]) },
    expected: all('act'),
  },
  { name: 'cap 0', input: { config: guardrails({ maxActionsPerCycle: 0 }) }, expected: all('cap') },
  {
    name: 'cap 2: oldest two act (unset firstSeen counts as now)',
    input: {
      config: guardrails({ maxActionsPerCycle: 2 }),
      records: new Map([
        ['File/e', record({ firstSeen: NOW - 100 })],
        ['File/c', record({ firstSeen: NOW - 50 })],
      ]),
    },
    expected: { 'File/a': 'cap', 'File/b': 'cap', 'File/c': 'act', 'File/d': 'cap', 'File/e': 'act' },
  },
  {
    name: 'cap 2 with equal ages: by key',
    input: { config: guardrails({ maxActionsPerCycle: 2 }) },
    expected: { ...all('cap'), 'File/a': 'act', 'File/b': 'act' },
  },
  {
    name: 'backoff does not take a cap slot',
    input: {
      config: guardrails({ maxActionsPerCycle: 2 }),
      records: new Map([['File/a', record({ attempts: 1, nextAttemptAt: NOW + 1 })]]),
    },
    expected: { ...all('cap'), 'File/a': 'backoff', 'File/b': 'act', 'File/c': 'act' },
  },
  {
    name: 'two tokens left',
    input: { bucket: { tokens: 2.7, updatedAt: NOW } },
    expected: { ...all('rate-limit'), 'File/a': 'act', 'File/b': 'act' },
  },
  {
    name: 'no tokens left',
    input: { bucket: { tokens: 0, updatedAt: NOW } },
    expected: all('rate-limit'),
  },
  {
    name: 'tokens refill with time before they are taken',
    input: { bucket: { tokens: 0, updatedAt: NOW - 3000 } },
    expected: { ...all('rate-limit'), 'File/a': 'act', 'File/b': 'act', 'File/c': 'act' },
  },
  {
    name: 'cap below the tokens: the cap holds first',
    input: { config: guardrails({ maxActionsPerCycle: 1 }), bucket: { tokens: 3, updatedAt: NOW } },
    expected: { ...all('cap'), 'File/a': 'act' },
  },
  {
    name: 'mass drift trips: freeze, nothing acts',
    input: { managed: 10 },
    expected: all('mass-drift'),
  },
  {
    name: 'mass drift trips in observe mode too',
    input: { managed: 10, mode: 'observe' },
    expected: all('mass-drift'),
  },
  {
    name: 'mass drift trips while soaking too',
    input: { managed: 10, revision: { sha: 'abc', approvedKeys: null, soaking: true } },
    expected: all('mass-drift'),
  },
  {
    name: 'mass drift while already frozen: held frozen',
    input: { managed: 10, freeze: frozen },
    expected: all('frozen'),
  },
  {
    name: 'approved revision bypasses mass drift but not the cap',
    input: {
      managed: 10,
      revision: { sha: 'abc', approvedKeys: ALL, soaking: false },
      config: guardrails({ maxActionsPerCycle: 2 }),
    },
    expected: { ...all('cap'), 'File/a': 'act', 'File/b': 'act' },
  },
  {
    name: 'approved revision does not bypass a freeze',
    input: { managed: 10, freeze: frozen, revision: { sha: 'abc', approvedKeys: ALL, soaking: false } },
    expected: all('frozen'),
  },
  {
    name: 'approved revision does not bypass observe',
    input: { managed: 10, mode: 'observe', revision: { sha: 'abc', approvedKeys: ALL, soaking: false } },
    expected: all('observe'),
  },
  {
    name: 'approved revision does not bypass the soak',
    input: { managed: 10, revision: { sha: 'abc', approvedKeys: ALL, soaking: true } },
    expected: all('soak'),
  },
  {
    name: 'approved revision does not bypass backoff nor rate limit',
    input: {
      managed: 10,
      revision: { sha: 'abc', approvedKeys: ALL, soaking: false },
      records: new Map([['File/a', record({ attempts: 2, nextAttemptAt: NOW + 1 })]]),
      bucket: { tokens: 1, updatedAt: NOW },
    },
    expected: { ...all('rate-limit'), 'File/a': 'backoff', 'File/b': 'act' },
  },
  {
    name: 'report-only drift never acts, and never counts as would-change',
    input: {
      managed: 10,
      drift: [
        drift('a', [replace('/spec/instanceType')], {
          kind: 'Ec2Instance',
          disruptive: ['/spec/instanceType'],
        }),
        drift('b', [replace('/spec/instanceType')], {
          kind: 'Ec2Instance',
          disruptive: ['/spec/instanceType'],
        }),
        drift('c', [replace('/spec/content')], { resourcePolicy: 'report' }),
        drift('d', [replace('/spec/content')], { resourcePolicy: 'report' }),
        drift('e'),
      ],
    },
    expected: {
      'Ec2Instance/a': 'report-only',
      'Ec2Instance/b': 'report-only',
      'File/c': 'report-only',
      'File/d': 'report-only',
      'File/e': 'act',
    },
  },
  {
    name: 'an empty patch never acts',
    input: { drift: [drift('a', [])] },
    expected: { 'File/a': 'report-only' },
  },
  {
    name: 'config report fields never act, even with onDrift: revert',
    input: {
      drift: [drift('a', [replace('/spec/mode')], { resourcePolicy: 'revert' })],
      config: guardrails({ fieldPolicy: { File: { '/spec/mode': 'report' } } }),
    },
    expected: { 'File/a': 'report-only' },
  },
  {
    name: 'report-only wins over frozen as the hold reason',
    input: { freeze: frozen, drift: [drift('a', [replace('/x')], { resourcePolicy: 'report' }), drift('b')] },
    expected: { 'File/a': 'report-only', 'File/b': 'frozen' },
  },
];

for (const c of cases) {
  test(`decide: ${c.name}`, () => {
    const input = deepFreeze(baseInput(c.input));
    const out = decide(input);
    assert.deepEqual(summary(out), c.expected);
    assert.equal(out.act.length + out.hold.length, input.drift.length);
  });
}

test('decide: a mass-drift trip asks for a freeze with a reason that names the numbers', () => {
  const out = decide(baseInput({ managed: 10 }));
  assert.deepEqual(out.freeze, { reason: '5 of 10 managed resources (50%) would change; limit 30%' });
  assert.deepEqual(summary(out), all('mass-drift'));
});

test('decide: inside a closed change window, mass drift still trips and asks for a freeze', () => {
  const out = decide(baseInput({ managed: 10, window: { open: false } }));
  assert.notEqual(out.freeze, null);
  assert.deepEqual(summary(out), all('mass-drift'));
});

test('decide: no new freeze when already frozen; the would-trip holds everything frozen', () => {
  const out = decide(baseInput({ managed: 10, freeze: frozen }));
  assert.equal(out.freeze, null);
  assert.deepEqual(summary(out), all('frozen'));
});

test('decide: an approval that covers the drift: no trip, no freeze, it acts', () => {
  const out = decide(baseInput({ managed: 10, revision: { sha: 'abc', approvedKeys: ALL, soaking: false } }));
  assert.equal(out.freeze, null);
  assert.deepEqual(summary(out), all('act'));
});

test('decide: drift an approval does not cover is counted by the mass-drift halt', () => {
  // 5 of 10 would change; the approval covers a only: 4 of 10 (40 %) is above the 30 % limit.
  const one = new Set(['File/a']);
  const out = decide(baseInput({ managed: 10, revision: { sha: 'abc', approvedKeys: one, soaking: false } }));
  assert.deepEqual(out.freeze, { reason: '4 of 10 managed resources (40%) would change; limit 30%' });
  assert.equal(out.act.length, 0);
  // Covering a and b: 3 of 10 is at the limit, so all five act.
  const two = new Set(['File/a', 'File/b']);
  const ok = decide(baseInput({ managed: 10, revision: { sha: 'abc', approvedKeys: two, soaking: false } }));
  assert.equal(ok.freeze, null);
  assert.equal(ok.act.length, 5);
});

test('decide: exactly at the mass-drift threshold still acts', () => {
  // 3 of 10 = 30%: at the limit
  const out = decide(baseInput({ managed: 10, drift: [drift('a'), drift('b'), drift('c')] }));
  assert.equal(out.freeze, null);
  assert.equal(out.act.length, 3);
});

test('decide: acted drifts carry only revert ops; the drift comes back as it was passed in', () => {
  const ops: Operation[] = [replace('/spec/instanceType'), replace('/spec/tags/Env')];
  const out = decide(
    baseInput({ drift: [drift('web', ops, { kind: 'Ec2Instance', disruptive: ['/spec/instanceType'] })] }),
  );
  assert.equal(out.act.length, 1);
  assert.deepEqual(
    out.act[0]?.ops.map((o) => o.path),
    ['/spec/tags/Env'],
  );
  // the drift handed back is the caller's own object (no re-join by key), patch untouched
  const input = baseInput({
    drift: [drift('web', ops, { kind: 'Ec2Instance', disruptive: ['/spec/instanceType'] })],
  });
  const again = decide(input);
  assert.equal(again.act[0]?.drift, input.drift[0]);
  assert.deepEqual(again.act[0]?.drift.patch, ops);
});

test('decide: the bucket is refilled and charged for what acts, not for what is held', () => {
  const start = { tokens: 4, updatedAt: NOW - 2000 };
  const acted = decide(baseInput({ bucket: start, config: guardrails({ maxActionsPerCycle: 3 }) }));
  assert.deepEqual(acted.bucket, { tokens: 3, updatedAt: NOW });
  const held = decide(baseInput({ bucket: start, mode: 'observe' }));
  assert.deepEqual(held.bucket, { tokens: 6, updatedAt: NOW });
  const fresh = decide(baseInput({ bucket: null }));
  assert.deepEqual(fresh.bucket, { tokens: 5, updatedAt: NOW });
});

test('decide: acts come oldest first', () => {
  const out = decide(
    baseInput({
      records: new Map([
        ['File/d', record({ firstSeen: 1 })],
        ['File/b', record({ firstSeen: 2 })],
      ]),
    }),
  );
  assert.deepEqual(
    out.act.map((a) => a.drift.key),
    ['File/d', 'File/b', 'File/a', 'File/c', 'File/e'],
  );
});

test('decide: an apply that did not stick is held by backoff in the very next cycle', () => {
  const config = guardrails();
  const tracking = { alertAfterCycles: config.nonConvergence.alertAfterCycles, backoff: config.backoff };
  const random = seededRandom(3);
  // cycle 1: acts, the apply reports success
  const c1 = decide(baseInput({ drift: [drift('a')] }));
  assert.equal(c1.act.length, 1);
  let r = trackConvergence(record({ firstSeen: NOW }), { kind: 'acted-ok' }, tracking, NOW, random).record;
  // cycle 2: still drifted → observation reported before deciding
  const t2 = NOW + 30_000;
  r = trackConvergence(r, { kind: 'still-drifted-after-act' }, tracking, t2, random).record;
  const c2 = decide(
    baseInput({ now: t2, drift: [drift('a')], records: new Map([['File/a', r]]), bucket: c1.bucket }),
  );
  assert.deepEqual(summary(c2), { 'File/a': 'backoff' });
});

/** Random but reproducible inputs covering every step. */
function randomInput(random: () => number): DecideInput {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const paths = ['/spec/content', '/spec/mode', '/spec/instanceType', '/spec/tags/Env', '/spec/tags'];
  const now = 1_000_000 + int(1_000_000);
  const drifts: DecideDrift[] = [];
  const records = new Map<string, ResourceRecord>();
  const n = int(25);
  for (let i = 0; i < n; i++) {
    const ops = Array.from({ length: int(4) }, () => replace(pick(paths)));
    const d = drift(`r${i}`, ops, {
      kind: pick(['File', 'Ec2Instance']),
      disruptive: pick([[], ['/spec/instanceType']]),
      ...(random() < 0.2 ? { resourcePolicy: pick(['revert', 'report'] as const) } : {}),
    });
    drifts.push(d);
    if (random() < 0.6) {
      records.set(
        d.key,
        record({
          firstSeen: now - int(100_000),
          attempts: int(3),
          ...(random() < 0.5 ? { nextAttemptAt: now + int(20_000) - 10_000 } : {}),
        }),
      );
    }
  }
  return {
    now,
    mode: random() < 0.2 ? 'observe' : 'enforce',
    freeze: random() < 0.15 ? frozen : null,
    revision: {
      sha: 'x',
      approvedKeys: random() < 0.3 ? new Set(drifts.filter(() => random() < 0.7).map((d) => d.key)) : null,
      soaking: random() < 0.15,
    },
    managed: n + int(40),
    drift: drifts,
    records,
    bucket: random() < 0.2 ? null : { tokens: random() * 12, updatedAt: now - int(20_000) },
    config: guardrails({
      maxActionsPerCycle: int(8),
      massDrift: { maxDrifted: 3 + int(20), maxDriftedPercent: 10 + int(60), minManaged: int(20) },
      rateLimit: { actionsPerMinute: 1 + int(120), burst: 1 + int(12) },
      fieldPolicy: random() < 0.5 ? { File: { '/spec/mode': 'report' } } : {},
    }),
  };
}

test('decide: invariants hold over many random inputs', () => {
  const random = seededRandom(20240601);
  let acted = 0;
  const reasons = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const input = deepFreeze(randomInput(random));
    const out = decide(input);
    const label = `iteration ${i}`;
    // every drift exactly once
    const seen = [...out.act.map((a) => a.drift.key), ...out.hold.map((h) => h.drift.key)];
    assert.equal(seen.length, input.drift.length, label);
    assert.deepEqual([...seen].sort(), input.drift.map((d) => d.key).sort(), label);
    for (const h of out.hold) reasons.add(h.reason);
    acted += out.act.length;
    // never act while frozen, observing, soaking, or on a mass-drift trip of what no approval covers
    // the oracle: drifts with something to revert that no approval covers, against the limits
    const wouldChange = input.drift.filter(
      (d) =>
        !input.revision.approvedKeys?.has(d.key) &&
        classifyPatch({
          kind: d.kind,
          patch: d.patch,
          resourcePolicy: d.resourcePolicy,
          kindDisruptive: d.disruptive,
          config: input.config.fieldPolicy,
        }).revert.length > 0,
    ).length;
    const tripped = checkMassDrift({
      wouldChange,
      managed: input.managed,
      config: input.config.massDrift,
    }).trip;
    if (input.freeze || input.mode === 'observe' || input.revision.soaking || tripped)
      assert.equal(out.act.length, 0, label);
    assert.equal(out.freeze !== null, tripped && input.freeze === null, label);
    // never beyond the cap or the tokens
    assert.ok(out.act.length <= input.config.maxActionsPerCycle, label);
    const available = refill(input.bucket, input.now, input.config.rateLimit).tokens;
    assert.ok(out.act.length <= Math.floor(available + 1e-9), label);
    assert.ok(out.bucket.tokens >= 0 && out.bucket.tokens <= input.config.rateLimit.burst, label);
    for (const a of out.act) {
      const d = input.drift.find((x) => x.key === a.drift.key) as DecideDrift;
      const r = input.records.get(a.drift.key);
      // never for a resource in backoff
      assert.ok(r?.nextAttemptAt === undefined || r.nextAttemptAt <= input.now, label);
      // only revert ops, and at least one
      const split = classifyPatch({
        kind: d.kind,
        patch: d.patch,
        resourcePolicy: d.resourcePolicy,
        kindDisruptive: d.disruptive,
        config: input.config.fieldPolicy,
      });
      assert.ok(a.ops.length > 0, label);
      assert.deepEqual(a.ops, split.revert, label);
    }
    // oldest first among acts
    const ages = out.act.map((a) => input.records.get(a.drift.key)?.firstSeen ?? input.now);
    assert.deepEqual(
      ages,
      [...ages].sort((x, y) => x - y),
      label,
    );
  }
  // the generator really reaches every branch
  assert.ok(acted > 100, `acted ${acted}`);
  assert.deepEqual([...reasons].sort(), [
    'backoff',
    'cap',
    'frozen',
    'mass-drift',
    'observe',
    'rate-limit',
    'report-only',
    'soak',
  ]);
});

test('decide: a full bucket that stays full comes back as it was (nothing to persist); a take counts from now', () => {
  const config = guardrails({ rateLimit: { actionsPerMinute: 60, burst: 10 } });
  const full = deepFreeze({ tokens: 10, updatedAt: NOW - 90_000 });
  const idle = decide(baseInput({ drift: [], bucket: full, config }));
  assert.equal(idle.bucket, full, 'no drift: the very same bucket');
  const acting = decide(baseInput({ bucket: full, config }));
  assert.equal(acting.act.length, 5);
  assert.deepEqual(acting.bucket, { tokens: 5, updatedAt: NOW }, 'five taken at now, not at the old time');
  // The rate holds across cycles: 30 s later only 30 more tokens' worth can be credited, capped at the burst.
  assert.deepEqual(refill(acting.bucket, NOW + 1_000, config.rateLimit), {
    tokens: 6,
    updatedAt: NOW + 1_000,
  });
});
