"""Plain-text tables of the results, with ratios against the npm y-websocket server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Results = dict[str, dict[str, Any]]  # scenario -> server -> result


def _num(value: Any, fmt: str = ".2f") -> str:
    if isinstance(value, int | float) and value == value:  # not NaN
        return format(value, fmt)
    return "-" if value is None else str(value)


def _ratio(value: Any, base: Any) -> str:
    if isinstance(value, int | float) and isinstance(base, int | float) and base:
        return f"{value / base:.2f}x"
    return "-"


def _fanout(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        _num(r.get("p50_ms")),
        _num(r.get("p99_ms")),
        _ratio(r.get("p99_ms"), base.get("p99_ms")),
        _num(r.get("cpu_us_per_msg")),
        _ratio(r.get("cpu_us_per_msg"), base.get("cpu_us_per_msg")),
        _num(r.get("lost"), "d"),
        _num(r.get("loadgen_cpu_pct"), ".0f"),
        _num(r.get("rss_mb"), ".0f"),
        _num(r.get("rss_with_children_mb"), ".0f"),
    ]


def _presence(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        _num(r.get("moves_per_s"), ".0f"),
        _num(r.get("presence_p50_ms")),
        _num(r.get("presence_p95_ms")),
        _ratio(r.get("presence_p95_ms"), base.get("presence_p95_ms")),
        _num(r.get("presence_frames_per_client_s"), ".0f"),
        _num(r.get("stale_after_5s"), "d"),
        _num(r.get("server_cpu_pct_without"), ".0f"),
        _num(r.get("server_cpu_pct_with"), ".0f"),
        _num(r.get("cpu_ratio")),
        f"{_num(r.get('update_p99_ms_without'))} / {_num(r.get('update_p99_ms_with'))}",
        _num(r.get("loadgen_cpu_pct_with"), ".0f"),
    ]


def _saturation(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        _num(r.get("max_updates_per_s"), "d"),
        _ratio(r.get("max_updates_per_s"), base.get("max_updates_per_s")),
        str(r.get("stop", "-")),
    ]


def _burst(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        _num(r.get("updates"), "d"),
        _num(r.get("send_ms"), ".1f"),
        _num(r.get("all_seen_ms"), ".1f"),
        _num(r.get("all_saved_ms"), ".1f"),
        _num(r.get("saved_after_last_send_ms"), ".1f"),
        _num(r.get("all_stored_ms"), ".1f"),
        _num(r.get("server_cpu_s")),
        _num(r.get("survived_leave_early"), "d"),
    ]


def _cold(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    cells = [name]
    for size, v in r.items():
        if "skipped" in v:
            cells.append(f"{size}: skipped")
        else:
            ok = "" if v["complete"] else " INCOMPLETE"
            cells.append(f"{size}: {v['median_ms']:.1f} ms (max {v['max_ms']:.1f}){ok}")
    return cells


def _memory(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        _num(r.get("base_mb"), ".1f"),
        _num(r.get("kb_per_doc_connected"), ".1f"),
        _num(r.get("kb_per_doc_after_close"), ".1f"),
        _num(r.get("cycles"), "d"),
        _num(r.get("rss_growth_pct"), ".2f"),
    ]


def _stock_setup(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    return [
        name,
        f"{r.get('synced')}/{r.get('providers')}",
        _num(r.get("p50_ms"), ".1f"),
        _num(r.get("p95_ms"), ".1f"),
        _ratio(r.get("p95_ms"), base.get("p95_ms")),
        _num(r.get("max_ms"), ".1f"),
        " ".join(_num(v, ".0f") for v in r.get("p95_per_round_ms", [])),
        _num(r.get("answer_p50_ms"), ".1f"),
        _num(r.get("decode_p50_ms"), ".2f"),
        _num(r.get("server_share_mean_ms"), ".2f"),
    ]


def _stock_runs(v: dict[str, Any]) -> str:
    ok = "" if v["complete"] else " INCOMPLETE"
    share = v.get("server_share_ms")
    server = f", server {share:.1f}" if isinstance(share, float) else ""
    return (
        f"{v['median_ms']:.1f} ms (max {v['max_ms']:.1f}; open {v['open_ms']:.1f}, "
        f"answer {v['answer_ms']:.1f}, decode {v['decode_ms']:.1f}{server}){ok}"
    )


def _stock_cold(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    cells = [name]
    for size, v in r.items():
        if "skipped" in v:
            cells.append(f"{size}: skipped")
            continue
        cells.append(f"{size} loaded: {_stock_runs(v['warm'])}")
        if "cold" in v:
            cells.append(f"{size} after restart: {_stock_runs(v['cold'])}")
    return cells


def _bigjoin(name: str, r: dict[str, Any], base: dict[str, Any]) -> list[str]:
    rows = []
    for phase in ("cold", "warm"):
        v = r.get(phase)
        if not isinstance(v, dict):
            continue
        rows.append(
            " ".join(
                [
                    f"{phase}: {v['synced']}/{v['clients']} synced"
                    + ("" if v.get("content_ok") else " (CONTENT WRONG)")
                    + (
                        ""
                        if v["synced"] == v["clients"]
                        else f" ({v.get('answered')} answered, "
                        f"{v.get('distinct_answers')} distinct answers)"
                    ),
                    f"p50/p95/p99/max {_num(v['p50_ms'], '.0f')}/{_num(v['p95_ms'], '.0f')}/"
                    f"{_num(v['p99_ms'], '.0f')}/{_num(v['max_ms'], '.0f')} ms,",
                    f"first byte p50 {_num(v['first_byte_p50_ms'], '.0f')} ms,",
                    f"RSS {v['rss_before_mb']:.0f} -> peak {v['rss_peak_mb']:.0f} -> "
                    f"{v['rss_after_mb']:.0f} MB ({v['rss_after_close_mb']:.0f} after close),",
                    f"server CPU {v['server_cpu_s']:.1f} s, loadgen {v['loadgen_cpu_pct']:.0f} %",
                ]
            )
        )
    return [name, f"{r.get('document_mb', 0):.1f} MB, fill {r.get('fill_s', 0):.0f} s", *rows]


TABLES: dict[str, tuple[list[str], Callable[..., list[str]]]] = {
    "fanout": (
        [
            "server",
            "p50 ms",
            "p99 ms",
            "p99 ratio",
            "µs/msg",
            "µs ratio",
            "lost",
            "loadgen %",
            "RSS MB",
            "+children",
        ],
        _fanout,
    ),
    "saturation": (["server", "max updates/s", "ratio", "stopped by"], _saturation),
    "presence": (
        [
            "server",
            "moves/s",
            "presence p50 ms",
            "p95 ms",
            "p95 ratio",
            "frames/client/s",
            "stale",
            "CPU % without",
            "CPU % with",
            "CPU ratio",
            "update p99 ms without / with",
            "loadgen %",
        ],
        _presence,
    ),
    "burst": (
        [
            "server",
            "updates",
            "send ms",
            "all seen ms",
            "all saved ms",
            "saved-last ms",
            "stored ms",
            "server CPU s",
            "kept on leave",
        ],
        _burst,
    ),
    "cold": (["server", "connect + full sync, median of runs"], _cold),
    "memory": (
        ["server", "base MB", "KB/doc open", "KB/doc closed", "cycles", "growth %"],
        _memory,
    ),
    "stock-setup": (
        [
            "server",
            "synced",
            "p50 ms",
            "p95 ms",
            "p95 ratio",
            "max ms",
            "p95 per round",
            "answer p50",
            "decode p50",
            "server share ms",
        ],
        _stock_setup,
    ),
    "stock-cold": (["server", "stock provider: created -> synced, median of runs"], _stock_cold),
    "bigjoin": (["server", "document", "clients joining at once"], _bigjoin),
}


def table(scenario: str, results: dict[str, Any]) -> str:
    header, row = TABLES[scenario]
    base = results.get("y-websocket") or {}
    rows = [header]
    for name, r in results.items():
        if "error" in r or "skipped" in r:
            rows.append([name, str(r.get("error") or r.get("skipped"))])
        else:
            rows.append(row(name, r, base))
    columns = max(len(r) for r in rows)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(columns)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths[: len(header)]))
    return "\n".join(lines)
