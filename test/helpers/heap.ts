/**
 * Heap counting for memory tests (issue 12): bytes of heap in use after a full GC. Counted, never timed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use (bytes) after a full GC, once the current job is over (weak references are kept until then). */
export async function heapAfterGc(): Promise<number> {
  await new Promise((r) => setImmediate(r));
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap in use (bytes) after a full GC, right now (from synchronous code; weak references may still be held). */
export function heapAfterGcNow(): number {
  gc();
  return process.memoryUsage().heapUsed;
}
