"""Loading a model folder (card + weights) into something that predicts, without ever running
code from the folder: weights come from safetensors or a weights-only state dict into a
network MedView builds itself (networks.py); imported programs are torch.export archives
vetted first (pt2_check.py) or ONNX files run by onnxruntime.

The file is read once into memory: its SHA-256 is checked against the card and the same
bytes are parsed, so nothing can swap the file between the check and the load. Loaded
models stay warm in a small cache (load_model reuses them; release_models lets them go)
because building and loading costs far more than one batch.

LoadedModel.predict takes float32 (N, C, H, W) — C = the card's context_slices, already
normalised — and gives float32 class probabilities, (N, K, H, W) for segmentation and
(N, K) for classification, K = labels + background (networks.py's conventions)."""

from __future__ import annotations

import hashlib
import io
import pickle
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from medview.ai.models.cards import CARD_FILE, ModelCard, load_card
from medview.ai.runtime.device import autocast_context
from medview.ai.runtime.fast_network import inference_copy, network_input
from medview.ai.runtime.networks import build_network, n_classes, outputs_logits
from medview.ai.runtime.pt2_check import check_pt2
from medview.core.errors import InvalidInputError

_DAMAGED = "is truncated or damaged"
_CODE = "contains code or objects that are not plain weights; refused"
_PROGRAMS = ("torch.export", "onnx", "torchscript", "nnunet")
_CACHE_SIZE = 4


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _read_weights(card: ModelCard, folder: Path) -> tuple[str, bytes]:
    path = folder / card.weights_file
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(
            where, f"is missing; the card of {card.ref} names it as its weights"
        ) from exc
    except OSError as exc:
        raise InvalidInputError(where, f"cannot be read ({exc.strerror or exc})") from exc
    if card.weights_sha256 and sha256_hex(data) != card.weights_sha256.lower():
        raise InvalidInputError(
            where,
            "does not match the weights_sha256 in its card (changed "
            "or damaged since the card was written); refused",
        )
    return where, data


def _check_formats(card: ModelCard, folder: Path) -> None:
    """A program file is its own architecture; a built network needs a weights file."""
    program = card.architecture in _PROGRAMS
    if program != (card.weights_format in _PROGRAMS) or (
        program and card.architecture != card.weights_format
    ):
        raise InvalidInputError(
            str(folder / CARD_FILE),
            f"pairs architecture "
            f"{card.architecture!r} with weights_format "
            f"{card.weights_format!r}, which cannot go together",
        )


def _state_dict(card: ModelCard, data: bytes, where: str) -> dict[str, torch.Tensor]:
    if card.weights_format == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            return load(data)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise InvalidInputError(where, f"{_DAMAGED} ({_first_line(exc)})") from exc
    try:  # never weights_only=False: a pickle can run code (docs/architecture.md)
        obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise InvalidInputError(where, _CODE) from exc
    except Exception as exc:
        raise InvalidInputError(where, f"{_DAMAGED} ({_first_line(exc)})") from exc
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise InvalidInputError(where, "does not hold a state dict (names mapped to tensors)")
    return obj


def _first_mismatch(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> str | None:
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in weights:
            return f"'{key}' is missing from the weights"
        if tuple(weights[key].shape) != tuple(value.shape):
            return (
                f"'{key}' is {tuple(weights[key].shape)} in the weights but "
                f"{tuple(value.shape)} in the network"
            )
    extra = next((k for k in weights if k not in expected), None)
    return f"the weights hold '{extra}', which the network does not have" if extra else None


def _onnx_session(data: bytes, device: torch.device, where: str) -> tuple[object, torch.device]:
    """An onnxruntime session on CUDA when asked for and available, else the CPU; returns
    the device it really runs on so callers report it honestly."""
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidProtobuf

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # follows set_threads_for_ui
    options.inter_op_num_threads = 1
    providers: list = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except InvalidProtobuf as exc:
        raise InvalidInputError(where, f"{_DAMAGED} (not a complete ONNX model)") from exc
    except Exception as exc:
        raise InvalidInputError(
            where, f"cannot be loaded by onnxruntime ({_first_line(exc)})"
        ) from exc
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
        raise InvalidInputError(where, "must take one float32 input of shape (N, C, H, W)")
    used = "CUDAExecutionProvider" in session.get_providers()
    return session, device if used else torch.device("cpu")


def _static_dims(shape: tuple | list) -> tuple[int | None, ...]:
    """A program's input shape with dynamic dimensions as None."""
    return tuple(d if isinstance(d, int) else None for d in shape)


def _program_input(program: torch.export.ExportedProgram, where: str) -> tuple[int | None, ...]:
    """The (N, C, H, W) an exported program takes, None where it is dynamic."""
    names = program.graph_signature.user_inputs
    node = next((n for n in program.graph.nodes if names and n.name == names[0]), None)
    shape = getattr(node.meta.get("val"), "shape", None) if node is not None else None
    if len(names) != 1 or shape is None or len(shape) != 4:
        raise InvalidInputError(where, "must take one float32 input of shape (N, C, H, W)")
    return _static_dims(shape)


def _softmax_np(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)  # a new array: ORT's output stays untouched
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


class LoadedModel:
    """A model ready to predict on one device; `module` is the torch module (None for ONNX).
    `requested` is the device asked for, `device` the one it really runs on (onnxruntime
    without CUDA runs on the CPU)."""

    def __init__(
        self, card: ModelCard, folder: Path, where: str, data: bytes, device: torch.device
    ) -> None:
        self.card, self.folder, self.where = card, folder, where
        self.module: torch.nn.Module | None = None
        self._fast: torch.nn.Module | None = None  # the built module's inference_copy
        self._session: object | None = None
        self._program = None
        self._onnx = data if card.weights_format == "onnx" else b""
        self._logits = outputs_logits(card)
        # the input shape a program fixes (None where any size goes); checked by predict
        self._in_shape: tuple[int | None, ...] = (None, card.in_channels, None, None)
        if card.weights_format == "torch.export":
            check_pt2(data, where)
            try:
                self._program = torch.export.load(io.BytesIO(data))
            except Exception as exc:
                raise InvalidInputError(
                    where, f"cannot be loaded as a torch.export program ({_first_line(exc)})"
                ) from exc
            self._in_shape = _program_input(self._program, where)
        elif card.weights_format != "onnx":  # an ONNX session is made by to()
            self.module = self._built(data)
        self.to(device)

    def _built(self, data: bytes) -> torch.nn.Module:
        module = build_network(self.card)
        weights = _state_dict(self.card, data, self.where)
        mismatch = _first_mismatch(module, weights)
        if mismatch:
            raise InvalidInputError(
                self.where, f"the card of {self.card.ref} does not match its weights: {mismatch}"
            )
        module.load_state_dict(weights, strict=True)
        return module.eval()

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """(N, C, H, W) as the program fixes them; None where any size goes."""
        return self._in_shape

    def to(self, device: torch.device | str) -> LoadedModel:
        """Move to another device (the inference job falls back to the CPU on GPU
        out-of-memory); returns self."""
        device = torch.device(device)
        self.requested = device
        if self.card.weights_format == "onnx":
            self._session, self.device = _onnx_session(self._onnx, device, self.where)
            self._in_shape = _static_dims(self._session.get_inputs()[0].shape)
            return self
        if self._program is not None:
            from torch.export.passes import move_to_device_pass

            # an exported module cannot be switched to eval(): its mode is fixed at export
            self.module = move_to_device_pass(self._program, device).module()
        else:
            self.module.to(device)
            self._fast = inference_copy(self.module, device)
        self.device = device
        return self

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for a float32 (N, C, H, W) batch (see the module docstring)."""
        # a strided view (preprocess.Stack's windows) stays one: the torch path makes it
        # dense in the network's layout, a copy it needs anyway
        x = np.asarray(batch, dtype=np.float32)
        self._check_input(x)
        fixed = self._in_shape[0]
        run = self._run_onnx if self._session is not None else self._run_torch
        if fixed is None or fixed == len(x):
            return run(x)
        # a program exported for a fixed batch size: run it chunk by chunk, the last padded
        parts = [x[i : i + fixed] for i in range(0, len(x), fixed)]
        return np.concatenate([run(_padded(p, fixed))[: len(p)] for p in parts])

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim != 4 or len(x) == 0:
            raise InvalidInputError(
                f"model {self.card.ref}", f"needs a (N, C, H, W) batch, not shape {x.shape}"
            )
        size = self.card.input_size or (None, None)
        want = [self._in_shape[1], self._in_shape[2] or size[0], self._in_shape[3] or size[1]]
        if any(w is not None and w != s for w, s in zip(want, x.shape[1:], strict=True)):
            shown = ", ".join(str(w or n) for w, n in zip(want, "CHW", strict=True))
            raise InvalidInputError(
                f"model {self.card.ref}", f"takes input (N, {shown}), not {tuple(x.shape)}"
            )

    def _check_output(self, shape: tuple[int, ...], x: np.ndarray) -> None:
        k, labels = n_classes(self.card), len(self.card.labels)
        want = (len(x), k, *x.shape[2:]) if self.card.task == "segmentation" else (len(x), k)
        if len(shape) == len(want) and shape[1] != k:
            raise InvalidInputError(
                f"model {self.card.ref}",
                f"gives {shape[1]} output "
                f"channels but its card's {labels} label(s) need {k} "
                f"(background first)",
            )
        if tuple(shape) != want:
            raise InvalidInputError(
                f"model {self.card.ref}",
                f"gives output of shape {tuple(shape)} for input {x.shape}; its card needs {want}",
            )

    def _run_torch(self, x: np.ndarray) -> np.ndarray:
        if self._fast is None:  # a program may write into its input, which may be shared
            x = np.array(x, order="C")
        with torch.inference_mode(), autocast_context(self.device):
            if self._fast is not None:
                out = self._fast(network_input(x, self.device))
            else:
                out = self.module(torch.from_numpy(x).to(self.device))
            self._check_output(tuple(out.shape), x)
            out = out.float()
            if self._logits:
                out = torch.softmax(out, dim=1)
            # NCHW for the numpy post-processing (channels_last comes out NHWC)
            return out.contiguous().cpu().numpy()

    def _run_onnx(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        name = self._session.get_inputs()[0].name
        out = np.asarray(self._session.run(None, {name: x})[0], dtype=np.float32)
        self._check_output(out.shape, x)
        return _softmax_np(out) if self._logits else out


def _padded(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) == n:
        return x
    return np.concatenate([x, np.zeros((n - len(x), *x.shape[1:]), dtype=x.dtype)])


_cache: OrderedDict[str, tuple[tuple, LoadedModel]] = OrderedDict()
_cache_lock = threading.Lock()


def _stamp(folder: Path, card: ModelCard) -> tuple:
    """What must be unchanged for a cached model to be reused."""
    out: list = []
    for path in (folder / CARD_FILE, folder / card.weights_file):
        try:
            st = path.stat()
        except OSError:
            return ()
        out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


def _model_class(card: ModelCard) -> type:
    """LoadedModel for 2.5D slice models; the 3D runners' own for imported 3D models."""
    if card.architecture == "nnunet":
        from medview.ai.runtime.nnunet_models import NnunetModel

        return NnunetModel
    if card.volume3d is not None:
        from medview.ai.runtime.volume_models import VolumeModel

        return VolumeModel
    return LoadedModel


def load_model(
    folder: str | Path, device: torch.device | str, *, reuse: bool = True
) -> LoadedModel:
    """The model in `folder` on `device`: warm from the cache when its files are unchanged
    (moved to `device` if it was elsewhere), else loaded and cached. reuse=False loads a
    private copy and leaves the cache alone (model import validation)."""
    folder = Path(folder)
    device = torch.device(device)
    card = load_card(folder)
    key = str(folder.resolve())
    stamp = _stamp(folder, card)
    if reuse:
        with _cache_lock:
            hit = _cache.get(key)
            if hit and hit[0] == stamp and stamp:
                _cache.move_to_end(key)
                model = hit[1]
                return model if model.requested == device else model.to(device)
    _check_formats(card, folder)
    where, data = _read_weights(card, folder)
    model = _model_class(card)(card, folder, where, data, device)
    if reuse:
        with _cache_lock:
            _cache[key] = (stamp, model)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return model


def release_models() -> None:
    """Drop every warm model and give cached GPU memory back to the driver."""
    with _cache_lock:
        _cache.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()
