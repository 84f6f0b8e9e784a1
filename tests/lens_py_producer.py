#!/usr/bin/env python3
"""An independent lens 2.0 producer, written from docs/lens-protocol.md alone (mmap + struct +
ctypes), recorded by `shmkit lens record` and compared event by event with what it sent.
Usage: lens_py_producer.py SHMKIT_BINARY WORKDIR. Exit 0 pass, 1 fail, 77 skipped (said why)."""
import ctypes, json, mmap, os, struct, subprocess, sys, threading, time

MAGIC, VERSION, HEADER, RECORD, RING_HDR = 0x1DC45EF1, 0x00020000, 1280, 32, 256
RINGS, RECORDS = 4, 1024
STRIDE = RING_HDR + RECORD * RECORDS
SIZE = HEADER + RINGS * STRIDE
ZONE, FRAME, PLOT, HEAP, LOG, STRING, THREAD = 1, 2, 3, 4, 5, 6, 7
KIND = {FRAME: 0, ZONE: 1, HEAP: 2, PLOT: 3, LOG: 4}


def u32(mm, off):
    return ctypes.c_uint32.from_buffer(mm, off)


def u64(mm, off):
    return ctypes.c_uint64.from_buffer(mm, off)


class Ring:
    def __init__(self, mm, index, tid):
        self.mm, self.base = mm, HEADER + index * STRIDE
        b = self.base
        for k in range(5):
            u64(mm, b + 72 + 8 * k).value = 0
            u64(mm, b + 112 + 8 * k).value = 0
            u64(mm, b + 200 + 8 * k).value = 0
        self.head = u64(mm, b + 192).value  # head = tail
        u64(mm, b + 64).value = self.head
        u32(mm, b + 8).value = os.getpid()
        u64(mm, b + 16).value = tid
        u32(mm, b + 4).value = u32(mm, b + 4).value + 1
        u32(mm, b + 0).value = 2  # live, published last (x86 stores are ordered)
        self.sent = set()

    def _put(self, rtype, flags=0, depth=0, length=0, a=0, b=0, c=0, data=b""):
        recs = [struct.pack("<BBHIQQQ", rtype, flags, depth, length, a, b, c)]
        for i in range(0, len(data), RECORD):
            recs.append(data[i:i + RECORD].ljust(RECORD, b"\0"))
        return recs

    def send(self, kind, recs):
        tail = u64(self.mm, self.base + 192).value
        if self.head + len(recs) > tail + RECORDS:
            u64(self.mm, self.base + 112 + 8 * kind).value += 1
            return False
        for r in recs:
            off = self.base + RING_HDR + RECORD * (self.head % RECORDS)
            self.mm[off:off + RECORD] = r
            self.head += 1
        u64(self.mm, self.base + 72 + 8 * kind).value += 1
        u64(self.mm, self.base + 64).value = self.head
        return True

    def name(self, key, text):
        if key in self.sent:
            return []
        self.sent.add(key)
        data = text.encode()
        return self._put(STRING, length=len(data), a=key, data=data)

    def thread(self, text):
        data = text.encode()
        recs = self._put(THREAD, length=len(data), data=data)
        # a thread name is not an event: publish without counting
        for r in recs:
            off = self.base + RING_HDR + RECORD * (self.head % RECORDS)
            self.mm[off:off + RECORD] = r
            self.head += 1
        u64(self.mm, self.base + 64).value = self.head

    def zone(self, key, text, begin, end, depth, color, args=()):
        """args: (name key, name, type 0 unsigned / 1 signed / 2 text, value or (key, text))."""
        names, recs = self.name(key, text), []
        for akey, aname, atype, value in args:
            names += self.name(akey, aname)
            if atype == 2:
                names += self.name(value[0], value[1])
                value = value[0]
            recs += self._put(ZONE, 1 | atype << 1, a=value & 0xFFFFFFFFFFFFFFFF, c=akey)
        return self.send(1, names + recs + self._put(ZONE, 0, depth, color, begin, end, key))

    def frame(self, start, end, number):
        return self.send(0, self._put(FRAME, a=start, b=end, c=number))

    def plot(self, key, text, t, value, color):
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        return self.send(3, self.name(key, text) + self._put(PLOT, length=color, a=t, b=bits, c=key))

    def heap(self, t, addr, size, free):
        return self.send(2, self._put(HEAP, flags=1 if free else 0, a=t, b=addr, c=size))

    def log(self, t, color, text):
        data = text.encode()
        return self.send(4, self._put(LOG, length=len(data), a=t, b=color, data=data))


def create_segment(name):
    """Creates and sets up a segment as the document's producer does; returns (mm, path, origin)."""
    path = "/dev/shm/" + name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, SIZE)
    mm = mmap.mmap(fd, SIZE)
    os.close(fd)
    origin = time.monotonic_ns()
    struct.pack_into("<IIIIQQIIIIIIQdQ", mm, 0, 0, VERSION, HEADER, RECORD, SIZE, HEADER, RINGS,
                     RECORDS, STRIDE, 0, 2, 0, origin, 1.0, origin)
    struct.pack_into("<I", mm, 88, 128)
    u32(mm, 256).value = os.getpid()
    u32(mm, 0).value = MAGIC
    return mm, path, origin


def wait_reader(mm, proc):
    deadline = time.time() + 30
    while u32(mm, 80).value == 0:
        if time.time() > deadline or proc.poll() is not None:
            print("FAIL: the reader never attached")
            return False
        time.sleep(0.01)
    return True


def claim(mm, index, label):
    st = u32(mm, HEADER + index * STRIDE)
    assert st.value == 0
    st.value = 1
    used = u32(mm, 44)
    used.value = max(used.value, index + 1)
    ring = Ring(mm, index, threading.get_native_id())
    ring.thread(label)
    return ring


def shrink_check(tool, work):
    """Issue 13, defect 5: a segment truncated under the recorder must not kill it (SIGBUS); it
    stops with a message and writes the trace of what it read."""
    name = "lens-pys-%d" % os.getpid()
    trace = os.path.join(work, "lens_py_shrink.json")
    mm, path, origin = create_segment(name)
    rec = subprocess.Popen([tool, "lens", "record", name, "-o", trace, "--wait", "30", "--quiet"],
                           stderr=subprocess.PIPE)
    if not wait_reader(mm, rec):
        return ["shrink: no reader"]
    ring = claim(mm, 0, "shrinking")
    for i in range(10):
        ring.zone(0x100, "before the cut", origin + 10 * i + 1, origin + 10 * i + 5, 0, 0)
    deadline = time.time() + 30
    while u64(mm, ring.base + 192).value != ring.head and time.time() < deadline:
        time.sleep(0.01)
    fd = os.open(path, os.O_RDWR)
    os.ftruncate(fd, 0)  # from here on, neither side may touch the mapping
    os.close(fd)
    try:
        _, err = rec.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        rec.kill()
        os.unlink(path)
        return ["shrink: the recorder did not stop"]
    os.unlink(path)
    fails = []
    if rec.returncode < 0:
        fails.append("shrink: the recorder died of signal %d" % -rec.returncode)
    elif b"shrank" not in err:
        fails.append("shrink: no message (%r)" % err)
    try:
        with open(trace, encoding="utf-8") as f:
            zones = [e for e in json.load(f)["traceEvents"] if e.get("cat") == "zone"]
        if len(zones) != 10:
            fails.append("shrink: %d of 10 zones in the trace" % len(zones))
    except (OSError, ValueError) as e:
        fails.append("shrink: no valid trace (%s)" % e)
    return fails


def escape_check(tool):
    """Issue 13, defect 8: names from a producer must not reach the terminal raw."""
    name = "lens-pye-%d" % os.getpid()
    mm, path, origin = create_segment(name)
    out = subprocess.Popen([tool, "lens", "summary", name, "--wait", "30", "--duration", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not wait_reader(mm, out):
        return ["escape: no reader"]
    ring = claim(mm, 0, "bell\x07thread")
    for i in range(5):
        ring.zone(0x200, "red\x1b[31mzone", origin + 10 * i + 1, origin + 10 * i + 5, 0, 0)
    for r in (ring,):
        u32(mm, r.base).value = 3
    u32(mm, 256).value = 0
    os.unlink(path)
    text, _ = out.communicate(timeout=60)
    fails = []
    if b"\x1b" in text or b"\x07" in text:
        fails.append("escape: a control character reached the output: %r" % text)
    if b"red\\x1b[31mzone" not in text or b"bell\\x07thread" not in text:
        fails.append("escape: names not shown escaped: %r" % text)
    return fails


def main():
    if not sys.platform.startswith("linux") or not os.path.isdir("/dev/shm"):
        print("SKIPPED: this producer maps /dev/shm (Linux only)")
        return 77
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    name = "lens-py-%d" % os.getpid()
    trace = os.path.join(work, "lens_py.json")
    mm, path, origin = create_segment(name)
    rec = subprocess.Popen([tool, "lens", "record", name, "-o", trace, "--wait", "30", "--quiet"])
    if not wait_reader(mm, rec):
        return 1

    sent = []  # (kind, fields) as the trace should show them
    tick = [origin + 1000]

    def now():
        tick[0] += 1000  # strictly increasing, 1 us apart
        return tick[0]

    def run_thread(index, label):
        tid = threading.get_native_id()
        ring = claim(mm, index, label)  # the way the document says: 0 -> 1, raise rings_used
        keys = {"outer": 0x1000 + index * 16, "inner": 0x2000 + index * 16, "pl": 0x3000}
        for i in range(20):
            b0 = now(); b1 = now(); e1 = now(); e0 = now()
            assert ring.zone(keys["inner"], "inner é", b1, e1, 1, 0x112233)
            assert ring.zone(keys["outer"], "outer", b0, e0, 0, 0x445566)
            sent.append(("zone", tid, "inner é", (e1 - b1), b1))
            sent.append(("zone", tid, "outer", (e0 - b0), b0))
        t = now()
        assert ring.plot(keys["pl"], "plot value", t, 2.5 + index, 0xABCDEF)
        sent.append(("plot", "plot value", 2.5 + index))
        return ring

    r0 = run_thread(0, "py main")
    # lens 2.2: a zone with one argument of each type, before the zone in the same publication
    b, e = now(), now()
    assert r0.zone(0x5000, "with args", b, e, 0, 0x010203,
                   [(0x5010, "n", 0, 7), (0x5020, "d", 1, -3), (0x5030, "mode", 2, (0x5040, "pages"))])
    holder = {}
    th = threading.Thread(target=lambda: holder.setdefault("r", run_thread(1, "py worker")))
    th.start(); th.join()
    f0 = now(); f1 = now()
    assert r0.frame(f0, f1, 1)
    assert r0.heap(now(), 0xAB0, 1000, False)
    assert r0.heap(now(), 0xAB0, 400, True)
    message = "a log message longer than one record, with UTF-8: \u00e9\u20ac"
    assert r0.log(now(), 0x00FF00, message)
    # close: rings closed, slot freed, name removed (no other live producer)
    for ring in (r0, holder["r"]):
        u32(mm, ring.base).value = 3
    u32(mm, 256).value = 0
    os.unlink(path)
    try:
        rc = rec.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rec.kill()
        print("FAIL: the recorder did not stop when the producer closed")
        return 1
    if rc != 0:
        print("FAIL: the recorder exited with", rc)
        return 1
    with open(trace, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    zones = [e for e in events if e.get("cat") == "zone"]
    fails = []
    if len(zones) != 81:
        fails.append("zones: %d of 81" % len(zones))
    with_args = [z for z in zones if z["name"] == "with args"]
    if len(with_args) != 1 or with_args[0].get("args") != {"n": 7, "d": -3, "mode": "pages"}:
        fails.append("zone arguments %s" % with_args)
    for kind, *fields in sent:
        if kind == "zone":
            tid, label, dur, begin = fields
            want_ts = "%.3f" % ((begin - origin) / 1000)
            ok = any(z["tid"] == tid and z["pid"] == os.getpid() and z["name"] == label and
                     abs(z["dur"] - dur / 1000) < 1e-6 and "%.3f" % z["ts"] == want_ts
                     for z in zones)
            if not ok:
                fails.append("zone %s on %d at %s not found" % (label, tid, want_ts))
        else:
            label, value = fields
            if not any(e.get("cat") == "plot" and e["name"] == label and e["args"]["value"] == value
                       for e in events):
                fails.append("plot %s = %s not found" % (label, value))
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e["name"] == "thread_name"}
    if set(v for v in names.values()) < {"py main", "py worker"}:
        fails.append("thread names %s" % names)
    frames = [e for e in events if e.get("cat") == "frame"]
    if len(frames) != 1 or frames[0]["name"] != "frame 1":
        fails.append("frames %s" % frames)
    heap = [e["args"]["live bytes"] for e in events if e.get("cat") == "heap"]
    if heap != [1000, 600]:
        fails.append("heap %s" % heap)
    logs = [e["name"] for e in events if e.get("cat") == "log"]
    if logs != [message]:
        fails.append("logs %s" % logs)
    fails += shrink_check(tool, work)
    fails += escape_check(tool)
    for f in fails:
        print("FAIL:", f)
    print("%d events compared, %d failures" % (len(sent) + 4, len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
