/**
 * `steward plan` on a security group in a real moto_server: the old value of a
 * changed rule is shown, not only the new one (SSH open to the world must be
 * visible in the plan), and a manual freeze shows as held.
 */
import { AuthorizeSecurityGroupIngressCommand, RevokeSecurityGroupIngressCommand } from '@aws-sdk/client-ec2';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../agent/cli.js';
import { setupEc2Fleet } from '../helpers/ec2-fleet.js';
import { motoForThisFile } from '../helpers/moto.js';

const moto = motoForThisFile();

async function plan(configPath: string, args: string[] = []): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await main(
    ['plan', '-c', configPath, ...args],
    { out: (s) => out.push(s), err: (s) => out.push(s) },
    {},
  );
  return { code, out: out.join('\n') };
}

test('a security group rule opened to the world: old → new in text and markdown, held while frozen', async (t) => {
  let sg = '';
  const ctx = await setupEc2Fleet(
    t,
    moto(),
    async (w) => {
      sg = await w.group('web');
      await w.client.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: sg,
          IpPermissions: [
            { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8' }] },
          ],
        }),
      );
      return [
        `apiVersion: steward/v1\nkind: SecurityGroup\nmetadata: { name: web-sg }\nspec:\n  selector: { groupName: web, vpcId: ${w.vpcId} }\n  ingress:\n    - { protocol: tcp, fromPort: 22, toPort: 22, cidr: 10.0.0.0/8 }\n`,
      ];
    },
    'soak: { observeCycles: 0 }',
  );
  assert.equal((await ctx.cycle()).report.drifted, 0);
  assert.equal((await plan(ctx.h.configPath)).code, 0, 'no drift: exit 0');

  // Someone replaces the rule by one open to the world.
  const ssh = (cidr: string) => ({
    GroupId: sg,
    IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: cidr }] }],
  });
  await ctx.world.client.send(new RevokeSecurityGroupIngressCommand(ssh('10.0.0.0/8')));
  await ctx.world.client.send(new AuthorizeSecurityGroupIngressCommand(ssh('0.0.0.0/0')));
  const text = await plan(ctx.h.configPath);
  assert.equal(text.code, 2, text.out);
  assert.match(text.out, new RegExp(`^~ SecurityGroup/web-sg \\(${sg}\\): update$`, 'm'));
  assert.match(text.out, /^ {4}~ spec\.ingress\[0\]\.cidr: "0\.0\.0\.0\/0" → "10\.0\.0\.0\/8"$/m);
  const md = await plan(ctx.h.configPath, ['--format', 'markdown']);
  assert.match(
    md.out,
    /^- spec\.ingress\[0\]\.cidr: "0\.0\.0\.0\/0"\n\+ spec\.ingress\[0\]\.cidr: "10\.0\.0\.0\/8"$/m,
  );

  await ctx.h.agent.freeze('change freeze', 'ops');
  const frozen = await plan(ctx.h.configPath);
  assert.equal(frozen.code, 2);
  assert.match(frozen.out, /: update, held: frozen$/m);
  assert.match(frozen.out, /^Plan: 0 to create, 1 to update; 1 held \(frozen\)\.$/m);
});
