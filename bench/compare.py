#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench/compare.py, called by bench/compare:
#   compare.py run FILE ROW NAME ROUND C0 C1 B0 B1 T0 T1 CLK REL: one runs.tsv line from a
#     tern-bench JSON file and the server's (C) and backend's (B) CPU ticks over [T0, T1];
#   compare.py table OUT ROUNDS DURATION IDLE RATE WALL: the table (markdown, stdout) and
#     results.json from OUT/runs.tsv.
import csv, json, os, statistics, sys


def run(f, row, name, r, c0, c1, b0, b1, t0, t1, clk, rel):
    d = json.load(open(f))
    wall = float(t1) - float(t0)
    cpu = (int(c1) - int(c0)) / int(clk) / wall
    bcpu = (int(b1) - int(b0)) / int(clk) / wall
    mode = d["config"]["mode"]
    if mode == "throughput":
        rate, unit = d["totals"]["mb_per_s_in"], "MB/s"
    elif mode == "echo":
        rate, unit = d["types"].get("request", {}).get("rate", 0.0), "req/s"
    else:
        # connections per second: the handshakes' type (with --payload, totals also count the
        # requests, one per connection)
        hs = [v for k, v in d["types"].items() if k != "request"]
        rate, unit = (sum(v["rate"] for v in hs) if hs else d["totals"]["rate"]), "conn/s"
    p99 = ""
    t = d["types"].get("request") if mode == "echo" else None
    if t is None and d["types"]:
        t = next(iter(d["types"].values()))
    if t:
        p99 = t["latency_us"]["p99"]
    per = rate / cpu if cpu > 0 else 0.0
    want = {"hs13-hybrid": "X25519MLKEM768", "hs13-ec-p256": "P-256"}.get(row)
    got = d.get("negotiated", {}).get("group", "")
    if want and got != want:
        print(f"compare: {row} {name} round {r}: negotiated group {got!r}, not {want}", file=sys.stderr)
    print(f"{row}\t{name}\t{r}\t{rate:.2f}\t{unit}\t{cpu:.3f}\t{bcpu:.3f}\t{per:.1f}\t{p99}\t{d['totals']['errors']}\t{rel}")


def table(out, rounds, duration, idle_n, rate, wall):
    rows = {}
    order = []
    for rec in csv.DictReader(open(os.path.join(out, "runs.tsv")), delimiter="\t"):
        key = rec["row"]
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key].setdefault(rec["server"], []).append(rec)

    def med(recs, field):
        v = [float(r[field]) for r in recs if r.get(field) not in ("", None)]
        return statistics.median(v) if v else None

    kinds = {r: "terminating" for r in ("hs13-ec", "hs13-ec-p256", "hs13-hybrid", "hs13-rsa",
                                         "hs12-ec", "resume13", "resume12", "resume12-sid",
                                         "idle-term", "stime")}
    kinds.update({r: "proxy" for r in ("px13-ec", "psk12", "psk12-ecdhe", "psk13-ke", "psk13-dhe",
                                       "bulk", "echo", "idle-proxy")})
    titles = {
        "hs13-ec": "full handshake, TLS 1.3, ECDSA P-256, X25519 (conn/s)",
        "hs13-ec-p256": "full handshake, TLS 1.3, ECDSA P-256, P-256 key share (conn/s)",
        "hs13-hybrid": "full handshake, TLS 1.3, ECDSA P-256, X25519MLKEM768 key exchange (conn/s; "
                       "tern only: the peers' OpenSSL 3.0 cannot offer it)",
        "hs13-rsa": "full handshake, TLS 1.3, RSA-2048, X25519 (conn/s)",
        "hs12-ec": "full handshake, TLS 1.2 ECDHE-ECDSA-AES128-GCM, X25519 (conn/s)",
        "resume13": "resumed handshake, TLS 1.3, ticket, psk_dhe_ke X25519 (conn/s)",
        "resume12": "resumed handshake, TLS 1.2, ticket (conn/s)",
        "resume12-sid": "resumed handshake, TLS 1.2, session ID (conn/s)",
        "px13-ec": "full handshake + 16 B echo through the backend, TLS 1.3, ECDSA P-256, X25519 (conn/s)",
        "psk12": "PSK handshake + 16 B echo, TLS 1.2 PSK-AES128-GCM-SHA256 (conn/s)",
        "psk12-ecdhe": "PSK handshake + 16 B echo, TLS 1.2 ECDHE-PSK-CHACHA20-POLY1305, X25519 (conn/s)",
        "psk13-ke": "PSK handshake + 16 B echo, TLS 1.3 psk_ke (conn/s)",
        "psk13-dhe": "PSK handshake + 16 B echo, TLS 1.3 psk_dhe_ke, X25519 (conn/s)",
        "bulk": "bulk over one connection, TLS 1.3 AES128-GCM (MB/s echoed)",
        "echo": f"echo, 64 B at {rate}/s on 10 connections: p99 latency (us)",
        "idle-term": "VmRSS per idle TLS 1.3 connection (KiB)",
        "idle-proxy": "VmRSS per idle TLS 1.3 connection, backend socket included (KiB)",
        "stime": "cross-check, tern-ec TLS 1.3, one connection at a time (conn/s)",
    }
    tern_names = {"tern-ec", "tern-rsa", "tern-gateway", "tern-gw-ec", "tern-sid"}
    combined = {"rounds": int(rounds), "duration_s": int(duration), "idle": int(idle_n), "rows": {},
                "kinds": kinds}
    print(f"Medians of {rounds} rounds ({duration} s measured each). server CPU = CPU s per wall s of")
    print("the server process(es) over the measured window; per core = rate / server CPU;")
    print("backend = the plaintext echo behind the proxies (not in their CPU). ratio = tern / peer.\n")
    for key in order:
        servers = rows[key]
        title = titles.get(key, key)
        title = f"[{kinds.get(key, '?')}] {title}"
        print(f"### {title}\n")
        tern = next((s for s in servers if s in tern_names), None)
        if key == "stime":
            for s, recs in servers.items():
                for r in recs:
                    print(f"- {r['file']}: **{r['rate']} conn/s**")
            print()
            combined["rows"][key] = {r["file"]: r["rate"] for recs in servers.values() for r in recs}
            continue
        if key.startswith("idle"):
            print("| server | KiB per idle connection | echo backend KiB per connection | detail |")
            print("|---|---|---|---|")
            t = med(servers.get(tern, []), "rate") if tern else None
            for s, recs in servers.items():
                v = med(recs, "rate")
                ratio = f" (tern/peer {t / v:.2f})" if t and v and s != tern else ""
                print(f"| {s} | **{v:.2f}**{ratio} | {recs[0]['backend_cpu']} | {recs[0]['file']} |")
                combined["rows"].setdefault(key, {})[s] = {"kib_per_conn": v, "detail": recs[0]["file"]}
            print()
            continue
        lat = key == "echo"
        print("| server | rate | server CPU | per core | ratio tern/peer (rate, per core) | p99 us | backend CPU | errors | runs |")
        print("|---|---|---|---|---|---|---|---|---|")
        tr = med(servers.get(tern, []), "rate") if tern else None
        tp = med(servers.get(tern, []), "per_core") if tern else None
        tl = med(servers.get(tern, []), "p99_us") if tern else None
        for s, recs in servers.items():
            rt, cpu, pc = med(recs, "rate"), med(recs, "server_cpu"), med(recs, "per_core")
            p99, bc = med(recs, "p99_us"), med(recs, "backend_cpu")
            errs = sum(int(float(r["errors"])) for r in recs if r["errors"] not in ("", None))
            ratio = ""
            if s != tern and tr and rt and tp and pc:
                ratio = f"{tr / rt:.2f}, **{tp / pc:.2f}**"
                if lat and tl and p99:
                    ratio += f"; p99 {tl / p99:.2f}"
            f = lambda x, d=1: "-" if x is None else f"{x:,.{d}f}"
            print(f"| {s} | {f(rt)} | {f(cpu, 2)} | **{f(pc, 0)}** | {ratio} | {f(p99, 0)} | {f(bc, 2)} | {errs} | {len(recs)} |")
            combined["rows"].setdefault(key, {})[s] = {
                "rate_median": rt, "unit": recs[0]["unit"], "server_cpu_median": cpu,
                "per_core_median": pc, "p99_us_median": p99, "backend_cpu_median": bc,
                "errors": errs, "runs": [r["file"] for r in recs],
                "per_round": [{k: r[k] for k in ("round", "rate", "server_cpu", "per_core", "p99_us")} for r in recs]}
        print()
    combined["machine"] = open(os.path.join(out, "machine.txt")).read()
    combined["notes"] = open(os.path.join(out, "notes.txt")).read()
    json.dump(combined, open(os.path.join(out, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    {"run": run, "table": table}[sys.argv[1]](*sys.argv[2:])
