/**
 * The file provider's observe, on real files: read fresh every cycle (SPEC §1: no cache across cycles), so a
 * change is seen even when every cheap fingerprint of the file stayed the same; and the per-cycle work stays
 * synchronous (no thread-pool round trip per directory, per root check or per file: issue 12's steady cycle).
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from '../../../core/atomic-file.js';
import { fileKind } from '../../../providers/file/kind.js';
import { FileProvider } from '../../../providers/file/provider.js';
import type { DesiredResource, ObserveResult } from '../../../providers/types.js';

function fileResource(path: string, content: string): DesiredResource {
  const spec = { path, content };
  return {
    key: `File/${path}`,
    kind: 'File',
    name: path,
    spec,
    desired: fileKind.toDesired(spec),
    origin: '',
  };
}

const contentOf = (o: ObserveResult | undefined): unknown =>
  o?.status === 'present' ? (o.doc.spec as Record<string, unknown>)['content'] : o?.status;

async function fixture(t: { after: (fn: () => Promise<void>) => void }) {
  const base = await mkdtemp(join(tmpdir(), 'steward-observe-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(join(root, 'etc'), { recursive: true });
  const provider = new FileProvider({ root, stateDir: join(base, 'state') });
  return { root, provider };
}

test('a same-size change with the old mtime put back is seen at the next observe', async (t) => {
  const { root, provider } = await fixture(t);
  const r = fileResource('etc/a.conf', 'one\n');
  const path = join(root, 'etc', 'a.conf');
  const old = 1_000_000_000; // a whole second: utimes puts it back exactly
  await writeFile(path, 'one\n');
  await utimes(path, old, old);
  assert.equal(contentOf((await provider.observe([r])).get(r.key)), 'one\n');
  const before = await stat(path);
  await writeFile(path, 'two\n'); // same size
  await utimes(path, old, old); // and the mtime it had when it was read
  const after = await stat(path);
  assert.equal(after.size, before.size);
  assert.equal(after.mtimeMs, before.mtimeMs, 'size and mtime are what they were');
  assert.equal(contentOf((await provider.observe([r])).get(r.key)), 'two\n');
});

test('a change through a shared mapping (size, mtime, ctime and inode all unchanged) is seen', async (t) => {
  // A write into an already dirty page of a shared mmap does not touch the file's times until writeback: no
  // fstat fingerprint can tell the file changed; only reading it can. Needs python3 (Node has no mmap).
  const probe = spawnSync('python3', ['-c', 'import mmap'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    t.skip('python3 with mmap is not available');
    return;
  }
  const { root, provider } = await fixture(t);
  const r = fileResource('etc/m.conf', 'AAAA\n');
  const path = join(root, 'etc', 'm.conf');
  await writeFile(path, 'AAAA\n');
  // Dirty the page (a first write: times updated), then observe, then write into the same dirty page.
  const script = `
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 5)
m[0:1] = b'B'
sys.stdout.write('dirty\\n'); sys.stdout.flush()
sys.stdin.readline()
m[1:2] = b'C'
st = os.fstat(fd)
sys.stdout.write('%d %d %d %d\\n' % (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)); sys.stdout.flush()
sys.stdin.readline()
m.close(); os.close(fd)
`;
  const { spawn } = await import('node:child_process');
  const py = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    py.kill();
  });
  const lines: string[] = [];
  let buffered = '';
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const take = () => {
        const i = buffered.indexOf('\n');
        if (i < 0) return false;
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        resolve(line);
        return true;
      };
      if (take()) return;
      const on = (c: Buffer) => {
        buffered += c.toString('utf8');
        if (take()) py.stdout.off('data', on);
      };
      py.stdout.on('data', on);
    });
  lines.push(await nextLine());
  assert.equal(lines[0], 'dirty');
  const st = await stat(path, { bigint: true });
  assert.equal(contentOf((await provider.observe([r])).get(r.key)), 'BAAA\n');
  py.stdin.write('\n');
  const [size, mtime, ctime, ino] = (await nextLine()).split(' ');
  assert.deepEqual(
    [size, mtime, ctime, ino],
    [String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)],
    'the kernel kept every fingerprint of the file',
  );
  assert.equal(contentOf((await provider.observe([r])).get(r.key)), 'BCAA\n', 'and the change is seen');
  py.stdin.end('\n');
});

test('observe of converged files makes no thread-pool file system request', async (t) => {
  const { root, provider } = await fixture(t);
  const resources: DesiredResource[] = [];
  for (const dir of ['etc', 'etc/deep', 'srv']) {
    await mkdir(join(root, dir), { recursive: true });
    for (let i = 0; i < 5; i++) {
      await writeFile(join(root, dir, `f${i}`), `c${i}\n`);
      resources.push(fileResource(`${dir}/f${i}`, `c${i}\n`));
    }
  }
  await provider.observe(resources); // the first one records the root's identity (writes)
  const requests: string[] = [];
  const hook = createHook({
    init(_id, type) {
      if (type.startsWith('FSREQ') || type === 'FILEHANDLE') requests.push(type);
    },
  });
  hook.enable();
  let seen: Map<string, ObserveResult>;
  try {
    seen = await provider.observe(resources);
  } finally {
    hook.disable();
  }
  assert.equal([...seen.values()].filter((o) => o.status === 'present').length, resources.length);
  assert.deepEqual(requests, [], 'file system requests through the thread pool in one observe');
});

test('crash leftovers are swept in every folder, whichever observe batch its files come in', async (t) => {
  const { root, provider } = await fixture(t);
  const batch = provider.observeBatch ?? 1000;
  await mkdir(join(root, 'late'));
  const leftover = join(root, 'late', `${TEMP_PREFIX}torn`);
  await writeFile(leftover, 'half a write');
  const rs = [
    ...Array.from({ length: batch }, (_, i) => fileResource(`etc/f${i}.conf`, 'x\n')),
    fileResource('late/a.conf', 'x\n'), // in the second batch
  ];
  for (let i = 0; i < rs.length; i += batch) await provider.observe(rs.slice(i, i + batch));
  await assert.rejects(stat(leftover), { code: 'ENOENT' });
});
