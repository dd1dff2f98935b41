"""The fine-tuning engine behind `medview train`: a job (data, base model, settings, split)
in, a new model version out, one event dict after another in between.

It runs in a child process (docs/architecture.md, threads), so a crash or an out-of-memory
cannot take the viewer down; the same code runs under `torchrun --nproc-per-node N` with
DistributedDataParallel (gloo on the CPU, nccl on CUDA): every process draws its own
patches, rank 0 validates, checkpoints, reports and writes the version.

- Seeded and reproducible: each epoch's draws come from a Generator seeded by (seed, epoch,
  rank) whose state the checkpoint keeps, so a resumed run repeats the same steps.
- A checkpoint after every epoch and on stop, written atomically (temp file, fsync, rename):
  a full disk or a kill leaves the previous one whole. Stop (SIGTERM / SIGINT, or the panel)
  is checked between steps: the run saves where it is and ends within a step.
- AdamW with linear warm-up and cosine decay per step (bundled_training's schedule); mixed
  precision on CUDA only (device.autocast_context); early stopping on the validation Dice
  (patience in epochs); the best epoch's weights become the version.
- Nothing of any existing version is touched: the base is read, the result is a new folder
  (train_versions), and activating it is the reader's choice."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.training.checkpoint import (
    BEST,
    CHECKPOINT,
    check_base,
    checkpoint_at,
    checkpoint_phase,
    load_checkpoint,
    save_best,
    save_checkpoint,
)
from medview.ai.training.checks import check_labelled, check_run, diverged, unmatched_names
from medview.ai.training.dist import Dist
from medview.ai.training.job import JOB_FILE, Job, Settings, WorkLock, write_file
from medview.ai.training.schedule import warmup_cosine
from medview.core.errors import InvalidInputError, SettingError
from medview.io import saved

__all__ = ["CHECKPOINT", "JOB_FILE", "Job", "Settings", "Trainer", "train_mode"]

# events between long pieces of work outside the steps (minutes on a first run: generating
# rehearsal studies, caching, mining, the final evaluation), where a stop is also honoured
BETWEEN = ("prepare", "replay", "mining", "evaluate")
Emit = Callable[[dict], None]


def fresh_state(base: str, seconds: float) -> dict[str, Any]:
    """The training state of a run (or a cross-validation phase) before its first step; the
    checkpoint saves it and a resume continues from it."""
    return {
        "base": base,
        "epoch": 0,
        "step": 0,
        "rng": None,
        "loss_sum": 0.0,
        "loss_n": 0,
        "history": [],
        "best_epoch": 0,
        "best_dice": -1.0,
        "bad_epochs": 0,
        "seconds": seconds,
    }


def network(folder: Path) -> Any:
    """The torch network of the model version in `folder`, a private copy on the CPU (of an
    nnU-Net model: its predictor's network, with the first fold's weights)."""
    from medview.ai.runtime.loading import load_model

    loaded = load_model(folder, "cpu", reuse=False)
    return loaded.predictor.network if loaded.card.architecture == "nnunet" else loaded.module


class Stopped(Exception):
    """Stop asked outside the training steps (the steps save a checkpoint themselves)."""


def train_mode(model: Any, freeze_norm: bool) -> None:
    """Train mode; with freeze_norm the batch norms keep the base model's running
    statistics (their scale and shift still learn): 128² patches, 40% of them on a lesion,
    are not the whole slices the statistics describe at inference."""
    model.train()
    if freeze_norm:
        from torch.nn.modules.batchnorm import _BatchNorm

        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.eval()


class Trainer:
    def __init__(
        self, job: Job, emit: Emit, should_stop: Callable[[], bool], resume: bool = False
    ) -> None:
        self.job, self.should_stop, self.resume = job, should_stop, resume
        self.s = job.settings
        self._emit = emit
        self.work = Path(job.work) if job.work else saved.new_run_dir(job.base)
        job.work = str(self.work)

    def emit(self, event: str, **data: Any) -> None:
        if self.dist.rank == 0:
            self._emit({"event": event, **data})
        if event in BETWEEN and self.dist.world == 1 and self.should_stop():
            raise Stopped  # (under torchrun the others wait at a barrier: stop in the steps)

    def _check_stop(self) -> None:
        """Between inference batches of mining and evaluating, and twice a second while
        studies are prepared in other processes (a large study takes longer than the
        panel's grace before it kills the run)."""
        if self.dist.world == 1 and self.should_stop():
            raise Stopped

    # ---------------------------------------------------------------- preparing
    def _replay(self, entry: Any, card: Any) -> list:
        from medview.ai.training.replay import bundled_ancestor, replay_studies

        if (
            self.s.replay_studies <= 0
            or card.task != "segmentation"
            or bundled_ancestor(entry) is None
        ):
            return []
        self.dist.first_rank_first(before=True)
        found = replay_studies(
            self.s.replay_studies,
            saved.replay_dir(),
            self._workers(),
            self._progress("replay"),
            self._check_stop,
        )
        self.dist.first_rank_first(before=False)
        return found

    def _workers(self) -> int:
        """Processes for the preparation: as many as the run's threads (under torchrun the
        first process prepares while the others wait, so it takes every core)."""
        from medview.ai.runtime.device import cpu_cores
        from medview.ai.training.prepare import worker_count

        return worker_count(self.s.threads or cpu_cores())

    def _progress(self, event: str) -> Callable[[int, int], None]:
        """The event for the study underway when k of n have ended (a stop is read there)."""
        return lambda k, n: self.emit(event, index=k + 1, of=n) if k < n else None

    def _studies(self, entry: Any, card: Any) -> tuple[list, list, list]:
        from medview.ai.training import data as td
        from medview.ai.training.prepare import run_each

        studies = td.find_studies(self.job.data)
        split = self.job.split or td.split_by_patient(studies, self.s.val_fraction, self.s.seed)
        by_key = {s.key: s for s in studies}
        unknown = [k for k in split.get("train", []) + split.get("val", []) if k not in by_key]
        if unknown:
            name = self.job.names.get(unknown[0])
            which = f"{name!r} (key {unknown[0]})" if name else unknown[0]
            more = f" and {len(unknown) - 1} other(s)" if len(unknown) > 1 else ""
            raise InvalidInputError(
                self.job.data,
                f"no longer holds study {which}{more} of "
                f"the job's split (moved, deleted or no longer marked "
                f"done); put it back, or start a new run",
            )
        train = [by_key[k] for k in split.get("train", [])]
        val = [by_key[k] for k in split.get("val", [])]
        if not train or not val:
            raise InvalidInputError(
                self.job.data,
                f"gives {len(train)} training and "
                f"{len(val)} validation studies; both need at least one "
                f"(label more studies, from more than one patient)",
            )
        if set(s.key for s in train) & set(s.key for s in val):
            raise InvalidInputError(
                None,
                "the split puts a study in both training and validation; each belongs to one side",
            )
        self.job.split = {"train": [s.key for s in train], "val": [s.key for s in val]}
        self.job.names = {s.key: s.name for s in train + val}
        self.replay = self._replay(entry, card)
        train = train + self.replay  # rehearsal studies train, never validate
        for src in unmatched_names(self.job.mapping, train + val, card):
            unused = SettingError("mapping", src, "mapping_unused", target=self.job.mapping[src])
            self.emit("warning", message=str(unused), setting=unused.to_dict())
        cache = Path(self.job.cache) if self.job.cache else saved.training_cache_dir()
        self.dist.first_rank_first(before=True)
        todo = [
            st for st in train + val if td.cached_meta(st, card, cache, self.job.mapping) is None
        ]
        run_each(
            partial(td.prepare_study, card=card, cache=cache, mapping=self.job.mapping),
            todo,
            self._workers(),
            self._progress("prepare"),
            self._check_stop,
        )
        prepared = [td.prepare_study(st, card, cache, self.job.mapping) for st in train + val]
        self.dist.first_rank_first(before=False)
        check_labelled(prepared[: len(train) - len(self.replay)], prepared[len(train) :])
        return train + val, prepared[: len(train)], prepared[len(train) :]

    def _setup_torch(self) -> None:
        import torch

        from medview.ai.runtime.device import cpu_cores

        torch.manual_seed(self.s.seed)
        threads = self.s.threads or max(1, cpu_cores() // self.dist.world)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)

    # ---------------------------------------------------------------- running
    def run(self) -> dict | None:
        """Train; returns the 'done' event (None when stopped)."""
        self.dist, self.lock = Dist(self.s.device), None
        try:
            return self._run()
        except Stopped:  # nothing new to save: the checkpoint there, if any, resumes it
            at = checkpoint_at(self.work)
            self.emit(
                "stopped",
                epoch=at[0] if at else 0,
                step=at[1] if at else 0,
                work=str(self.work),
                resume=self._resume_line() if at else None,
            )
            return None
        finally:
            if self.lock is not None:
                self.lock.release()
            self.dist.close()

    def _run(self) -> dict | None:
        from medview.ai.models import registry

        entry = registry.resolve(self.job.base)
        card = entry.card
        check_run(self.job, entry, self.work / CHECKPOINT, self.resume)
        self.job.base = card.ref  # pinned: a resume after activating another version keeps it
        if self.resume:
            check_base(self.work, card.ref)
        self.work.mkdir(parents=True, exist_ok=True)
        if self.dist.rank == 0:
            self.lock = WorkLock(self.work)
        studies, train, val = self._studies(entry, card)
        if self.dist.rank == 0:
            write_file(
                self.work / JOB_FILE, (self.job.to_json() + "\n").encode(), "job file", "run again"
            )
        self._setup_torch()
        n_own = len(train) - len(self.replay)
        own, self.replay_prepared = train[:n_own] + val, train[n_own:]
        self.folds = self._fold_split(studies, card, own)
        if self.folds and card.postprocess is not None and self.dist.rank == 0:
            self._parent_pass(entry, card, own)
        st = None
        while True:  # one phase per fold, then the version itself
            phase = (
                st["phase"] if st is not None else checkpoint_phase(self.work) if self.resume else 0
            )
            fold = self.folds[phase] if phase < len(self.folds) else None
            if fold is not None:
                fit_train = [p for p in own if p.key not in fold] + self.replay_prepared
                fit_val = [p for p in own if p.key in fold]
            elif self.folds:  # the version: every labelled study trains, none validates
                fit_train, fit_val = own + self.replay_prepared, []
            else:
                fit_train, fit_val = train, val
            got = self._fit(entry, card, fit_train, fit_val, st, phase)
            if got is None:
                return None
            model, task, st = got
            if fold is None:
                break
            st = self._end_fold(entry, card, model, task, st)
        return self._finish(entry, card, model, task, studies, train, val, st, self.dist.device)

    def _parent_pass(self, entry: Any, card: Any, own: list) -> None:
        """The parent's mistakes and scores in the reader's studies from one segmentation of
        each (training.parent_pass), before mining and the folds' scoring look for them."""
        from medview.ai.training.parent_pass import parent_pass

        parent = network(entry.folder).to(self.dist.device)
        self.emit("mining", studies=len(own))
        parent_pass(
            parent,
            card,
            own,
            self.dist.device,
            lambda i, n: self.emit("mining", studies=n, index=i),
            self._check_stop,
            self.s.mined_threshold,
        )

    def _fold_split(self, studies: list, card: Any, own: list) -> list[list[str]]:
        """The folds of cross-validation (crossval.fold_split), [] for one held-out split:
        folds 1, a classifier, or studies of one patient."""
        from medview.ai.training.crossval import fold_split

        if self.s.folds < 2 or card.task != "segmentation":
            return []
        keys = {p.key for p in own}
        return fold_split([s for s in studies if s.key in keys], self.s.folds, self.s.seed)

    def _fit(
        self, entry: Any, card: Any, train: list, val: list, st: dict | None, phase: int
    ) -> tuple[Any, Any, dict] | None:
        """One training from the parent on `train`, validated on `val` each epoch (none: the
        version of a cross-validated run, trained on every study); resumes from the
        checkpoint when the run's state `st` is None and this is a resume. Returns (model,
        task, state), None when stopped."""
        import torch

        from medview.ai.training.tasks import make_task

        device = self.dist.device
        model = network(entry.folder).to(device).train()
        teacher = None
        if self.s.distill > 0 and card.task == "segmentation":
            from medview.ai.training.keep import frozen_parent

            teacher = frozen_parent(network(entry.folder).to(device))
        rehearsal = {p.key for p in self.replay_prepared}
        n_own = sum(p.key not in rehearsal for p in train)  # (the rehearsal studies come last)
        self.emit("mining", studies=len(train))
        self.dist.first_rank_first(before=True)  # rank 0 mines and caches, the rest read
        task = make_task(
            card,
            train,
            val,
            self.s,
            model,
            device,
            teacher,
            n_own,
            lambda i, n: self.emit("mining", studies=n, index=i),
            self._check_stop,
        )
        self.dist.first_rank_first(before=False)
        # the weights training starts from, which the version is blended back toward
        self.start = self._adapt_start(
            card, model, [p for p in train if p.key not in rehearsal], device
        )
        anchor = None
        if self.s.l2sp > 0:
            from medview.ai.training.keep import Anchor

            anchor = Anchor(model, self.s.l2sp)  # the parent's weights, before any resume
        net = model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        opt = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=self.s.lr,
            weight_decay=self.s.weight_decay,
        )
        amp = bool(self.s.amp) and device.type == "cuda"
        scaler = (
            torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
            if device.type == "cuda"
            else None
        )
        per_step = task.batch_size * self.dist.world
        steps = max(1, math.ceil(len(train) * self.s.patches_per_study / per_step))
        if st is None:
            st = load_checkpoint(self.work, model, opt, scaler) if self.resume else None
            resumed = st is not None
        else:
            resumed = False
        st = st or fresh_state(card.ref, 0.0)
        st.setdefault("phase", phase)
        st.setdefault("folds_done", "[]")
        if val:
            self._labels_now(st, [p for p in train if p.key not in rehearsal] + val)
        fold = {"fold": phase + 1, "folds": len(self.folds)} if phase < len(self.folds) else {}
        self.emit(
            "start",
            base=card.ref,
            device=str(device),
            processes=self.dist.world,
            train=len(train),
            val=len(val),
            epochs=self.s.epochs,
            steps_per_epoch=steps,
            samples_per_epoch=steps * per_step,
            work=str(self.work),
            resumed_epoch=st["epoch"] if resumed else None,
            **fold,
        )
        if not st["history"] and val:
            self._validate(task, model, device, st, 0, None, 0.0, steps, per_step)
        from medview.ai.runtime.device import autocast_context

        t_epoch = time.perf_counter()
        while st["epoch"] < self.s.epochs:
            e = st["epoch"]
            train_mode(model, self.s.freeze_norm)  # validation leaves plain train mode
            rng = np.random.default_rng([self.s.seed, e, self.dist.rank, phase])
            if st["rng"]:
                rng.bit_generator.state = json.loads(st["rng"])
            step = st["step"]
            last_report = time.perf_counter()
            while step < steps:
                if self.dist.any(self.should_stop()):
                    st.update(step=step, rng=json.dumps(rng.bit_generator.state))
                    st["seconds"] += time.perf_counter() - t_epoch
                    self._save(model, opt, scaler, st)
                    self.emit(
                        "stopped",
                        epoch=e,
                        step=step,
                        work=str(self.work),
                        resume=self._resume_line(),
                    )
                    return None
                g = e * steps + step
                for group in opt.param_groups:
                    group["lr"] = self.s.lr * warmup_cosine(
                        g, self.s.epochs * steps, max(1, int(self.s.warmup_epochs * steps))
                    )
                opt.zero_grad(set_to_none=True)
                with autocast_context(device) if amp else contextlib.nullcontext():
                    loss = task.batch_loss(net, rng, device)
                value = float(loss.detach())
                if self.dist.any(not math.isfinite(value)):  # before backward: every
                    raise diverged(e, step, value, self.s.lr)  # process stops, no NaN weight
                if scaler is not None and scaler.is_enabled():
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                if anchor is not None:
                    anchor.pull(opt.param_groups[0]["lr"])
                st["loss_sum"] += value
                st["loss_n"] += 1
                step += 1
                if time.perf_counter() - last_report > 2.0:
                    last_report = time.perf_counter()
                    self.emit(
                        "step",
                        epoch=e + 1,
                        step=step,
                        steps=steps,
                        loss=round(st["loss_sum"] / st["loss_n"], 5),
                    )
            seconds = time.perf_counter() - t_epoch
            loss_mean = st["loss_sum"] / max(st["loss_n"], 1)
            st.update(epoch=e + 1, step=0, rng=None, loss_sum=0.0, loss_n=0)
            st["seconds"] += seconds
            improved = self._validate(
                task, model, device, st, e + 1, loss_mean, seconds, steps, per_step, bool(val)
            )
            # cross-validated runs train a fixed number of epochs: 1-2 studies a fold
            # would pick an epoch by noise (and the version has no validation studies)
            if improved and self.dist.rank == 0 and not self.folds:
                save_best(self.work, model)
            self._save(model, opt, scaler, st)
            t_epoch = time.perf_counter()
            if not self.folds and self.dist.any(st["bad_epochs"] >= self.s.patience):
                self.emit(
                    "early_stop", epoch=e + 1, best_epoch=st["best_epoch"], patience=self.s.patience
                )
                break
        from medview.ai.training.adapt import blend

        blend(model, self.start, self.s.interpolate)
        return model, task, st

    def _adapt_start(self, card: Any, model: Any, own: list, device: Any) -> dict:
        """The site adaptation before the first step (training.adapt): the batch norms'
        statistics measured on the reader's training studies (site_norm), the weights that
        learn (trainable); returns the weights training starts from, which the version is
        blended back toward (interpolate). Seeded: a resume measures the same statistics."""
        from medview.ai.training.adapt import renormalise, set_trainable
        from medview.ai.training.patches import Augment, PatchSampler

        if self.s.site_norm and own and card.task == "segmentation":
            sampler = PatchSampler(own, card, 2 * self.s.patch_size, 0.0, Augment(enabled=False))
            rng = np.random.default_rng([self.s.seed, 99])
            batches = (sampler.batch(rng, 4, device)[0] for _ in range(4 * len(own)))
            renormalise(model, batches)
        set_trainable(model, self.s.trainable)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _end_fold(self, entry: Any, card: Any, model: Any, task: Any, st: dict) -> dict:
        """Score a fold's version and the parent on the fold's held-out studies, keep the
        scores in the run's state and start the next phase from the parent (a checkpoint at
        its epoch 0, so a resume does not train this fold again)."""
        from medview.ai.training.metrics import held_out, scores_kept

        device = self.dist.device
        done = json.loads(st["folds_done"])
        phase = st["phase"]
        if self.dist.rank == 0:
            parent = network(entry.folder).to(device)
            report = lambda who: (  # noqa: E731
                lambda i, n: self.emit(
                    "evaluate", model=who, study=i, of=n, fold=phase + 1, folds=len(self.folds)
                )
            )
            before = scores_kept(parent, card, task.val, device, report(card.ref), self._check_stop)
            first = sum(len(f["studies"]) for f in done)  # the candidates' study ids
            after, candidates = held_out(
                model, card, task.val, device, first, report(f"fold {phase + 1}"), self._check_stop
            )
            done.append(
                {
                    "studies": [p.key for p in task.val],
                    "parent": before,
                    "new": after,
                    "candidates": candidates,
                    "history": st["history"],
                    "seconds": round(st["seconds"], 1),
                }
            )
        fresh = {
            **fresh_state(card.ref, st["seconds"]),
            "phase": phase + 1,
            "folds_done": json.dumps(done),
        }
        if self.dist.rank == 0:  # the parent's weights: the next phase starts from them
            from medview.ai.training.checkpoint import save_state

            parent_model = network(entry.folder)
            save_state(self.work, parent_model, fresh)
            self.emit("checkpoint", epoch=0, step=0, path=str(self.work / CHECKPOINT))
        return fresh

    def _refit_fp(self, card: Any, done_folds: list[dict]) -> tuple[Any, float, dict] | None:
        """The false-positive stage refit on the fold versions' own candidates in their
        held-out studies (findings.fp_fit.cross_validated_refit), with the out-of-fold
        numbers of none, the parent's and the refit classifier, and whether it is used
        (fp_fit.refit_is_better); None when off or there is nothing to fit."""
        from medview.ai.findings.fp_fit import cross_validated_refit, refit_is_better
        from medview.ai.findings.fp_reduction import classifier_for

        if not self.s.refit_fp or card.postprocess is None:
            return None
        studies = []
        for f, fold in enumerate(done_folds):
            for rec in fold.get("candidates") or []:
                studies.append(
                    {
                        "fold": f,
                        "at": _candidate_arrays(rec["at"]),
                        "train": [_candidate_arrays(c) for c in rec["train"]],
                        "big": rec["big"],
                        "truth_voxels": rec["truth_voxels"],
                    }
                )
        if not studies or not any(len(st["at"]["truth"]) for st in studies):
            return None
        post = card.postprocess
        parent = (classifier_for(card), post.fp_threshold) if post.fp_classifier else None
        clf, cut, info = cross_validated_refit(studies, len(card.labels), self.s.seed, parent)
        info["used"] = refit_is_better(info)
        kept = info.get("parent") or info["none"]
        self.emit(
            "fp_refit",
            used=info["used"],
            threshold=cut,
            refit=info["refit"],
            kept=kept,
            message=f"false-positive classifier refit on the new network's "
            f"candidates, out of fold: {info['refit']}; "
            f"{'the parent' + chr(39) + 's' if 'parent' in info else 'none'}: {kept}; "
            f"{'used' if info['used'] else 'not better: the parent' + chr(39) + 's kept'}",
        )
        return clf, cut, info

    def _labels_now(self, st: dict, own: list) -> None:
        """Keep the voxels per label of the reader's studies in the checkpoint; a resume after
        some were relabelled says so, and the best epoch is chosen again among the epochs
        from here (the earlier ones were validated on the old labels: their Dice are not
        comparable). The parent's and the new version's final numbers are both measured on
        the labels as they are at the end, so that comparison stays fair."""
        now = {p.key: {str(v): n for v, n in sorted(p.counts.items())} for p in own}
        before = st.get("labels")
        if before is not None and before != now:
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            names = ", ".join(self.job.names.get(k, k) for k in changed[:3]) + (
                ", …" if len(changed) > 3 else ""
            )
            e = st["epoch"]  # (epoch 0: the base model's own validation)
            judged = "epoch 0 was" if e == 0 else f"epochs 0-{e} were"
            self.emit(
                "warning",
                message=f"the labels of {len(changed)} "
                f"{'study' if len(changed) == 1 else 'studies'} ({names}) changed since "
                f"this run began: {judged} validated on the old labels, so the best "
                f"epoch is chosen again from epoch {e + 1}",
            )
            st.update(best_dice=-1.0, bad_epochs=0, labels_changed_at_epoch=st["epoch"])
        st["labels"] = now

    def _validate(
        self,
        task: Any,
        model: Any,
        device: Any,
        st: dict,
        epoch: int,
        loss: float | None,
        seconds: float,
        steps: int,
        per_step: int,
        measure: bool = True,
    ) -> bool:
        """Quick validation on rank 0; updates history, best and patience in every process.
        Without `measure` (no validation studies) the epoch is recorded with its loss."""
        dice: dict = {"mean": 0.0} if measure else {"mean": None}
        if self.dist.rank == 0 and measure:
            dice = task.quick(model, device)
        value = self.dist.broadcast(dice.get("mean") or 0.0)
        improved = measure and epoch > 0 and value > st["best_dice"] + 1e-4
        if not measure:  # the version of a cross-validated run: its last epoch is kept
            st["best_epoch"] = epoch
        elif epoch == 0:
            st["best_dice"] = value
        elif improved:
            st.update(best_dice=value, best_epoch=epoch, bad_epochs=0)
        else:
            st["bad_epochs"] += 1
        done = [h["seconds"] for h in st["history"] if h["epoch"] > 0] + (
            [seconds] if epoch else []
        )
        eta = float(np.mean(done)) * (self.s.epochs - epoch) if done else None
        # per label too: the curves after a resume (or in the card) draw each label's line
        record = {
            "epoch": epoch,
            "loss": None if loss is None else round(loss, 5),
            "val_dice": dice.get("mean"),
            "seconds": round(seconds, 2),
            "val_dice_per_label": {k: v for k, v in dice.items() if k != "mean"},
        }
        st["history"].append(record)
        phase = st.get("phase", 0)
        fold = {"fold": phase + 1, "folds": len(self.folds)} if phase < len(self.folds) else {}
        self.emit(
            "epoch",
            **record,
            **fold,
            epochs=self.s.epochs,
            best_epoch=st["best_epoch"],
            eta_s=None if eta is None else round(eta, 1),
            samples_per_s=round(steps * per_step / seconds, 2) if seconds else None,
        )
        return improved

    def _resume_line(self) -> str:
        return f"medview train --job {self.work / JOB_FILE} --resume"

    def _save(self, model: Any, opt: Any, scaler: Any, st: dict) -> None:
        if self.dist.rank == 0:
            path = save_checkpoint(self.work, model, opt, scaler, st)
            self.emit("checkpoint", epoch=st["epoch"], step=st["step"], path=str(path))

    def _finish(
        self,
        entry: Any,
        card: Any,
        model: Any,
        task: Any,
        studies: list,
        train: list,
        val: list,
        st: dict,
        device: Any,
    ) -> dict | None:
        from safetensors.torch import load_file

        from medview.ai.training import data as td
        from medview.ai.training import versions as tv
        from medview.ai.training.keep import describe

        if self.dist.rank != 0:
            return None
        cv, refit = None, None
        if self.folds:  # every study scored by a version trained without it
            from medview.ai.training.crossval import summary

            done_folds = json.loads(st["folds_done"])
            cv = summary(
                [x for f in done_folds for x in f["parent"]],
                [x for f in done_folds for x in f["new"]],
                card,
                len(self.folds),
            )
            cv["fold_histories"] = [f["history"] for f in done_folds]
            before, after = cv.pop("parent_metrics"), cv.pop("metrics")
            refit = self._refit_fp(card, done_folds)
        else:
            if (self.work / BEST).exists():  # (saved before the blend toward the start)
                from medview.ai.training.adapt import blend

                model.load_state_dict(load_file(str(self.work / BEST)))
                blend(model, self.start, self.s.interpolate)
            parent = network(entry.folder).to(device)

            def report(who: str) -> Callable[[int, int], None]:
                return lambda i, n: self.emit("evaluate", model=who, study=i, of=n)

            before = task.evaluate(parent, device, report(card.ref), kept=True)
            after = task.evaluate(model, device, report("new"))
        version = self.job.version or tv.next_version(card.name, card.version)
        by_key = {s.key: s for s in studies}
        train_keys, val_keys = self.job.split["train"], self.job.split["val"]
        if self.folds:  # all of them trained the version, and all were held out once
            train_keys = val_keys = train_keys + val_keys
        fine_tune = {
            "parent": card.ref,
            "parent_metrics": before,
            "train_studies": train_keys,
            "val_studies": val_keys,
            "train_hash": td.studies_hash([by_key[k] for k in train_keys]),
            "val_hash": td.studies_hash([by_key[k] for k in val_keys]),
            "settings": asdict(self.s),
            "epochs_run": st["epoch"],
            "best_epoch": st["best_epoch"],
            "history": st["history"],
            # no epoch beat the parent's quick validation: the last epoch's weights are kept
            "improved_on_quick_validation": st["best_epoch"] > 0
            if st.get("labels_changed_at_epoch") is None and not self.folds
            else None,
            "labels_changed_at_epoch": st.get("labels_changed_at_epoch"),
            "seconds": round(st["seconds"], 1),
            "device": str(device),
            "processes": self.dist.world,
            "label_mapping": self.job.mapping,
            "replay_studies": [s.name for s in self.replay],  # demo studies, no patient
        }
        if cv is not None:
            fine_tune["cross_validation"] = cv
        if refit is not None:
            fine_tune["fp_refit"] = refit[2]
        n_own = len(train) - len(self.replay) + (len(val) if self.folds else 0)
        replay = (
            f" plus {len(self.replay)} of its own training studies (demo site A, rehearsal)"
            if self.replay
            else ""
        )
        checked = (
            f"{len(self.folds)}-fold cross-validated by patient on the same studies "
            f"(each scored by a version trained without it), then trained on all; "
            f"{st['epoch']} epochs"
            if self.folds
            else f"validated on {len(val)} others (hash {fine_tune['val_hash']}), split by "
            f"patient; {st['epoch']} epochs"
        )
        training = (
            f"Fine-tuned from {card.ref} on {n_own} locally labelled studies{replay} "
            f"(hash {fine_tune['train_hash']}), {checked} "
            f"of {task.patch_words()} per "
            f"study, best epoch {st['best_epoch']}; AdamW lr {self.s.lr} with warm-up "
            f"and cosine decay, DiceCE loss{describe(self.s, self.job.base)}, "
            f"{task.augment_words}; seed {self.s.seed}. Before this: "
            f"{card.training_data}"
        )
        used = refit is not None and refit[2]["used"]
        if used:
            training += (
                f" Its false-positive classifier was refit on this network's own "
                f"candidates in the held-out studies, threshold "
                f"{refit[1]:g} chosen out of fold (validation.fine_tune.fp_refit); "
                f"the validation numbers were measured with the parent's."
            )
        folder = tv.write_version(
            card,
            version,
            model,
            training,
            {**after, "fine_tune": fine_tune},
            (refit[0].to_json(), refit[1]) if used else None,
            data=self.job.data,
        )
        done = {
            "event": "done",
            "version": f"{card.name}:{version}",
            "folder": str(folder),
            "parent": card.ref,
            "metrics": after,
            "parent_metrics": before,
            "best_epoch": st["best_epoch"],
            "cross_validation": cv,
            "activate": f"medview models activate {card.name}:{version}",
        }
        self._emit(done)
        return done


def _candidate_arrays(lists: dict) -> dict[str, np.ndarray]:
    """A candidate set from its JSON lists (findings.fp_fit's arrays and dtypes)."""
    from medview.ai.findings.fp_reduction import FEATURES

    kinds = {
        "features": np.float64,
        "label": np.int64,
        "truth": bool,
        "lesion_id": np.int64,
        "diameter": np.float64,
        "size": np.int64,
        "inter": np.int64,
    }
    out = {k: np.asarray(lists[k], kind) for k, kind in kinds.items()}
    out["features"] = out["features"].reshape(-1, len(FEATURES))
    return out
