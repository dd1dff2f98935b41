"""Progressive results: how soon the slices around the reader's slice are ready, against the
whole series, in the same run, for the bundled lesion-seg on the CPU (issue 17 goal: findings
where the reader looks within 2 s).

    python -m benchmarks.bench_progressive [--slices 120] [--threads 1] [--gui]

Prints the time to the focus slab (its findings measured too), the time to the whole
series, and their ratio, with the load average (this machine's cores are shared). With
--gui the same in the AI panel as the reader sees it (offscreen Qt, the panel's own job with
one torch thread): from Run to the slab's overlay and findings drawn, and to the whole
result drawn."""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=120)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gui", action="store_true", help="time it in the AI panel")
    args = parser.parse_args()
    if args.gui:
        gui(args.slices)
        return
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


def gui(slices: int) -> None:
    """Run to the slab drawn and to the whole result drawn, in the AI panel (offscreen)."""
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtWidgets

    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume
    from medview.ui.panels.ai_panel import AIPanel
    from medview.ui.slice_view import SliceView
    from medview.viewer.planes import Plane
    from medview.viewer.state import ViewerState

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        demo = generate_demo_study(tmp, seed=5, slices=slices)
        volume, _ = load_volume([demo.series_dir])
    state = ViewerState()
    state.set_volume(volume, "bench-progressive")
    views = [SliceView(state, p) for p in Plane]
    panel = AIPanel(state, lambda: views)
    host = QtWidgets.QWidget()
    row = QtWidgets.QHBoxLayout(host)
    for w in (*views, panel):
        row.addWidget(w, 1)
    host.resize(1400, 600)
    host.show()
    marks: dict[str, float] = {}
    panel.partial_shown.connect(lambda _r: marks.setdefault("slab", time.perf_counter() - t0))
    panel.result_shown.connect(lambda _r: marks.setdefault("whole", time.perf_counter() - t0))
    panel.result_shown.connect(app.quit)
    app.processEvents()
    t0 = time.perf_counter()
    panel.run()
    panel.worker.progress.connect(
        lambda p: (
            p.message.startswith("running") and marks.setdefault("loaded", time.perf_counter() - t0)
        )
    )
    app.exec()
    panel.shutdown()
    loaded = marks.get("loaded", 0.0)
    print(
        f"{panel.current_entry().ref} in the AI panel, {slices} slices, focus slice "
        f"{int(state.cursor_ijk[0]) + 1}, load {os.getloadavg()[0]:.1f}, after Run: model "
        f"loaded {loaded:.2f} s, slab drawn {marks['slab']:.2f} s "
        f"({marks['slab'] - loaded:.2f} s after loading), whole drawn {marks['whole']:.2f} s"
    )


if __name__ == "__main__":
    main()
