"""Write docs/benchmarks.md from bench/results/peers*.json, scale.json, sweep.json, memory.json, hf_zoo.json,
gpu_spec.json and gpu-validation.json.

.venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
NOTES = HERE / "benchmarks_notes.md"  # the hand-written part: conventions, findings, how to rerun

Row = dict[str, Any]


def load_peers() -> tuple[list[Row], dict[str, Any]]:
    rows: dict[tuple[str, str], Row] = {}
    environment: dict[str, Any] = {}
    for path in sorted((HERE / "results").glob("peers*.json")):
        data = json.loads(path.read_text())
        environment = environment or data["environment"]
        for row in data["results"]:
            rows[(row["case"], row["tool"])] = row
    return list(rows.values()), environment


def mac_error(row: Row) -> tuple[float, str] | None:
    """Relative MAC error against the reference, and which convention it was measured against.

    torchvision's reference is known to 3 decimals of GMACs: a count that rounds to it has error 0. A causal
    model's count is compared with both conventions (causal pairs, full score matrix), the closer one kept.
    """
    macs = row.get("macs")
    if macs is None or "error" in row:
        return None
    if "gmacs_3dp" in row:
        if round(macs / 1e9, 3) == row["gmacs_3dp"]:
            return 0.0, "published"
        return (macs - row["ref_macs"]) / row["ref_macs"], "published"
    options = [((macs - row["ref_macs"]) / row["ref_macs"], "causal" if row.get("ref_macs_full") else "exact")]
    if row.get("ref_macs_full"):
        options.append(((macs - row["ref_macs_full"]) / row["ref_macs_full"], "full"))
    return min(options, key=lambda option: abs(option[0]))


def percent(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value * 100:+.2g}%" if abs(value) < 0.1 else f"{value * 100:+.0f}%"


def si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if float(f"{abs(value):.3g}") >= factor:  # 999.8 M shows as 1 G, not 1e+03 M
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()


def summary(rows: list[Row], cases: int, timed: set[str] | None = None) -> dict[str, str]:
    """One tool's line: handled, params exact, within 1% / 5%, median and worst error, silent under-counts, time."""
    handled = [r for r in rows if mac_error(r) is not None]
    signed = [e[0] for r in handled if (e := mac_error(r)) is not None]
    errors = [abs(e) for e in signed]
    counts_params = any(r.get("params") is not None for r in rows)
    silent = [r for r in handled if (e := mac_error(r)) is not None and e[0] < -0.05 and not r.get("flagged")]
    ratios = [
        r["seconds"] / r["forward_s"] for r in handled if r.get("forward_s") and (not timed or r["suite"] in timed)
    ]
    failed = [r for r in rows if "error" in r]
    timeouts = [r for r in failed if "timed out" in r["error"]]
    return {
        "handled": f"{len(handled)}/{cases}",
        "params exact": f"{sum(r.get('params') == r['ref_params'] for r in rows)}/{cases}" if counts_params else "n/a",
        "MACs within 1%": f"{sum(e <= 0.01 for e in errors)}/{cases}",
        "within 5%": f"{sum(e <= 0.05 for e in errors)}/{cases}",
        "median abs. error": percent(statistics.median(errors)).lstrip("+") if errors else "-",
        "worst error": percent(max(signed, key=abs)) if errors else "-",
        "silent under-counts": str(len(silent)),
        "failed (timeouts)": f"{len(failed)} ({len(timeouts)})",
        "time / forward (median)": f"{statistics.median(ratios):.2f}x" if ratios else "-",
    }


def table(header: list[str], lines: Iterable[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def tools_in(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(r["tool"] for r in rows))


def summary_table(rows: list[Row], suites: set[str], timed: set[str] | None = None) -> str:
    selected = [r for r in rows if r["suite"] in suites]
    cases = len({r["case"] for r in selected})
    lines = []
    for tool in tools_in(selected):
        line = summary([r for r in selected if r["tool"] == tool], cases, timed)
        lines.append([f"**{tool}**" if tool.startswith("torchcost") else tool, *line.values()])
    header = ["tool", *summary([], 0).keys()]
    return table(header, lines)


def cell(row: Row | None) -> str:
    if row is None:
        return ""
    if "error" in row:
        return "timeout" if "timed out" in row["error"] else "fails"
    error = mac_error(row)
    assert error is not None
    text = percent(error[0])
    if error[1] == "full" and error[0] == 0:
        text = "0 (full)"
    elif error[1] == "full":
        text += " (full)"
    if row.get("params") is not None and row["params"] != row["ref_params"]:
        text += f"; params {row['params'] - row['ref_params']:+,}"
    return text


def matrix(rows: list[Row], suite: str) -> str:
    selected = [r for r in rows if r["suite"] == suite]
    by_key = {(r["case"], r["tool"]): r for r in selected}
    cases = list(dict.fromkeys(r["case"] for r in selected))
    tools = tools_in(selected)
    return table(["tool", *cases], ([tool, *(cell(by_key.get((case, tool))) for case in cases)] for tool in tools))


def misses(rows: list[Row], suite: str, limit: int = 6) -> str:
    """Per tool, the cases it fails or misses by more than 1% (worst first)."""
    lines = []
    selected = [r for r in rows if r["suite"] == suite]
    for tool in tools_in(selected):
        bad = []
        for r in selected:
            if r["tool"] != tool:
                continue
            error = mac_error(r)
            if error is None:
                bad.append((float("inf"), f"{r['case']} ({cell(r)}: {r['error'][:60]})"))
            elif abs(error[0]) > 0.01:
                bad.append((abs(error[0]), f"{r['case']} {percent(error[0])}"))
        bad.sort(key=lambda item: -item[0])
        shown = ", ".join(text for _, text in bad[:limit]) + (
            f", and {len(bad) - limit} more" if len(bad) > limit else ""
        )
        lines.append([tool, str(len(bad)), shown or "none"])
    return table(["tool", "misses", "worst (MAC error vs published, or failure)"], lines)


def torchcost_paths(rows: list[Row]) -> str:
    auto = [r for r in rows if r["tool"] == "torchcost (auto: meta)" and "error" not in r]
    fallbacks = sorted(r["case"] for r in auto if r.get("device") not in (None, "meta"))
    return ", ".join(fallbacks) if fallbacks else "none (every model counted on meta)"


def scale_tables() -> str:
    path = HERE / "results" / "scale.json"
    if not path.exists():
        return "(run `bench/scale.py`)"
    data = json.loads(path.read_text())
    meta_lines, real_lines = [], []
    for r in data["results"]:
        if "error" in r:
            meta_lines.append([r["name"], "fails: " + " ".join(r["error"])[:80], *[""] * 6])
        elif "profile_meta_s" in r:
            real_lines.append(
                [
                    r["label"],
                    si(r["macs"]),
                    f"{r['forward_s'] * 1e3:.0f} ms",
                    f"{r['profile_s'] * 1e3:.0f} ms ({r['profile_s'] / r['forward_s']:.2f}x)",
                    f"{r['profile_meta_s'] * 1e3:.0f} ms ({r['profile_meta_s'] / r['forward_s']:.2f}x)",
                    str(r["ops"]),
                ]
            )
        else:
            meta_lines.append(
                [
                    r["label"],
                    si(r["params"]),
                    si(r["macs"]),
                    f"{r['build_s']:.2f} s",
                    f"{r['profile_s']:.2f} s",
                    f"{r['peak_rss_bytes'] / 2**30:.2f} GiB",
                    f"{r['ops']:,}",
                    ", ".join(r["uncounted"]) or "none",
                ]
            )
    meta = table(
        ["model (on meta)", "params", "MACs", "build", "profile", "peak RSS", "ops counted", "uncounted"], meta_lines
    )
    real = table(
        ["model (real CPU tensors)", "MACs", "forward", "profile (cpu)", "profile (meta copy)", "ops"], real_lines
    )
    return f"{meta}\n\n{real}\n\nthreads: {data.get('threads')}, date: {data.get('date')}"


def sweep_section() -> str:
    """The timm zoo swept with the local pool (1 and 2 workers) and a local Ray, from bench/results/sweep.json."""
    path = HERE / "results" / "sweep.json"
    if not path.exists():
        return "(run `bench/sweep.py`)"
    data = json.loads(path.read_text())
    env, runs = data["environment"], data["runs"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    base = next((r for r in runs if r["config"] == "pool-1"), None)
    lines = []
    for r in runs:
        rss = r["worker_peak_rss_bytes"] or {"median": 0, "max": 0}
        speedup = f"{r['models_per_minute'] / base['models_per_minute']:.2f}x" if base else "-"
        wall = f"{r['wall_s'] / 60:.1f} min" + (f" (+ {r['start_s']:.0f} s Ray start)" if r["start_s"] else "")
        lines.append(
            [
                r["config"],
                f"{r['models']:,}",
                f"{r['counted']:,}",
                f"{r['failed']:,}",
                wall,
                f"{r['models_per_minute']:.0f}",
                speedup,
                f"{r['task_seconds_median']:.2f} / {r['task_seconds_max']:.0f} s",
                str(r["worker_processes"]),
                f"{rss['median'] / 2**30:.2f} / {rss['max'] / 2**30:.2f} GiB",
            ]
        )
    header = [
        "configuration",
        "models",
        "counted",
        "failed",
        "wall time",
        "models/min",
        "vs 1 worker",
        "time per model (median / max)",
        "worker processes",
        "peak RSS per worker (median / max)",
    ]
    failed = runs[0]["failures"]
    failures = table(
        ["models", "reason", "for example"],
        ([str(f["count"]), f["reason"].replace("|", "\\|"), ", ".join(f["examples"])] for f in failed),
    )
    parts = [
        f"Measured {env['date']} on {env['cores']} cores ({env['cpu']}; load average {env['load_average_at_start']:.1f}"
        f" at the start), {versions}. Every timm model at its pretrained config's input size ({data['zoo_size']:,}"
        f" in the zoo; {runs[0]['models']:,} swept), counted on meta (on the cpu when a model needs real data), one"
        " thread per worker, 300 s per model at most. A fresh sweep per configuration; Ray's own start is not in"
        " its wall time.",
        "",
        table(header, lines),
        "",
        f"Failures ({runs[0]['config']}), grouped by reason (names, shapes and numbers left out):",
        "",
        failures if failed else "none",
    ]
    fastest = max(runs, key=lambda r: r["models_per_minute"])
    full_path = HERE / "results" / "sweep_full.json"
    full = json.loads(full_path.read_text())["runs"][0] if full_path.exists() else None
    if full is not None:
        parts += [
            "",
            f"The whole zoo with {full['config']} (`bench/sweep.py --configs {full['config']} --results "
            f"bench/results/sweep_full.json`): {full['models']:,} models in {full['wall_s'] / 60:.1f} min "
            f"({full['models_per_minute']:.0f}/min), {full['counted']:,} counted, {full['failed']:,} failed.",
        ]
    elif runs[0]["models"] < data["zoo_size"]:
        parts += [
            "",
            f"The whole zoo at the fastest rate measured here ({fastest['config']}): about "
            f"{data['zoo_size'] / fastest['models_per_minute']:.0f} min (extrapolated from the "
            f"{runs[0]['models']:,} models swept, spread evenly over the alphabetical list).",
        ]
    if base:
        per_worker = base["models_per_minute"]
        parts += [
            "",
            f"Each model is an independent task, so a worker adds about {per_worker:.0f} models/min (one core, from"
            f" the 1-worker run) while there are cores for it. On a Ray cluster, each node gives about its cores x"
            f" {per_worker:.0f} models/min: 10 nodes of 8 cores, about {80 * per_worker:,.0f} models/min. The"
            " driver hands out one task per idle worker and writes rows as they come; at these rates it is far"
            " from a limit.",
        ]
    return "\n".join(parts)


def memory_tables() -> str:
    """Peak memory: torchcost.memory() on meta and on the CPU against the CPU allocator (and CUDA's, when run)."""
    path = HERE / "results" / "memory.json"
    if not path.exists():
        return "(run `bench/memory_accuracy.py`)"
    data = json.loads(path.read_text())
    rows = [r for r in data["results"] if "measured_bytes" in r]
    lines, errors = [], []
    for r in rows:
        meta, cpu = (r[key] / r["measured_bytes"] - 1 for key in ("meta_bytes", "cpu_bytes"))
        errors += [abs(meta), abs(cpu)]
        at = r["peak_at"]
        lines.append(
            [
                r["case"],
                r["mode"],
                str(r["batch"]),
                si(r["measured_bytes"], "B"),
                si(r["meta_bytes"], "B"),
                percent(meta),
                percent(cpu),
                f"{at['op']} ({at['phase']})",
            ]
        )
    header = ["model", "step", "batch", "allocator peak", "meta estimate", "error (meta)", "error (cpu)", "peak at"]
    failed = [f"{r['case']}: {' '.join(r['error'])[:80]}" for r in data["results"] if "error" in r]
    parts = [
        "Reference: PyTorch's CPU allocator itself, its allocation and free events over one real step"
        " (`torch.profiler`, `profile_memory=True`), plus the bytes alive before the step; measured by code that"
        " shares nothing with the estimator. Estimates: `torchcost.memory()` on meta (fake tensors, nothing"
        " allocated) and on the CPU (the real step, tracked). Training steps are steady-state ones (sum of the"
        " outputs as the loss); one thread per process.",
        "",
        f"{len(rows)} cases, {sum(e <= 0.05 for e in errors)}/{len(errors)} estimates within 5% of the allocator's "
        f"peak; largest error {percent(max(errors, default=0.0)).lstrip('+')}.",
        "",
        table(header, lines),
    ]
    for r in data["results"]:
        if r["case"] == "llama-3-70b" and "error" not in r:
            names = {"inputs_outputs": "inputs and outputs", "activations": "activations saved for backward"}
            breakdown = ", ".join(
                f"{names.get(k, k.replace('_', ' '))} {si(v, 'B')}" for k, v in r["breakdown"].items() if v
            )
            parts += [
                "",
                f"Llama-3-70B-sized ({si(r['params'])} parameters), one training step on meta: bf16 weights, AdamW"
                f" (multi-tensor, as on CUDA), {r['tokens']} tokens: peak {si(r['meta_bytes'], 'B')} after"
                f" {r['peak_at']['op']} ({r['peak_at']['phase']}): {breakdown}. {r['ops']:,} ops tracked in"
                f" {r['meta_s']:.1f} s (load average {r['load_average']:.1f} on this shared machine), peak RSS"
                f" {r['peak_rss_bytes'] / 2**30:.2f} GiB.",
            ]
    if failed:
        parts += ["", "Failed: " + "; ".join(failed)]
    env = data["environment"]
    parts += ["", f"torch {env.get('torch')}, {env.get('threads')} thread per process, date: {env.get('date')}"]
    return "\n".join(parts)


def memory_cuda_section() -> str:
    """Peak and reserved CUDA memory: torchcost.memory() on meta for this GPU against the caching allocator."""
    path = HERE / "results" / "memory_cuda.json"
    if not path.exists():
        return memory_cuda_predicted()
    data = json.loads(path.read_text())
    rows = [r for r in data["results"] if r.get("measured_bytes")]
    lines = [
        [
            r["case"] + (" (held out)" if r["held_out"] else ""),
            r["mode"],
            str(r["batch"]),
            si(r["measured_bytes"], "B"),
            percent(r["error_peak"]),
            si(r["measured_reserved_bytes"], "B"),
            percent(r["error_reserved"]),
            percent(r["cuda_run_bytes"] / r["meta_bytes"] - 1),
            si(r["context_bytes"], "B"),
        ]
        for r in rows
    ]
    header = [
        "model",
        "step",
        "batch",
        "max allocated",
        "peak error",
        "max reserved",
        "reserved error",
        "cuda run vs meta",
        "context",
    ]
    within = sum(abs(r["error_peak"]) <= 0.03 for r in rows), sum(abs(r["error_reserved"]) <= 0.10 for r in rows)
    env = data["environment"]
    return "\n".join(
        [
            f"On {env['gpu']} (torch {env['torch']}, {env['date']}): each case in a fresh process, two warm-up steps,"
            " then one step with `max_memory_allocated()` and `max_memory_reserved()` (stats reset before it),"
            ' against `memory(..., device="meta", gpu="cuda")`; *cuda run vs meta* is the tracker run on the'
            " GPU itself; *context* is what the process holds beyond the allocator's segments (`mem_get_info`).",
            "",
            f"Peak within ±3%: {within[0]}/{len(rows)}; reserved within ±10%: {within[1]}/{len(rows)}.",
            "",
            table(header, lines),
        ]
    )


def memory_cuda_predicted() -> str:
    """The CUDA cases' estimates, recorded before a GPU measured them (bench/memory_accuracy.py --check)."""
    path = HERE / "results" / "memory_cuda_predicted.json"
    if not path.exists():
        return "(not measured yet: run `python3 bench/memory_accuracy.py --device cuda` on a GPU)"
    data = json.loads(path.read_text())
    lines = [
        [
            r["case"] + (" (held out)" if r["held_out"] else ""),
            r["mode"],
            str(r["batch"]),
            si(r["meta_bytes"], "B"),
            si(r["meta_reserved_bytes"], "B"),
            si(r["breakdown"].get("library_workspace", 0), "B"),
        ]
        for r in data["results"]
        if r.get("meta_bytes")
    ]
    env = data["environment"]
    return "\n".join(
        [
            "Not measured yet: no GPU was at hand since the allocator replay was written. These are the estimates"
            f" for the {env['gpu']} (torch {env['torch']} on meta, {env['date']}), recorded before any measurement;"
            " `python3 bench/memory_accuracy.py --device cuda` on the GPU measures `max_memory_allocated()` and"
            " `max_memory_reserved()` for the same cases.",
            "",
            table(["model", "step", "batch", "peak (allocated)", "reserved", "of which cuBLAS"], lines),
        ]
    )


def prediction_section() -> str:
    """CPU latency predicted from a meta profile and this machine's calibration, against measured, from
    bench/results/prediction.json (bench/prediction_accuracy.py)."""
    from torchcost.predict.calibrate import MAX_CHECK_ERROR

    path = HERE / "results" / "prediction.json"
    if not path.exists():
        return "(run `bench/prediction_accuracy.py`)"
    data = json.loads(path.read_text())
    env, groups = data["environment"], data["summary"]
    lines = [
        [name, str(g["cases"]), f"{g['within_10']:.0%}", f"{g['within_20']:.0%}", f"{g['median_abs_error']:.1%}"]
        for name, g in groups.items()
    ]
    check = env.get("calibration_check") or {}
    worst = sorted(data["cases"], key=lambda c: abs(c["error"]), reverse=True)[:8]
    misses = ", ".join(f"{c['spec']} b{c['batch']} {c['error']:+.0%}" for c in worst)
    return "\n".join(
        [
            f"Measured {env['date']} on {env['cpu']}, {env['threads']} threads, torch {env['torch']}; "
            + (
                f"{env['busy_cores_at_start']:.2f} cores busy with other work at the start (/proc/stat)"
                if "busy_cores_at_start" in env
                else f"load average {env['load_average_at_start']:.2f} at the start"
            )
            + " (nothing else ran). Each case: profile on meta, "
            'predict with `hardware("local")` (the learned op-time models of `torchcost calibrate`, fitted on '
            "sampled ops, never on these models), then `torchcost.measure` at the same thread count.",
            f"The calibration's own held-out check (five folds: each sampled op predicted by models fitted on the "
            f"others): median error {check.get('median_abs_error', 0):.1%} over {check.get('samples', 0)} sampled ops"
            + (
                f", above the {MAX_CHECK_ERROR:.0%} at which `torchcost calibrate` refuses to save: this one was kept "
                "with `--force`."
                if check.get("median_abs_error", 0) > MAX_CHECK_ERROR
                else f", under the {MAX_CHECK_ERROR:.0%} at which `torchcost calibrate` refuses to save: it was kept "
                "without `--force`. The timings repeat within 1 to 3% on this machine when it is quiet; the models' "
                "own error is what their features miss."
            ),
            "",
            table(["group", "cases", "within ±10%", "within ±20%", "median abs. error"], lines),
            "",
            f"Largest misses: {misses}.",
            "",
            "![predicted vs measured](prediction-accuracy.png)",
        ]
    )


def hf_zoo_section() -> str:
    """Every AutoModel-mapped transformers type profiled with default inputs (bench/hf_zoo.py)."""
    path = HERE / "results" / "hf_zoo.json"
    if not path.exists():
        return "(run `bench/hf_zoo.py`)"
    data = json.loads(path.read_text())
    env = data["environment"]
    lines = [[str(f["count"]), f["reason"], ", ".join(f["types"])] for f in data["failures"]]
    share = data["profiled"] / data["types"]
    blocked = {why: types for why, types in data["blocked_elsewhere"].items() if types}
    outside = sum(map(len, blocked.values()))
    rest = data["types"] - outside
    kinds = "; ".join(f"{len(types)} {why}" for why, types in blocked.items())
    return "\n".join(
        [
            f"transformers {env['transformers']}, torch {env['torch']}, {env['date']}: **{data['profiled']} of "
            f"{data['types']} model types ({share:.0%}) profile** with the default config and default inputs "
            f"(`torchcost profile hf:TYPE`): {data['on_meta']} on meta, {len(data['on_cpu'])} on the CPU because the "
            f"model looks at values that depend on its weights (predicted durations, detected keypoints: "
            f"{', '.join(data['on_cpu'])}); median {data['seconds_median']:.1f} s per type, {env['workers']} workers "
            f"on a shared 2-core machine. {len(data['with_uncounted_ops'])} of those list uncounted ops. Of the "
            f"{data['failed']} failures, {outside} have causes outside torchcost ({kinds}); leaving those types "
            f"out, {data['profiled']} of {rest} profile ({data['profiled'] / rest:.0%}). Every failure, grouped by "
            "reason:",
            "",
            table(["types", "reason", "which"], lines),
        ]
    )


def gpu_spec_section() -> str:
    """GPU throughput predicted from the spec sheet, the kernel models against a plain roofline, against timm's
    published tables, from bench/results/gpu_spec.json (bench/gpu_spec_accuracy.py)."""
    path = HERE / "results" / "gpu_spec.json"
    if not path.exists():
        return "(run `bench/gpu_spec_accuracy.py`)"
    data = json.loads(path.read_text())
    env, fitted_on = data["environment"], data["fitted_on"]
    lines = []
    for gpu, wave in data["summary"]["wave"].items():
        plain = data["summary"]["roofline"][gpu]
        role = "fitted on" if gpu == fitted_on else "held out"
        lines.append(
            [f"{gpu} ({role})", str(wave["cases"])]
            + [f"{s['median_abs_error']:.1%} / {s['within_25']:.0%} / {s['within_10']:.0%}" for s in (wave, plain)]
        )
    held = data["held_out"]
    ratio = held["roofline"]["median_abs_error"] / held["wave"]["median_abs_error"]
    worst = sorted((c for c in data["cases"] if c["gpu"] != fitted_on), key=lambda c: abs(c["wave_error"]))[-6:]
    misses = ", ".join(f"{c['model']} on {c['gpu']} {c['wave_error']:+.0%}" for c in reversed(worst))
    return "\n".join(
        [
            f"timm {env['timm']}, torch {env['torch']}, {env['date']}: {data['models']} timm models counted on meta "
            f"under autocast fp16, their throughput predicted from the spec table and compared with timm's "
            f"published `infer_samples_per_sec` (AMP, batch 1024 for most). Both methods' constants are fitted on "
            f"the {fitted_on} table only; {len(data['skipped'])} models skipped. Cells: median abs. error / within "
            "±25% / within ±10%.",
            "",
            table(["GPU", "models", "kernel models (eager timeline)", "plain roofline"], lines),
            "",
            f"On the held-out GPUs the plain roofline's median error is {ratio:.2f}x the kernel models' "
            f"({held['roofline']['median_abs_error']:.1%} against {held['wave']['median_abs_error']:.1%}): at "
            "batch 1024 nearly every kernel is large, where the two agree. Largest kernel-model misses there: "
            f"{misses}.",
            "",
            "![GPU predicted vs measured](gpu-prediction-accuracy.png)",
        ]
    )


def gpu_fit_section() -> str:
    """The GPU kernel models and host costs fitted on our H200 measurements (bench/fit_gpu.py), how they hold on
    models they were not fitted on, and the held-out figures of the issue that asked for them."""
    path = HERE / "results" / "gpu_fit.json"
    if not path.exists():
        return "(run `bench/fit_gpu.py`)"
    data = json.loads(path.read_text())
    shipped, crossed = data["shipped"], data["cross_validation"]["vision held out"]

    def line(label: str, s: dict[str, Any]) -> list[str]:
        return [label, str(s["cases"]), f"{s['median_abs_error']:.1%}", share(s["within_10"]), share(s["within_25"]),
                f"{s['median_ratio']:.2f}"]  # fmt: skip

    lines = [
        line("GEMMs (fitted on)", shipped["gemm"]),
        line("models, fitted on", shipped["vision"]),
        line("models, held out (two-fold cross-validation)", crossed),
    ]
    constants = ", ".join(
        f"{name.split('.')[1]} {value * 1e6:.1f} µs" if name.startswith("host") else f"{name.split('.')[1]} {value:.2f}"
        for name, value in shipped["constants"].items()
    )
    held = data["cross_validation"]["errors"]
    cases = [[name, percent(shipped["errors"][name]), percent(held[name])] for name in held]
    gemms = [[name, percent(error)] for name, error in shipped["errors"].items() if name.startswith("gemm")]
    reported = [
        [r["case"], duration(r["measured_s"]), duration(r["predicted_s"]), percent(r["error"])]
        for r in data.get("reported", [])
    ]
    header = ["cases", "count", "median abs. error", "within ±10%", "within ±25%", "median predicted / measured"]
    return "\n".join(
        [
            f'{data["date"]}: `predict(profile, hardware("h200"))` (eager) against what we measured on an H200 with '
            "CUDA events (`bench/data/gpu-truth`: 42 bf16 `F.linear` GEMMs, M from 1 to 8192; 22 torchvision models "
            "at batch 1 fp32 and batch 128 fp16 channels-last, eager, cuDNN benchmark mode, `inference_mode`). The "
            "Hopper efficiencies and the reference host's costs are fitted (`bench/fit_gpu.py`: least squares of "
            "log(predicted / measured), soft priors on the host costs from that GPU's calibration) on every case; "
            "how the model holds on models it was not fitted on is the two-fold cross-validation: fitted on the "
            "GEMMs and every other model in name order, each model predicted by the fit that left it out.",
            "",
            table(header, lines),
            "",
            f"Shipped constants: {constants}.",
            "",
            "Held out of every fit, the measurements the issue that asked for this model reported on the same H200 "
            "(bf16; the training steps with the model cast to bf16, AdamW as PyTorch picks it):",
            "",
            table(["case", "measured", "predicted", "error"], reported),
            "",
            "Per model (error = predicted / measured - 1, by the shipped fit and by the fit that left it out):",
            "",
            table(["model and configuration", "error (fitted)", "error (held out)"], cases),
            "",
            "Per GEMM (M x K x N):",
            "",
            table(["GEMM", "error"], gemms),
        ]
    )


GPU_VALIDATION = HERE / "results" / "gpu-validation.json"
GPU_SECTIONS = {
    "gemm": "GEMMs (`F.linear`, bf16)",
    "vision": "vision models, forward",
    "llm": "LLM prefill and decode (Llama-3-8B shape, bf16)",
    "training": "training steps (AdamW)",
}


def duration(seconds: float | None) -> str:
    """3 significant digits in µs, ms or s."""
    if seconds is None:
        return "-"
    for factor, unit in ((1.0, "s"), (1e-3, "ms")):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds * 1e6:.3g} µs"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def gpu_validation_summary(data: dict[str, Any]) -> str:
    """One line per section and role: median |error|, the shares within ±10/20/25%, the median ratio."""
    lines = []
    for section, groups in data["summary"].items():
        for role, s in groups.items():
            truth = s.get("median_abs_vs_truth")
            lines.append(
                [
                    f"{GPU_SECTIONS.get(section, section)}: {role}",
                    str(s["cases"]),
                    "-" if s["median_abs_error"] is None else f"{s['median_abs_error']:.1%}",
                    share(s["within_10"]),
                    share(s["within_20"]),
                    share(s["within_25"]),
                    "-" if s["median_ratio"] is None else f"{s['median_ratio']:.2f}",
                    "-" if truth is None else f"{truth:.1%}",
                    f"{s['failed']} / {s['skipped']}",
                ]
            )
    header = ["section: role", "cases", "median abs. error", "within ±10%", "within ±20%", "within ±25%",
              "median predicted / measured", "measured vs truth (median abs.)", "failed / skipped"]  # fmt: skip
    return table(header, lines)


def gpu_validation_cases(cases: list[Row], section: str) -> str:
    """Every case of one section: measured, predicted, error, and this run against the truth file's figure."""
    lines = []
    for c in (c for c in cases if c["section"] == section):
        if c["status"] != "ok":
            lines.append([c["name"], c["role"], c["status"], "", "", "", c.get("note", "")[:100]])
            continue
        notes = c.get("notes", {})
        said = notes.get("prediction_error") or notes.get("built", "")
        said = "" if said == "the whole model" else said
        lines.append(
            [
                c["name"],
                c["role"],
                duration(c["measured_s"]),
                duration(c["predicted_s"]),
                "-" if c["error"] is None else percent(c["error"]),
                percent(c["vs_truth"]) if "vs_truth" in c else "",
                said[:100],
            ]
        )
    return table(["case", "role", "measured", "predicted", "error", "vs truth", "note"], lines)


def gpu_validation_section(path: Path = GPU_VALIDATION) -> str:
    """GPU latency predicted by torchcost against what bench/gpu_validation.py measured on the H200."""
    if not path.exists():
        return "(run `bench/gpu_validation.py` on the GPU machine)"
    data = json.loads(path.read_text())
    env, v = data["environment"], data["environment"]["versions"]
    smoke = env["device"] != "cuda"
    where = (
        f"{env.get('gpu')} ({env.get('sms')} SMs), driver {env.get('driver')}, CUDA {env.get('cuda')}, cuDNN "
        f"{env.get('cudnn')}"
        if not smoke
        else f"a CPU ({env['host_cpu']})"
    )
    parts = [
        "**A CPU smoke test (`--device cpu --quick`), not a GPU measurement: its errors mean nothing.**\n"
        if smoke
        else "",
        f"Measured {env['date'][:10]} on {where}; torch {v['torch']}, torchvision {v.get('torchvision')}, timm "
        f"{v.get('timm')}, transformers {v.get('transformers')}; host {env['host_cpu']} ({env['cpu_count']} cores, "
        f"{env['torch_threads']} torch threads); {data['elapsed_s']:.0f} s of a {env['budget_s']:.0f} s budget. "
        "Each case is measured on the GPU and predicted by torchcost from a profile counted on meta "
        '(`torchcost.predict(p, torchcost.hardware("h200"))`); error = predicted / measured - 1. Roles: *fitted '
        "on*: in `bench/data/gpu-truth` and among the cases `bench/fit_gpu.py` fits the H200 constants on; "
        "*held out (truth)*: in the truth files, held out of that fit; *held out (new)*: never measured before "
        "this run. *vs truth*: this run's measurement against the truth file's (another day, the same kind of "
        "machine).",
        "",
        "Conditions:",
        "",
        *(f"- **{section}**: {text}" for section, text in data["conditions"].items()),
        "",
        gpu_validation_summary(data),
    ]
    for section in data["summary"]:
        title = GPU_SECTIONS.get(section, section)
        parts += ["", f"Per case, {title}:", "", gpu_validation_cases(data["cases"], section)]
    return "\n".join(parts).lstrip("\n")


def _ratio_and_time(case: dict, kind: str) -> str:
    return f"{case[kind + '_ratio']:.2f}x ({case['profile_' + kind + '_s'] * 1e3:.1f} ms)"


def profile_cost_section() -> str:
    """profile() against one forward at the default thread count (bench/profile_cost.py)."""
    path = HERE / "results" / "profile_cost.json"
    if not path.exists():
        return "(run `bench/profile_cost.py`)"
    data = json.loads(path.read_text())
    env = data["environment"]
    before_path = path.with_name("profile_cost_before.json")  # the same run of earlier code, when kept
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    earlier = {c["model"]: c for c in before["cases"]} if before else {}
    cold = "median_cold_ratio" in data  # what was learnt of the ops' signatures forgotten before each call
    in_order = "profile_calls_s" in data["cases"][0]  # a model object's first profiles, in order
    lines = [
        [c["model"], f"{c['forward_s'] * 1e3:.1f} ms", _ratio_and_time(c, "auto")]
        + ([_ratio_and_time(c, "cold")] if cold else [])
        + [f"{c['cpu_ratio']:.2f}x"]
        + ([", ".join(f"{t * 1e3:.1f}" for t in c["profile_calls_s"])] if in_order else [])
        + ([_ratio_and_time(earlier[c["model"]], "auto") if c["model"] in earlier else "-"] if before else [])
        for c in data["cases"]
    ]
    cold_text = (
        f", {data['median_cold_ratio']:.2f}x when nothing was learnt of the ops' signatures and no meta copy was kept "
        "before the call (cold: the first profile of a model in a process)"
        if cold
        else ""
    )
    then = (
        f" The last column is the same benchmark run just before on this machine with earlier code "
        f"({before['environment']['code']}, load average {before['environment']['load_average_at_start']:.2f}): a "
        f"median {before['median_auto_ratio']:.2f}x. A forward's own time moves by up to a third between runs on "
        "this shared VM (densenet121: 52 to 78 ms in four runs on 2026-12-05), so the ratios move with it; the "
        "milliseconds of profile() itself, in brackets, are the steadier comparison."
        if before
        else ""
    )
    return "\n".join(
        [
            f"{env['threads']} threads (torch's default on this machine), torch {env['torch']}, {env['date']}, median "
            f"of {env['repeats']} interleaved runs each, load average {env['load_average_at_start']:.2f} at the start: "
            f"**`profile(model, x)` takes a median {data['median_auto_ratio']:.2f}x one plain forward** "
            f'(`device="auto"`, the default: a meta copy){cold_text}, {data["median_cpu_ratio"]:.2f}x with '
            f'`device="cpu"`.{then}',
            "",
            table(
                ["model (batch 1, 224x224)", "forward", "profile (auto)"]
                + (["profile (auto, cold)"] if cold else [])
                + ["profile (cpu)"]
                + ([f"profiles 1-{len(data['cases'][0]['profile_calls_s'])} of one model (ms)"] if in_order else [])
                + (["profile (auto), earlier code"] if before else []),
                lines,
            ),
        ]
    )


def profile_cost_hub_section() -> str:
    """profile() against one forward for every torchvision classification model (bench/profile_cost_hub.py)."""
    path = HERE / "results" / "profile_cost_hub.json"
    if not path.exists():
        return "(run `bench/profile_cost_hub.py`)"
    data = json.loads(path.read_text())
    env = data["environment"]
    above = data["above_one"]
    lines = [
        [
            c["model"],
            str(c["ops"]),
            f"{c['forward_s'] * 1e3:.1f} ms",
            f"{c['profile_s'] * 1e3:.1f} ms",
            f"{c['ratio']:.2f}x",
            f"{c['per_op_us']:.0f} µs",
            f"{c['per_op_in_a_row_us']:.0f} µs" if "per_op_in_a_row_us" in c else "-",
            f"{c['first_ratio']:.2f}x",
        ]
        for c in sorted(data["cases"], key=lambda c: -c["ratio"])
    ]
    per_op = ""
    if data.get("per_op_line"):
        over, in_a_row, line = data["per_op_above_40_us"], data["per_op_above_40_us_in_a_row"], data["per_op_line"]
        per_op = (
            f" Per op (a profile's time over its ops): above 40 µs for {len(over)} models interleaved "
            f"({', '.join(over) or 'none'}), for {len(in_a_row)} in a row ({', '.join(in_a_row) or 'none'}). One "
            f"more op costs {line['per_op_us']:.1f} µs (a least-squares line through the {len(data['cases'])} models' "
            f"times against their ops; its intercept, {line['intercept_ms']:.1f} ms, is what a profile pays apart from "
            "its ops, and what puts the models with fewest ops above 40 µs)."
        )
    return "\n".join(
        [
            f"{len(data['cases'])} models, batch 1, 224x224, {env['threads']} threads, torch {env['torch']}, "
            f"{env['date']}, median of {env['repeats']} interleaved forwards and profiles each (a model's third "
            f"profile on: its meta copy lent), load average {env['load_average_at_start']:.2f} at the start: "
            f"**a median {data['median_ratio']:.2f}x one forward**, {data['median_first_ratio']:.2f}x for a model's "
            f"first profile (what a sweep over the hub pays). Above 1.0x: {', '.join(above) or 'none'} "
            f"({len(above)} of {len(data['cases'])}).{per_op} Most costly first:",
            "",
            table(
                [
                    "model",
                    "ops",
                    "forward",
                    "profile",
                    "profile / forward",
                    "per op",
                    "per op, in a row",
                    "first profile / forward",
                ],
                lines,
            ),
        ]
    )


def profile_cost_split_section() -> str:
    """Where profile()'s time goes, piece by piece (bench/profile_cost_split.py)."""
    path = HERE / "results" / "profile_cost_split.json"
    if not path.exists():
        return "(run `bench/profile_cost_split.py`)"
    data = json.loads(path.read_text())
    env = data["environment"]
    cases = data["cases"]
    pieces = list(cases[0]["warm"]["pieces_s"])
    shown = [p for p in pieces if p not in ("prepare", "dispatch", "forward")]  # their parts are shown instead

    def cell(case: dict, kind: str, piece: str) -> str:
        seconds = case[kind]["pieces_s"][piece]
        per_op = f" ({seconds / case['ops'] * 1e6:.1f} µs/op)" if piece.startswith("dispatch") else ""
        return f"{seconds * 1e3:.2f}{per_op}"

    parts = []
    for kind, what in (("warm", "A model's third profile on (its copy lent, its signatures known)"),
                       ("cold", "A model's first profile, nothing learnt of signatures")):  # fmt: skip
        rows = [[piece] + [cell(c, kind, piece) for c in cases] for piece in shown]
        rows.append(["**profile(), unwrapped**"] + [f"**{c[kind]['profile_s'] * 1e3:.2f}**" for c in cases])
        rows.append(["a wrapper's cost a call (µs)"] + [f"{c[kind]['wrapper_cost_s'] * 1e6:.2f}" for c in cases])
        parts += [f"{what}, milliseconds (medians of {env['repeats']}):", "",
                  table(["piece"] + [f"{c['model']} ({c['ops']} ops)" for c in cases], rows), ""]  # fmt: skip
    return "\n".join(
        [
            f"{env['threads']} threads, torch {env['torch']}, {env['date']}, load average "
            f"{env['load_average_at_start']:.2f} at the start. Each piece timed by wrapping the function that does it, "
            "the wrappers' cost (the instrumented profiles' extra time over their wrapped calls) taken out, so the "
            "pieces add up to the unwrapped profile's time; the pieces are described in the script's docstring.",
            "",
            *parts,
        ]
    )


def render() -> str:
    rows, env = load_peers()
    versions = ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items())
    suites = sorted({r["suite"] for r in rows})
    parts = [
        "# Benchmarks: torchcost against the other counting tools",
        "",
        "<!-- generated by bench/report.py from bench/results/*.json; edit bench/benchmarks_notes.md instead -->",
        "",
        f"Measured {env.get('date')} on a shared {env.get('cores')}-core machine ({env.get('cpu')}), "
        f"{env.get('threads')} thread per process, no GPU; Python {env.get('python')}. Versions: {versions}.",
        "Timings are medians of 1 to 5 runs on a machine other people were using at the same time: read the time",
        "ratios as rough (each is measured side by side with the plain forward pass, in the same process).",
        "",
        "## Headline: every case (torchvision zoo, transformers, hand-made models)",
        "",
        summary_table(rows, set(suites), timed={"torchvision"}),
        "",
        "Columns: *handled* = the tool returned a count; *params exact* = equal to the reference; *MACs within*"
        " = relative error against the reference; *silent under-counts* = more than 5% low without the tool"
        " saying anything is missing; *time / forward* = the tool's time over one plain forward pass"
        " (eval, `torch.no_grad()`) of the same model, median over the torchvision models it handled (in the"
        " per-suite tables, over that suite; the hand-made models' forward passes take microseconds, so their"
        " ratios measure fixed set-up costs).",
        f"torchcost (auto) fell back to real tensors on: {torchcost_paths(rows)}.",
        "",
    ]
    titles = {
        "torchvision": "torchvision classification zoo (reference: the weights' `num_params` and `_ops`)",
        "transformers": "transformers models from configs (reference: analytic counts in bench/cases.py)",
        "handmade": "hand-made models (reference: exact counts worked out in bench/cases.py)",
    }
    for suite in ("torchvision", "transformers", "handmade"):
        if suite not in suites:
            continue
        parts += [f"## {titles[suite]}", "", summary_table(rows, {suite}), ""]
        if suite == "torchvision":
            parts += ["Misses and failures per tool:", "", misses(rows, suite), ""]
        else:
            parts += [
                "MAC error per case (and params difference where not exact); `(full)`: closest to the"
                " full-score-matrix convention:",
                "",
                matrix(rows, suite),
                "",
            ]
    parts += ["## Scale (meta device) and counting overhead on real tensors", "", scale_tables(), ""]
    parts += ["## What profiling costs at the default thread count (bench/profile_cost.py)", "", profile_cost_section()]
    parts += [
        "",
        "### Every torchvision classification model (bench/profile_cost_hub.py)",
        "",
        profile_cost_hub_section(),
        "",
        "### Where the time goes (bench/profile_cost_split.py)",
        "",
        profile_cost_split_section(),
    ]
    parts += [""]
    parts += ["## Sweeping the timm zoo (`bench/sweep.py`)", "", sweep_section(), ""]
    parts += ["## Peak memory against the allocator (bench/memory_accuracy.py)", "", memory_tables(), ""]
    parts += ["### CUDA: the caching allocator (bench/memory_accuracy.py --device cuda)", "", memory_cuda_section(), ""]
    parts += ["## CPU latency prediction (bench/prediction_accuracy.py)", "", prediction_section(), ""]
    parts += ["## GPU latency on an H200", "", gpu_fit_section(), ""]
    parts += ["## GPU prediction from the spec sheet (bench/gpu_spec_accuracy.py)", "", gpu_spec_section(), ""]
    parts += ["## GPU latency measured on an H200 against predicted (bench/gpu_validation.py)", ""]
    parts += [gpu_validation_section(), ""]
    parts += ["## Every transformers architecture (bench/hf_zoo.py)", "", hf_zoo_section(), ""]
    if NOTES.exists():
        parts += [NOTES.read_text().strip(), ""]
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
