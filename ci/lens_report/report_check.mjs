// Opens a report that `shmkit lens report` wrote in headless Chromium (puppeteer-core) and checks
// it the way a person would use it: it loads from disk with zero console errors and zero network
// requests, finds the expected tracks, frames, zones and markers (window.__report.stats) and draws
// them all in the whole-trace view (window.__report.drawn), a click on a frame bar zooms to that
// frame, the wheel zooms, a drag pans, hovering a zone shows its name, duration and arguments.
// Screenshots go to SHOTS_DIR/NAME-*.png. Prints "N passed, N failed" and the load timings.
// Usage: node report_check.mjs REPORT.html EXPECT.json SHOTS_DIR NAME MODULES_DIR [CHROMIUM or FIREFOX]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';
import {pathToFileURL} from 'node:url';

const [html, expectFile, shotsDir, name, modulesDir, chromium = '/usr/bin/chromium'] = process.argv.slice(2);
const expect = JSON.parse(fs.readFileSync(expectFile, 'utf8'));
const require = createRequire(path.join(modulesDir, 'node_modules', 'x.js'));
const puppeteer = require('puppeteer-core');
const READY_CEILING_MS = Number(process.env.SHK_REPORT_READY_CEILING_MS || 180000);

let passed = 0, failed = 0;
// The list of logs follows the view after a short delay: let it catch up before a screenshot.
const settle = () => new Promise((resolve) => setTimeout(resolve, 250));
function check(title, ok, detail = '') {
  if (ok) { passed++; console.log(`ok: ${name}: ${title}`); }
  else { failed++; console.log(`FAILED: ${name}: ${title} ${detail}`); }
}

fs.mkdirSync(shotsDir, {recursive: true});
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'shk-report-chromium-'));
// A Firefox path (its name holds "firefox") is driven through WebDriver BiDi instead.
const firefox = /firefox/i.test(path.basename(chromium));
const browser = await puppeteer.launch({
  browser: firefox ? 'firefox' : 'chrome',
  executablePath: chromium,
  headless: true,
  userDataDir: profile,
  args: firefox ? [] : ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--no-default-browser-check'],
  protocolTimeout: READY_CEILING_MS + 60000,
});
const pageUrl = pathToFileURL(path.resolve(html)).href;
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1600, height: 1000});
  const consoleErrors = [], requests = [], dialogs = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on('request', (r) => { if (r.url() !== pageUrl && !r.url().startsWith('data:')) requests.push(r.url()); });

  const started = Date.now();
  await page.goto(pageUrl, {waitUntil: 'load', timeout: READY_CEILING_MS});
  await page.waitForFunction(() => window.__report && (window.__report.ready || window.__report.error),
                             {timeout: READY_CEILING_MS, polling: 100});
  const wallMs = Date.now() - started;
  const r = await page.evaluate(() => ({stats: __report.stats, drawn: __report.drawn, error: __report.error,
                                        timings: __report.timings, view: __report.view}));
  check('the page loads without an error', !r.error, r.error || '');
  const s = r.stats || {};
  // Counts the expect file names must match exactly; the page must draw all it found.
  for (const key of ['processes', 'threads', 'counterTracks', 'tracks', 'frames', 'zones', 'markers', 'counterSamples', 'skipped'])
    if (key in expect) check(`${key}: ${expect[key]}`, s[key] === expect[key], `got ${s[key]}`);
  const d = r.drawn || {};
  if (d.allTracksFit || expect.tracks !== undefined) {
    check(`the whole-trace view draws every track (${s.tracks})`, d.tracks === s.tracks, `drew ${d.tracks}`);
    check(`the whole-trace view draws every zone, merged below a pixel (${s.zones})`, d.zones === s.zones, `drew ${d.zones}`);
    check(`the whole-trace view draws every marker (${s.markers})`, d.markers === s.markers, `drew ${d.markers}`);
  } else { // more tracks than the window's height: all that the rows in view hold
    check(`the whole-trace view draws every zone of the rows in view (${d.zonesInRows} of ${s.zones})`,
          d.zones === d.zonesInRows && d.zones > 0, `drew ${d.zones}`);
    check(`the whole-trace view draws every marker of the rows in view (${d.markersInRows} of ${s.markers})`,
          d.markers === d.markersInRows, `drew ${d.markers}`);
  }
  for (const key in expect.atLeast || {})
    check(`${key}: at least ${expect.atLeast[key]} (${s[key]})`, s[key] >= expect.atLeast[key]);
  check(`the frame bars show every frame (${s.frames})`, (d.frames || 0) === s.frames, `drew ${d.frames}`);
  check(`it draws at most a few boxes per pixel (${d.rects} boxes)`, d.rects <= 1600 * 4 * 60, '');
  const t = r.timings || {};
  console.log(`${name}: ${s.zones} zones: interactive ${(t.readyMs / 1000).toFixed(2)} s after navigation ` +
              `(JSON.parse ${t.parseMs?.toFixed(0)} ms, model ${t.buildMs?.toFixed(0)} ms, first draw ` +
              `${t.firstDrawMs?.toFixed(0)} ms; ${wallMs} ms as the test saw it)`);
  if (!firefox) {
    const heap = (await page.metrics()).JSHeapUsedSize;
    console.log(`${name}: JavaScript heap in use after loading: ${(heap / 1048576).toFixed(0)} MiB`);
  }
  check(`interactive within ${READY_CEILING_MS / 1000} s`, t.readyMs < READY_CEILING_MS, `${t.readyMs} ms`);
  await settle();
    await page.screenshot({path: path.join(shotsDir, `${name}-whole.png`)});

  // A click on a frame bar zooms to that frame.
  if (s.frames) {
    const i = expect.selectFrame ?? 0;
    const before = r.view;
    const at = await page.evaluate((k) => __report.frameBarCenter(k), i);
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction((b) => __report.view.start !== b.start || __report.view.end !== b.end,
                               {timeout: 10000}, before).catch(() => {});
    const v = await page.evaluate(() => __report.view);
    const frame = await page.evaluate((k) => __report.frameRange(k), i);
    check('a click on a frame bar zooms in', v.end - v.start < (before.end - before.start) / 2,
          `${JSON.stringify(before)} -> ${JSON.stringify(v)}`);
    check('the zoomed view holds that frame and little else', frame && v.start <= frame.start &&
          v.end >= frame.end && v.end - v.start < (frame.end - frame.start) * 1.2,
          `${JSON.stringify(frame)} in ${JSON.stringify(v)}`);
    await settle();
    await page.screenshot({path: path.join(shotsDir, `${name}-frame.png`)});
  }

  // Hovering a zone shows its name, its duration and its arguments.
  if (expect.hover) {
    const at = await page.evaluate((n) => __report.findZone(n), expect.hover);
    check(`a zone named "${expect.hover}" is drawn wide enough to point at`, !!at);
    if (at) {
      await page.mouse.move(at.x, at.y);
      await page.waitForFunction(() => __report.tooltipText() !== '', {timeout: 5000}).catch(() => {});
      const tip = await page.evaluate(() => __report.tooltipText());
      check('the tooltip names the zone and its duration', tip.includes(expect.hover) && tip.includes('duration'), tip);
      if (expect.hoverArgs) check('the tooltip shows its arguments', tip.includes(expect.hoverArgs), tip);
      await settle();
    await page.screenshot({path: path.join(shotsDir, `${name}-hover.png`)});
    }
  }

  // Names with markup stay text: the exact string is a zone name, and no script ran.
  if (expect.odd) {
    const names = await page.evaluate(() => __report.zoneNames());
    for (const n of expect.odd) check(`the name ${JSON.stringify(n)} arrives intact`, names.includes(n));
    check('no dialog opened (no markup from the trace ran)', dialogs.length === 0, dialogs.join(' | '));
  }

  // The wheel zooms around the pointer; a drag pans.
  await page.evaluate(() => __report.reset());
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  const box = await page.evaluate(() => {
    const r = document.getElementById('timeline').getBoundingClientRect();
    return {x: r.left + r.width * 0.6, y: r.top + 60};
  });
  const v0 = await page.evaluate(() => __report.view);
  await page.mouse.move(box.x, box.y);
  const draws = await page.evaluate(() => __report.draws);
  const wheelStart = Date.now();
  await page.mouse.wheel({deltaY: -600});
  // shown: the view changed and a draw has run since
  await page.waitForFunction((b, n) => __report.view.end - __report.view.start < (b.end - b.start) * 0.9 &&
                             __report.draws > n, {timeout: 10000}, v0, draws).catch(() => {});
  const wheelMs = Date.now() - wheelStart;
  const v1 = await page.evaluate(() => __report.view);
  check('the wheel zooms in', v1.end - v1.start < (v0.end - v0.start) * 0.9, `${JSON.stringify(v0)} -> ${JSON.stringify(v1)}`);
  await page.mouse.down();
  await page.mouse.move(box.x - 300, box.y, {steps: 5});
  await page.mouse.up();
  const v2 = await page.evaluate(() => __report.view);
  check('a drag to the left pans later in time', v2.start > v1.start && Math.abs((v2.end - v2.start) - (v1.end - v1.start)) < 1e-6 * (v1.end - v1.start) + 1e-9,
        `${JSON.stringify(v1)} -> ${JSON.stringify(v2)}`);
  const redraw = await page.evaluate(() => __report.lastDrawMs);
  console.log(`${name}: a wheel zoom showed its new view after ${wheelMs} ms; one redraw takes ${redraw.toFixed(1)} ms`);
  await settle();
    await page.screenshot({path: path.join(shotsDir, `${name}-zoomed.png`)});

  // A track list taller than the window: the wheel over the names scrolls it.
  if (!d.allTracksFit) {
    const names = await page.evaluate(() => {
      const r = document.getElementById('timeline').getBoundingClientRect();
      return {x: r.left + 60, y: r.top + 200};
    });
    await page.mouse.move(names.x, names.y);
    await page.mouse.wheel({deltaY: 400});
    await page.waitForFunction(() => __report.view.scrollY > 0, {timeout: 5000}).catch(() => {});
    const scrolled = await page.evaluate(() => __report.view.scrollY);
    check('the wheel over the track names scrolls the tracks', scrolled > 0, `scrollY ${scrolled}`);
    await settle();
    await page.screenshot({path: path.join(shotsDir, `${name}-scrolled.png`)});
  }

  check('zero console errors', consoleErrors.length === 0, consoleErrors.slice(0, 5).join(' | '));
  check('zero network requests', requests.length === 0, requests.slice(0, 5).join(' | '));
} catch (e) {
  check('the browser session ran to the end', false, String(e && e.stack || e));
} finally {
  await browser.close();
  fs.rmSync(profile, {recursive: true, force: true});
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
