/**
 * Heap counting for memory tests (issue 12): bytes of heap in use after a full GC. Counted, never timed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Heap in use (bytes) after a full GC, once the current job is over (weak references are kept until then).
 * Two collections: V8 frees dead ArrayBuffers' memory (`external`, which callers may count too) on a
 * background thread after a GC, and the next GC waits for that sweep to end. With one, a loaded machine could
 * read a 16 MiB buffer already dead as still held (seen once in CI, Node 24).
 */
export async function heapAfterGc(): Promise<number> {
  await new Promise((r) => setImmediate(r));
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap in use (bytes) after a full GC, right now (from synchronous code; weak references may still be held). */
export function heapAfterGcNow(): number {
  gc();
  return process.memoryUsage().heapUsed;
}
