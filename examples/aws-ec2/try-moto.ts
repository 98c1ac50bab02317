/**
 * Try the aws-ec2 provider against a local moto_server before a real account.
 *
 *   .venv/bin/moto_server -H 127.0.0.1 -p 5000 &            # or: pip install "moto[server]"
 *   node dist/examples/aws-ec2/try-moto.js http://127.0.0.1:5000 /tmp/steward-ec2
 *   npx steward plan -c /tmp/steward-ec2/steward.yaml
 *
 * `npm ci` (or `npm run build`) compiles it to dist/ with the agent, so it
 * needs production dependencies only: it runs after `npm prune --omit=dev`.
 *
 * It seeds moto through the SDK (a VPC, the `web` security group, instances
 * tagged Name=web-1 and Name=web-2, each a little off from Git), then writes
 * a demo directory: `desired/` (a Git repository holding this example's
 * fleet/, with the VPC id filled in) and `steward.yaml` (this example's
 * config, pointed at moto, in observe mode). Refuses any endpoint that is not
 * on the loopback interface: this script never talks to AWS.
 */
import * as fs from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import git from 'isomorphic-git';

/** This example's folder (its fleet/ and steward.yaml), from the source or from its build in dist/. */
function exampleDir(): string {
  for (const rel of ['.', '../../../examples/aws-ec2']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(join(p, 'steward.yaml')) && fs.existsSync(join(p, 'fleet'))) return p;
  }
  throw new Error('examples/aws-ec2 (steward.yaml, fleet/) not found next to this script');
}
const HERE = exampleDir();

async function seed(endpoint: string): Promise<{ vpcId: string; ids: string[]; groupId: string }> {
  // moto accepts any credentials; these never leave the machine.
  process.env['AWS_ACCESS_KEY_ID'] ??= 'testing';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'testing';
  const ec2 = new EC2Client({ region: 'eu-west-1', endpoint });
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24' }));
  const groupId = (
    await ec2.send(
      new CreateSecurityGroupCommand({ GroupName: 'web', Description: 'web tier', VpcId: vpcId }),
    )
  ).GroupId!;
  // Off from Git on purpose: SSH open to the world, https v6 missing.
  await ec2.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: groupId,
      IpPermissions: [
        {
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          IpRanges: [{ CidrIp: '0.0.0.0/0', Description: 'https' }],
        },
        { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
      ],
    }),
  );
  const image = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], MaxResults: 5 })))
    .Images?.[0];
  const ids: string[] = [];
  for (const [name, env] of [
    ['web-1', 'prod'],
    ['web-2', 'staging'],
  ] as const) {
    const r = await ec2.send(
      new RunInstancesCommand({
        ImageId: image?.ImageId ?? 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.micro',
        SubnetId: subnet.Subnet!.SubnetId!,
        SecurityGroupIds: [groupId],
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'Name', Value: name },
              { Key: 'Env', Value: env },
              { Key: 'ManagedBy', Value: 'steward' },
            ],
          },
        ],
      }),
    );
    ids.push(r.Instances![0]!.InstanceId!);
  }
  return { vpcId, ids, groupId };
}

async function writeDemo(dir: string, endpoint: string, vpcId: string): Promise<void> {
  const repo = join(dir, 'desired');
  if (fs.existsSync(join(repo, '.git'))) throw new Error(`${repo} exists already; pick a new directory`);
  await mkdir(join(repo, 'fleet'), { recursive: true });
  await git.init({ fs, dir: repo, defaultBranch: 'main' });
  for (const f of await readdir(join(HERE, 'fleet'))) {
    const text = (await readFile(join(HERE, 'fleet', f), 'utf8')).replaceAll('vpc-0123456789abcdef0', vpcId);
    await writeFile(join(repo, 'fleet', f), text);
    await git.add({ fs, dir: repo, filepath: `fleet/${f}` });
  }
  await git.commit({
    fs,
    dir: repo,
    message: 'EC2 desired state from examples/aws-ec2',
    author: { name: 'steward example', email: 'example@steward.invalid' },
  });
  const config = (await readFile(join(HERE, 'steward.yaml'), 'utf8'))
    .replace('url: https://git.example.org/infra/desired.git', 'url: desired')
    .replace('region: eu-west-1', `region: eu-west-1\n    endpoint: ${endpoint}`)
    .replace('dir: /var/lib/steward', 'dir: state');
  await writeFile(join(dir, 'steward.yaml'), config);
}

async function main(): Promise<void> {
  const [endpoint = 'http://127.0.0.1:5000', dirArg = 'steward-ec2-demo'] = process.argv.slice(2);
  const host = new URL(endpoint).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host))
    throw new Error(`refusing ${endpoint}: this script only seeds a local moto_server`);
  const dir = resolve(dirArg);
  const { vpcId, ids, groupId } = await seed(endpoint);
  await writeDemo(dir, endpoint, vpcId);
  process.stdout.write(
    [
      `seeded moto at ${endpoint}: ${vpcId}, security group ${groupId}, instances ${ids.join(', ')}`,
      `demo written to ${dir}`,
      '',
      'Next:',
      `  npx steward plan -c ${dir}/steward.yaml    # exit 2: drift, old -> new`,
      `  npx steward run -c ${dir}/steward.yaml     # observe mode; then steward mode enforce -c ${dir}/steward.yaml`,
      '',
    ].join('\n'),
  );
}

await main();
