/** Which full refs a configured `source.ref` names: `refs/…` as written, else the branch, then the tag. */
export function refCandidates(ref: string): string[] {
  return ref.startsWith('refs/') ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
}
