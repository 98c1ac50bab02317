/** `steward validate DIR`: parse and validate every manifest under DIR, acting on nothing. */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { errorMessage, formatProblem, StewardError } from '../../core/errors.js';
import { escapeControls } from '../../core/text.js';
import { KINDS } from '../../providers/registry.js';
import { type ManifestFile, parseRevision } from '../manifest.js';
import type { Io } from './command.js';

/** Collects *.yaml / *.yml under a directory (skipping dot-folders such as .git). */
export async function collectManifests(root: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith('.')) await walk(p);
      else if (e.isFile() && /\.ya?ml$/i.test(e.name))
        out.push({ file: relative(process.cwd(), p) || p, text: await readFile(p, 'utf8') });
    }
  };
  await walk(root);
  return out;
}

/** Exit 0 when every manifest is valid, 1 with one `file:line:col: message` line per problem on stdout. */
export async function validate(dir: string, io: Io): Promise<number> {
  let files: ManifestFile[];
  try {
    files = await collectManifests(dir);
  } catch (e) {
    throw new StewardError('USAGE', `cannot read ${dir}: ${errorMessage(e)}`);
  }
  const parsed = parseRevision(files, KINDS);
  if (!parsed.ok) {
    // A problem quotes the manifest (a key, a value): its control characters are shown escaped.
    for (const p of parsed.problems) io.out(escapeControls(formatProblem(p)));
    io.err(`${parsed.problems.length} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  io.err(`ok: ${parsed.resources.length} resource(s) in ${files.length} file(s)`);
  return 0;
}
