/**
 * What the records a fold rebuilds keep alive (issue 12: peak RSS at 100k). Counted in bytes of heap after a
 * full GC, on inputs where the difference is megabytes: never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../policies/backoff.js';
import { foldObservation } from '../../policies/fold.js';
import type { ResourceRecord } from '../../policies/types.js';
import { heapAfterGc as collect } from '../helpers/heap.js';

const config = { alertAfterCycles: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 60_000, jitter: 0 } };

test('records rebuilt as converged share their hidden classes: no class of its own per record', async () => {
  // A warm-up after a restart: every record's base is its own copy (as parsed), the fold points each at its
  // desired document. A hidden class and descriptors of its own per record cost ≈ 210 bytes each.
  const N = 20_000;
  const converged = Array.from({ length: N }, (_, i) => ({
    key: `File/f-${i}`,
    desired: { spec: { ensure: 'present', content: `line ${i}\n` } },
  }));
  const records = new Map<string, ResourceRecord>();
  for (const c of converged)
    records.set(c.key, {
      lastApplied: JSON.parse(JSON.stringify(c.desired)),
      attempts: 0,
      cyclesActedDrifted: 0,
      stuck: false,
    });
  const before = await collect();
  const out = foldObservation({
    converged,
    drifted: [],
    records,
    now: 1_000_000,
    config,
    random: seededRandom(1),
  });
  const after = await collect();
  assert.equal(out.records.get('File/f-7')!.lastApplied, converged[7]!.desired);
  assert.equal(
    records.get('File/f-7')!.lastApplied === converged[7]!.desired,
    false,
    'the input is left as it was',
  );
  // What is new: the output map (≈ 40 bytes an entry) and a record per resource (≈ 100 bytes).
  const perRecord = (after - before) / N;
  assert.ok(perRecord < 200, `${perRecord.toFixed(0)} bytes of heap per rebuilt record`);
});
