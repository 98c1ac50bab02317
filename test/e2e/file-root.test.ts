/**
 * Unreadable is not absent: a root replaced by an empty directory (an
 * unmounted volume, a moved directory) is an observe error for every File,
 * never "every file is missing" — nothing is created.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { createTestRepo } from '../helpers/git-repo.js';
import { makeHarness } from '../helpers/harness.js';

const file = (name: string, path: string, content: string) =>
  `apiVersion: steward/v1\nkind: File\nmetadata: { name: ${name} }\nspec: { path: ${path}, content: ${JSON.stringify(content)} }\n`;

/** A repository of Files and an agent on an empty root, both removed after the test. */
async function setup(t: { after: (fn: () => Promise<unknown>) => void }) {
  const base = await mkdtemp(join(tmpdir(), 'steward-root-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const repo = await createTestRepo({ projectRoot: base, name: 'desired' });
  const h = await makeHarness({ sourceUrl: repo.workDir });
  t.after(() => h.close());
  return { repo, h };
}

test('a root swapped for an empty directory: observe errors, 0 files created; put back, it converges', async (t) => {
  const { repo, h } = await setup(t);
  await repo.write('fleet/a.yaml', file('a', 'a.conf', 'A\n'));
  await repo.write('fleet/b.yaml', file('b', 'etc/b.conf', 'B\n'));
  await repo.write('fleet/c.yaml', file('c', 'etc/deep/c.conf', 'C\n'));
  await repo.commit('fleet');

  assert.equal((await h.cycle()).applied, 3);
  const converged = await h.cycle();
  assert.equal(converged.drifted, 0, "steward's own marker is not drift");
  assert.deepEqual(converged.errors, []);

  // The volume is not mounted: an empty directory where the root was.
  const away = `${h.root}.away`;
  await rename(h.root, away);
  await mkdir(h.root);
  for (let i = 0; i < 2; i++) {
    const r = await h.cycle();
    assert.equal(r.applied, 0, 'nothing is created');
    assert.equal(r.drifted, 0, 'not "every file is missing"');
    assert.deepEqual(r.errors.map((e) => `${e.name}:${e.code}`).sort(), [
      'a:FILE_ROOT_CHANGED',
      'b:FILE_ROOT_CHANGED',
      'c:FILE_ROOT_CHANGED',
    ]);
    assert.match(
      r.errors[0]!.error,
      /delete .*file-root\.json/,
      'the hint says how to accept a deliberate move',
    );
  }
  assert.deepEqual(await readdir(h.root), [], '0 files created in the empty root');

  // Mounted again: converges with no action.
  await rmdir(h.root);
  await rename(away, h.root);
  const back = await h.cycle();
  assert.deepEqual(back.errors, []);
  assert.equal(back.drifted, 0);
  assert.equal(await readFile(join(h.root, 'etc/deep/c.conf'), 'utf8'), 'C\n');

  // A deliberate move: deleting the identity file accepts the new root.
  await rename(h.root, away);
  await mkdir(h.root);
  assert.equal((await h.cycle()).applied, 0);
  await rm(join(h.stateDir, 'file-root.json'));
  const adopted = await h.cycle();
  assert.deepEqual(adopted.errors, []);
  assert.equal(adopted.applied, 3, 'the new root is adopted and filled');
});

test('steward plan checks the root identity but records none of its own', async (t) => {
  const { repo, h } = await setup(t);
  await repo.write('fleet/a.yaml', file('a', 'a.conf', 'A\n'));
  await repo.commit('fleet');
  const plan = async () => {
    const out: string[] = [];
    const code = await main(
      ['plan', '--json', '-c', h.configPath],
      { out: (s) => out.push(s), err: () => {} },
      {},
    );
    return {
      code,
      report: JSON.parse(out.join('\n')) as { drifted: number; errors: Array<{ code: string }> },
    };
  };

  assert.equal((await plan()).report.drifted, 1);
  assert.deepEqual(await readdir(h.root), [], 'plan wrote no marker');
  await assert.rejects(readFile(join(h.stateDir, 'file-root.json')), { code: 'ENOENT' });

  await h.cycle();
  await rename(h.root, `${h.root}.away`);
  await mkdir(h.root);
  const swapped = await plan();
  assert.deepEqual(
    swapped.report.errors.map((e) => e.code),
    ['FILE_ROOT_CHANGED'],
  );
  assert.equal(swapped.report.drifted, 0);
});
