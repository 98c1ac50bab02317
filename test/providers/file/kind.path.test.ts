/** spec.path's rules, message by message (the normal-form check runs path.normalize only for a path that needs it). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileKind } from '../../../providers/file/kind.js';

const verdict = (path: string): string | null => {
  const problems = fileKind.validate({ path, content: 'x\n' });
  return problems.length === 0 ? null : problems.map((p) => p.message).join('; ');
};

test('spec.path: what passes and what each malformed path is told', () => {
  const cases: Array<[string, RegExp | null]> = [
    ['etc/motd', null],
    ['a', null],
    ['a.b/c..d/.e', null],
    ['a//b', /is not in normal form; write "a\/b"/],
    ['./a', /is not in normal form; write "a"/],
    ['a/./b', /is not in normal form; write "a\/b"/],
    ['a/.', /is not in normal form; write "a"/],
    ['.', /must name a file, not a directory/],
    ['./.', /must name a file, not a directory/],
    ['a/', /must name a file, not a directory/],
    ['/etc/motd', /not absolute/],
    ['a/../b', /must not contain "\.\."/],
    ['..', /must not contain "\.\."/],
    ['', /must not be empty/],
    ['a\\b', /backslash/],
  ];
  for (const [path, expected] of cases) {
    const got = verdict(path);
    if (expected === null) assert.equal(got, null, `${JSON.stringify(path)}: ${got}`);
    else assert.match(got ?? '(passed)', expected, JSON.stringify(path));
  }
});
