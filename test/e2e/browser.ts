import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, type ConsoleMessage, type Page, chromium } from 'playwright-core';
import { buildConsole } from '../../scripts/build-console.mjs';
import { CHROMIUM_FLAGS, ensureChromium } from '../../scripts/ensure-chromium.mjs';

/** Where the console's end-to-end screenshots go (git-ignored). */
export const ARTIFACTS_DIR = resolve(import.meta.dirname, '..', '..', 'test-artifacts', 'console-e2e');

/** A browser problem: an error logged in a page's console, or an exception thrown in it. */
export interface BrowserProblem {
  readonly page: string;
  readonly atMs: number;
  readonly text: string;
  /** The URL the message is about, for failed loads. */
  readonly url: string;
}

/** Headless Debian Chromium on a fresh profile, with the console built and every page's errors collected. */
export interface ConsoleBrowser {
  readonly context: BrowserContext;
  readonly problems: BrowserProblem[];
  newPage(name: string): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Installs Chromium if missing (apt-get), builds the console if its sources changed, and starts
 * the browser with the project's flags and a new, empty --user-data-dir.
 */
export async function launchConsoleBrowser(): Promise<ConsoleBrowser> {
  const executablePath = ensureChromium();
  buildConsole();
  const profile = await mkdtemp(join(tmpdir(), 'powernode-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    args: [...CHROMIUM_FLAGS],
    headless: true,
    viewport: { width: 1280, height: 800 },
  });
  const problems: BrowserProblem[] = [];
  const watch = (page: Page, name: string): void => {
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error') problems.push({ page: name, atMs: Date.now(), text: message.text(), url: message.location().url });
    });
    page.on('pageerror', (error) => problems.push({ page: name, atMs: Date.now(), text: `${error.name}: ${error.message}`, url: '' }));
  };
  const blank = context.pages();
  return {
    context,
    problems,
    async newPage(name) {
      const page = blank.pop() ?? (await context.newPage());
      watch(page, name);
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in on the console's sign-in page with an operator key file. */
export async function signIn(page: Page, keyFile: string): Promise<void> {
  await page.locator('[data-testid=key-file]').setInputFiles(keyFile);
}

/** Saves a screenshot of `page` as ARTIFACTS_DIR/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
