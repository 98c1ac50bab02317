/**
 * The admin API when the state cannot be written (SPEC §9), over a real
 * socket, with the state on a real, small tmpfs that fills up and goes read-only: unready, a freeze still holds
 * (in memory, 503), an unfreeze changes nothing, and approving while not
 * frozen is 409. Root only (the CI runs as root): it mounts a tmpfs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startOneFileDaemon } from '../helpers/daemon.js';

test('state unwritable: /readyz 503, a freeze holds in memory (503), unfreeze refused; not frozen: approve is 409', async (t) => {
  let stateDir = '';
  const d = await startOneFileDaemon(t, {
    beforeStart: async (dir) => {
      stateDir = join(dir, 'state');
      await mkdir(stateDir, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', stateDir]);
      t.after(() => execFileSync('umount', ['-l', stateDir]));
    },
  });
  const cycle = async () => {
    const before = d.daemon.agent.cycles;
    assert.equal((await d.req('POST', '/v1/reconcile')).status, 202);
    await d.daemon.agent.idle();
    assert.ok(d.daemon.agent.cycles > before);
  };
  await cycle(); // creates a.conf
  await cycle(); // sees it converged (an edit right after an apply would count as "did not stick")
  assert.equal((await d.req('GET', '/readyz', { auth: false })).status, 200);
  const sha = (d.daemon.agent.source.current?.sha ?? '') as string;

  // Not frozen: an approval is refused, nothing is stored.
  const pre = await d.req('POST', '/v1/unfreeze', { body: { approveRevision: sha } });
  assert.equal(pre.status, 409);
  assert.equal((pre.json as { error: { code: string } }).error.code, 'NOT_FROZEN');
  assert.deepEqual(d.daemon.agent.currentState.approvals, []);

  // The volume fills up, and goes read-only (a failing disk: a full one alone still takes the few bytes of
  // a small journal append into a page its file already has; fail-closed-state.test.ts covers a full one);
  // someone edits the managed file.
  await writeFile(join(stateDir, 'filler'), Buffer.alloc(1024 * 1024)).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  });
  execFileSync('mount', ['-o', 'remount,ro', stateDir]);
  await writeFile(join(d.root, 'a.conf'), 'tampered\n');
  await cycle();
  assert.equal(await readFile(join(d.root, 'a.conf'), 'utf8'), 'tampered\n', 'no action without its record');
  const ready = await d.req('GET', '/readyz', { auth: false });
  assert.equal(ready.status, 503);
  assert.match((ready.json as { error: { message: string } }).error.message, /state cannot be written/);
  assert.doesNotMatch(ready.text, new RegExp(stateDir), 'the public route names no path');
  const status = (await d.req('GET', '/v1/status')).json as { state: { writable: boolean; error: string } };
  assert.equal(status.state.writable, false);
  assert.match(status.state.error, /EROFS|ENOSPC/);
  assert.match((await d.req('GET', '/metrics', { auth: false })).text, /^steward_state_writable 0$/m);

  const freeze = await d.req('POST', '/v1/freeze', { body: { reason: 'disk full' } });
  assert.equal(freeze.status, 503);
  assert.equal((freeze.json as { error: { code: string } }).error.code, 'STATE_UNWRITABLE');
  assert.equal(d.daemon.agent.currentState.freeze?.reason, 'disk full', 'the freeze holds in memory');
  const unfreeze = await d.req('POST', '/v1/unfreeze');
  assert.equal(unfreeze.status, 503);
  assert.notEqual(
    d.daemon.agent.currentState.freeze,
    null,
    'an unfreeze that cannot be persisted changes nothing',
  );

  // Writable with space again: the unfreeze persists, the agent is ready and acts.
  execFileSync('mount', ['-o', 'remount,rw', stateDir]);
  await unlink(join(stateDir, 'filler'));
  assert.equal((await d.req('POST', '/v1/unfreeze')).status, 200);
  await cycle();
  assert.equal((await d.req('GET', '/readyz', { auth: false })).status, 200);
  assert.equal(await readFile(join(d.root, 'a.conf'), 'utf8'), 'a\n');
  assert.match((await d.req('GET', '/metrics', { auth: false })).text, /^steward_state_writable 1$/m);
});
