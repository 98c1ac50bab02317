/** `steward plan`: one detect + diff pass against the current revision; acts on nothing. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblem, StewardError } from '../../core/errors.js';
import { buildProviders, KINDS } from '../../providers/registry.js';
import type { OwnedDoc } from '../../providers/types.js';
import { buildSource } from '../build.js';
import { loadConfig } from '../config.js';
import { detect } from '../detect.js';
import { displayPatchOf, formatDisplayOp } from '../patch-view.js';
import type { Revision } from '../source/source.js';
import { FileStateStore } from '../state/file-store.js';
import type { Io } from './command.js';

/** The signer line: who signed the revision, or that it is unverified (no source.verify). */
function signerLine(revision: Revision): string {
  return revision.verified ? `signed by ${revision.signer}` : 'unverified (no source.verify in the config)';
}

/**
 * Exit 0: no drift, 2: drift, 1: an error (including a resource that could not be read).
 * `verify`: only check the source's tip signatures under source.verify, as the agent would (CI gate): exit 0 or 1.
 */
export async function plan(
  opts: { config: string; json: boolean; verify?: boolean },
  io: Io,
): Promise<number> {
  const config = await loadConfig(opts.config);
  if (opts.verify && !config.source.verify)
    throw new StewardError(
      'USAGE',
      `--verify: ${opts.config} has no source.verify, so there are no signatures to check; add source.verify (docs/signatures.md)`,
    );
  // A throwaway Git cache: plan must not touch a running agent's state.
  const cache = config.source.kind === 'http' ? await mkdtemp(join(tmpdir(), 'steward-plan-')) : undefined;
  try {
    const source = buildSource(config, cache);
    const poll = await source.poll();
    if (poll.kind === 'error') throw poll.error;
    if (poll.kind === 'rejected') {
      for (const p of poll.problems) io.err(formatProblem(p));
      throw new StewardError(
        'REVISION_REJECTED',
        `revision ${poll.sha.slice(0, 12)} is invalid (${poll.problems.length} problem(s))`,
      );
    }
    const revision = source.current!;
    if (opts.verify) {
      const verified = { revision: revision.sha, verified: true, signer: revision.signer ?? null };
      if (opts.json) io.out(JSON.stringify(verified, null, 2));
      else io.out(`revision ${revision.sha.slice(0, 12)}: ${signerLine(revision)}`);
      return 0;
    }
    const state = await new FileStateStore(config.state.dir).load();
    const d = await detect(
      revision.resources,
      KINDS,
      buildProviders(config, {}, { readOnly: true }),
      (k) => state.resources[k]?.lastApplied as OwnedDoc | undefined,
    );
    const drift = d.drift.map((x) => ({
      kind: x.resource.kind,
      name: x.resource.name,
      id: x.id,
      patch: displayPatchOf(KINDS, x.resource, x.patch, x.observed),
    }));
    const errors = d.errors.map((x) => ({
      kind: x.resource.kind,
      name: x.resource.name,
      id: x.id,
      code: x.code,
      error: x.error,
    }));
    if (opts.json) {
      io.out(
        JSON.stringify(
          {
            revision: revision.sha,
            signer: revision.signer ?? null,
            verified: revision.verified ?? null,
            managed: d.managed,
            drifted: drift.length,
            drift,
            errors,
          },
          null,
          2,
        ),
      );
    } else {
      io.out(
        `revision ${revision.sha.slice(0, 12)}: ${d.managed} managed, ${drift.length} drifted, ${errors.length} unreadable`,
      );
      io.out(signerLine(revision));
      for (const x of drift) {
        io.out(`\n~ ${x.kind}/${x.name}${x.id ? ` (${x.id})` : ''}`);
        for (const op of x.patch) for (const line of formatDisplayOp(op)) io.out(line);
      }
      for (const x of errors) io.out(`\n! ${x.kind}/${x.name}: ${x.error}`);
    }
    if (errors.length > 0) return 1;
    return drift.length > 0 ? 2 : 0;
  } finally {
    if (cache) await rm(cache, { recursive: true, force: true });
  }
}
