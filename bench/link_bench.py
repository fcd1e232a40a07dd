"""Foundation benchmark: virtual-board boot, serial link latency/throughput, image size.

    .venv/bin/python bench/link_bench.py [--boards virtual-m4,virtual-m7,virtual-m3] [--out bench/results/link.json]

Per board: boot-to-HELLO wall time (QEMU process start -> HELLO reply; median
of --boots runs), PING round-trip time at 0 B and the max payload, sustained
echo throughput (back-to-back max-size PINGs for --seconds), and the firmware's
static flash/RAM use against the board budget. Wall-clock numbers depend on
the host machine; sizes do not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchlib import write_results

from host_tools.board import qemu
from host_tools.board.boards import get_board
from host_tools.board.client import BoardClient, ping_stats
from host_tools.board.pio import build_firmware


def bench_board(name: str, boots: int, seconds: float) -> dict[str, object]:
    board = get_board(name)
    res = build_firmware(board)
    boot_times = []
    for _ in range(boots):
        t0 = time.perf_counter()
        with qemu.private(board, res.elf) as rb, BoardClient(rb.url) as c:
            c.hello()
            boot_times.append(time.perf_counter() - t0)
    with qemu.private(board, res.elf) as rb:
        with BoardClient(rb.url) as c:
            hello = c.hello()
            rows = ping_stats(c, [0, 64, hello.max_payload], 30)
            data = os.urandom(hello.max_payload)
            n = 0
            before = c.counters.bytes_sent + c.counters.bytes_received
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                c.ping(data)
                n += 1
            dt = time.perf_counter() - t0
            wire = c.counters.bytes_sent + c.counters.bytes_received - before
            counters = c.counters.as_dict()
    return {
        "board": name,
        "qemu_machine": board.qemu_machine,
        "boot_to_hello_s": {"median": round(statistics.median(boot_times), 4), "min": round(min(boot_times), 4),
                            "max": round(max(boot_times), 4), "runs": boots},
        "ping": rows,
        "sustained_echo": {"payload_bytes": hello.max_payload, "round_trips": n, "seconds": round(dt, 3),
                           "payload_bytes_per_s_each_way": round(n * hello.max_payload / dt, 1),
                           "wire_bytes_per_s_both_ways": round(wire / dt, 1)},
        "firmware": {"flash_used": res.flash_used, "flash_budget": res.flash_budget,
                     "ram_used": res.ram_used, "ram_budget": res.ram_budget},
        "link_counters": counters,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="virtual-m4,virtual-m7,virtual-m3")
    ap.add_argument("--boots", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", default="bench/results/link.json")
    args = ap.parse_args()
    results = []
    for name in args.boards.split(","):
        print(f"benchmarking {name} ...", flush=True)
        r = bench_board(name, args.boots, args.seconds)
        b, s = r["boot_to_hello_s"], r["sustained_echo"]
        print(f"  boot-to-HELLO {b['median'] * 1e3:.0f} ms, ping 0 B {r['ping'][0]['rtt_median_s'] * 1e3:.2f} ms, "
              f"sustained {s['payload_bytes_per_s_each_way']:.0f} B/s each way, "
              f"flash {r['firmware']['flash_used']} B, RAM {r['firmware']['ram_used']} B")
        results.append(r)
    write_results(args.out, "octo.bench.link/1", results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
