/** The display form of a File content change as tests expect it: digests computed here, the diff written out. */
import { createHash } from 'node:crypto';

const digest = (s: string) => ({
  sha256: createHash('sha256').update(s, 'utf8').digest('hex'),
  bytes: Buffer.byteLength(s),
});

export function contentReplace(before: string, after: string, diff: string) {
  return { op: 'replace', path: '/spec/content', diff, before: digest(before), after: digest(after) };
}
