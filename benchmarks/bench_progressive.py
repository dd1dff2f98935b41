"""Progressive results: how soon the slices around the reader's slice are ready, against the
whole series, in the same run, for the bundled lesion-seg on the CPU (issue 17 goal: findings
where the reader looks within 2 s).

    python -m benchmarks.bench_progressive [--slices 120] [--threads 1]

Prints the time to the focus slab (its findings measured too), the time to the whole
series, and their ratio, with the load average (this machine's cores are shared)."""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=120)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import tempfile

    import torch

    from medview.ai.findings.postprocess import findings_for
    from medview.ai.models.registry import bundled_models_dir
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        demo = generate_demo_study(tmp, seed=5, slices=args.slices)
        volume, _ = load_volume([demo.series_dir])
    folder = sorted((bundled_models_dir() / "lesion-seg").iterdir())[-1]
    model = load_model(folder, "cpu")
    focus = args.slices // 2
    first: list[float] = []
    t0 = time.perf_counter()

    def partial(result, span):
        if not first:
            findings_for(result, volume, 0.5)  # what the reader would be shown
            first.append(time.perf_counter() - t0)

    segment(volume, model, reuse=False, focus=focus, on_partial=partial)
    whole = time.perf_counter() - t0
    print(
        f"{folder.parent.name}:{folder.name}, {args.slices} slices, {args.threads} thread(s), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"focus slab with findings: {first[0]:.2f} s; whole series: {whole:.2f} s; "
        f"ratio {whole / first[0]:.1f}x"
    )


if __name__ == "__main__":
    main()
