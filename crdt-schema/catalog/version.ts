import { fail, integerOf, nameOf, objectOf, oneOf, patternOf } from './input.ts';
import { CATALOG_LIMITS } from './limits.ts';
import { compareText } from './order.ts';
import { StateMachine } from './state-machine.ts';

/** A module version's place on the release ladder. */
export const VERSION_STATES = ['built', 'staging', 'blessed', 'live', 'retired'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/**
 * built → staging → blessed → live → retired, as the original: staging may go back to built, and
 * any state but retired may go to retired. Events are the target states.
 */
export const versionMachine = new StateMachine<VersionState, VersionState>(
  'module version',
  [
    { event: 'staging', from: ['built'], to: 'staging' },
    { event: 'built', from: ['staging'], to: 'built' },
    { event: 'blessed', from: ['staging'], to: 'blessed' },
    { event: 'live', from: ['blessed'], to: 'live' },
    { event: 'retired', from: ['built', 'staging', 'blessed', 'live'], to: 'retired' },
  ],
  'move to',
);

/** The built blob of a module version for one architecture. */
export interface Artifact {
  /** `sha256:` and 64 lowercase hex digits. */
  readonly digest: string;
}

/** A publisher's Ed25519 signature over {@link versionStatement}. */
export interface PublisherSignature {
  /** The publisher's public key, base64url (32 bytes). */
  readonly publicKey: string;
  /** base64url (64 bytes). */
  readonly signature: string;
}

/** One published version of a module. */
export interface ModuleVersion {
  readonly module: string;
  /** 1, 2, 3… per module. */
  readonly number: number;
  readonly state: VersionState;
  /** Architecture (`amd64`, `arm64`…) → artifact. */
  readonly artifacts: Readonly<Record<string, Artifact>>;
  readonly signature?: PublisherSignature;
}

/** An artifact digest: `sha256:` and 64 lowercase hex digits. */
export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
const ARCHITECTURE_PATTERN = /^[a-z0-9_]{1,32}$/;
/** base64url of 32 bytes (43 characters) or 64 bytes (86 characters). */
const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;

/** Moves a version to `to`; throws IllegalTransitionError listing the states it may move to. */
export function moveVersion(version: ModuleVersion, to: VersionState): ModuleVersion {
  return { ...version, state: versionMachine.next(version.state, to) };
}

/** Checks a module version from outside; throws {@link CatalogInputError}. */
export function moduleVersionOf(value: unknown): ModuleVersion {
  const raw = objectOf(value, 'version', ['module', 'number', 'state', 'artifacts', 'signature']);
  const module = nameOf(raw['module'], 'version.module');
  const path = `version ${JSON.stringify(module)}`;
  const version: ModuleVersion = {
    module,
    number: integerOf(raw['number'], `${path}.number`, 1, Number.MAX_SAFE_INTEGER),
    state: oneOf(raw['state'] ?? 'built', `${path}.state`, VERSION_STATES),
    artifacts: artifactsOf(raw['artifacts'], `${path}.artifacts`),
  };
  return raw['signature'] === undefined ? version : { ...version, signature: signatureOf(raw['signature'], `${path}.signature`) };
}

function signatureOf(value: unknown, path: string): PublisherSignature {
  const raw = objectOf(value, path, ['publicKey', 'signature']);
  return {
    publicKey: publisherKeyOf(raw['publicKey'], `${path}.publicKey`),
    signature: patternOf(raw['signature'], `${path}.signature`, SIGNATURE_PATTERN, 'a base64url Ed25519 signature (86 characters)'),
  };
}

/** A publisher's Ed25519 public key, base64url. */
export function publisherKeyOf(value: unknown, path: string): string {
  return patternOf(value, path, KEY_PATTERN, 'a base64url Ed25519 public key (43 characters)');
}

function artifactsOf(value: unknown, path: string): Readonly<Record<string, Artifact>> {
  const raw = objectOf(value, path);
  const architectures = Object.keys(raw).sort(compareText);
  if (architectures.length === 0) fail(path, 'a version needs an artifact for at least one architecture');
  if (architectures.length > CATALOG_LIMITS.architecturesMax) fail(path, `at most ${CATALOG_LIMITS.architecturesMax} architectures`);
  const out: Record<string, Artifact> = {};
  for (const architecture of architectures) {
    patternOf(architecture, path, ARCHITECTURE_PATTERN, 'keyed by architecture names such as amd64 or arm64');
    const artifact = objectOf(raw[architecture], `${path}.${architecture}`, ['digest']);
    out[architecture] = { digest: patternOf(artifact['digest'], `${path}.${architecture}.digest`, DIGEST_PATTERN, '"sha256:" and 64 lowercase hex digits') };
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * What a publisher signs: module, number and each architecture's digest, architectures sorted.
 * The state is not signed: promotion moves a version without its publisher.
 */
export function versionStatement(version: Pick<ModuleVersion, 'module' | 'number' | 'artifacts'>): Uint8Array {
  const artifacts = Object.keys(version.artifacts)
    .sort(compareText)
    .map((architecture) => `${architecture} ${version.artifacts[architecture]!.digest}\n`)
    .join('');
  return encoder.encode(`powernode-module-version/v1\n${version.module}\n${version.number}\n${artifacts}`);
}
