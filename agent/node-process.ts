import { arch, hostname, platform } from 'node:os';
import { readFile, rm, writeFile } from 'node:fs/promises';
import {
  FleetNode,
  type FleetNodePorts,
  type Logger,
  NotInFleetError,
  decodeJoinString,
  readFleetIdFromStorage,
} from '../mesh/index.ts';
import { ControlPlane, TaskRunner, dispatcherPorts, dispatcherSpec, instancePorts, instanceReconcilerSpec, registerInstanceExecutors } from '../actors/index.ts';
import { PoolMemberAgent, poolPorts, poolsSpec } from '../actors/index.ts';
import { ExecaProcessRunner } from './adapters/execa-process-runner.ts';
import { FileModuleInventory } from './adapters/file-module-inventory.ts';
import { CryptoRandom } from './adapters/crypto-random.ts';
import { LevelStorage, StorageLockedError } from './adapters/level-storage.ts';
import { Libp2pTransport } from './adapters/libp2p-transport.ts';
import { SystemClock } from './adapters/system-clock.ts';
import { WorkerPoolVerifier } from './adapters/worker-pool-verifier.ts';
import { apiHandlers } from './api/routes.ts';
import { type ApiServer, startHttpApi } from './api/http-server.ts';
import { type DataDir, assertKeyFilesPrivate, loadOrCreateIdentity } from './data-dir.ts';
import { POWERNODE_VERSION } from './version.ts';

export interface NodeStartOptions {
  readonly dir: DataDir;
  readonly listen: readonly string[];
  readonly apiHost: string;
  readonly apiPort: number;
  readonly join?: string;
  readonly name?: string;
  readonly log: Logger;
  /** Serves the fault-injection endpoints (tests and drills: partitions, stale orders). */
  readonly faultInjection?: boolean;
}

/** A running node process: the core plus its real adapters and API server. */
export interface RunningNode {
  readonly node: FleetNode;
  readonly controlPlane: ControlPlane;
  readonly api: ApiServer;
  readonly ready: { peerId: string; addrs: string[]; api: string };
  stop(): Promise<void>;
}

/** Thrown when the data directory is in use by another node process. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

/** Starts a node: storage, identity, libp2p, the fleet core and the API. */
export async function startNode(options: NodeStartOptions): Promise<RunningNode> {
  const { dir, log } = options;
  const joinInfo = options.join === undefined ? undefined : decodeJoinString(options.join);
  await assertKeyFilesPrivate(dir);
  const { privateKey, peerId } = await loadOrCreateIdentity(dir);
  let storage: LevelStorage;
  try {
    storage = await LevelStorage.open(dir.stateDir);
  } catch (error) {
    if (error instanceof StorageLockedError) {
      const pid = await readFile(dir.pidFile, 'utf8').catch(() => 'unknown');
      throw new DataDirInUseError(`${dir.root} is in use by another powernode process (pid ${pid.trim()}): stop it or use another --data directory`);
    }
    throw error;
  }
  const cleanups: Array<() => Promise<void>> = [() => storage.close()];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step().catch((error: unknown) => log.warn('shutdown step failed', { error: String(error) }));
  };
  try {
    await writeFile(dir.pidFile, `${process.pid}\n`);
    cleanups.push(() => rm(dir.pidFile, { force: true }));
    const fleetId = (await readFleetIdFromStorage(storage)) ?? joinInfo?.fleetId;
    if (fleetId === undefined) throw new NotInFleetError(`${dir.root} belongs to no fleet: run "powernode fleet init --data ${dir.root}" or start with --join`);
    const transport = await Libp2pTransport.create({ privateKey, listen: options.listen, fleetId });
    cleanups.push(() => transport.stop());
    let runtime: { node: FleetNode; controlPlane: ControlPlane } | undefined;
    const clock = new SystemClock();
    const api = await startHttpApi(options.apiHost, options.apiPort, apiHandlers(() => runtime, clock, { faultInjection: options.faultInjection === true }));
    cleanups.push(() => api.close());
    const verifier = new WorkerPoolVerifier();
    const ports: FleetNodePorts = {
      // An Ed25519 libp2p key's raw form is its 32-byte seed followed by its public key.
      identity: { seed: privateKey.raw.subarray(0, 32), publicKey: privateKey.raw.subarray(32) },
      signatureVerifier: verifier,
      transport,
      storage,
      clock,
      random: new CryptoRandom(),
      log,
      host: { hostname: hostname(), arch: arch(), platform: platform(), versions: { powernode: POWERNODE_VERSION, node: process.versions.node } },
      modules: new FileModuleInventory(dir.modulesFile),
    };
    const core = joinInfo === undefined ? await FleetNode.open(ports) : await FleetNode.join(ports, joinInfo, options.name ?? joinInfo.name ?? hostname());
    await core.start({ apiUrl: api.url });
    cleanups.push(() => core.stop());
    await core.waitForFleet();
    const controlPlane: ControlPlane = new ControlPlane({
      node: core,
      transport,
      clock,
      log,
      storage,
      singletons: [dispatcherSpec(), instanceReconcilerSpec(), poolsSpec()],
      ports: { ...dispatcherPorts(core, clock, () => controlPlane), ...instancePorts(core, clock, () => controlPlane), ...poolPorts(core, clock, () => controlPlane) },
    });
    const runner = new ExecaProcessRunner();
    const tasks = new TaskRunner({ node: core, runner, clock, log });
    tasks.register(controlPlane);
    new PoolMemberAgent({ node: core, clock }).register(controlPlane);
    const reboot = process.env['POWERNODE_REBOOT_COMMAND']?.split(' ').filter(Boolean);
    // An operator's `instance stop` ends this process cleanly, as SIGTERM does (a supervisor may start it again).
    registerInstanceExecutors(controlPlane, { node: core, stopSelf: () => process.kill(process.pid, 'SIGTERM'), reboot, runner, clock, log });
    await tasks.start();
    await controlPlane.start();
    // Stopped before the core: its singletons are handed over (recorded) while the mesh is up.
    cleanups.push(() => controlPlane.stop());
    // Running commands are stopped (and recorded aborted) first.
    cleanups.push(() => tasks.stop());
    runtime = { node: core, controlPlane };
    return {
      node: core,
      controlPlane,
      api,
      ready: { peerId, addrs: transport.listenAddresses(), api: api.url },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
