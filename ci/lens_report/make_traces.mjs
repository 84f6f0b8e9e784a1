// Writes the traces that ci/stages/60-lens-report.sh turns into reports, each with a file of the
// counts the page must find (TRACE.expect.json):
//   mixed  the JSON Object Format, every kind the viewer shows: frames, X zones, B/E pairs, chunk
//          lanes in two worker processes, watch and log markers, a global marker, three counters,
//          names with "</script>", U+2028 and emoji, and a flow event it does not show;
//   array  the JSON Array Format without its closing ']' (as a program that stopped leaves it);
//   big    1,000,000 zones on 4 threads (lens-style: children written before their parents), 1000
//          frames, a heap counter and 2000 markers.
// Usage: node make_traces.mjs OUT_DIR [mixed|array|big ...]
import fs from 'node:fs';
import path from 'node:path';

const [outDir, ...which] = process.argv.slice(2);
const wanted = which.length ? which : ['mixed', 'array', 'big'];
fs.mkdirSync(outDir, {recursive: true});

function writeExpect(name, expect) {
  fs.writeFileSync(path.join(outDir, `${name}.expect.json`), JSON.stringify(expect, null, 1));
}

function mixed() {
  const ev = [];
  const meta = (what, pid, tid, name) => ev.push({ph: 'M', name: what, pid, tid, args: {name}});
  const frames = 5, frameUs = 16000;
  let zones = 0, markers = 0;
  meta('process_name', 10, 0, 'app');
  meta('thread_name', 10, 1, 'Frames');
  meta('thread_name', 10, 2, 'main');
  meta('thread_name', 10, 3, 'render');
  meta('thread_name', 10, 4, 'watcher');
  meta('thread_name', 10, 5, 'Log');
  meta('process_name', 20, 0, 'worker 1');
  meta('thread_name', 20, 20, 'chunks');
  meta('process_name', 30, 0, 'worker 2');
  meta('thread_name', 30, 30, 'chunks');
  const t0 = 1000000; // timestamps need not start at 0
  for (let f = 0; f < frames; f++) {
    const s = t0 + f * frameUs;
    ev.push({ph: 'X', cat: 'frame', name: `frame ${f + 1}`, pid: 10, tid: 1, ts: s, dur: frameUs - 0.001});
    // "update" as X, "physics" inside it as a B/E pair whose E carries an argument
    ev.push({ph: 'B', name: 'physics', pid: 10, tid: 2, ts: s + 1000, args: {bodies: 12 + f}});
    ev.push({ph: 'E', pid: 10, tid: 2, ts: s + 5000, args: {contacts: 3}});
    ev.push({ph: 'X', name: 'update', pid: 10, tid: 2, ts: s + 500, dur: 10000,
             args: {depth: 0, color: '#33aa33'}});
    ev.push({ph: 'i', s: 't', name: 'checkpoint', pid: 10, tid: 2, ts: s + 12000, args: {frame: f + 1}});
    zones += 3;
    markers += 1;
    // chunk tasks: one chunk per worker process and frame, one of them failed
    for (let c = 0; c < 2; c++) {
      const index = f * 2 + c, pid = c === 0 ? 20 : 30, failed = index === 7;
      ev.push({ph: 'X', name: `chunk ${index}`, pid, tid: pid, ts: s + 2000 + c * 500, dur: 6000,
               args: {index, offset: index * 4096, length: 4096, code: failed ? -24 : 0,
                      status: failed ? 'failed' : 'ok', color: failed ? '#d9534f' : '#6699ff'}});
      zones++;
    }
  }
  // names that must stay text: markup, a JavaScript line separator, astral characters
  const odd = ['</script><script>alert(1)</script>', 'line\u2028separator', 'emoji \u{1F680} caf\u00e9'];
  odd.forEach((name, k) => {
    ev.push({ph: 'X', name, pid: 10, tid: 3, ts: t0 + 2 * frameUs + k * 3000, dur: 2500});
    zones++;
  });
  // watch events: a watcher track with markers
  for (let k = 0; k < 6; k++) {
    ev.push({ph: 'i', s: 't', name: 'region written', pid: 10, tid: 4, ts: t0 + 3000 + k * 13000,
             args: {region: 'particles', offset: k * 64, length: 8, old: '00 00', new: 'ff 01'}});
    markers++;
  }
  for (let k = 0; k < 3; k++) {
    ev.push({ph: 'i', s: 'p', cat: 'log', name: `log line ${k} <b>not bold</b>`, pid: 10, tid: 5,
             ts: t0 + k * 30000, args: {color: '#ffffff'}});
    markers++;
  }
  ev.push({ph: 'i', s: 'g', name: 'global sync', pid: 10, tid: 2, ts: t0 + 40000});
  markers++;
  let samples = 0;
  for (let k = 0; k < 10; k++) {
    ev.push({ph: 'C', name: 'heap', pid: 10, ts: t0 + k * 8000, args: {'live bytes': 1024 * (k % 4 + 1)}});
    ev.push({ph: 'C', name: 'entities', pid: 10, ts: t0 + k * 8000, args: {value: 100 + 10 * k}});
    samples += 2;
    if (k % 2 === 0) {
      ev.push({ph: 'C', name: 'queues', pid: 20, ts: t0 + k * 8000, args: {pending: k, done: 10 - k}});
      samples += 2;
    }
  }
  ev.push({ph: 's', name: 'flow', id: 1, pid: 10, tid: 2, ts: t0}); // not shown, reported
  ev.push({ph: 'X', name: 'no time', pid: 10, tid: 2, ts: null, dur: 1}); // skipped, not a zone at 0
  fs.writeFileSync(path.join(outDir, 'mixed.json'),
                   JSON.stringify({displayTimeUnit: 'ms', traceEvents: ev, otherData: {by: 'make_traces'}}));
  writeExpect('mixed', {
    processes: 3, threads: 8, counterTracks: 3, tracks: 11, frames, zones, markers, counterSamples: samples, skipped: 1,
    hover: 'update', hoverArgs: 'color', odd, selectFrame: 2,
  });
}

function array() {
  // Array form, B/E only, two threads of one process, no metadata, ends with ",\n" and no "]".
  const lines = [];
  let zones = 0;
  for (let k = 0; k < 20; k++) {
    const tid = 1 + (k % 2), s = k * 1000;
    lines.push(JSON.stringify({name: 'outer', ph: 'B', pid: 7, tid, ts: s}));
    lines.push(JSON.stringify({name: 'inner', ph: 'B', pid: 7, tid, ts: s + 100}));
    lines.push(JSON.stringify({ph: 'E', pid: 7, tid, ts: s + 400}));
    lines.push(JSON.stringify({ph: 'E', pid: 7, tid, ts: s + 900}));
    zones += 2;
  }
  fs.writeFileSync(path.join(outDir, 'array.json'), '[' + lines.join(',\n') + ',\n');
  writeExpect('array', {processes: 1, threads: 2, counterTracks: 0, tracks: 2, frames: 0, zones,
                        markers: 0, counterSamples: 0, hover: 'inner'});
}

function big() {
  const file = path.join(outDir, 'big.json');
  const fd = fs.openSync(file, 'w');
  let buf = [];
  let size = 0;
  const put = (s) => {
    buf.push(s);
    size += s.length;
    if (size > 1 << 20) { fs.writeSync(fd, buf.join('')); buf = []; size = 0; }
  };
  const names = ['update', 'physics', 'collide', 'integrate', 'render', 'cull', 'draw', 'upload',
                 'decode', 'mix', 'job', 'io', 'parse', 'layout', 'paint', 'gc', 'net', 'audio',
                 'script', 'idle'];
  const colors = ['#33aa33', '#22cc88', '#cc3333', '#3366cc', '#999999', '#ffaa00', '#6699ff'];
  const threads = 4, frames = 1000, frameUs = 10000, groups = 50;
  let zones = 0, markers = 0, first = true;
  const ev = (o) => { put((first ? '' : ',\n') + JSON.stringify(o)); first = false; };
  put('{"displayTimeUnit":"ms","traceEvents":[\n');
  ev({ph: 'M', name: 'process_name', pid: 1, tid: 0, args: {name: 'big demo'}});
  ev({ph: 'M', name: 'thread_name', pid: 1, tid: 1, args: {name: 'Frames'}});
  for (let t = 0; t < threads; t++)
    ev({ph: 'M', name: 'thread_name', pid: 1, tid: 3 + t, args: {name: `thread ${t}`}});
  for (let f = 0; f < frames; f++) {
    const fs0 = f * frameUs;
    for (let t = 0; t < threads; t++) {
      // 50 groups of a parent and 4 children: 250 zones per thread and frame
      const step = frameUs / groups;
      for (let g = 0; g < groups; g++) {
        const ps = fs0 + g * step + 2, pd = step - 8;
        const name = (k) => names[(g * 5 + k + t * 3) % names.length];
        for (let c = 0; c < 4; c++) {
          ev({ph: 'X', cat: 'zone', name: name(c + 1), pid: 1, tid: 3 + t,
              ts: +(ps + 1 + c * (pd / 4)).toFixed(3), dur: +(pd / 4 - 1).toFixed(3),
              args: {depth: 1, color: colors[(g + c) % colors.length]}});
        }
        ev({ph: 'X', cat: 'zone', name: name(0), pid: 1, tid: 3 + t, ts: +ps.toFixed(3), dur: +pd.toFixed(3),
            args: {depth: 0, color: colors[g % colors.length]}});
        zones += 5;
      }
    }
    ev({ph: 'X', cat: 'frame', name: `frame ${f + 1}`, pid: 1, tid: 1, ts: fs0, dur: frameUs - 0.001});
    ev({ph: 'C', cat: 'heap', name: 'heap', pid: 1, ts: fs0, args: {'live bytes': 1e6 + (f % 100) * 4096}});
    for (let m = 0; m < 2; m++) {
      ev({ph: 'i', s: 't', name: 'watch', pid: 1, tid: 3 + m, ts: fs0 + 3000 + m * 4000,
          args: {offset: f * 8, length: 8}});
      markers++;
    }
  }
  put('\n]}\n');
  fs.writeSync(fd, buf.join(''));
  fs.closeSync(fd);
  writeExpect('big', {processes: 1, threads: threads + 1, counterTracks: 1, tracks: threads + 2, frames,
                      zones: zones + frames, markers, counterSamples: frames, hover: null, selectFrame: 500});
}

for (const w of wanted) ({mixed, array, big})[w]();
