// Records a real Chrome trace (Chromium's own tracing, as DevTools' Performance panel saves it:
// X, B/E, instant, async, sample, counter and metadata events from several processes) of a page
// loading and being used, so that the report is also checked on another producer's JSON.
// Usage: node record_chrome_trace.mjs PAGE.html OUT.json MODULES_DIR BROWSER
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';
import {pathToFileURL} from 'node:url';

const [pageFile, out, modulesDir, browserPath] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, 'node_modules', 'x.js'));
const puppeteer = require('puppeteer-core');
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'shk-trace-chromium-'));
const browser = await puppeteer.launch({
  executablePath: browserPath, headless: true, userDataDir: profile,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1200, height: 800});
  await page.tracing.start({path: out, screenshots: false});
  await page.goto(pathToFileURL(path.resolve(pageFile)).href, {waitUntil: 'load'});
  await page.waitForFunction(() => !window.__report || window.__report.ready || window.__report.error);
  await page.mouse.move(600, 400);
  await page.mouse.wheel({deltaY: -300});
  await new Promise((resolve) => setTimeout(resolve, 300));
  await page.tracing.stop();
} finally {
  await browser.close();
  fs.rmSync(profile, {recursive: true, force: true});
}
const events = JSON.parse(fs.readFileSync(out, 'utf8')).traceEvents;
const phases = {};
for (const e of events) phases[e.ph] = (phases[e.ph] || 0) + 1;
console.log(`${out}: ${events.length} events by phase ${JSON.stringify(phases)}`);
