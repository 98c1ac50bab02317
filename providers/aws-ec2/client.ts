/**
 * The EC2 client steward uses, and how its errors are read.
 *
 * - Region and optional endpoint come from the config; credentials from the
 *   SDK's default provider chain (environment, shared config / SSO profile,
 *   web identity, container or instance role). steward never reads keys.
 * - The SDK retries throttling (`RequestLimitExceeded`) and transient errors
 *   with its standard strategy, `maxAttempts` in all (3 by default). After
 *   that the call fails, the resource is marked failed, and the agent's
 *   per-resource backoff takes over.
 * - Every HTTP request (each retry counts) is reported to `onRequest` with
 *   the API operation name (`DescribeInstances`), by a middleware placed
 *   inside the retry loop.
 */
import type { EC2Client as Ec2ClientType } from '@aws-sdk/client-ec2';
import { sdk } from './sdk.js';

const { EC2Client } = sdk;

export interface Ec2ClientOptions {
  region: string;
  endpoint?: string | null | undefined;
  /** Attempts per call, retries included. */
  maxAttempts?: number | undefined;
  onRequest?: ((operation: string) => void) | undefined;
}

const DEFAULT_MAX_ATTEMPTS = 3;

export function createEc2Client(opts: Ec2ClientOptions): Ec2ClientType {
  const client = new EC2Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true },
  });
  const onRequest = opts.onRequest;
  if (onRequest)
    client.middlewareStack.add(
      (next, context) => async (args) => {
        onRequest(String(context.commandName ?? 'Unknown').replace(/Command$/, ''));
        return next(args);
      },
      // finalizeRequest runs once per attempt (the retry middleware wraps it); `low` = after signing.
      { step: 'finalizeRequest', priority: 'low', name: 'stewardRequestCounter' },
    );
  return client;
}

/** The parts of an SDK error steward looks at. */
interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
]);

/** The AWS error code (`UnauthorizedOperation`, `InvalidInstanceID.NotFound`, …), or `UNKNOWN`. */
export function awsCode(e: unknown): string {
  const name = (e as SdkErrorShape | null)?.name;
  return typeof name === 'string' && name !== 'Error' ? name : 'UNKNOWN';
}

/** The error's message, made short: no encoded authorization blob, at most 300 characters. */
export function awsMessage(e: unknown): string {
  const raw = (e as SdkErrorShape | null)?.message;
  let m = typeof raw === 'string' ? raw : String(e);
  m = m.replace(
    /\s*Encoded authorization failure message:.*$/s,
    ' (decode the failure with sts decode-authorization-message)',
  );
  return m.length > 300 ? `${m.slice(0, 297)}...` : m;
}

function isThrottling(e: unknown): boolean {
  const s = e as SdkErrorShape | null;
  return THROTTLING.has(awsCode(e)) || s?.$retryable?.throttling === true;
}

/**
 * Whether the error is about the request's content (a bad or missing id, a
 * permission that resource-level IAM denies, a wrong state), so that trying
 * the ids of a batch one by one tells which of them is at fault. Throttling,
 * network and server errors are not: splitting would only add load.
 */
export function isPerResource(e: unknown): boolean {
  const s = e as SdkErrorShape | null;
  if (isThrottling(e)) return false;
  const status = s?.$metadata?.httpStatusCode;
  return s?.$fault === 'client' && status !== undefined && status >= 400 && status < 500;
}

export const NOT_FOUND_CODES: ReadonlySet<string> = new Set([
  'InvalidInstanceID.NotFound',
  'InvalidInstanceID.Malformed',
  'InvalidGroup.NotFound',
  'InvalidGroupId.Malformed',
]);
