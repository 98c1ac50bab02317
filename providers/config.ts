/**
 * The providers' config slice (`providers:` in steward.yaml), declared once:
 * the schema gives the type as written and the validation; {@link providersConfig}
 * gives what {@link buildProviders} takes (paths resolved, absent as null).
 */
import { dirname } from 'node:path';
import type { Static } from 'typebox';
import * as Type from 'typebox/type';
import { type Formats, httpUrlFormat, type Issue, label, pathFormat } from '../core/schema.js';
import type { PathSegment } from '../core/yaml.js';

const CREDENTIALS = 'credentials come from the standard AWS environment, profile or instance role';

export const PROVIDER_FORMATS: Formats = Object.freeze({
  path: pathFormat,
  'http-url': httpUrlFormat,
  'aws-region': {
    check: (s) =>
      /^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(s) ? undefined : `"${s}" is not an AWS region name (e.g. eu-west-1)`,
  },
});

export const ProvidersSchema = Type.Object(
  {
    /** The File provider: every File resource lives under `root`. */
    file: Type.Optional(
      Type.Object({ root: Type.String({ format: 'path' }) }, { additionalProperties: false }),
    ),
    /** The AWS EC2 provider (instances, security groups). */
    'aws-ec2': Type.Optional(
      Type.Object(
        {
          region: Type.String({ format: 'aws-region' }),
          endpoint: Type.Optional(Type.String({ format: 'http-url' })),
        },
        {
          additionalProperties: false,
          hints: { accessKeyId: CREDENTIALS, secretAccessKey: CREDENTIALS },
        },
      ),
    ),
  },
  { additionalProperties: false, default: {}, hints: { aws: 'use "aws-ec2"', ec2: 'use "aws-ec2"' } },
);

export type ProvidersInput = Static<typeof ProvidersSchema>;

/** The config slice the providers take: absolute paths; a provider not configured is null. */
export interface ProvidersConfig {
  /** Absolute root directory of the File provider; null when not configured. */
  readonly file: { readonly root: string } | null;
  readonly 'aws-ec2': { readonly region: string; readonly endpoint: string | null } | null;
}

/** The typed step from the validated input; `abs` resolves a path written in the config. */
export function providersConfig(p: ProvidersInput, abs: (path: string) => string): ProvidersConfig {
  const ec2 = p['aws-ec2'];
  return {
    file: p.file ? { root: abs(p.file.root) } : null,
    'aws-ec2': ec2 ? { region: ec2.region, endpoint: ec2.endpoint?.trim() ?? null } : null,
  };
}

/** What the schema cannot say: the file root must not be the filesystem root (once resolved). */
export function checkProviders(p: ProvidersConfig, path: readonly PathSegment[]): Issue[] {
  const root = p.file?.root;
  if (root === undefined || dirname(root) !== root) return [];
  const at = [...path, 'file', 'root'];
  return [
    {
      path: at,
      message: `${label(at)}: must not be the filesystem root; name the folder that holds the managed files`,
    },
  ];
}
