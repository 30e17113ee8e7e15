/**
 * Every bound the catalog's pure logic puts on its input, in one place so docs/CATALOG.md can list
 * them and a reader can see what an oversized input is refused by. Inputs come from operators,
 * fleet.yaml files and replicated documents; none of them may make a node do unbounded work.
 */
export const CATALOG_LIMITS = {
  /** Characters in a module, category, capability, service, template or pool name. */
  nameCharsMax: 64,
  /** Characters in a node reference (a peer id or a host name). */
  nodeCharsMax: 128,
  /** Modules one catalog (and so one composition) may hold. */
  modulesMax: 5_000,
  /** Modules one template may name. */
  templateModulesMax: 500,
  /** Lines in one spec field (mask, fileSpec, packageSpec, dependencySpec, protectedSpec). */
  specLinesMax: 1_000,
  /** Characters in one spec line. */
  specLineCharsMax: 1_024,
  /** Entries in each of a manifest's requires, provides, conflicts and recommends lists. */
  dependencyEntriesMax: 256,
  /** Services one manifest may declare. */
  servicesMax: 64,
  /** Ports one service may declare. */
  servicePortsMax: 64,
  /** Linux capabilities one manifest may ask for. */
  capabilitiesMax: 64,
  /** Egress destinations one manifest may allow. */
  egressEntriesMax: 256,
  /** Characters in an init command or a service command. */
  commandCharsMax: 4_096,
  /** Bytes of a module's or template module's config, as JSON. */
  configBytesMax: 65_536,
  /** Nesting depth of a config value. */
  configDepthMax: 16,
  /** Highest module or template-module priority: categories always outrank priorities. */
  priorityMax: 999,
  /** Highest category position: effective priorities fit in the original's seven digits. */
  categoryPositionMax: 9_999,
  /** Filter lines (excludes and includes) one composition may produce, over all its modules. */
  filterLinesMax: 1_000_000,
  /** Architectures one module version may carry an artifact for. */
  architecturesMax: 16,
  /** Publisher keys one trust policy may name. */
  publisherKeysMax: 16,
  /** Instance observations one promotion check may read. */
  observationsMax: 100_000,
  /** Modules one node reports running (its inventory). */
  inventoryModulesMax: 256,
  /** Nodes one template application may name. */
  nodesPerApplyMax: 10_000,
  /** Assignments one diff may compare, on each side. */
  assignmentsMax: 200_000,
  /** Highest pool max size. */
  poolSizeMax: 1_000,
  /** Members (in any state) one reaper pass may read. */
  poolMembersMax: 10_000,
  /** Characters in the actor (`by`) of a transition record. */
  actorCharsMax: 200,
  /** Characters in the reason of a transition record. */
  reasonCharsMax: 500,
} as const;
