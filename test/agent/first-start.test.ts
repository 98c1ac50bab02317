/** The hint of a mass-drift freeze: the exact command to run, and the first start said as such. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { approveCommand, createsResource, massDriftHint } from '../../agent/first-start.js';

const SHA = 'a'.repeat(40);

test('a patch creates its resource when it sets /spec/ensure to present (raw or display form)', () => {
  assert.equal(createsResource([{ op: 'replace', path: '/spec/ensure', value: 'present' } as never]), true);
  assert.equal(createsResource([{ path: '/spec/ensure', value: 'absent' }]), false);
  assert.equal(createsResource([{ path: '/spec/content' }, { path: '/spec/mode', value: '0644' }]), false);
});

test('the approve command names the sha and the config; a path with spaces is quoted for the shell', () => {
  assert.equal(
    approveCommand(SHA, '/etc/steward/steward.yaml'),
    `steward approve ${SHA} -c /etc/steward/steward.yaml`,
  );
  assert.equal(
    approveCommand(SHA, "/srv/my conf/it's.yaml"),
    `steward approve ${SHA} -c '/srv/my conf/it'\\''s.yaml'`,
  );
  assert.equal(approveCommand(SHA, '<embedded>'), `steward approve ${SHA}`);
  assert.equal(approveCommand(SHA, null), `steward approve ${SHA}`);
});

test('mostly creates: says it looks like a first start; else the plain approve-or-fix choice', () => {
  assert.equal(
    massDriftHint(SHA, '/e/s.yaml', 9, 10),
    `9 of the 10 changes create a resource (a first start?): check them with steward drift, then run steward approve ${SHA} -c /e/s.yaml; if it is not, fix Git, then run steward unfreeze -c /e/s.yaml`,
  );
  assert.equal(
    massDriftHint(SHA, '/e/s.yaml', 1, 10),
    `if this change is intended, run steward approve ${SHA} -c /e/s.yaml; if it is not, fix Git, then run steward unfreeze -c /e/s.yaml`,
  );
});
