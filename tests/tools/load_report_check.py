#!/usr/bin/env python3
"""Checks of mllp-load's reports for tools_test.sh.

  load_report_check.py latency HUMAN_REPORT JSON_REPORT
  load_report_check.py timeseries JSONL JSON_REPORT LINES|any
  load_report_check.py dom DUMPED_DOM
  load_report_check.py png FILE WIDTH HEIGHT

Each prints what is wrong and exits 1, or exits 0."""
import html.parser
import json
import re
import struct
import sys
import zlib

BAD = []


def check(ok, what):
    if not ok:
        BAD.append(what)


def to_us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def latency(report, jreport):
    """--latency: wrk2's fixed percentiles, then HdrHistogram's classic
    spectrum; monotone, ending at 100 %, agreeing with the JSON report."""
    text = open(report).read().splitlines()
    j = json.load(open(jreport))
    fixed = []
    for line in text:
        m = re.fullmatch(r"\s*(\d+\.\d{3})%\s+(\d+\.\d{2})(us|ms|s)", line)
        if m:
            fixed.append((float(m.group(1)), to_us(m.group(2), m.group(3))))
    check([p for p, _ in fixed] == [50, 75, 90, 99, 99.9, 99.99, 99.999, 100],
          "fixed percentiles: %r" % fixed)
    check(all(a[1] <= b[1] for a, b in zip(fixed, fixed[1:])),
          "fixed percentile values not monotone: %r" % fixed)
    if len(fixed) == 8:
        check(abs(fixed[0][1] - j["latency_us"]["p50"]) < 0.01 * j["latency_us"]["p50"] + 0.01,
              "50%% %r != p50 %r" % (fixed[0][1], j["latency_us"]["p50"]))
        check(abs(fixed[7][1] - j["latency_us"]["max"]) < 0.01 * j["latency_us"]["max"] + 0.01,
              "100%% %r != max %r" % (fixed[7][1], j["latency_us"]["max"]))
    hdr = "%12s %12s %12s %12s" % ("Value", "Percentile", "TotalCount", "1/(1-Percentile)")
    check(hdr in text, "no spectrum header")
    check("  Detailed Percentile spectrum:" in text, "no spectrum title")
    rows = []
    for line in text[text.index(hdr) + 1:] if hdr in text else []:
        if line.startswith("#") or line.startswith("---"):
            break
        if not line.strip():
            continue
        f = line.split()
        check(len(f) == 4, "spectrum line: %r" % line)
        rows.append((float(f[0]), float(f[1]), int(f[2]), float(f[3])))
    check(len(rows) >= 20, "only %d spectrum lines" % len(rows))
    total = j["accepted"] + j["app_errors"] + j["app_rejects"]
    for a, b in zip(rows, rows[1:]):
        check(a[0] <= b[0] and a[1] <= b[1] and a[2] <= b[2] and a[3] <= b[3],
              "spectrum not monotone: %r then %r" % (a, b))
    if rows:
        check(rows[0][1] == 0 and rows[0][3] == 1, "first line %r" % (rows[0],))
        check(rows[-1][1] == 1 and rows[-1][3] == float("inf") and rows[-1][2] == total,
              "last line %r (want 1.0, inf, %d)" % (rows[-1], total))
        check(abs(rows[-1][0] * 1e3 - j["latency_us"]["max"]) < 1,
              "last value %r ms != max %r us" % (rows[-1][0], j["latency_us"]["max"]))
    foot = [l for l in text if l.startswith("#[")]
    pats = [r"#\[Mean    = +\d+\.\d{3}, StdDeviation   = +\d+\.\d{3}\]",
            r"#\[Max     = +(\d+\.\d{3}), Total count    = +(\d+)\]",
            r"#\[Buckets = +\d+, SubBuckets     = +\d+\]"]
    check(len(foot) == 3 and all(re.fullmatch(p, l) for p, l in zip(pats, foot)),
          "footer: %r" % foot)
    if len(foot) == 3:
        m = re.fullmatch(pats[1], foot[1])
        check(m and int(m.group(2)) == total and
              abs(float(m.group(1)) * 1e3 - j["latency_us"]["max"]) < 1,
              "footer max/count: %r" % foot[1])


def timeseries(path, jreport, lines):
    """--timeseries: valid JSON lines, one per second, that add up to the
    report."""
    raw = [l for l in open(path).read().split("\n") if l]
    L = []
    for l in raw:
        try:
            L.append(json.loads(l))
        except ValueError:
            check(False, "not JSON: %r" % l)
    j = json.load(open(jreport))
    if lines != "any":
        check(len(L) == int(lines), "%d lines, want %s" % (len(L), lines))
    keys = ["t", "dt", "sent", "acked", "failed", "throughput_msgs_per_s",
            "latency_us", "connections_up", "reconnects"]
    for i, x in enumerate(L):
        check(all(k in x for k in keys), "line %d lacks keys: %r" % (i, x))
        if i + 1 < len(L) and lines != "any":
            check(abs(x["t"] - (i + 1)) < 0.2 and abs(x["dt"] - 1) < 0.2,
                  "line %d is not second %d: %r" % (i, i + 1, x))
        lat = x.get("latency_us")
        if lat is not None:
            check(lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"],
                  "line %d latency order: %r" % (i, lat))
    check(all(a["t"] < b["t"] for a, b in zip(L, L[1:])), "t not increasing")
    check(abs(sum(x["dt"] for x in L) - j["duration_s"]) < 0.01 * len(L) + 0.01,
          "dt sum %r != duration %r" % (sum(x["dt"] for x in L), j["duration_s"]))
    for k in ["sent"]:
        check(sum(x[k] for x in L) == j[k], "sum %s != %d" % (k, j[k]))
    for k in ["accepted", "app_errors", "app_rejects"]:
        check(sum(x["acked"][k] for x in L) == j[k], "sum acked.%s != %d" % (k, j[k]))
    errs = {}
    for x in L:
        for k, v in x["failed"].items():
            errs[k] = errs.get(k, 0) + v
    check(errs == j["errors"], "failed by reason %r != %r" % (errs, j["errors"]))
    check(sum(x["reconnects"] for x in L) == j["reconnects"], "reconnects")


class Svg(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
        self.paths = {}
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "svg":
            self.stack.append(a.get("id"))
            self.paths.setdefault(a.get("id"), [])
        elif tag == "path" and self.stack:
            self.paths[self.stack[-1]].append(a.get("d") or "")

    def handle_endtag(self, tag):
        if tag == "svg" and self.stack:
            self.stack.pop()


def dom(path):
    """The rendered page: four charts, each with drawn paths; the tables."""
    p = Svg()
    p.feed(open(path).read())
    want = {"chart-throughput": 2, "chart-latency": 3, "chart-distribution": 1,
            "chart-outcomes": 6}
    for cid, n in want.items():
        d = p.paths.get(cid)
        check(d is not None, "no <svg id=%s>" % cid)
        if d is not None:
            check(len(d) == n, "%s: %d paths, want %d" % (cid, len(d), n))
            check(all(re.match(r"M[\d.]+ [\d.]+[LH]", x) for x in d),
                  "%s: empty or odd path d: %r" % (cid, [x[:30] for x in d]))
    check("parameters" in p.ids and "summary" in p.ids, "tables missing")


def png(path, width, height):
    """A PNG of that size that is not blank."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    check((w, h) == (int(width), int(height)), "size %dx%d" % (w, h))
    idat, pos = b"", 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    check(len(set(raw)) > 32, "blank image (%d distinct bytes)" % len(set(raw)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"latency": latency, "timeseries": timeseries, "dom": dom, "png": png}[cmd](*args)
    for b in BAD:
        print("  " + b, file=sys.stderr)
    sys.exit(1 if BAD else 0)


main()
