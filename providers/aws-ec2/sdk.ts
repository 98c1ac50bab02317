/**
 * The AWS SDK's EC2 client, loaded through `require` (its CommonJS build: a few bundled files) instead of
 * `import` (its ES build: hundreds of modules through Node's ESM loader): ≈ 2.5× cheaper to load, which is
 * most of `steward plan`'s start-up with aws-ec2 configured. Only this provider's modules load it, and only
 * once `providers.aws-ec2` is configured (providers/registry.ts imports the provider lazily).
 */
import { createRequire } from 'node:module';

export const sdk = createRequire(import.meta.url)(
  '@aws-sdk/client-ec2',
) as typeof import('@aws-sdk/client-ec2');
