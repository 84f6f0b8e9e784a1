/* shmkit report viewer. Reads the Chrome trace embedded in the page (#shk-trace), builds sorted
 * typed arrays per track once, and draws on canvases: frame bars, a flame chart per process and
 * thread, counters as line charts, instant events as markers, and a list of logs. Every draw
 * visits only what is in view and merges what is narrower than a pixel, so its cost follows the
 * window's width, not the number of zones. Text from the trace reaches the page only through
 * canvas text and textContent, never as markup. window.__report exposes counts for tests. */
(function () {
  'use strict';

  const report = (window.__report = {
    ready: false, error: null, stats: null, drawn: null, timings: {},
  });

  const ROW = 18, MARK_ROW = 14, PROC_ROW = 22, COUNTER_ROW = 58, GAP = 6;
  const GUTTER = 200, RULER = 22, MIN_SPAN = 1e-3; /* microseconds: 1 ns */
  const FRAME_OK = 1e6 / 60, FRAME_SLOW = 1e6 / 30;

  const $ = (id) => document.getElementById(id);

  function showMessage(text) {
    const m = $('message');
    m.hidden = false;
    m.textContent = (m.textContent ? m.textContent + '\n' : '') + text;
  }

  function fail(text) {
    report.error = text;
    showMessage(text);
  }

  window.addEventListener('error', (e) => fail('The viewer failed: ' + e.message));

  /* ---- small helpers -------------------------------------------------------------------- */

  function fmtTime(us) {
    const a = Math.abs(us);
    if (a === 0) return '0';
    if (a < 1) return +(us * 1e3).toPrecision(3) + ' ns';
    if (a < 1e3) return +us.toPrecision(4) + ' µs';
    if (a < 1e6) return +(us / 1e3).toPrecision(4) + ' ms';
    return +(us / 1e6).toPrecision(5) + ' s';
  }

  function fmtValue(v, bytes) {
    if (!isFinite(v)) return String(v);
    if (bytes) {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let u = 0, x = Math.abs(v);
      while (x >= 1024 && u < units.length - 1) { x /= 1024; u++; }
      return (v < 0 ? '-' : '') + +x.toPrecision(4) + ' ' + units[u];
    }
    return Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(+v.toPrecision(6));
  }

  function clip(text, max) {
    text = String(text);
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  /* First index in [lo, hi) whose value is >= x (arr sorted ascending). */
  function lowerBound(arr, x, lo, hi) {
    lo = lo || 0;
    hi = hi === undefined ? arr.length : hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arr[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function hashColor(text) {
    let h = 2166136261;
    for (let i = 0; i < text.length && i < 64; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    const hue = ((h >>> 0) % 360) / 360, s = 0.55, l = 0.66;
    const q = l + s - l * s, p = 2 * l - q;
    const ch = (t) => {
      t = t < 0 ? t + 1 : t > 1 ? t - 1 : t;
      const v = t < 1 / 6 ? p + (q - p) * 6 * t : t < 0.5 ? q : t < 2 / 3 ? p + (q - p) * (2 / 3 - t) * 6 : p;
      return Math.round(v * 255);
    };
    return (ch(hue + 1 / 3) << 16) | (ch(hue) << 8) | ch(hue - 1 / 3);
  }

  /* Chrome's reserved color names (cname), the common ones. */
  const CNAMES = {
    good: 0x4b9e4b, bad: 0xc43c3c, terrible: 0x8b1a1a, yellow: 0xe6c430, olive: 0x808000,
    grey: 0x9e9e9e, white: 0xeeeeee, black: 0x303030, generic_work: 0x7d9fcf,
    thread_state_running: 0x7ecf7e, thread_state_runnable: 0xd2e08c, thread_state_iowait: 0xd58a4f,
    rail_response: 0x4c72b0, rail_animation: 0x55a868, rail_idle: 0xc0c0c0, rail_load: 0xc44e52,
  };

  /* A zone's own color: its "color" field "#rrggbb" (shmkit's; args.color in older traces;
   * #000000 means none) or cname; else -1. */
  function hexColor(v) {
    if (typeof v !== 'string' || !/^#[0-9a-fA-F]{6}$/.test(v)) return 0;
    return parseInt(v.slice(1), 16);
  }
  function eventColor(e) {
    const own = hexColor(e.color) || (e.args ? hexColor(e.args.color) : 0);
    if (own !== 0) return own;
    if (typeof e.cname === 'string' && CNAMES[e.cname] !== undefined) return CNAMES[e.cname];
    return -1;
  }

  const cssCache = new Map();
  function css(rgb) {
    let s = cssCache.get(rgb);
    if (!s) { s = '#' + (rgb & 0xffffff).toString(16).padStart(6, '0'); cssCache.set(rgb, s); }
    return s;
  }
  function darkText(rgb) {
    return ((rgb >> 16) & 255) * 0.299 + ((rgb >> 8) & 255) * 0.587 + (rgb & 255) * 0.114 > 140;
  }
  function frameColor(dur) { return dur <= FRAME_OK ? 0x5cb85c : dur <= FRAME_SLOW ? 0xe6b422 : 0xd9534f; }

  function idKey(v) { return v === undefined || v === null ? '0' : String(v); }
  function compareIds(a, b) {
    const x = Number(a), y = Number(b);
    if (isFinite(x) && isFinite(y) && x !== y) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /* ---- the model: tracks with sorted arrays -------------------------------------------------- */

  function buildModel(events) {
    const procs = new Map();
    const names = [], nameIds = new Map(), nameColors = [];
    const ignored = {};
    const globalMarks = { t: [], ev: [] };
    const frameEv = [];
    let skipped = 0, minTs = Infinity, maxTs = -Infinity;

    function proc(pid) {
      const key = idKey(pid);
      let p = procs.get(key);
      if (!p) {
        p = { key, name: null, sort: null, threads: new Map(), counters: new Map() };
        procs.set(key, p);
      }
      return p;
    }
    function thread(pid, tid) {
      const p = proc(pid), key = idKey(tid);
      let t = p.threads.get(key);
      if (!t) {
        t = { proc: p, key, name: null, sort: null, zs: [], ze: [], zn: [], zi: [], ze2: null,
              be: [], marks: { t: [], ev: [] } };
        p.threads.set(key, t);
      }
      return t;
    }
    function nameId(v) {
      const s = v === undefined || v === null ? '(unnamed)' : String(v);
      let id = nameIds.get(s);
      if (id === undefined) {
        id = names.length;
        names.push(s);
        nameColors.push(hashColor(s));
        nameIds.set(s, id);
      }
      return id;
    }
    function see(ts) {
      if (ts < minTs) minTs = ts;
      if (ts > maxTs) maxTs = ts;
    }

    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (!e || typeof e !== 'object') { skipped++; continue; }
      const ph = e.ph;
      if (ph === 'M') {
        const a = e.args || {};
        if (e.name === 'process_name') proc(e.pid).name = String(a.name);
        else if (e.name === 'thread_name') thread(e.pid, e.tid).name = String(a.name);
        else if (e.name === 'process_sort_index') proc(e.pid).sort = +a.sort_index;
        else if (e.name === 'thread_sort_index') thread(e.pid, e.tid).sort = +a.sort_index;
        continue;
      }
      const ts = typeof e.ts === 'number' || typeof e.ts === 'string' ? +e.ts : NaN;
      if (!isFinite(ts)) { skipped++; continue; }
      if (ph === 'X') {
        let dur = +e.dur;
        if (!(dur >= 0) || !isFinite(dur)) dur = 0;
        const t = thread(e.pid, e.tid);
        t.zs.push(ts); t.ze.push(ts + dur); t.zn.push(nameId(e.name)); t.zi.push(i);
        see(ts); see(ts + dur);
        if (e.cat === 'frame') frameEv.push(i);
      } else if (ph === 'B' || ph === 'E') {
        thread(e.pid, e.tid).be.push(i);
        see(ts);
      } else if (ph === 'i' || ph === 'I' || ph === 'R') {
        const m = e.s === 'g' ? globalMarks : thread(e.pid, e.tid).marks;
        m.t.push(ts); m.ev.push(i);
        see(ts);
      } else if (ph === 'C') {
        const p = proc(e.pid);
        const cname = String(e.name === undefined ? 'counter' : e.name) + (e.id !== undefined ? ' ' + e.id : '');
        let c = p.counters.get(cname);
        if (!c) { c = { name: cname, series: new Map() }; p.counters.set(cname, c); }
        const a = e.args || {};
        for (const k in a) {
          const v = +a[k];
          if (!isFinite(v)) continue;
          let s = c.series.get(k);
          if (!s) { s = { key: k, t: [], v: [] }; c.series.set(k, s); }
          s.t.push(ts); s.v.push(v);
        }
        see(ts);
      } else {
        ignored[ph] = (ignored[ph] || 0) + 1;
      }
    }
    if (!isFinite(minTs)) { minTs = 0; maxTs = 0; }
    const origin = minTs, total = Math.max(maxTs - minTs, MIN_SPAN);

    /* B/E pairs on each thread, in time order, become zones like X events. */
    for (const p of procs.values()) {
      for (const t of p.threads.values()) {
        if (!t.be.length) continue;
        t.be.sort((a, b) => (+events[a].ts - +events[b].ts) || a - b);
        const open = [];
        for (const i of t.be) {
          const e = events[i];
          if (e.ph === 'B') { open.push(i); continue; }
          const b = open.pop();
          if (b === undefined) continue;
          const be = events[b];
          t.zs.push(+be.ts); t.ze.push(+e.ts);
          t.zn.push(nameId(be.name !== undefined ? be.name : e.name)); t.zi.push(b);
          if (e.args && Object.keys(e.args).length) (t.ze2 || (t.ze2 = new Map())).set(b, i);
        }
        for (const b of open) { /* never ended: runs to the end of the trace */
          t.zs.push(+events[b].ts); t.ze.push(maxTs); t.zn.push(nameId(events[b].name)); t.zi.push(b);
        }
        t.be = null;
      }
    }

    let zoneCount = 0, markCount = 0, sampleCount = 0;
    const frameSet = new Set(frameEv);
    const procList = [...procs.values()].sort((a, b) =>
      ((a.sort ?? 0) - (b.sort ?? 0)) || compareIds(a.key, b.key));
    const tracks = [];
    const allMarks = [];
    if (globalMarks.t.length) {
      const marks = sortMarks(globalMarks, origin);
      markCount += marks.t.length;
      tracks.push({ kind: 'thread', label: 'Global markers', sub: 'instant events of scope g', levels: [],
                    marks, height: 0 });
      for (let k = 0; k < marks.t.length; k++) allMarks.push([marks.t[k], marks.ev[k], 'global']);
    }
    for (const p of procList) {
      /* shmkit's recorder already puts "(pid N)" in the name */
      const pname = p.name === null ? 'pid ' + p.key :
        p.name.includes('pid ' + p.key) ? p.name : p.name + ' (pid ' + p.key + ')';
      const children = [];
      const threads = [...p.threads.values()].sort((a, b) =>
        ((a.sort ?? 0) - (b.sort ?? 0)) || compareIds(a.key, b.key));
      for (const t of threads) {
        if (!t.zs.length && !t.marks.t.length) continue;
        const levels = buildLevels(t, origin, frameSet, nameColors, events);
        const marks = sortMarks(t.marks, origin);
        const label = t.name !== null ? t.name : 'tid ' + t.key;
        zoneCount += t.zs.length;
        markCount += marks.t.length;
        for (let k = 0; k < marks.t.length; k++) allMarks.push([marks.t[k], marks.ev[k], label]);
        children.push({ kind: 'thread', label, sub: 'tid ' + t.key, levels, marks, ze2: t.ze2,
                        zones: t.zs.length, height: 0 });
        t.zs = t.ze = t.zn = t.zi = null;
      }
      for (const c of p.counters.values()) {
        const series = [...c.series.values()].map((s) => sortSeries(s, origin));
        let lo = Infinity, hi = -Infinity;
        for (const s of series) {
          sampleCount += s.t.length;
          for (let k = 0; k < s.v.length; k++) { const v = s.v[k]; if (v < lo) lo = v; if (v > hi) hi = v; }
        }
        if (!series.length) continue;
        if (lo > 0) lo = 0;
        if (hi <= lo) hi = lo + 1;
        const bytes = /byte|heap|mem/i.test(c.name + ' ' + series.map((s) => s.key).join(' '));
        children.push({ kind: 'counter', label: c.name, series, lo, hi, bytes, height: COUNTER_ROW });
      }
      if (!children.length) continue;
      tracks.push({ kind: 'proc', label: pname, proc: p.key, collapsed: false, children, height: PROC_ROW });
      for (const c of children) tracks.push(Object.assign(c, { parent: tracks[tracks.length - 1] }));
    }

    allMarks.sort((a, b) => a[0] - b[0]);
    const frames = buildFrames(frameEv, events, origin);
    return {
      events, names, origin, total, tracks, frames, ignored, skipped,
      marks: { t: Float64Array.from(allMarks, (m) => m[0]), ev: allMarks.map((m) => m[1]),
               where: allMarks.map((m) => m[2]) },
      counts: { zones: zoneCount, markers: markCount, samples: sampleCount,
                processes: tracks.filter((t) => t.kind === 'proc').length,
                threads: tracks.filter((t) => t.kind === 'thread').length,
                counters: tracks.filter((t) => t.kind === 'counter').length },
    };
  }

  /* Zones of one thread, nested by time: sorted by start (longer first), each placed one level
   * below the zones still open. At one level zones never overlap, so start and end are both
   * sorted there and binary searches find what is in view. */
  function buildLevels(t, origin, frameSet, nameColors, events) {
    const n = t.zs.length, s = t.zs, en = t.ze;
    const order = new Uint32Array(n);
    let sorted = true;
    for (let i = 0; i < n; i++) {
      order[i] = i;
      if (i && (s[i] < s[i - 1] || (s[i] === s[i - 1] && en[i] > en[i - 1]))) sorted = false;
    }
    if (!sorted) order.sort((a, b) => (s[a] - s[b]) || (en[b] - en[a]) || (a - b));
    const depth = new Uint16Array(n);
    const counts = [];
    const open = [];
    for (let k = 0; k < n; k++) {
      const z = order[k], st = s[z];
      while (open.length && open[open.length - 1] <= st) open.pop();
      const d = Math.min(open.length, 65535);
      depth[k] = d;
      open.push(en[z]);
      counts[d] = (counts[d] || 0) + 1;
    }
    const levels = counts.map((c) => ({
      n: 0, start: new Float64Array(c), end: new Float64Array(c), name: new Int32Array(c),
      ev: new Int32Array(c), color: new Int32Array(c),
    }));
    for (let k = 0; k < n; k++) {
      const z = order[k], L = levels[depth[k]], j = L.n++;
      L.start[j] = s[z] - origin;
      L.end[j] = en[z] - origin;
      L.name[j] = t.zn[z];
      L.ev[j] = t.zi[z];
      const e = events[t.zi[z]];
      const c = frameSet.has(t.zi[z]) ? frameColor(en[z] - s[z]) : eventColor(e);
      L.color[j] = c >= 0 ? c : nameColors[t.zn[z]];
    }
    return levels;
  }

  function sortMarks(m, origin) {
    const idx = m.t.map((_, i) => i).sort((a, b) => m.t[a] - m.t[b] || a - b);
    return { t: Float64Array.from(idx, (i) => m.t[i] - origin), ev: Int32Array.from(idx, (i) => m.ev[i]) };
  }

  function sortSeries(s, origin) {
    const idx = s.t.map((_, i) => i).sort((a, b) => s.t[a] - s.t[b] || a - b);
    return { key: s.key, t: Float64Array.from(idx, (i) => s.t[i] - origin),
             v: Float64Array.from(idx, (i) => s.v[i]), color: hashColor(s.key) };
  }

  function buildFrames(frameEv, events, origin) {
    const list = frameEv.map((i) => {
      const e = events[i], ts = +e.ts - origin, dur = Math.max(0, +e.dur || 0);
      return { start: ts, end: ts + dur, dur, name: String(e.name) };
    }).sort((a, b) => a.start - b.start);
    return list;
  }

  /* ---- view state ----------------------------------------------------------------------------- */

  let model = null;
  const view = { t0: 0, t1: 1, scrollY: 0 };
  const canvases = {};
  let hover = null, drag = null, pending = false, logsTimer = 0;

  function setupCanvas(id) {
    const cv = $(id);
    const r = cv.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    cv.width = Math.max(1, Math.round(r.width * dpr));
    cv.height = Math.max(1, Math.round(r.height * dpr));
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    canvases[id] = { cv, ctx, w: r.width, h: r.height };
  }

  function layout() {
    let y = 0;
    for (const t of model.tracks) {
      t.hidden = t.parent ? t.parent.collapsed : false;
      if (t.hidden) continue;
      if (t.kind === 'thread') {
        t.markH = t.marks.t.length ? MARK_ROW : 0;
        /* room for the label's two lines in the gutter */
        t.height = Math.max(t.markH + Math.max(1, t.levels.length) * ROW + GAP, 32);
      }
      t.y = y;
      y += t.height;
    }
    model.height = y;
  }

  function clampView() {
    const total = model.total;
    let span = Math.min(Math.max(view.t1 - view.t0, MIN_SPAN), total * 1.5);
    let t0 = Math.min(Math.max(view.t0, -span * 0.5), total - span * 0.5);
    view.t0 = t0;
    view.t1 = t0 + span;
    const tl = canvases.timeline;
    const room = tl ? tl.h - RULER : 0;
    view.scrollY = Math.max(0, Math.min(view.scrollY, model.height - room + ROW));
  }

  function setView(t0, t1) {
    view.t0 = t0;
    view.t1 = t1;
    clampView();
    invalidate();
  }

  function invalidate() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }

  /* ---- drawing -------------------------------------------------------------------------------- */

  let charW = 6.2;

  function draw() {
    pending = false;
    const begin = performance.now();
    drawTimeline();
    drawFrames();
    const range = view.t1 - view.t0;
    $('range').textContent = 'view ' + fmtTime(view.t0) + ' … ' + fmtTime(view.t1) + ' (' + fmtTime(range) + ')';
    report.lastDrawMs = performance.now() - begin;
    report.draws = (report.draws || 0) + 1;
    clearTimeout(logsTimer);
    logsTimer = setTimeout(drawLogs, 80);
  }

  function drawTimeline() {
    const { ctx, w, h } = canvases.timeline;
    const span = view.t1 - view.t0, k = (w - GUTTER) / span;
    const X = (t) => GUTTER + (t - view.t0) * k;
    const T = (x) => view.t0 + (x - GUTTER) / k;
    /* zones/markers: how many the boxes and triangles stand for; inRows: how many the rows drawn
     * hold (equal in the whole-trace view: nothing is lost by merging) */
    const drawn = { tracks: 0, zones: 0, rects: 0, markers: 0, counterPoints: 0, zonesInRows: 0,
                    markersInRows: 0, allTracksFit: model.height <= h - RULER };
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, w, h);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    charW = ctx.measureText('abcdefghijklmnopqrstuvwxyz0123456789').width / 36 || 6.2;

    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, RULER, w - GUTTER, h - RULER);
    ctx.clip();
    drawGrid(ctx, w, h, X);
    for (const t of model.tracks) {
      if (t.hidden) continue;
      const y = RULER + t.y - view.scrollY;
      if (y + t.height < RULER || y > h) continue;
      if (t.kind !== 'proc') drawn.tracks++;
      if (t.kind === 'thread') drawThread(ctx, t, y, X, T, w, h, drawn);
      else if (t.kind === 'counter') drawCounter(ctx, t, y, X, T, w, drawn);
      else if (t.kind === 'proc') {
        ctx.fillStyle = '#eceef2';
        ctx.fillRect(GUTTER, y, w - GUTTER, PROC_ROW - 1);
      }
    }
    if (hover && hover.kind === 'zone') {
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1.5;
      const x0 = Math.max(X(hover.start), GUTTER - 2), x1 = Math.min(X(hover.end), w + 2);
      ctx.strokeRect(x0, hover.y + 0.5, Math.max(x1 - x0, 1), ROW - 2);
    }
    ctx.restore();
    drawGutter(ctx, w, h);
    drawRuler(ctx, w, X);
    drawScrollHint(ctx, w, h);
    report.drawn = Object.assign(report.drawn || {}, drawn);
  }

  /* Where the window is in a track list taller than it: a thin bar at the right edge. */
  function drawScrollHint(ctx, w, h) {
    const room = h - RULER;
    if (model.height <= room) return;
    const barH = Math.max(20, (room * room) / model.height);
    const y = RULER + (view.scrollY / Math.max(1, model.height - room + ROW)) * (room - barH);
    ctx.fillStyle = 'rgba(60, 70, 90, 0.35)';
    ctx.fillRect(w - 6, y, 4, barH);
  }

  function niceStep(span, px) {
    const raw = span / Math.max(1, px);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function drawGrid(ctx, w, h, X) {
    const step = niceStep(view.t1 - view.t0, (w - GUTTER) / 90);
    ctx.strokeStyle = '#eef0f3';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.moveTo(x, RULER);
      ctx.lineTo(x, h);
    }
    ctx.stroke();
  }

  function drawRuler(ctx, w, X) {
    ctx.fillStyle = '#f7f8fa';
    ctx.fillRect(0, 0, w, RULER);
    ctx.strokeStyle = '#c9ced8';
    ctx.beginPath();
    ctx.moveTo(0, RULER - 0.5);
    ctx.lineTo(w, RULER - 0.5);
    ctx.stroke();
    const step = niceStep(view.t1 - view.t0, (w - GUTTER) / 90);
    ctx.fillStyle = '#4b5566';
    ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      if (x < GUTTER) continue;
      ctx.moveTo(x, RULER - 6);
      ctx.lineTo(x, RULER);
      ctx.fillText(fmtTime(Math.abs(t) < step / 1e6 ? 0 : t), x + 3, RULER / 2);
    }
    ctx.stroke();
    ctx.fillStyle = '#6b7587';
    ctx.fillText('time since the first event', 8, RULER / 2);
  }

  /* text cut (with an ellipsis) to fit `width` pixels in the current font */
  function fit(ctx, text, width) {
    text = clip(text, 200);
    if (ctx.measureText(text).width <= width) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + '…').width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + '…';
  }

  function drawGutter(ctx, w, h) {
    ctx.fillStyle = '#f7f8fa';
    ctx.fillRect(0, RULER, GUTTER, h - RULER);
    ctx.strokeStyle = '#c9ced8';
    ctx.beginPath();
    ctx.moveTo(GUTTER - 0.5, RULER);
    ctx.lineTo(GUTTER - 0.5, h);
    ctx.stroke();
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, RULER, GUTTER - 4, h - RULER);
    ctx.clip();
    ctx.textBaseline = 'middle';
    for (const t of model.tracks) {
      if (t.hidden) continue;
      const y = RULER + t.y - view.scrollY;
      if (y + t.height < RULER || y > h) continue;
      if (t.kind === 'proc') {
        ctx.fillStyle = '#dfe3ea';
        ctx.fillRect(0, y, GUTTER, PROC_ROW - 1);
        ctx.fillStyle = '#1d2330';
        ctx.font = '600 12px system-ui, sans-serif';
        ctx.fillText(fit(ctx, (t.collapsed ? '▸ ' : '▾ ') + t.label, GUTTER - 12), 6, y + PROC_ROW / 2);
      } else {
        ctx.font = '12px system-ui, sans-serif';
        ctx.fillStyle = '#1d2330';
        ctx.fillText(fit(ctx, t.label, GUTTER - 22), 16, y + 9);
        ctx.font = '10px system-ui, sans-serif';
        ctx.fillStyle = '#6b7587';
        const sub = t.kind === 'counter' ? fmtValue(t.hi, t.bytes) + ' max' :
          t.sub + (t.zones ? ' · ' + t.zones.toLocaleString('en-US') + ' zones' : '');
        ctx.fillText(sub, 16, y + 22);
      }
      ctx.strokeStyle = '#e3e6eb';
      ctx.beginPath();
      ctx.moveTo(0, y + t.height - 0.5);
      ctx.lineTo(w, y + t.height - 0.5);
      ctx.stroke();
    }
    ctx.restore();
  }

  function drawThread(ctx, t, y, X, T, w, h, drawn) {
    if (t.markH && y + t.markH >= RULER) {
      drawMarks(ctx, t.marks, y, X, T, w, drawn);
      drawn.markersInRows += t.marks.t.length;
    }
    const top = y + t.markH;
    for (let d = 0; d < t.levels.length; d++) {
      const ly = top + d * ROW;
      if (ly + ROW < RULER || ly > h) continue;
      drawLevel(ctx, t.levels[d], ly, X, T, w, drawn);
      drawn.zonesInRows += t.levels[d].n;
    }
  }

  /* One level of a flame chart: zones of a pixel or more each get a box (and a name when it
   * fits); runs of narrower zones merge into one box per pixel, found by binary search, so the
   * loop runs at most about once per pixel however many zones there are. */
  function drawLevel(ctx, L, y, X, T, w, drawn) {
    const n = L.n, names = model.names;
    let i = lowerBound(L.end, view.t0, 0, n);
    while (i < n) {
      const s = L.start[i];
      if (s > view.t1) break;
      const x0 = X(s), x1 = X(L.end[i]);
      if (x1 - x0 >= 1) {
        const a = Math.max(x0, GUTTER - 1), b = Math.min(x1, w + 1);
        const c = L.color[i];
        ctx.fillStyle = css(c);
        ctx.fillRect(a, y, Math.max(b - a - 0.5, 0.5), ROW - 1);
        if (b - a > 24) {
          const chars = Math.floor((b - a - 6) / charW);
          if (chars >= 2) {
            ctx.fillStyle = darkText(c) ? '#111' : '#fff';
            ctx.fillText(clip(names[L.name[i]], chars), a + 3, y + ROW / 2);
          }
        }
        drawn.rects++;
        drawn.zones++;
        i++;
        continue;
      }
      /* Narrow: everything that starts before the next pixel boundary joins this box. */
      const edge = T(Math.floor(x0) + 1);
      let j = lowerBound(L.start, edge, i + 1, n);
      if (j - 1 > i && X(L.end[j - 1]) - X(L.start[j - 1]) >= 1) j--; /* a wide one keeps its box */
      const xe = Math.max(X(L.end[j - 1]), x0 + 1);
      ctx.fillStyle = css(L.color[i]);
      ctx.fillRect(Math.max(x0, GUTTER - 1), y, Math.max(xe - Math.max(x0, GUTTER - 1), 1), ROW - 1);
      drawn.rects++;
      drawn.zones += j - i;
      i = j;
    }
  }

  function drawMarks(ctx, m, y, X, T, w, drawn) {
    const n = m.t.length, events = model.events;
    let i = lowerBound(m.t, view.t0 - (view.t1 - view.t0) * 0.002);
    while (i < n) {
      const t = m.t[i];
      if (t > view.t1) break;
      const x = X(t);
      const j = lowerBound(m.t, T(x + 3), i + 1, n); /* markers closer than 3 px share one */
      const e = events[m.ev[i]];
      const c = eventColor(e);
      ctx.fillStyle = c >= 0 && c !== 0xffffff ? css(c) : '#5b6b8a';
      ctx.beginPath();
      ctx.moveTo(x, y + MARK_ROW - 2);
      ctx.lineTo(x - 4, y + 2);
      ctx.lineTo(x + 4, y + 2);
      ctx.closePath();
      ctx.fill();
      ctx.strokeStyle = '#2a3242';
      ctx.lineWidth = 0.75;
      ctx.stroke();
      drawn.markers += j - i;
      i = j;
    }
  }

  /* A counter as a step line: samples that share a pixel column become one vertical stroke from
   * their minimum to their maximum. */
  function drawCounter(ctx, t, y, X, T, w, drawn) {
    const top = y + 4, bottom = y + t.height - GAP;
    const Y = (v) => bottom - ((v - t.lo) / (t.hi - t.lo)) * (bottom - top);
    ctx.strokeStyle = '#e3e6eb';
    ctx.beginPath();
    ctx.moveTo(GUTTER, Math.round(Y(t.lo)) + 0.5);
    ctx.lineTo(w, Math.round(Y(t.lo)) + 0.5);
    ctx.stroke();
    for (const s of t.series) {
      const n = s.t.length;
      if (!n) continue;
      let i = Math.max(0, lowerBound(s.t, view.t0) - 1);
      let prevY = Y(s.v[i]);
      ctx.beginPath();
      ctx.moveTo(Math.max(X(s.t[i]), GUTTER - 1), prevY);
      while (i < n && s.t[i] <= view.t1) {
        const x = X(s.t[i]);
        const j = lowerBound(s.t, T(Math.floor(x) + 1), i + 1, n);
        ctx.lineTo(x, prevY);
        if (j - i > 1) {
          let lo = Infinity, hi = -Infinity;
          for (let k = i; k < j; k++) { const v = s.v[k]; if (v < lo) lo = v; if (v > hi) hi = v; }
          ctx.lineTo(x, Y(hi));
          ctx.lineTo(x, Y(lo));
        }
        prevY = Y(s.v[j - 1]);
        ctx.lineTo(x, prevY);
        drawn.counterPoints += j - i;
        i = j;
      }
      ctx.lineTo(Math.min(X(model.total), w + 1), prevY);
      ctx.strokeStyle = t.series.length === 1 ? '#3465a4' : css(s.color);
      ctx.lineWidth = 1.25;
      ctx.stroke();
    }
    if (hover && hover.kind === 'counter' && hover.track === t) {
      ctx.strokeStyle = 'rgba(0,0,0,0.35)';
      ctx.beginPath();
      ctx.moveTo(hover.x + 0.5, top);
      ctx.lineTo(hover.x + 0.5, bottom);
      ctx.stroke();
    }
  }

  /* Frame bars: one bar per frame, or per group of frames when there are more than pixels (the
   * group shows its longest frame). Frames in the timeline's view are shaded. */
  let frameLayout = null;
  function drawFrames() {
    const frames = model.frames;
    if (!frames.length) return;
    const { ctx, w, h } = canvases.frames;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
    const n = frames.length, pad = 8, width = w - 2 * pad;
    const bar = Math.min(40, width / n);
    const per = bar >= 1 ? 1 : Math.ceil(n / width); /* frames per column */
    const columns = Math.ceil(n / per), colW = per === 1 ? bar : width / columns;
    let maxDur = 0;
    for (const f of frames) if (f.dur > maxDur) maxDur = f.dur;
    maxDur = maxDur || 1;
    const top = 14, bottom = h - 4;
    frameLayout = { pad, per, colW, columns, top, bottom };
    let drawnFrames = 0;
    for (let c = 0; c < columns; c++) {
      let best = c * per;
      let visible = false;
      for (let f = c * per; f < Math.min(n, (c + 1) * per); f++) {
        if (frames[f].dur > frames[best].dur) best = f;
        if (frames[f].end >= view.t0 && frames[f].start <= view.t1) visible = true;
        drawnFrames++;
      }
      const x = pad + c * colW;
      if (visible) {
        ctx.fillStyle = '#dde8fb';
        ctx.fillRect(x, 0, Math.max(colW, 1), h);
      }
      const f = frames[best];
      const bh = Math.max(1, (f.dur / maxDur) * (bottom - top));
      ctx.fillStyle = css(frameColor(f.dur));
      ctx.fillRect(x, bottom - bh, Math.max(colW - (colW > 3 ? 1 : 0), 1), bh);
    }
    ctx.fillStyle = '#4b5566';
    ctx.font = '10px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    ctx.textAlign = 'right';
    ctx.fillText('longest ' + fmtTime(maxDur), w - pad, 2);
    ctx.textAlign = 'left';
    report.drawn = Object.assign(report.drawn || {}, { frames: drawnFrames, frameColumns: columns });
  }

  function frameAt(x) {
    if (!frameLayout) return -1;
    const c = Math.floor((x - frameLayout.pad) / frameLayout.colW);
    if (c < 0 || c >= frameLayout.columns) return -1;
    const frames = model.frames;
    let best = c * frameLayout.per;
    for (let f = best; f < Math.min(frames.length, (c + 1) * frameLayout.per); f++)
      if (frames[f].dur > frames[best].dur) best = f;
    return best;
  }

  function selectFrame(i) {
    const f = model.frames[i];
    if (!f) return false;
    const pad = Math.max((f.end - f.start) * 0.03, MIN_SPAN);
    setView(f.start - pad, f.end + pad);
    return true;
  }

  /* ---- the list of logs and markers in view ----------------------------------------------- */

  function drawLogs() {
    const m = model.marks;
    if (!m.t.length) return;
    const lo = lowerBound(m.t, view.t0), hi = lowerBound(m.t, view.t1 + 1e-9);
    const list = $('logs');
    const shown = Math.min(hi - lo, 400);
    $('logs-info').textContent = '(' + (hi - lo).toLocaleString('en-US') + (shown < hi - lo ? ', first ' + shown + ' shown' : '') + ')';
    const frag = document.createDocumentFragment();
    for (let k = lo; k < lo + shown; k++) {
      const e = model.events[m.ev[k]];
      const row = document.createElement('div');
      row.className = 'row';
      const time = document.createElement('span');
      time.className = 'time';
      time.textContent = fmtTime(m.t[k]);
      const where = document.createElement('span');
      where.className = 'where';
      where.textContent = m.where[k];
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = clip(e.name === undefined ? '' : e.name, 300) + argsText(e.args, ['color'], 200);
      row.append(time, where, text);
      const at = m.t[k];
      row.addEventListener('click', () => {
        const span = view.t1 - view.t0;
        setView(at - span / 2, at + span / 2);
      });
      frag.append(row);
    }
    list.replaceChildren(frag);
  }

  function argsText(args, skip, max) {
    if (!args || typeof args !== 'object') return '';
    const parts = [];
    for (const k in args) {
      if (skip.includes(k)) continue;
      const v = args[k];
      parts.push(k + '=' + (typeof v === 'object' ? JSON.stringify(v) : String(v)));
    }
    return parts.length ? '  ' + clip(parts.join(' '), max) : '';
  }

  /* ---- hover, tooltip and input ------------------------------------------------------------- */

  function trackAt(my) {
    const y = my - RULER + view.scrollY;
    for (const t of model.tracks) if (!t.hidden && y >= t.y && y < t.y + t.height) return { t, ry: y - t.y };
    return null;
  }

  function hitTest(mx, my) {
    const { w } = canvases.timeline;
    if (my < RULER) return null;
    const hit = trackAt(my);
    if (!hit) return null;
    const { t, ry } = hit;
    if (mx < GUTTER) return t.kind === 'proc' ? { kind: 'proc', track: t } : null;
    const k = (w - GUTTER) / (view.t1 - view.t0);
    const at = view.t0 + (mx - GUTTER) / k, tol = 3 / k;
    if (t.kind === 'thread') {
      if (ry < t.markH) {
        const m = t.marks, i = lowerBound(m.t, at - tol);
        if (i < m.t.length && m.t[i] <= at + tol) return { kind: 'mark', track: t, index: i, time: m.t[i] };
        return null;
      }
      const d = Math.floor((ry - t.markH) / ROW), L = t.levels[d];
      if (!L) return null;
      let i = lowerBound(L.end, at, 0, L.n);
      if (!(i < L.n && L.start[i] <= at)) {
        i = lowerBound(L.end, at - tol, 0, L.n);
        if (!(i < L.n && L.start[i] <= at + tol)) return null;
      }
      return { kind: 'zone', track: t, level: L, index: i, start: L.start[i], end: L.end[i],
               y: RULER + t.y - view.scrollY + t.markH + d * ROW, depth: d };
    }
    if (t.kind === 'counter') {
      const values = t.series.map((s) => {
        const i = lowerBound(s.t, at + 1e-12) - 1;
        return i >= 0 ? [s.key, s.v[i]] : [s.key, null];
      });
      return { kind: 'counter', track: t, values, time: at, x: mx };
    }
    return null;
  }

  function tooltipFor(hit) {
    const lines = [];
    const events = model.events;
    if (hit.kind === 'zone') {
      const L = hit.level, ev = L.ev[hit.index], e = events[ev];
      lines.push(['name', clip(model.names[L.name[hit.index]], 300)]);
      lines.push(['', 'duration ' + fmtTime(hit.end - hit.start) + ' · starts at ' + fmtTime(hit.start)]);
      lines.push(['', hit.track.label + ' · depth ' + hit.depth + (e.cat !== undefined ? ' · ' + clip(e.cat, 60) : '')]);
      let args = e.args;
      const endIdx = hit.track.ze2 ? hit.track.ze2.get(ev) : undefined;
      if (endIdx !== undefined) args = Object.assign({}, args, events[endIdx].args);
      if (args && Object.keys(args).length) lines.push(['', 'args ' + clip(JSON.stringify(args, null, 1), 1500)]);
    } else if (hit.kind === 'mark') {
      const e = events[hit.track.marks.ev[hit.index]];
      lines.push(['name', clip(e.name === undefined ? '(instant)' : e.name, 300)]);
      lines.push(['', 'at ' + fmtTime(hit.time) + ' · ' + hit.track.label]);
      if (e.args && Object.keys(e.args).length) lines.push(['', 'args ' + clip(JSON.stringify(e.args, null, 1), 1500)]);
    } else if (hit.kind === 'counter') {
      lines.push(['name', clip(hit.track.label, 200)]);
      lines.push(['', 'at ' + fmtTime(hit.time)]);
      for (const [k, v] of hit.values) lines.push(['', k + ': ' + (v === null ? '–' : fmtValue(v, hit.track.bytes))]);
    } else if (hit.kind === 'frame') {
      const f = model.frames[hit.index];
      lines.push(['name', clip(f.name, 200)]);
      lines.push(['', 'duration ' + fmtTime(f.dur) + ' · starts at ' + fmtTime(f.start)]);
      lines.push(['', 'click to zoom to this frame']);
    } else if (hit.kind === 'proc') {
      lines.push(['name', clip(hit.track.label, 200)]);
      lines.push(['', 'click to ' + (hit.track.collapsed ? 'expand' : 'collapse')]);
    }
    return lines;
  }

  function showTooltip(hit, cx, cy) {
    const tip = $('tooltip');
    if (!hit) { tip.hidden = true; return; }
    const frag = document.createDocumentFragment();
    for (const [cls, text] of tooltipFor(hit)) {
      const div = document.createElement('div');
      if (cls) div.className = cls;
      div.textContent = text;
      frag.append(div);
    }
    tip.replaceChildren(frag);
    tip.hidden = false;
    const r = tip.getBoundingClientRect();
    const x = cx + 14 + r.width > window.innerWidth ? cx - 14 - r.width : cx + 14;
    const y = cy + 14 + r.height > window.innerHeight ? Math.max(0, cy - 14 - r.height) : cy + 14;
    tip.style.left = Math.max(0, x) + 'px';
    tip.style.top = y + 'px';
  }

  function localXY(cv, e) {
    const r = cv.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  function zoomAt(mx, factor) {
    const { w } = canvases.timeline;
    const frac = Math.min(Math.max((mx - GUTTER) / (w - GUTTER), 0), 1);
    const span = view.t1 - view.t0, at = view.t0 + frac * span;
    const next = Math.min(Math.max(span * factor, MIN_SPAN), model.total * 1.5);
    setView(at - frac * next, at - frac * next + next);
  }

  function panPixels(dx) {
    const { w } = canvases.timeline;
    const dt = (dx / (w - GUTTER)) * (view.t1 - view.t0);
    setView(view.t0 + dt, view.t1 + dt);
  }

  function installInput() {
    const cv = canvases.timeline.cv;
    cv.addEventListener('wheel', (e) => {
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      const [mx] = localXY(cv, e);
      if (e.shiftKey || mx < GUTTER) { /* over the names, the wheel scrolls the tracks */
        view.scrollY += (e.deltaY || e.deltaX) * unit;
        clampView();
        invalidate();
      } else if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        panPixels(e.deltaX * unit);
      } else {
        zoomAt(mx, Math.pow(1.0018, e.deltaY * unit));
      }
    }, { passive: false });
    cv.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      const [mx, my] = localXY(cv, e);
      drag = { x: e.clientX, y: e.clientY, t0: view.t0, t1: view.t1, scrollY: view.scrollY, moved: false, mx, my };
      cv.classList.add('dragging');
      e.preventDefault();
    });
    window.addEventListener('mousemove', (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        const { w } = canvases.timeline;
        const dt = (dx / (w - GUTTER)) * (drag.t1 - drag.t0);
        view.scrollY = drag.scrollY - dy;
        setView(drag.t0 - dt, drag.t1 - dt);
        showTooltip(null);
        return;
      }
      if (e.target === cv) {
        const [mx, my] = localXY(cv, e);
        const hit = hitTest(mx, my);
        const same = hover && hit && hover.kind === hit.kind && hover.index === hit.index &&
          hover.level === hit.level && hover.kind !== 'counter';
        hover = hit;
        if (!same) invalidate();
        showTooltip(hit, e.clientX, e.clientY);
      } else if (canvases.frames && e.target === canvases.frames.cv) {
        const [mx] = localXY(canvases.frames.cv, e);
        const i = frameAt(mx);
        showTooltip(i >= 0 ? { kind: 'frame', index: i } : null, e.clientX, e.clientY);
      } else if (hover) {
        hover = null;
        showTooltip(null);
        invalidate();
      }
    });
    window.addEventListener('mouseup', (e) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      cv.classList.remove('dragging');
      if (!d.moved) {
        const hit = hitTest(d.mx, d.my);
        if (hit && hit.kind === 'proc') {
          hit.track.collapsed = !hit.track.collapsed;
          layout();
          clampView();
          invalidate();
        }
      }
    });
    cv.addEventListener('dblclick', (e) => {
      const [mx, my] = localXY(cv, e);
      const hit = hitTest(mx, my);
      if (hit && hit.kind === 'zone') {
        const pad = Math.max((hit.end - hit.start) * 0.05, MIN_SPAN);
        setView(hit.start - pad, hit.end + pad);
      } else {
        resetView();
      }
    });
    if (canvases.frames) {
      canvases.frames.cv.addEventListener('click', (e) => {
        const [mx] = localXY(canvases.frames.cv, e);
        const i = frameAt(mx);
        if (i >= 0) selectFrame(i);
      });
    }
    window.addEventListener('keydown', (e) => {
      if (e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA')) return;
      const { w } = canvases.timeline, mid = GUTTER + (w - GUTTER) / 2;
      const key = e.key.toLowerCase();
      if (key === 'w' || key === '+' || key === '=') zoomAt(mid, 0.8);
      else if (key === 's' || key === '-') zoomAt(mid, 1.25);
      else if (key === 'a' || key === 'arrowleft') panPixels(-(w - GUTTER) * 0.1);
      else if (key === 'd' || key === 'arrowright') panPixels((w - GUTTER) * 0.1);
      else if (key === 'arrowup' || key === 'arrowdown') {
        view.scrollY += key === 'arrowup' ? -ROW * 3 : ROW * 3;
        clampView();
        invalidate();
      } else if (key === '0' || key === 'escape') resetView();
      else return;
      e.preventDefault();
    });
    $('reset').addEventListener('click', resetView);
    window.addEventListener('resize', () => {
      setupCanvas('timeline');
      if (model.frames.length) setupCanvas('frames');
      clampView();
      invalidate();
    });
  }

  function resetView() {
    const pad = model.total * 0.01;
    setView(-pad, model.total + pad);
  }

  /* ---- hooks for tests ------------------------------------------------------------------------ */

  function pageXY(cvId, x, y) {
    const r = canvases[cvId].cv.getBoundingClientRect();
    return { x: r.left + x, y: r.top + y };
  }

  /* The view as set (a draw follows at the next animation frame). */
  Object.defineProperty(report, 'view', {
    get: () => (model ? { start: view.t0, end: view.t1, origin: model.origin, scrollY: view.scrollY } : null),
  });
  report.selectFrame = selectFrame;
  report.setView = setView;
  report.reset = resetView;
  /* Page coordinates of frame i's bar (its column's middle, near the bottom). */
  report.frameBarCenter = (i) => {
    if (!frameLayout || i < 0 || i >= model.frames.length) return null;
    const c = Math.floor(i / frameLayout.per);
    return pageXY('frames', frameLayout.pad + (c + 0.5) * frameLayout.colW, frameLayout.bottom - 2);
  };
  /* Page coordinates of the middle of a zone named `name` drawn at least 4 px wide, or null. */
  report.findZone = (name) => {
    const { w, h } = canvases.timeline;
    const k = (w - GUTTER) / (view.t1 - view.t0);
    for (const t of model.tracks) {
      if (t.kind !== 'thread' || t.hidden) continue;
      for (let d = 0; d < t.levels.length; d++) {
        const L = t.levels[d], y = RULER + t.y - view.scrollY + t.markH + d * ROW;
        if (y < RULER || y + ROW > h) continue;
        for (let i = lowerBound(L.end, view.t0, 0, L.n); i < L.n && L.start[i] <= view.t1; i++) {
          if (model.names[L.name[i]] !== name) continue;
          const x0 = Math.max(GUTTER + (L.start[i] - view.t0) * k, GUTTER);
          const x1 = Math.min(GUTTER + (L.end[i] - view.t0) * k, w);
          if (x1 - x0 >= 4) return pageXY('timeline', (x0 + x1) / 2, y + ROW / 2);
        }
      }
    }
    return null;
  };
  report.frameRange = (i) => (model.frames[i] ? { start: model.frames[i].start, end: model.frames[i].end } : null);
  report.zoneNames = () => model.names.slice();
  report.tooltipText = () => ($('tooltip').hidden ? '' : $('tooltip').textContent);

  /* ---- start ---------------------------------------------------------------------------------- */

  function start() {
    const t0 = performance.now();
    const metaEl = $('shk-meta'), dataEl = $('shk-trace');
    let meta = {};
    try { meta = metaEl ? JSON.parse(metaEl.textContent) : {}; } catch (e) { meta = {}; }
    if (meta.title) {
      $('title').textContent = meta.title;
      document.title = meta.title + ' · shmkit report';
    }
    if (!dataEl) {
      fail('This page holds no trace. Make one with: shmkit lens report TRACE.json -o REPORT.html');
      return;
    }
    let raw;
    try {
      raw = JSON.parse(dataEl.textContent);
    } catch (e) {
      fail('The embedded trace is not valid JSON: ' + e.message);
      return;
    }
    dataEl.remove(); /* the parsed events are all that is needed: let the text go */
    const t1 = performance.now();
    const events = Array.isArray(raw) ? raw : raw && Array.isArray(raw.traceEvents) ? raw.traceEvents : null;
    if (!events) {
      fail('The embedded JSON is not a Chrome trace (an array of events or {"traceEvents": [...]}).');
      return;
    }
    model = buildModel(events);
    const t2 = performance.now();
    const c = model.counts;
    report.stats = {
      events: events.length, processes: c.processes, threads: c.threads, counterTracks: c.counters,
      tracks: c.threads + c.counters, frames: model.frames.length, zones: c.zones, markers: c.markers,
      counterSamples: c.samples, skipped: model.skipped, ignored: model.ignored,
      durationUs: model.total,
    };
    const summary = [
      c.zones.toLocaleString('en-US') + ' zones', c.threads + ' threads', c.processes + ' processes',
      model.frames.length.toLocaleString('en-US') + ' frames', c.markers.toLocaleString('en-US') + ' markers',
      c.counters + ' counters', fmtTime(model.total),
    ];
    $('summary').textContent = summary.join(' · ');
    const notShown = Object.keys(model.ignored).map((ph) => model.ignored[ph] + ' "' + ph + '"');
    if (model.skipped) notShown.push(model.skipped + ' without a time or not objects');
    if (notShown.length) showMessage('Events this viewer does not show: ' + notShown.join(', ') + '.');
    if (!events.length) showMessage('The trace holds no events.');
    else if (!c.zones && !c.markers && !c.samples) showMessage('The trace holds no event this viewer shows.');

    $('frames-panel').hidden = !model.frames.length;
    $('logs-panel').hidden = !model.marks.t.length;
    if (model.frames.length) {
      $('frames-info').textContent = '(' + model.frames.length.toLocaleString('en-US') +
        '; click a bar to zoom to that frame)';
      setupCanvas('frames');
    }
    setupCanvas('timeline');
    layout();
    resetView();
    installInput();
    requestAnimationFrame(() => {
      if (pending) draw();
      const t3 = performance.now();
      report.timings = { parseMs: t1 - t0, buildMs: t2 - t1, firstDrawMs: t3 - t2, readyMs: t3 };
      report.ready = true;
      document.documentElement.dataset.ready = 'true';
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
