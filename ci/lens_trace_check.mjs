// Checks a trace that `shmkit lens record` made of examples/lens_demo with a real importer:
// Chrome DevTools' trace engine (npm @paulirish/trace_engine). Expects the demo's shape:
// threads "main" (frame > update > physics, frame > render) and "worker" (job > decode), a
// "Frames" track with one event per frame, plus counters and log instants in the raw file.
// With PROCESSES > 1 the trace holds that many lens_demo processes on one lens: each must be a
// process of its own with its own main, worker and Frames tracks (issue 13: real pids and tids).
// Usage: node ci/lens_trace_check.mjs TRACE.json FRAMES ENGINE_DIR [PROCESSES]
import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';

const [file, framesArg, engineDir, processesArg] = process.argv.slice(2);
const frames = Number(framesArg);
const expected = Number(processesArg ?? 1);
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok: ${name}`); }
  else { failed++; console.log(`FAILED: ${name} ${detail}`); }
}

const json = JSON.parse(fs.readFileSync(file, 'utf8'));
const events = json.traceEvents;
const engine = await import(pathToFileURL(path.join(engineDir, 'analyze-trace.mjs')).href);
const {parsedTrace} = await engine.analyzeEvents(events);
const processes = parsedTrace.data.Renderer.processes;
check(`${expected} process(es)`, processes.size === expected, `got ${processes.size}`);
if (expected > 1) {
  for (const [pid, p] of processes) {
    const names = new Map([...p.threads.values()].map(t => [t.name, t]));
    check(`process ${pid}: its own Frames, main and worker tracks`,
          ['Frames', 'main', 'worker'].every(n => names.has(n)), JSON.stringify([...names.keys()]));
    check(`process ${pid}: main zone count`, (names.get('main')?.entries.length ?? 0) === 4 * frames,
          `${names.get('main')?.entries.length}`);
    check(`process ${pid}: frames numbered 1..${frames} once each`,
          (names.get('Frames')?.entries.length ?? 0) === frames);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
const threads = new Map();
for (const p of processes.values())
  for (const t of p.threads.values()) threads.set(t.name, t);
check('thread names', ['Frames', 'main', 'worker'].every(n => threads.has(n)),
      JSON.stringify([...threads.keys()]));

function shape(node) { // "name(child,child)"
  const kids = [...node.children].map(shape);
  return node.entry.name + (kids.length ? `(${kids.join(',')})` : '');
}
function roots(name) { const t = threads.get(name); return t ? [...t.tree.roots] : []; }

const main = roots('main'), worker = roots('worker'), frameTrack = roots('Frames');
check('main zone count', (threads.get('main')?.entries.length ?? 0) === 4 * frames,
      `${threads.get('main')?.entries.length} != ${4 * frames}`);
check('worker zone count', (threads.get('worker')?.entries.length ?? 0) === 2 * frames,
      `${threads.get('worker')?.entries.length} != ${2 * frames}`);
check('main nesting: frame > update > physics, frame > render',
      main.length === frames && main.every(r => shape(r) === 'frame(update(physics),render)'),
      main.slice(0, 3).map(shape).join(' '));
check('worker nesting: job > decode',
      worker.length === frames && worker.every(r => shape(r) === 'job(decode)'),
      worker.slice(0, 3).map(shape).join(' '));
check('frames on their own track, one after the other',
      frameTrack.length === frames && frameTrack.every(r => [...r.children].length === 0),
      `${frameTrack.length} roots`);
const counters = events.filter(e => e.ph === 'C');
check('plot counter', counters.filter(e => e.name === 'entities').length === frames);
check('heap counter', counters.filter(e => e.name === 'heap').length === 2 * frames);
const logs = events.filter(e => e.ph === 'i');
check('log instants', logs.length === 1 + Math.ceil(frames / 10), `${logs.length}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
