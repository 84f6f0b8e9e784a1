// Checks a trace that `shmkit lens record` made of examples/timeline_demo (issue 14): the
// program's own zones and shmkit's parts on one timeline, read with a real importer (Chrome
// DevTools' trace engine, npm @paulirish/trace_engine) and from the raw file:
// - the main thread: frame > prepare, compute > shk task > (shk copy-in, shk pool start,
//   shk results), publish;
// - every chunk a zone on the track of the worker process that ran it (its own pid, a thread
//   named "shk worker N"), inside its task call's time; the deliberate failure named so;
// - one watch instant per frame, heap events and the live-buffer counter;
// - zones carry no args (speedscope folds args into names).
// Usage: node ci/lens_timeline_check.mjs TRACE.json ENGINE_DIR [FRAMES=3] [CHUNKS=8]
import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';

const [file, engineDir, framesArg, chunksArg] = process.argv.slice(2);
const frames = Number(framesArg ?? 3), chunks = Number(chunksArg ?? 8);
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok: ${name}`); }
  else { failed++; console.log(`FAILED: ${name} ${detail}`); }
}

const events = JSON.parse(fs.readFileSync(file, 'utf8')).traceEvents;
const engine = await import(pathToFileURL(path.join(engineDir, 'analyze-trace.mjs')).href);
const {parsedTrace} = await engine.analyzeEvents(events);
const processes = parsedTrace.data.Renderer.processes;

// The demo's own process: the one whose thread is named "main".
let mainPid = null, mainThread = null;
for (const [pid, p] of processes)
  for (const t of p.threads.values())
    if (t.name === 'main') { mainPid = pid; mainThread = t; }
check('a main thread', mainThread !== null);

function shape(node) { // "name(child,child)"
  const kids = [...node.children].map(shape);
  return node.entry.name + (kids.length ? `(${kids.join(',')})` : '');
}
const expected = 'frame(prepare,compute(shk task(shk copy-in,shk pool start,shk results)),publish)';
const roots = mainThread ? [...mainThread.tree.roots] : [];
check(`main nesting: ${expected}`, roots.length === frames && roots.every(r => shape(r) === expected),
      roots.map(shape).join(' '));

const zones = events.filter(e => e.ph === 'X' && e.cat === 'zone');
const chunkZones = zones.filter(e => e.name === 'shk chunk' || e.name === 'shk chunk failed');
check(`${frames * chunks} chunk zones`, chunkZones.length === frames * chunks, `${chunkZones.length}`);
check('one chunk failed, named so', chunkZones.filter(e => e.name === 'shk chunk failed').length === 1);
check('every chunk on a worker process, not the caller',
      chunkZones.every(e => e.pid !== mainPid));
const workerPids = new Set(chunkZones.map(e => e.pid));
let named = true;
for (const pid of workerPids) {
  const p = processes.get(pid);
  const names = p ? [...p.threads.values()].map(t => t.name) : [];
  if (!names.some(n => /^shk worker \d+$/.test(n))) named = false;
}
check('worker processes are processes of the trace with "shk worker N" tracks', workerPids.size >= 1 && named,
      `${workerPids.size} pids`);
const calls = zones.filter(e => e.name === 'shk task' && e.pid === mainPid);
const inside = (e, c) => e.ts >= c.ts && e.ts + e.dur <= c.ts + c.dur + 0.001;
check('every chunk lies inside its task call on one time axis',
      chunkZones.every(e => calls.some(c => inside(e, c))));

const logs = events.filter(e => e.ph === 'i');
const watch = logs.filter(e => e.name.startsWith('watch header'));
check(`${frames} watch instants`, watch.length === frames, `${watch.length}`);
check(`${frames} task call logs`, logs.filter(e => e.name.startsWith('task: ')).length === frames);
const counters = events.filter(e => e.ph === 'C');
check('heap events', counters.filter(e => e.name === 'heap' && e.pid === mainPid).length >= 2 * 4 * frames);
check('live buffer counter', counters.filter(e => e.name === 'shk buffers live').length >= 2 * 4 * frames);
check('zones carry no args (clean names in speedscope)', zones.every(e => e.args === undefined));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
