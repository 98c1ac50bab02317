/**
 * What a parsed revision keeps alive while it is in force (issue 12: peak RSS at 100k). Counted in bytes of
 * heap after a full GC, on inputs where the difference is tens of MiB: never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { ManifestCache, parseRevision } from '../../agent/manifest.js';
import { KINDS } from '../../providers/registry.js';
import { heapAfterGc as collect, heapAfterGcNow } from '../helpers/heap.js';

const MIB = 1024 * 1024;

/** `count` manifests of 100 Files each, with blob ids; `content` gives each File's one line of content. */
const fleetFiles = (count: number, content: (i: number) => string) =>
  Array.from({ length: count }, (_, f) => ({
    file: `fleet/part-${f}.yaml`,
    oid: f.toString(16).padStart(40, '0'),
    text: Array.from(
      { length: 100 },
      (_, i) =>
        `apiVersion: steward/v1\nkind: File\nmetadata: { name: f-${f}-${i} }\nspec: { path: srv/f-${f}-${i}.conf, content: "${content(i)}\\n" }\n`,
    ).join('---\n'),
  }));

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

test('the manifest cache keeps the compressed bytes of each file, not the chunks zlib wrote them into', async () => {
  // 200 files of ≈ 20 KB of YAML, ≈ 8 KB each compressed: held in zlib's 16 KiB output chunk, twice that.
  let seed = 1;
  const noise = (): string => {
    let out = '';
    for (let k = 0; k < 8; k++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      out += seed.toString(16).padStart(8, '0');
    }
    return out;
  };
  const files = fleetFiles(200, noise);
  // The compressed bytes, and 12 bytes per resource of where its document starts.
  const packed = files.reduce(
    (n, f) => n + deflateRawSync(Buffer.from(f.text, 'utf8'), { level: 1 }).length + 100 * 12,
    0,
  );
  // Backing stores are freed by a sweeper after the GC: settled by a second one.
  await collect();
  await collect();
  const before = process.memoryUsage().arrayBuffers;
  const cache = new ManifestCache();
  assert.equal(parseRevision(files, KINDS, cache).ok, true);
  await collect();
  await collect();
  const held = process.memoryUsage().arrayBuffers - before;
  assert.equal(cache.size, 200);
  assert.ok(held < 1.2 * packed, `the cache holds ${held} bytes of buffers for ${packed} compressed bytes`);
});

test('the manifest cache keeps no object per resource beyond the resource itself', async () => {
  // 20k Files in 200 manifests, parsed with and without a cache: what the cache adds on the heap is its own.
  // A parsed document per resource (its parser events) would be ≈ 3 KB each; a stand-in with its start and
  // a closure to find it again ≈ 300 bytes; the index and start of each in a typed array, 12.
  const N = 20_000;
  const files = fleetFiles(N / 100, (i) => `line ${i}`);
  const held = async (withCache: boolean): Promise<number> => {
    const before = await collect();
    const cache = withCache ? new ManifestCache() : undefined;
    const parsed = parseRevision(files, KINDS, cache);
    const after = await collect();
    assert.equal(parsed.ok && parsed.resources.length, N);
    assert.equal(cache?.size ?? 200, 200);
    return after - before;
  };
  const plain = await held(false);
  const cached = await held(true);
  const perResource = (cached - plain) / N;
  assert.ok(perResource < 64, `the cache holds ${perResource.toFixed(0)} bytes of heap per resource`);
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

test('no file’s parser events outlive its parse: the heap at the revision’s last check holds only its resources', async () => {
  // The File kind's whole-revision check runs after every file is parsed: what is alive then, over what the
  // returned revision holds, is what parsing kept of the files already done (their documents and events).
  let atLastCheck = 0;
  const file = KINDS.get('File')!;
  const kinds = new Map(KINDS);
  kinds.set('File', {
    ...file,
    validateAll: (rs) => {
      atLastCheck = heapAfterGcNow();
      return file.validateAll?.(rs) ?? [];
    },
  });
  const files = fleetFiles(100, (i) => `line ${i}`);
  for (const cache of [undefined, new ManifestCache({ oneShot: true }), new ManifestCache()]) {
    const parsed = parseRevision(files, kinds, cache);
    assert.equal(parsed.ok, true);
    const afterReturn = await collect();
    assert.equal(parsed.resources.length, 10_000);
    const kept = atLastCheck - afterReturn;
    assert.ok(
      kept < 8 * MIB, // the documents of 10,000 resources: ≈ 28–32 MiB when each file's were kept to the end
      `${(kept / MIB).toFixed(1)} MiB more alive at the last check than after the parse`,
    );
  }
});
