import { booleanOf, checkUnique, fail, integerOf, listOf, nameOf, nameSetOf, objectOf, patternOf, textOf } from './input.ts';
import { compareText, sortedUnique } from './order.ts';
import { CATALOG_LIMITS } from './limits.ts';

/** The manifest schema version this release reads. */
export const MANIFEST_SCHEMA_VERSION = 1;

/**
 * What a module says about itself (manifest schema_version 1). Dependency entries name a module
 * or a capability some module `provides`.
 */
export interface Manifest {
  readonly schemaVersion: 1;
  readonly dependencies: Dependencies;
  readonly services: readonly Service[];
  readonly security: Security;
}

/** Each list sorted, each entry once. */
export interface Dependencies {
  readonly requires: readonly string[];
  readonly provides: readonly string[];
  readonly conflicts: readonly string[];
  readonly recommends: readonly string[];
}

/** A long-running service the module starts. */
export interface Service {
  readonly name: string;
  readonly command?: string;
  readonly ports: readonly number[];
}

/** What the module needs from the host. */
export interface Security {
  /** Linux capabilities, e.g. `CAP_NET_ADMIN`. */
  readonly capabilities: readonly string[];
  /** Destinations it may reach: host names, addresses or CIDR ranges, optionally `:port`. */
  readonly egressAllow: readonly string[];
  readonly privileged: boolean;
}

/** The manifest of a module that declares nothing. */
export const EMPTY_MANIFEST: Manifest = {
  schemaVersion: 1,
  dependencies: { requires: [], provides: [], conflicts: [], recommends: [] },
  services: [],
  security: { capabilities: [], egressAllow: [], privileged: false },
};

const CAPABILITY_PATTERN = /^CAP_[A-Z_]{1,32}$/;
const EGRESS_PATTERN = /^[A-Za-z0-9.:/*[\]_-]{1,253}$/;

/**
 * Checks a manifest as its file format writes it (snake_case keys: `schema_version`,
 * `egress_allow`), so a manifest from the original carries over. Absent is the empty manifest.
 */
export function manifestOf(value: unknown, path: string): Manifest {
  if (value === undefined) return EMPTY_MANIFEST;
  const raw = objectOf(value, path, ['schema_version', 'dependencies', 'services', 'security']);
  if (raw['schema_version'] !== MANIFEST_SCHEMA_VERSION) {
    fail(`${path}.schema_version`, `must be ${MANIFEST_SCHEMA_VERSION}; this node reads manifest schema ${MANIFEST_SCHEMA_VERSION} only`);
  }
  const services = listOf(raw['services'], `${path}.services`, CATALOG_LIMITS.servicesMax, serviceOf);
  checkUnique(services, `${path}.services`, (service) => service.name);
  return {
    schemaVersion: 1,
    dependencies: dependenciesOf(raw['dependencies'], `${path}.dependencies`),
    services: [...services].sort((a, b) => compareText(a.name, b.name)),
    security: securityOf(raw['security'], `${path}.security`),
  };
}

function dependenciesOf(value: unknown, path: string): Dependencies {
  if (value === undefined) return EMPTY_MANIFEST.dependencies;
  const raw = objectOf(value, path, ['requires', 'provides', 'conflicts', 'recommends']);
  const max = CATALOG_LIMITS.dependencyEntriesMax;
  return {
    requires: nameSetOf(raw['requires'], `${path}.requires`, max),
    provides: nameSetOf(raw['provides'], `${path}.provides`, max),
    conflicts: nameSetOf(raw['conflicts'], `${path}.conflicts`, max),
    recommends: nameSetOf(raw['recommends'], `${path}.recommends`, max),
  };
}

function serviceOf(value: unknown, path: string): Service {
  const raw = objectOf(value, path, ['name', 'command', 'ports']);
  const ports = listOf(raw['ports'], `${path}.ports`, CATALOG_LIMITS.servicePortsMax, (port, portPath) => integerOf(port, portPath, 1, 65_535));
  const service = { name: nameOf(raw['name'], `${path}.name`), ports: [...new Set(ports)].sort((a, b) => a - b) };
  if (raw['command'] === undefined) return service;
  return { ...service, command: textOf(raw['command'], `${path}.command`, CATALOG_LIMITS.commandCharsMax) };
}

function securityOf(value: unknown, path: string): Security {
  if (value === undefined) return EMPTY_MANIFEST.security;
  const raw = objectOf(value, path, ['capabilities', 'egress_allow', 'privileged']);
  const capabilities = listOf(raw['capabilities'], `${path}.capabilities`, CATALOG_LIMITS.capabilitiesMax, (entry, entryPath) =>
    patternOf(entry, entryPath, CAPABILITY_PATTERN, 'a Linux capability such as CAP_NET_ADMIN'),
  );
  const egress = listOf(raw['egress_allow'], `${path}.egress_allow`, CATALOG_LIMITS.egressEntriesMax, (entry, entryPath) =>
    patternOf(entry, entryPath, EGRESS_PATTERN, 'a host name, address or CIDR range, optionally with :port'),
  );
  return { capabilities: sortedUnique(capabilities), egressAllow: sortedUnique(egress), privileged: booleanOf(raw['privileged'], `${path}.privileged`, false) };
}

/** A checked manifest in its file format again (snake_case keys): what {@link manifestOf} reads back to the same manifest. */
export function manifestInput(manifest: Manifest): Record<string, unknown> {
  const { capabilities, egressAllow, privileged } = manifest.security;
  return {
    schema_version: manifest.schemaVersion,
    dependencies: manifest.dependencies,
    services: manifest.services,
    security: { capabilities, egress_allow: egressAllow, privileged },
  };
}
