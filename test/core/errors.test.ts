import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ERROR_CODES } from '../../core/errors.js';

test('every error code is documented in docs/errors.md, and nothing else is', async () => {
  const doc = await readFile('docs/errors.md', 'utf8');
  const table = doc.split('## Admin API error codes')[0]!;
  const documented = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), Object.keys(ERROR_CODES).sort());
});
