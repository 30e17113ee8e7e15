// Benchmarks for the console (issue 6): JavaScript size, first load, and how soon a state change
// the node learns reaches the screen, against a real 3-node fleet and a 1,000-member stand-in node.
// Run: npm run bench:console        (prints one JSON object of figures, and a summary table)
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { type ApiHandlers, type LiveSocket, startHttpApi } from '../agent/api/http-server.ts';
import { decide } from '../agent/decisions.ts';
import { readOperatorKeyFile, writeOperatorKeyFile } from '../agent/key-files.ts';
import type { FleetId } from '../crdt-schema/index.ts';
import { CryptoRandom } from '../agent/adapters/crypto-random.ts';
import { certifyOperator, generateKeyPair, toBase64Url } from '../mesh/index.ts';
import { NodeProcess, type Status, cli, eventually } from '../test/helpers/cli-fleet.ts';
import { fakePeerId } from '../test/helpers/mini-fleet.ts';
import { tempDir } from '../test/helpers/temp-dir.ts';
import { launchConsoleBrowser, signIn } from '../test/e2e/browser.ts';

const BUILD_DIR = resolve(import.meta.dirname, '..', 'console', 'build');
const LOADS = 8;
const LABEL_CHANGES = 20;
const BIG_FLEET = 1_000;
const BIG_CHANGES = 20;
/** Tasks are never removed from desired/tasks, so the Tasks page must cope with many, each with output. */
const BIG_TASKS = 2_000;
const TASK_OUTPUT_CHARS = 1_024;

const now = (): number => performance.timeOrigin + performance.now();
const round = (value: number): number => Math.round(value * 10) / 10;

function stats(values: readonly number[]): { p50: number; p95: number; max: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!);
  return { p50: at(0.5), p95: at(0.95), max: round(sorted.at(-1)!), n: sorted.length };
}

async function rssMb(pid: number): Promise<number> {
  return round(Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);
}

/** Bytes of the built console's JavaScript and CSS, raw and gzipped (what a browser downloads). */
async function bundleSizes(): Promise<{ jsBytes: number; jsGzipBytes: number; cssGzipBytes: number; htmlGzipBytes: number }> {
  const totals = { jsBytes: 0, jsGzipBytes: 0, cssGzipBytes: 0, htmlGzipBytes: 0 };
  for (const name of await readdir(BUILD_DIR, { recursive: true })) {
    const kind = /\.(js|css|html)$/.exec(name)?.[1];
    if (kind === undefined) continue;
    const bytes = await readFile(join(BUILD_DIR, name));
    const gzipped = gzipSync(bytes, { level: 9 }).length;
    if (kind === 'js') {
      totals.jsBytes += bytes.length;
      totals.jsGzipBytes += gzipped;
    } else if (kind === 'css') totals.cssGzipBytes += gzipped;
    else totals.htmlGzipBytes += gzipped;
  }
  return totals;
}

/**
 * Arms a watcher in the page: resolves (at the next animation frame after the DOM shows it, i.e.
 * when it is painted) with the epoch time at which `selector` holds `text`. Await `collect` later.
 */
async function watch(page: Page, selector: string, text: string): Promise<{ collect: () => Promise<number> }> {
  await page.evaluate(
    ({ selector, text }) => {
      (window as unknown as { shown: Promise<number> }).shown = new Promise<number>((done) => {
        const seen = (): boolean => (document.querySelector(selector)?.textContent ?? '').includes(text);
        const finish = (): void => {
          requestAnimationFrame(() => done(performance.timeOrigin + performance.now()));
        };
        if (seen()) {
          finish();
          return;
        }
        const observer = new MutationObserver(() => {
          if (!seen()) return;
          observer.disconnect();
          finish();
        });
        observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      });
    },
    { selector, text },
  );
  return { collect: () => page.evaluate(() => (window as unknown as { shown: Promise<number> }).shown) };
}

/** Loads the console `LOADS` times with a cold cache and as many warm, until the member list shows. */
async function firstLoads(page: Page, url: string, members: number): Promise<Record<string, unknown>> {
  const cdp = await page.context().newCDPSession(page);
  const samples: Record<'cold' | 'warm', number[]> = { cold: [], warm: [] };
  const domContentLoaded: number[] = [];
  for (const mode of ['cold', 'warm'] as const) {
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: mode === 'cold' });
    for (let i = 0; i < LOADS; i++) {
      const started = now();
      await page.goto(url);
      await page.locator('[data-testid=member-summary]', { hasText: `${members} member` }).waitFor({ timeout: 10_000 });
      samples[mode].push(now() - started);
      domContentLoaded.push(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd));
    }
  }
  return { coldMs: stats(samples.cold), warmMs: stats(samples.warm), domContentLoadedMs: stats(domContentLoaded) };
}

/** A real fleet: first load, label and member-state latencies, and the node's RSS around it. */
async function realFleet(root: string, page: Page): Promise<Record<string, unknown>> {
  const init = JSON.parse((await cli(['fleet', 'init', '--data', join(root, 'a'), '--name', 'bench'])).stdout) as { operatorKey: string };
  const nodes = [await NodeProcess.start(join(root, 'a'))];
  try {
    for (const name of ['b', 'c']) {
      const token = (await cli(['token', 'create', '--api', nodes[0]!.ready.api, '--key', init.operatorKey])).stdout.trim();
      nodes.push(await NodeProcess.start(join(root, name), ['--join', token, '--name', name]));
    }
    const client = await nodes[0]!.client(init.operatorKey);
    await eventually(async () => ((await client.get<Status>('/api/v1/status')).members.filter((m) => m.state === 'alive').length === 3 ? true : undefined), 20_000, 'three alive');
    const rssBeforeMb = await rssMb(nodes[0]!.child.pid!);
    const url = nodes[0]!.ready.api;
    await page.goto(url);
    await signIn(page, init.operatorKey);
    await page.locator('[data-testid=member-summary]', { hasText: '3 members' }).waitFor();
    const loads = await firstLoads(page, url, 3);
    const rssAfterLoadsMb = await rssMb(nodes[0]!.child.pid!);

    // Labels: from the decision's answer (the node has recorded it) to the label painted.
    const key = await readOperatorKeyFile(init.operatorKey);
    const target = nodes[1]!.ready.peerId;
    await page.fill('[data-testid=member-search]', 'name-that-matches-nothing');
    await page.fill('[data-testid=member-search]', '');
    const afterAck: number[] = [];
    const afterSend: number[] = [];
    for (let i = 0; i < LABEL_CHANGES; i++) {
      const watcher = await watch(page, `[data-testid=member][data-peer="${target}"]`, `bench=v${i}`);
      const sentAt = now();
      await decide(client, key, 'labels', { node: target, set: { bench: `v${i}` }, remove: [] });
      const ackAt = now();
      const shownAt = await watcher.collect();
      afterAck.push(shownAt - ackAt);
      afterSend.push(shownAt - sentAt);
    }

    // Member state: from the node's member:state message (read by a client beside the browser) to the paint.
    const ws = new WebSocket(client.webSocketUrl());
    const states = new Map<string, number>();
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; peerId?: string; state?: string };
      if (message.type === 'member:state' && message.peerId === nodes[2]!.ready.peerId) states.set(message.state!, now());
    });
    await new Promise((done) => ws.once('open', done));
    const dead = await watch(page, '[data-testid=count-dead]', '1');
    const killedAt = now();
    await nodes[2]!.kill9();
    const deadShownAt = await dead.collect();
    ws.close();
    const deadLearnedAt = states.get('dead') ?? Number.NaN;
    return {
      ...loads,
      labelShownAfterAckMs: stats(afterAck),
      labelShownAfterSendMs: stats(afterSend),
      memberDeadShownAfterNodeLearnedMs: round(deadShownAt - deadLearnedAt),
      memberDeadShownAfterKillMs: round(deadShownAt - killedAt),
      nodeRssMb: { beforeConsole: rssBeforeMb, afterLoads: rssAfterLoadsMb, afterAll: await rssMb(nodes[0]!.child.pid!) },
    };
  } finally {
    // The page would go on trying to reconnect to the stopped fleet.
    await page.close();
    for (const node of nodes) await node.kill9();
  }
}

/**
 * A stand-in node of a 1,000-member fleet (status and socket only, requests not verified): how
 * the console loads, and how fast it shows member states and document changes at that size.
 */
async function bigFleet(root: string, page: Page): Promise<Record<string, unknown>> {
  const random = new CryptoRandom();
  const rootKeys = generateKeyPair(random);
  const keys = generateKeyPair(random);
  const fleetId = 'be'.repeat(16) as FleetId;
  const operator = certifyOperator(rootKeys.seed, fleetId, { publicKey: toBase64Url(keys.publicKey), name: 'bench', addedAt: 1 });
  const keyFile = join(root, 'big-operator.key');
  await writeOperatorKeyFile(keyFile, fleetId, keys, operator);
  const members = Array.from({ length: BIG_FLEET }, (_, i) => ({
    peerId: fakePeerId(i),
    name: `node-${String(i).padStart(4, '0')}`,
    state: 'alive',
    connected: i < 32,
    self: i === 0,
    labels: { zone: `z${i % 8}`, role: i % 10 === 0 ? 'gateway' : 'worker' },
    joinedAt: 1,
    hostname: `host-${i}`,
    arch: 'x64',
    addrs: [`/ip4/10.0.${i >> 8}.${i & 255}/tcp/7421`],
    api: `http://127.0.0.1:${20_000 + i}`,
    startedAt: 1,
  }));
  const status = () => ({ fleetId, fleetName: 'big', self: { peerId: members[0]!.peerId, addrs: [], api: null, startedAt: 1 }, members, docs: [], docProblems: [], peers: [], connectedPeers: [] });
  const taskStates = ['complete', 'failed', 'aborted', 'running', 'pending'] as const;
  const tasks = Array.from({ length: BIG_TASKS }, (_, i) => {
    const state = taskStates[i % taskStates.length]!;
    const at = 1_800_000_000_000 + i * 1_000;
    const lease = { leaseId: `1:t-${i}`, node: members[i % BIG_FLEET]!.peerId, epoch: 1, until: at + 60_000, at };
    const run = state === 'pending' ? undefined : { leaseId: lease.leaseId, epoch: 1, state, startedAt: at + 10, ...(state === 'running' ? {} : { endedAt: at + 500, exitCode: state === 'complete' ? 0 : 1, output: `line ${i}\n`.padEnd(TASK_OUTPUT_CHARS, 'x') }) };
    return { id: `t-${i}`, node: lease.node, command: '/usr/bin/env', args: ['sh', '-c', `echo ${i}`], timeoutMs: 600_000, requestedAt: at, state, cancelRequested: false, ...(state === 'pending' ? {} : { lease }), ...(run === undefined ? {} : { run }) };
  });
  let taskReads = 0;
  const sockets: LiveSocket[] = [];
  const handlers: ApiHandlers = {
    request: async (request) => {
      if (request.url.startsWith('/api/v1/status')) return { status: 200, json: status() };
      if (request.url.startsWith('/api/v1/tasks')) {
        taskReads += 1;
        return { status: 200, json: { tasks } };
      }
      return { status: 200, json: { events: [] } };
    },
    upgrade: async () => (socket) => {
      sockets.push(socket);
      socket.send({ type: 'hello', fleetId, peerId: members[0]!.peerId });
    },
  };
  const server = await startHttpApi('127.0.0.1', 0, handlers, { consoleDir: BUILD_DIR });
  try {
    await page.goto(server.url);
    await signIn(page, keyFile);
    await page.locator('[data-testid=member-summary]', { hasText: `${BIG_FLEET} members` }).waitFor();
    const loads = await firstLoads(page, server.url, BIG_FLEET);
    await eventually(async () => (sockets.length > 0 ? true : undefined), 5_000, 'console socket');
    const socket = (): LiveSocket => sockets.at(-1)!;
    await page.locator('[data-testid=connection][data-state=live]').waitFor();

    const stateMs: number[] = [];
    for (let i = 0; i < BIG_CHANGES; i++) {
      const watcher = await watch(page, '[data-testid=count-dead]', String(i + 1));
      const sentAt = now();
      socket().send({ type: 'member:state', peerId: members[100 + i]!.peerId, state: 'dead', previous: 'alive' });
      stateMs.push((await watcher.collect()) - sentAt);
    }
    // A document change: the console reads the whole 1,000-member status again and shows the label.
    const docMs: number[] = [];
    const target = members[500]!;
    await page.fill('[data-testid=member-search]', target.name);
    for (let i = 0; i < BIG_CHANGES; i++) {
      const watcher = await watch(page, `[data-testid=member][data-peer="${target.peerId}"]`, `bench=v${i}`);
      target.labels = { ...target.labels, bench: `v${i}` } as typeof target.labels;
      const sentAt = now();
      socket().send({ type: 'doc:changed', docId: 'fleet', origin: 'bench' });
      docMs.push((await watcher.collect()) - sentAt);
    }
    const statusBytes = Buffer.byteLength(JSON.stringify(status()));

    // The Tasks page with 2,000 tasks: from the click to the newest on screen, then what reading
    // them again every 2 s costs the page (main-thread time per read, from long-task entries).
    await page.fill('[data-testid=member-search]', '');
    const taskShownMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      await page.click('nav a[href="/"]');
      await page.locator('[data-testid=member-summary]').waitFor();
      const watcher = await watch(page, '[data-testid=task-summary]', `${BIG_TASKS} tasks`);
      const clickedAt = now();
      await page.click('nav a[href="/tasks"]');
      taskShownMs.push((await watcher.collect()) - clickedAt);
    }
    await page.locator(`[data-testid=task][data-id="t-${BIG_TASKS - 1}"]`).waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { longTaskMs: number };
      w.longTaskMs = 0;
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) w.longTaskMs += entry.duration;
      }).observe({ type: 'longtask' });
    });
    const readsBefore = taskReads;
    const windowMs = 10_000;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const reads = taskReads - readsBefore;
    const longTaskMs = await page.evaluate(() => (window as unknown as { longTaskMs: number }).longTaskMs);
    const detailWatcher = await watch(page, '[data-testid=task-detail]', `t-${BIG_TASKS - 1}`);
    const clickedAt = now();
    await page.click(`[data-testid=task][data-id="t-${BIG_TASKS - 1}"]`);
    const detailMs = (await detailWatcher.collect()) - clickedAt;
    await page.click('nav a[href="/"]');
    const taskPage = { tasks: BIG_TASKS, tasksJsonBytes: Buffer.byteLength(JSON.stringify({ tasks })), shownAfterClickMs: stats(taskShownMs), readsIn10s: reads, longTaskMsIn10s: round(longTaskMs), detailShownMs: round(detailMs) };
    return { members: BIG_FLEET, statusJsonBytes: statusBytes, ...loads, memberStateShownMs: stats(stateMs), docChangeShownMs: stats(docMs), taskPage };
  } finally {
    await server.close();
  }
}

const started = Date.now();
const root = await tempDir('powernode-bench-console-');
const browser = await launchConsoleBrowser();
try {
  const sizes = await bundleSizes();
  const real = await realFleet(root.path, await browser.newPage('real'));
  const big = await bigFleet(root.path, await browser.newPage('big'));
  const figures = { benchmark: 'console', date: new Date().toISOString(), bundle: sizes, realFleet: real, bigFleet: big, browserProblems: browser.problems.slice(0, 20), wallMs: Date.now() - started };
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  const r = real as Record<string, { p50: number; p95: number; max: number }>;
  const b = big as Record<string, { p50: number; p95: number; max: number }>;
  process.stderr.write(
    [
      '',
      `JavaScript: ${(sizes.jsBytes / 1024).toFixed(1)} KiB, ${(sizes.jsGzipBytes / 1024).toFixed(1)} KiB gzipped (target ≤ 200 KB)`,
      `First load, 3 members: cold p50 ${r['coldMs']!.p50} / max ${r['coldMs']!.max} ms, warm p50 ${r['warmMs']!.p50} ms (target ≤ 1 s)`,
      `First load, 1,000 members: cold p50 ${b['coldMs']!.p50} / max ${b['coldMs']!.max} ms, warm p50 ${b['warmMs']!.p50} ms`,
      `Label on screen after the node's answer: p50 ${r['labelShownAfterAckMs']!.p50} / p95 ${r['labelShownAfterAckMs']!.p95} / max ${r['labelShownAfterAckMs']!.max} ms (target ≤ 250 ms)`,
      `Member dead on screen after the node learned it: ${String(real['memberDeadShownAfterNodeLearnedMs'])} ms (${String(real['memberDeadShownAfterKillMs'])} ms after kill -9)`,
      `1,000 members: member state on screen p50 ${b['memberStateShownMs']!.p50} / max ${b['memberStateShownMs']!.max} ms; document change p50 ${b['docChangeShownMs']!.p50} / max ${b['docChangeShownMs']!.max} ms`,
      `Tasks page, ${BIG_TASKS} tasks: ${JSON.stringify(big['taskPage'])}`,
      `Node RSS: ${JSON.stringify(real['nodeRssMb'])}`,
      '',
    ].join('\n'),
  );
} finally {
  await browser.close();
  await root.remove();
}
