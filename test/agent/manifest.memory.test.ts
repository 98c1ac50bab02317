/**
 * What a parsed revision keeps alive while it is in force (issue 12: peak RSS at 100k). Counted in bytes of
 * heap after a full GC, on inputs where the difference is tens of MiB, and with weak references: never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManifestCache, parseRevision, relocatable } from '../../agent/manifest.js';
import type { YamlDocument } from '../../core/yaml.js';
import { KINDS } from '../../providers/registry.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** A full GC once the current job is over (weak references are kept until then). */
const collect = async (): Promise<number> => {
  await new Promise((r) => setImmediate(r));
  gc();
  return process.memoryUsage().heapUsed;
};

const MIB = 1024 * 1024;

test('a parsed resource keeps strings of its own, not its manifest’s whole text', async () => {
  // One small File in a 16 MiB manifest (a long comment): its name and path would be slices of that text.
  const big = (): string =>
    `${`# ${'x'.repeat(1022)}\n`.repeat(16 * 1024)}apiVersion: steward/v1\nkind: File\nmetadata: { name: a-rather-long-file-name }\nspec: { path: srv/app/a-rather-long-file-name.conf, content: "a line of content, long enough\\n" }\n`;
  const before = await collect();
  let text: string | null = big();
  const parsed = parseRevision([{ file: 'fleet/big.yaml', text }], KINDS);
  text = null;
  /x/.exec('x'); // RegExp's legacy statics hold the last input matched (the text itself, here: one file only)
  const held = (await collect()) - before;
  assert.equal(parsed.ok, true);
  assert.equal(parsed.resources[0]!.spec['path'], 'srv/app/a-rather-long-file-name.conf');
  assert.ok(
    held < 4 * MIB,
    `the revision holds ${(held / MIB).toFixed(1)} MiB after its 16 MiB text was dropped`,
  );
});

test('the manifest cache keeps a file’s text compressed, not the text itself', async () => {
  const big = (): string =>
    `${`# ${'x'.repeat(1022)}\n`.repeat(16 * 1024)}apiVersion: steward/v1\nkind: File\nmetadata: { name: one }\nspec: { path: etc/one, content: "1\\n" }\n`;
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  await collect();
  const before = used();
  const cache = new ManifestCache();
  let text: string | null = big();
  const parsed = parseRevision([{ file: 'fleet/big.yaml', text, oid: '3'.repeat(40) }], KINDS, cache);
  text = null;
  /x/.exec('x');
  await collect();
  const held = used() - before;
  assert.equal(parsed.ok, true);
  assert.equal(cache.size, 1);
  assert.ok(held < 4 * MIB, `the cache holds ${(held / MIB).toFixed(1)} MiB for a 16 MiB manifest`);
});

test('a cached document keeps its index and start, not the parsed document (its parser events)', async () => {
  let doc: YamlDocument | null = {
    value: { big: 'x'.repeat(1000) },
    index: 2,
    start: { line: 7, col: 1 },
    locate: () => ({ line: 7, col: 1 }),
  };
  const weak = new WeakRef(doc);
  const kept = relocatable(() => 'a: 1\n---\nb: 2\n---\nc: 3\n', 'f.yaml', doc);
  doc = null;
  await collect();
  assert.equal(weak.deref(), undefined, 'the original document was freed');
  assert.equal(kept.index, 2);
  assert.deepEqual(kept.start, { line: 7, col: 1 });
  assert.deepEqual(kept.locate(['c']), { line: 5, col: 1 }, 'located by parsing the text again');
});

test('a revision parsed into the cache still locates a problem in an unchanged file', () => {
  const cache = new ManifestCache();
  const a =
    'apiVersion: steward/v1\nkind: File\nmetadata: { name: one }\nspec: { path: etc/one, content: "1\\n" }\n';
  const first = parseRevision([{ file: 'b.yaml', text: a, oid: '1'.repeat(40) }], KINDS, cache);
  assert.equal(first.ok, true);
  // A new file sorted before it defines the same resource: the duplicate is reported in the unchanged file.
  const second = parseRevision([{ file: 'a.yaml', text: a, oid: '2'.repeat(40) }], KINDS, cache, [
    { file: 'b.yaml', oid: '1'.repeat(40) },
  ]);
  assert.equal(second.ok, false);
  assert.match(JSON.stringify(second.ok ? [] : second.problems), /"file":"b.yaml","line":3/);
});
