/**
 * A deny window that starts while a cycle is applying: the actions not yet started are not started (as
 * for a freeze asked for mid-cycle); they wait for the window's end.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Provider } from '../../providers/types.js';
import { buildProviders } from '../../providers/registry.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { makeHarness } from '../helpers/harness.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';

// Closed from 2026-01-01 00:10 UTC for an hour (the harness clock starts at 00:00).
const DENY_AT_0010 = 'windows:\n  - { kind: deny, schedule: "10 0 * * *", duration: 1h }';

test('a deny window that starts mid-cycle stops the actions not yet started', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'steward-window-mid-'));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  for (const n of ['a', 'b', 'c'])
    await repo.write(
      `fleet/${n}.yaml`,
      `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${n} }\nspec: { path: ${n}.conf, content: "${n}\\n" }\n`,
    );
  await repo.commit('v1');
  let advance = () => {};
  const h = await makeHarness({
    sourceUrl: repo.workDir,
    extra: DENY_AT_0010,
    guardrails:
      'soak: { observeCycles: 0 }\nmassDrift: { maxDrifted: 100, maxDriftedPercent: 100, minManaged: 5 }',
    // The real file provider; the first write takes the clock into the deny window.
    providers: (config) =>
      new Map(
        [...buildProviders(config)].map(([name, p]): [string, Provider] => [
          name,
          Object.assign(Object.create(p) as Provider, {
            apply: (actions: Parameters<Provider['apply']>[0], ctl: Parameters<Provider['apply']>[1]) =>
              p.apply(actions, {
                ...ctl,
                onOutcome: async (o) => {
                  advance();
                  await ctl.onOutcome?.(o);
                },
              }),
          }),
        ]),
      ),
  });
  t.after(async () => {
    await h.close();
    await rm(base, { recursive: true, force: true });
  });
  h.clock.now = Date.parse('2026-01-01T00:09:59Z');
  advance = () => {
    h.clock.now = Date.parse('2026-01-01T00:10:01Z');
  };
  const r = await h.cycle();
  const written = ['a', 'b', 'c'].filter((n) => existsSync(join(h.root, `${n}.conf`)));
  assert.equal(
    r.applied,
    1,
    `applied ${r.applied} (${written.join(', ')}), the window closed after the first`,
  );
  assert.equal(written.length, 1);
  const next = await h.cycle();
  assert.deepEqual(next.held, { window: 2 }, 'the rest waits for the window');
});
