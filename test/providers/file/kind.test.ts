/** Names steward keeps for itself under the file root cannot be managed by a File. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileKind } from '../../../providers/file/kind.js';

const problems = (path: string) => fileKind.validate({ path, content: 'x' }).map((p) => p.message);

test("steward's root marker and temp file names are not valid File paths", () => {
  assert.match(problems('.steward-root').join(), /steward's own marker of the root/);
  assert.match(problems('etc/.steward-tmp-motd-abc').join(), /reserved for steward's temp files/);
  assert.deepEqual(problems('etc/.steward-root'), [], 'the marker is only at the top of the root');
  assert.deepEqual(problems('etc/motd'), []);
});
