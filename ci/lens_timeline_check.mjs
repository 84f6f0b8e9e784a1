// Checks a trace that `shmkit lens record` made of examples/timeline_demo (issue 14): the
// program's own zones and shmkit's parts on one timeline, read with a real importer (Chrome
// DevTools' trace engine, npm @paulirish/trace_engine) and from the raw file:
// - the main thread: frame > prepare, compute > shk task > (shk copy-in, shk pool start,
//   shk results), publish;
// - every chunk a zone on the track of the worker process that ran it (its own pid, a thread
//   named "shk worker N"), inside its task call's time; the deliberate failure named so;
// - each task call's shape and each chunk's index, offset, length and code as zone args;
// - one watch instant per frame on the track of the thread that wrote (main), heap events with
//   their allocator (markers on a Heap track) and the live-buffer counter;
// - the program's own zones carry no args (speedscope folds args into names).
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

check(`${frames} task calls, each with its shape as args`,
      calls.length === frames && calls.every(c => c.args && c.args.chunks === chunks &&
        c.args.workers >= 1 && c.args.mode === 'processes' && c.args['input bytes'] > 0),
      JSON.stringify(calls.map(c => c.args)));
// Per call: the chunks inside it are indexes 0..chunks-1 once each, tiling the input in order.
const tiled = calls.every(c => {
  const mine = chunkZones.filter(e => inside(e, c)).map(e => e.args || {})
    .sort((a, b) => a.index - b.index);
  let next = 0;
  return mine.length === chunks && mine.every((a, i) => {
    const ok = a.index === i && a.offset === next && a.length > 0;
    next = a.offset + a.length;
    return ok;
  }) && next === c.args['input bytes'];
});
check('every chunk says its index, offset and length; together they tile the input', tiled);
check('the failed chunk carries its code, the others 0',
      chunkZones.every(e => e.args && (e.name === 'shk chunk failed' ? e.args.code !== 0 : e.args.code === 0)));

const logs = events.filter(e => e.ph === 'i');
const watch = logs.filter(e => e.name.startsWith('watch header'));
check(`${frames} watch instants`, watch.length === frames, `${watch.length}`);
const mainTids = events.filter(e => e.ph === 'M' && e.name === 'thread_name' && e.pid === mainPid &&
                                    e.args && e.args.name === 'main').map(e => e.tid);
// The writer is known to the mprotect and userfaultfd (sync) backends; the others put the event
// on the watcher's own track.
const watcherTids = events.filter(e => e.ph === 'M' && e.name === 'thread_name' && e.pid === mainPid &&
                                       e.args && e.args.name === 'shk watcher').map(e => e.tid);
check('each watch instant on the track of the thread that wrote (main) or of the watcher, with offset and length',
      mainTids.length === 1 && watch.every(e => e.s === 't' && e.pid === mainPid && e.args.thread === e.tid &&
        (e.args['writer known'] ? e.tid === mainTids[0] : watcherTids.includes(e.tid)) &&
        typeof e.args.offset === 'number' && e.args.length > 0),
      JSON.stringify(watch.map(e => [e.tid, e.args])));
const counters = events.filter(e => e.ph === 'C');
check('heap events', counters.filter(e => e.name === 'heap' && e.pid === mainPid).length >= 2 * 4 * frames);
const heapMarks = logs.filter(e => e.cat === 'heap' && e.pid === mainPid);
check('each heap event a marker with its allocator and size',
      heapMarks.length >= 2 * 4 * frames && heapMarks.every(e => typeof e.args.allocator === 'string' &&
        e.args.size > 0) && heapMarks.some(e => e.args.allocator === 'pages'),
      `${heapMarks.length}`);
check('live buffer counter', counters.filter(e => e.name === 'shk buffers live').length >= 2 * 4 * frames);
check("the program's own zones carry no args (clean names in speedscope)",
      zones.filter(e => !e.name.startsWith('shk ')).every(e => e.args === undefined));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
