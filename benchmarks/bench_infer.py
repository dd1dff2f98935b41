"""Segmentation speed and memory over a 300-slice 512² demo study, against references run in
the same session: a plain torch loop and MONAI's SlidingWindowInferer over the same 2.5D
slices and the same network.

The model is the bundled lesion model when medview/resources/models/lesion-seg exists, else
a MONAI U-Net of the same architecture with random weights (the speed is the same; the
findings are meaningless) — the output says which. Each measurement runs in its own child
process, so imports and earlier runs do not colour its memory: peak RSS is sampled every
5 ms while the model runs, over the RSS after the volume was loaded.

The plain torch loop is also the path MedView took before issue 19 (every 2.5D window
stacked afresh, the network as trained, NCHW): MedView's codes are compared with its codes
voxel by voxel, and the label maps at 0.5 must be the same.

Goals (issue 19, this CPU with 2 threads): the whole study in <= 8 s; peak memory at most
2x the volume's bytes plus the model (issue 5). Two torch threads collapse when another
process busies the second core (docs/development.md), so on a shared machine compare CPU
seconds and the ratios, or use --threads 1; every line gives the load average it ran at.
Run:
    python benchmarks/bench_infer.py [--slices 300] [--threads 2] [--batch N] [--study DIR]
        [--model NAME|FOLDER] [--device cpu|cuda|mps|auto] [--no-monai]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, sys, threading, time
which, folder, model_dir, threads, batch, device, codes_out = sys.argv[1:8]
threads, batch = int(threads), int(batch) or None
import numpy as np, torch
torch.set_num_threads(threads)
from medview.ai.runtime.device import choose_device
from medview.ai.runtime.loading import load_model
from medview.io.open_volume import load_volume

def cpu():
    t = os.times()
    return t.user + t.system

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096

dev = choose_device(device)
model = load_model(model_dir, dev)
volume, series = load_volume([folder])
# one warm-up slice first, so torch's one-time set-up (thread pool, kernel caches) is not
# counted as the run's memory or time, for MedView and the references alike
half = model.card.context_slices // 2
model.predict(np.zeros((1, model.card.context_slices, *volume.shape[1:]), np.float32))
base = rss()
peak = [base]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
out = {}
card = model.card
if which == 'medview':
    from medview.ai.findings.postprocess import findings_for
    from medview.ai.runtime.inference import segment
    t0, c0 = time.perf_counter(), cpu()
    result = segment(volume, model, batch_size=batch)
    out['t'], out['cpu'] = time.perf_counter() - t0, cpu() - c0
    out['stages'] = result.timings
    out['batch_used'] = result.batch_size
    out['warnings'] = result.warnings
    out['peak_segment'] = peak[0] - base
    t0 = time.perf_counter()
    out['findings'] = {t: len(findings_for(result, volume, t)) for t in (0.3, 0.5, 0.7)}
    out['t_findings'] = (time.perf_counter() - t0) / 3
    codes = result.codes
else:
    s = volume.shape[0]
    lo, hi = card.intensity.low, card.intensity.high
    from medview.ai.findings.postprocess import encode
    codes = np.zeros(volume.shape, np.uint8)
    net = model.module
    if which == 'monai':
        from monai.inferers import SlidingWindowInferer
        inferer = SlidingWindowInferer(roi_size=volume.shape[1:], sw_batch_size=batch)
    t0, c0 = time.perf_counter(), cpu()
    aside, aside_cpu = 0.0, 0.0  # the codes for the comparison, not timed
    with torch.inference_mode():
        for k0 in range(0, s, batch):
            n = min(batch, s - k0)
            idx = np.clip(np.arange(k0 - half, k0 + n + half), 0, s - 1)
            slab = (torch.from_numpy(volume.array[idx]).float().clamp(lo, hi) - lo) / (hi - lo)
            x = torch.stack([slab[c:c + n] for c in range(card.context_slices)], 1).to(dev)
            y = inferer(x, net) if which == 'monai' else net(x)
            p = torch.softmax(y, 1)
            p.argmax(1).to(torch.uint8).cpu().numpy()
            t1, c1 = time.perf_counter(), cpu()
            codes[k0:k0 + n] = encode(p[:, 1:].float().cpu().numpy())
            aside, aside_cpu = aside + time.perf_counter() - t1, aside_cpu + cpu() - c1
    out['t'], out['cpu'] = time.perf_counter() - t0 - aside, cpu() - c0 - aside_cpu
stop.set()
sampler.join()
out.update(slices=volume.shape[0], volume_bytes=volume.array.nbytes,
           peak_over_volume=peak[0] - base,
           device=str(model.device), dtype=str(volume.array.dtype))
if codes_out:
    np.save(codes_out, codes)
out['load'] = os.getloadavg()[0]
print('RESULT ' + json.dumps(out))
"""


def model_folder(ref: str | None, work: Path) -> tuple[Path, str]:
    """The model to time, and a sentence saying which it is."""
    from medview.ai.models.registry import bundled_models_dir, resolve

    if ref:
        if (Path(ref) / "metadata.json").is_file():
            return Path(ref), f"model folder {ref}"
        entry = resolve(ref)
        return entry.folder, f"{entry.ref} ({'bundled' if entry.bundled else 'user'})"
    if (bundled_models_dir() / "lesion-seg").is_dir():
        entry = resolve("lesion-seg")
        return entry.folder, f"{entry.ref} (bundled, trained)"
    return random_unet(work / "random-unet"), (
        "a MONAI U-Net with the bundled lesion model's architecture and RANDOM weights (the "
        "bundled model is not in medview/resources/models yet; speed is the same)"
    )


def random_unet(folder: Path) -> Path:
    import hashlib

    import torch
    from safetensors.torch import save_file

    from medview.ai.bundled.training import SEG
    from medview.ai.models.cards import card_from_dict
    from medview.ai.runtime.networks import build_network

    folder.mkdir(parents=True, exist_ok=True)
    card = {
        "name": "random-unet",
        "version": "1.0",
        "task": "segmentation",
        "modality": "CT",
        "labels": [{"value": 1, "name": "lung nodule"}, {"value": 2, "name": "liver lesion"}],
        "intensity": {"low": SEG["low"], "high": SEG["high"]},
        "architecture": "monai.UNet",
        "architecture_args": dict(SEG["args"]),
        "context_slices": SEG["context"],
    }
    torch.manual_seed(0)
    net = build_network(card_from_dict(card, "random card")).eval()
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(folder / "weights.safetensors"),
    )
    card["weights_sha256"] = hashlib.sha256(
        (folder / "weights.safetensors").read_bytes()
    ).hexdigest()
    (folder / "metadata.json").write_text(json.dumps(card))
    return folder


def run_child(
    which: str, study: Path, model: Path, threads: int, batch: int, device: str, codes: str = ""
) -> dict:
    """One measurement in a fresh process; `codes`: where it saves its uint8 codes."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            which,
            str(study),
            str(model),
            str(threads),
            str(batch),
            device,
            codes,
        ],
        capture_output=True,
        text=True,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{which} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--batch",
        type=int,
        default=0,
        help="slices per batch (default: MedView's choice for the device, which "
        "the references then use too)",
    )
    ap.add_argument("--study", type=Path, help="a demo study folder to reuse (its series/)")
    ap.add_argument("--model", help="model reference or folder (default: see above)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-monai", action="store_true", help="leave out the MONAI reference")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        study = args.study
        if study is None:
            from medview.demo import generate_demo_study

            study = generate_demo_study(work / "demo", seed=1, slices=args.slices).out_dir
        series = study / "series"
        folder, which_model = model_folder(args.model, work)
        model_bytes = (
            (
                folder
                / json.loads((folder / "metadata.json").read_text()).get(
                    "weights_file", "weights.safetensors"
                )
            )
            .stat()
            .st_size
        )
        devices = [args.device]
        import torch

        if args.device == "cpu" and torch.cuda.is_available():
            devices.append("cuda")
        print(f"model: {which_model}; weights {model_bytes / 2**20:.1f} MiB")
        for device in devices:
            report(device, series, folder, args, model_bytes, work)


def compare_codes(ours, plain, folder: Path) -> str:
    """A sentence: where MedView's codes differ from the plain loop's, and by how much."""
    import numpy as np

    from medview.ai.findings.postprocess import label_map_at, levels
    from medview.ai.models.cards import load_card

    card = load_card(folder)
    lv = levels(len(card.labels))
    differ = ours != plain
    a, b = (c[differ].astype(np.int32) for c in (ours, plain))
    level_a, level_b = (np.where(c > 0, (c - 1) % lv + 1, 0) for c in (a, b))
    other = (a > 0) & (b > 0) & ((a - 1) // lv != (b - 1) // lv)
    steps = int(np.abs(level_a - level_b).max(initial=0))
    low = int(np.maximum(level_a, level_b)[other].max(initial=0))
    maps = int(np.count_nonzero(label_map_at(ours, card, 0.5) != label_map_at(plain, card, 0.5)))
    return (
        f"same result as the plain loop: codes differ in {int(differ.sum())} of {ours.size} "
        f"voxels, by at most {steps} step(s) of 1/{lv} in probability; the most probable "
        f"label differs in {int(other.sum())} (probabilities at most {low}/{lv} there); the "
        f"label map at 0.5 in {maps} voxels ({'the same' if maps == 0 else 'NOT the same'})"
    )


def report(device: str, series: Path, folder: Path, args, model_bytes: int, work: Path) -> None:
    """Run MedView and the references on one device and print the comparison."""
    import numpy as np

    ours = run_child(
        "medview", series, folder, args.threads, args.batch, device, str(work / "ours.npy")
    )
    used = ours["batch_used"]
    plain = run_child("plain", series, folder, args.threads, used, device, str(work / "plain.npy"))
    refs = [("plain torch loop", plain)]
    if not args.no_monai:
        refs.append(
            ("MONAI SlidingWindow", run_child("monai", series, folder, args.threads, used, device))
        )
    vol_mb = ours["volume_bytes"] / 2**20
    print(
        f"study: {ours['slices']} x 512 x 512 {ours['dtype']} ({vol_mb:.0f} MiB); "
        f"device {ours['device']}, {args.threads} torch threads, batch {used}"
    )
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in ours["stages"].items())
    print(
        f"  medview segment:       {ours['t']:6.2f} s  "
        f"{ours['slices'] / ours['t']:6.1f} slices/s  CPU {ours['cpu']:6.1f} s  "
        f"({stages}; load {ours['load']:.1f})"
    )
    for name, ref in refs:
        print(
            f"  {name + ':':22s} {ref['t']:6.2f} s  {ref['slices'] / ref['t']:6.1f} "
            f"slices/s  CPU {ref['cpu']:6.1f} s  medview/reference: time "
            f"{ours['t'] / ref['t']:.2f}, CPU {ours['cpu'] / ref['cpu']:.2f} "
            f"(load {ref['load']:.1f})"
        )
    print("  " + compare_codes(np.load(work / "ours.npy"), np.load(work / "plain.npy"), folder))
    print(
        f"  findings at 0.3/0.5/0.7: {ours['findings']}, "
        f"{ours['t_findings'] * 1000:.0f} ms per threshold, peak +"
        f"{ours['peak_over_volume'] / 2**20:.0f} MiB over the volume with them"
    )
    extra = ours["peak_segment"] / 2**20
    goal = 2 * vol_mb + model_bytes / 2**20
    print(
        f"  peak memory while it ran: volume {vol_mb:.0f} MiB + {extra:.0f} MiB more "
        f"= {vol_mb + extra:.0f} MiB (goal {goal:.0f} MiB: 2x volume + model; "
        f"{'met' if vol_mb + extra <= goal else 'NOT met'}); references: "
        + ", ".join(f"{n} +{r['peak_over_volume'] / 2**20:.0f} MiB" for n, r in refs)
    )
    verdict = "met" if ours["t"] <= 8 else "NOT met"
    load = os.getloadavg()[0]
    others = "were competing: CPU seconds are the steadier measure" if load > 1.5 else "were idle"
    print(
        f"  whole study in {ours['t']:.1f} s: goal <= 8 s on this CPU {verdict} "
        f"(load average {load:.1f} on {os.cpu_count()} cores: other processes "
        f"{others})"
    )
    if ours["warnings"]:
        print(f"  warnings: {ours['warnings']}")


if __name__ == "__main__":
    main()
