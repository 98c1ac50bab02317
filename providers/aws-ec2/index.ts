/** The `aws-ec2` provider: kinds `Ec2Instance` and `SecurityGroup`. See docs/providers/aws-ec2.md. */
export { Ec2Provider, type Ec2ProviderOptions } from './provider.js';
export { ec2InstanceKind } from './instance-kind.js';
export { securityGroupKind } from './sg-kind.js';
export { EC2_CODES } from './observe.js';
