"""The model manager: one place that knows which model serves each role, and loads it once.

Roles and their defaults (``DEFAULT_MODELS``; any of them may be a Hugging Face hub id or a
local folder/file):

==============  ==========================================================  =====================
role            default                                                     loaded as
==============  ==========================================================  =====================
inpaint         stable-diffusion-v1-5/stable-diffusion-inpainting           diffusers inpainting pipeline
                (a PowerPaint v1 checkpoint in diffusers layout works too:  (AutoPipelineForInpainting)
                its tokenizer holds P_ctxt / P_obj / P_shape)
text2image      "" (optional; a plain text-to-image SD model, used by       StableDiffusionPipeline
                Blended Latent Diffusion)                                   (AutoPipelineForText2Image)
instruct        timbrooks/instruct-pix2pix                                  StableDiffusionInstructPix2PixPipeline
grounding       IDEA-Research/grounding-dino-tiny                           transformers zero-shot detector + processor
segmentation    facebook/sam-vit-base                                       transformers SamModel + SamProcessor
lama            "" (a path to the big-lama TorchScript file)                torch.jit.load
clip            "" (optional, e.g. openai/clip-vit-base-patch32)            transformers CLIPModel + CLIPProcessor
gdino_original  "" (optional, ``[CONFIG.py::]groundingdino_swint_ogc.pth``)  groundingdino-py (needs torchvision)
sam_original    "" (optional, ``sam_vit_b_01ec64.pth``)                    segment-anything SamPredictor
                                                                            (needs torchvision)
==============  ==========================================================  =====================

Behaviour:

- **Lazy**: constructing a manager imports nothing heavy; ``get(role)`` loads on first use.
- **One cache per process**: ``get`` returns the cached object; ``loads[role]`` counts real loads.
  ``shared_manager(...)`` returns one process-wide manager per configuration.
- **Device** chosen once (``cuda`` > ``mps`` > ``cpu`` for ``"auto"``); **dtype** fp16 on cuda,
  fp32 elsewhere (``"auto"``). GroundingDINO and LaMa always run in fp32 (their deformable
  attention / FFT layers are unreliable in half precision).
- **Memory budget** (bytes of parameters, ``memory_budget_gb``): when loading a model would exceed
  it, the least recently used models are evicted first.
- **CPU offload** (``offload=True``): diffusers pipelines use ``enable_model_cpu_offload`` on cuda.
- **Safetensors only**: every ``from_pretrained`` passes ``use_safetensors=True``; a model folder
  holding only pickled ``.bin`` weights is refused. LaMa is the one exception: its checkpoint is a
  TorchScript file (code + weights) that the user chose by putting its path in the settings; it is
  loaded with ``torch.jit.load`` and never with ``torch.load``.
- **Offline-aware**: a hub id is only read from the local Hugging Face cache unless the manager
  was built with ``download=True`` and the hub is reachable (``HF_HUB_OFFLINE`` unset). A model
  that is missing raises ``ModelUnavailableError`` (exit code 3) naming the model, its role and
  ``imagent models pull ROLE``.

Settings keys the manager takes (flat, so they fit the TOML file and ``IMAGENT_*`` environment,
which ``imagent.assistant.config.load_settings`` reads; this module reads no ``IMAGENT_*``
variable itself, it takes what the caller passes):
``model_inpaint``, ``model_text2image``, ``model_instruct``, ``model_grounding``,
``model_segmentation``, ``model_lama``, ``model_clip``, ``model_gdino_original``,
``model_sam_original`` (ids or paths), ``device`` (auto/cuda/mps/cpu),
``dtype`` (auto/fp16/bf16/fp32), ``memory_budget_gb`` (float, 0 = unlimited), ``offload`` (bool),
``download`` (bool). ``models_from_settings`` turns such a mapping into the ``{role: id}`` dict;
``manager_from_settings`` builds the manager from it.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from imagent.errors import ModelUnavailableError, UsageError

DEFAULT_MODELS: dict[str, str] = {
    "inpaint": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "text2image": "",
    "instruct": "timbrooks/instruct-pix2pix",
    "grounding": "IDEA-Research/grounding-dino-tiny",
    "segmentation": "facebook/sam-vit-base",
    "lama": "",
    "clip": "",
    "gdino_original": "",
    "sam_original": "",
}
ROLES = tuple(DEFAULT_MODELS)

ROLE_HELP = {
    "inpaint": "diffusion inpainting (remove, insert, outpaint, local edits); PowerPaint when configured",
    "text2image": "plain text-to-image model for Blended Latent Diffusion (optional)",
    "instruct": "InstructPix2Pix global and style edits",
    "grounding": "GroundingDINO open-vocabulary detection",
    "segmentation": "SAM masks from boxes and points",
    "lama": "LaMa removal (a TorchScript file path)",
    "clip": "CLIP ranking of candidates (optional)",
    "gdino_original": "original GroundingDINO checkpoint, [CONFIG.py::]CHECKPOINT.pth (needs "
                      "groundingdino-py and torchvision)",
    "sam_original": "original SAM checkpoint .pth (needs segment-anything and torchvision)",
}

# Roles whose model is one file, not a folder / hub repo.
FILE_ROLES = {"lama", "gdino_original", "sam_original"}
# Roles that always run in fp32.
FP32_ROLES = {"grounding", "lama"}


def models_from_settings(values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``{role: id}`` from defaults < ``values`` (``model_<role>`` or plain ``<role>`` keys;
    None, empty and absent values keep the role's default).

    Only what the caller passes counts: this module reads no ``IMAGENT_*`` environment. The
    assistant builds ``values`` from its ``Settings`` (``imagent.assistant.config.load_settings``:
    defaults < TOML file < ``IMAGENT_*`` environment < flags)."""
    out = dict(DEFAULT_MODELS)
    for key, value in (values or {}).items():
        role = key[len("model_"):] if key.startswith("model_") else key
        if role in out and value is not None and str(value).strip():  # "" = the role's default
            out[role] = str(value).strip()
    return out


def hub_offline() -> bool:
    v = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return v.strip().lower() in ("1", "true", "yes", "on")


def is_local(model_id: str) -> bool:
    """A local folder or file (absolute, relative, ~, or more than one '/'), as opposed to a hub
    id ``org/name``."""
    if not model_id:
        return False
    if Path(model_id).expanduser().exists() or model_id.startswith((".", "/", "~")) or "\\" in model_id:
        return True
    return model_id.count("/") > 1 or model_id.endswith((".pt", ".pth", ".ckpt", ".jit"))


def unavailable(role: str, model_id: str, why: str) -> ModelUnavailableError:
    """The one error for a missing model: names the model, its role and how to get it."""
    if not model_id:
        msg = f"no {role} model is configured ({ROLE_HELP.get(role, role)})"
    else:
        msg = f"the {role} model {model_id!r} is not available: {why}"
    if model_id and not is_local(model_id) and role not in FILE_ROLES:
        hint = f"get it with: imagent models pull {role}"
    elif role in FILE_ROLES:
        hint = (f"set model_{role} (IMAGENT_MODEL_{role.upper()}) to the path of the checkpoint "
                "file on this machine")
    else:
        hint = (f"set model_{role} (IMAGENT_MODEL_{role.upper()}) to a local folder or a hub id, "
                f"then run: imagent models pull {role}")
    return ModelUnavailableError(msg, hint=hint)


def _hub_cache_dir(model_id: str) -> Path | None:
    """The snapshot folder of ``model_id`` in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None


def locate(role: str, model_id: str) -> Path | None:
    """Where ``model_id`` is on this machine (a folder/file), or None when it is not here."""
    if not model_id:
        return None
    if role in FILE_ROLES and "::" in model_id:  # CONFIG::CHECKPOINT: the checkpoint decides
        model_id = model_id.split("::", 1)[1]
    p = Path(model_id).expanduser()
    if p.exists():
        return p
    if role in FILE_ROLES or is_local(model_id):
        return None
    return _hub_cache_dir(model_id)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for f in path.rglob("*"):
        try:
            if f.is_file():
                total += f.stat().st_size  # follows the HF cache's symlinks to blobs
        except OSError:
            pass
    return total


def _check_safetensors(role: str, model_id: str, path: Path) -> None:
    """Refuse a model folder whose weights are pickles only (``.bin``/``.pt``/``.ckpt``)."""
    if path.is_file():
        return
    files = [f for f in path.rglob("*") if f.is_file() or f.is_symlink()]
    has_st = any(f.name.endswith(".safetensors") for f in files)
    pickles = [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    if pickles and not has_st:
        raise ModelUnavailableError(
            f"the {role} model {model_id!r} has only pickled weights ({pickles[0].name}); imagent "
            "loads safetensors only",
            hint="convert it to safetensors (e.g. save_pretrained(..., safe_serialization=True)) "
                 "or use a repo that ships .safetensors files")


@dataclass
class _Entry:
    obj: Any
    nbytes: int
    loaded_at: float = field(default_factory=time.time)


class ModelManager:
    """Loads each role's model once, on first use, and keeps it within a memory budget.

    ``models``: ``{role: hub id or local path}`` overriding ``DEFAULT_MODELS`` ("" = none).
    ``device``: "auto" | "cuda" | "cuda:N" | "mps" | "cpu". ``dtype``: "auto" | "fp16" | "bf16"
    | "fp32". ``memory_budget_gb``: None/0 = unlimited. ``offload``: diffusers CPU offload.
    ``download``: allow fetching a missing hub model from the hub (never when HF_HUB_OFFLINE).
    """

    def __init__(self, models: Mapping[str, str] | None = None, *, device: str = "auto",
                 dtype: str = "auto", memory_budget_gb: float | None = None,
                 offload: bool = False, download: bool = False,
                 loaders: Mapping[str, Callable[["ModelManager", str, Path], Any]] | None = None
                 ) -> None:
        unknown = sorted(set(models or {}) - set(ROLES))
        if unknown:
            raise UsageError(f"unknown model role(s) {', '.join(map(repr, unknown))}",
                             hint=f"roles: {', '.join(ROLES)}")
        self.models: dict[str, str] = {**DEFAULT_MODELS, **{k: (v or "").strip()
                                                            for k, v in (models or {}).items()}}
        if dtype not in ("auto", "fp16", "float16", "bf16", "bfloat16", "fp32", "float32"):
            raise UsageError(f"unknown dtype {dtype!r}", hint="use auto, fp16, bf16 or fp32")
        self._device_req = device or "auto"
        self._dtype_req = dtype or "auto"
        self.memory_budget = int(memory_budget_gb * 2**30) if memory_budget_gb else 0
        self.offload = bool(offload)
        self.download = bool(download)
        self._loaders = dict(LOADERS)
        self._loaders.update(loaders or {})
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._device: Any = None
        self._dtype: Any = None
        self.loads: dict[str, int] = {r: 0 for r in ROLES}
        self.evictions: list[str] = []
        self.extras: dict[str, Any] = {}  # per-model caches (e.g. SAM image embeddings)

    # ------------------------------------------------------------------ device / dtype
    @property
    def device(self):
        """The torch.device, chosen once (imports torch on first access)."""
        if self._device is None:
            import torch

            req = self._device_req
            if req == "auto":
                if torch.cuda.is_available():
                    req = "cuda"
                elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                    req = "mps"
                else:
                    req = "cpu"
            if req.startswith("cuda") and not torch.cuda.is_available():
                raise ModelUnavailableError(f"device {req!r} was asked for but CUDA is not available",
                                            hint="set device = 'auto' or 'cpu'")
            self._device = torch.device(req)
        return self._device

    @property
    def dtype(self):
        if self._dtype is None:
            import torch

            req = self._dtype_req
            if req == "auto":
                self._dtype = torch.float16 if self.device.type == "cuda" else torch.float32
            else:
                self._dtype = {"fp16": torch.float16, "float16": torch.float16,
                               "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                               "fp32": torch.float32, "float32": torch.float32}[req]
        return self._dtype

    def dtype_for(self, role: str):
        import torch

        return torch.float32 if role in FP32_ROLES else self.dtype

    # ------------------------------------------------------------------ lookup
    def model_id(self, role: str) -> str:
        self._check_role(role)
        return self.models.get(role, "")

    def _check_role(self, role: str) -> None:
        if role not in ROLES:
            raise UsageError(f"unknown model role {role!r}", hint=f"roles: {', '.join(ROLES)}")

    def locate(self, role: str) -> Path | None:
        return locate(role, self.model_id(role))

    def available(self, role: str) -> bool:
        """True when the role is configured and its model is loaded or present on this machine
        (no download, no loading)."""
        if role in self._cache:
            return True
        return bool(self.model_id(role)) and self.locate(role) is not None

    def is_loaded(self, role: str) -> bool:
        return role in self._cache

    def resolve(self, role: str) -> Path:
        """The local path of the role's model; fetches it when allowed, else raises
        ``ModelUnavailableError`` naming model, role and ``imagent models pull ROLE``."""
        mid = self.model_id(role)
        if not mid:
            raise unavailable(role, mid, f"no model is configured for the {role} role")
        path = locate(role, mid)
        if path is not None:
            return path
        if is_local(mid) or role in FILE_ROLES:
            raise unavailable(role, mid, "the path does not exist")
        if not self.download or hub_offline():
            why = ("it is not in the local Hugging Face cache and downloads are off" +
                   (" (HF_HUB_OFFLINE is set)" if hub_offline() else ""))
            raise unavailable(role, mid, why)
        return pull(mid)

    # ------------------------------------------------------------------ loading
    def get(self, role: str) -> Any:
        """The loaded model object of ``role`` (see ``LOADERS`` for what each role gives)."""
        self._check_role(role)
        with self._lock:
            entry = self._cache.get(role)
            if entry is not None:
                self._cache.move_to_end(role)
                return entry.obj
            path = self.resolve(role)
            loader = self._loaders[role]
            try:
                obj = loader(self, role, path)
            except ModelUnavailableError:
                raise
            except (OSError, ValueError, EnvironmentError, KeyError, RuntimeError) as exc:
                raise unavailable(role, self.model_id(role),
                                  f"loading it from {path} failed: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
            nbytes = _param_bytes(obj)
            self._make_room(nbytes)
            self._cache[role] = _Entry(obj, nbytes)
            self.loads[role] += 1
            return obj

    def _make_room(self, nbytes: int) -> None:
        if not self.memory_budget:
            return
        while self._cache and self.used_bytes() + nbytes > self.memory_budget:
            role, _ = self._cache.popitem(last=False)
            self.evictions.append(role)
            self._after_free()

    def used_bytes(self) -> int:
        return sum(e.nbytes for e in self._cache.values())

    def unload(self, role: str | None = None) -> None:
        """Drop one role's model (or all) from the cache and free its memory."""
        with self._lock:
            if role is None:
                self._cache.clear()
                self.extras.clear()
            else:
                self._cache.pop(role, None)
                for k in [k for k in self.extras if k[0] == role]:
                    self.extras.pop(k, None)
            self._after_free()

    def _after_free(self) -> None:
        gc.collect()
        if self._device is not None and self._device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def loaded(self) -> dict[str, dict[str, Any]]:
        return {r: {"model": self.models.get(r, ""), "bytes": e.nbytes}
                for r, e in self._cache.items()}

    def describe(self) -> list[dict[str, Any]]:
        """One row per role: id, where it is, its size on disk, loaded or not (no loading)."""
        rows = []
        for role in ROLES:
            mid = self.models.get(role, "")
            path = locate(role, mid) if mid else None
            rows.append({"role": role, "model": mid, "present": path is not None,
                         "path": str(path) if path else None,
                         "size_bytes": _tree_size(path) if path else None,
                         "loaded": role in self._cache, "help": ROLE_HELP[role]})
        return rows


def pull(model_id: str) -> Path:
    """Download ``model_id`` (safetensors and configs only) into the Hugging Face cache."""
    if hub_offline():
        raise ModelUnavailableError(f"cannot download {model_id!r}: HF_HUB_OFFLINE is set",
                                    hint="unset HF_HUB_OFFLINE, or copy the model folder to this "
                                         "machine and set its path in the settings")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, allow_patterns=[
            "*.json", "*.txt", "*.safetensors", "*.model", "*.py", "*.md"],
            ignore_patterns=["*.fp16.*", "*non_ema*", "*.ckpt", "*.bin"]))
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: one clear error
        raise ModelUnavailableError(f"cannot download {model_id!r}: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:300] if str(exc) else ''}",
                                    hint="check the id and the network (or HF_TOKEN for gated repos)"
                                    ) from exc


def manager_from_settings(settings: Any = None, *, shared: bool = True) -> ModelManager:
    """A manager from a settings object (``Settings``) or mapping: reads ``model_<role>``,
    ``device``, ``dtype``, ``memory_budget_gb``, ``offload`` and ``download`` where present,
    nothing else (no environment; see ``models_from_settings``)."""
    def get(name: str, default: Any = None) -> Any:
        if settings is None:
            return default
        if isinstance(settings, Mapping):
            return settings.get(name, default)
        return getattr(settings, name, default)

    def flag(name: str) -> bool:
        v = get(name)
        if isinstance(v, str):
            return v.strip().lower() in ("1", "true", "yes", "on")
        return bool(v)

    ids = models_from_settings({f"model_{r}": get(f"model_{r}") for r in ROLES})
    budget = get("memory_budget_gb")
    kwargs = dict(device=str(get("device") or "auto"), dtype=str(get("dtype") or "auto"),
                  memory_budget_gb=float(budget) if budget else None,
                  offload=flag("offload"), download=flag("download"))
    return shared_manager(ids, **kwargs) if shared else ModelManager(ids, **kwargs)


_SHARED: dict[tuple, ModelManager] = {}
_SHARED_LOCK = threading.Lock()


def shared_manager(models: Mapping[str, str] | None = None, **kwargs: Any) -> ModelManager:
    """One manager per configuration per process (the cache a second edit reuses)."""
    key = (tuple(sorted((models or {}).items())), tuple(sorted(kwargs.items())))
    with _SHARED_LOCK:
        mgr = _SHARED.get(key)
        if mgr is None:
            mgr = _SHARED[key] = ModelManager(models, **kwargs)
        return mgr


# ---------------------------------------------------------------------- loaders
def _param_bytes(obj: Any) -> int:
    """Bytes of parameters and buffers of every torch module inside ``obj``."""
    import torch

    seen: set[int] = set()
    total = 0

    def visit(m: Any) -> None:
        nonlocal total
        if isinstance(m, torch.nn.Module) or isinstance(m, torch.jit.ScriptModule):
            for t in list(m.parameters()) + list(m.buffers()):
                if id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel() * t.element_size()

    if hasattr(obj, "model") and not hasattr(obj, "components") and not isinstance(obj, (tuple, torch.nn.Module)):
        visit(obj.model)  # e.g. segment-anything's SamPredictor
    elif hasattr(obj, "components") and isinstance(obj.components, dict):
        for comp in obj.components.values():
            visit(comp)
    elif isinstance(obj, tuple):
        for o in obj:
            visit(o)
    else:
        visit(obj)
    return total


def _quiet():
    """Silence the deprecation chatter of from_pretrained (torch_dtype vs dtype across versions)."""
    import warnings

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", FutureWarning)
    return ctx


def _finish_pipeline(mgr: ModelManager, pipe: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    if mgr.offload and mgr.device.type == "cuda":
        pipe.enable_model_cpu_offload(device=mgr.device)
    else:
        pipe.to(mgr.device)
    return pipe


def _load_diffusers(mgr: ModelManager, role: str, path: Path, class_name: str) -> Any:
    """A diffusers pipeline of ``class_name`` from a local folder, safetensors only."""
    _check_safetensors(role, mgr.model_id(role), path)
    import diffusers

    ctx = _quiet()
    try:
        pipe = getattr(diffusers, class_name).from_pretrained(
            str(path), torch_dtype=mgr.dtype_for(role), use_safetensors=True)
    finally:
        ctx.__exit__(None, None, None)
    return _finish_pipeline(mgr, pipe)


def _load_inpaint(mgr: ModelManager, role: str, path: Path) -> Any:
    return _load_diffusers(mgr, role, path, "AutoPipelineForInpainting")


def _load_text2image(mgr: ModelManager, role: str, path: Path) -> Any:
    return _load_diffusers(mgr, role, path, "AutoPipelineForText2Image")


def _load_instruct(mgr: ModelManager, role: str, path: Path) -> Any:
    return _load_diffusers(mgr, role, path, "StableDiffusionInstructPix2PixPipeline")


def _load_grounding(mgr: ModelManager, role: str, path: Path) -> Any:
    _check_safetensors(role, mgr.model_id(role), path)
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(path))
    model = AutoModelForZeroShotObjectDetection.from_pretrained(
        str(path), use_safetensors=True, dtype=mgr.dtype_for(role))
    return model.to(mgr.device).eval(), processor


def _load_segmentation(mgr: ModelManager, role: str, path: Path) -> Any:
    _check_safetensors(role, mgr.model_id(role), path)
    from transformers import SamModel, SamProcessor

    processor = SamProcessor.from_pretrained(str(path))
    model = SamModel.from_pretrained(str(path), use_safetensors=True, dtype=mgr.dtype_for(role))
    return model.to(mgr.device).eval(), processor


def _load_clip(mgr: ModelManager, role: str, path: Path) -> Any:
    _check_safetensors(role, mgr.model_id(role), path)
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(str(path))
    model = CLIPModel.from_pretrained(str(path), use_safetensors=True, dtype=mgr.dtype_for(role))
    return model.to(mgr.device).eval(), processor


def _load_lama(mgr: ModelManager, role: str, path: Path) -> Any:
    # TorchScript: code plus weights in one file that the user chose (see the module doc);
    # torch.jit.load does not unpickle arbitrary Python objects the way torch.load does.
    import torch

    if not path.is_file():
        raise unavailable(role, mgr.model_id(role), f"{path} is not a file (expected the "
                                                    "big-lama TorchScript .pt file)")
    module = torch.jit.load(str(path), map_location=mgr.device)
    module.eval()
    return module


def _load_gdino_original(mgr: ModelManager, role: str, path: Path) -> Any:
    try:
        from imagent.tools.backends import original_gdino

        return original_gdino.load(mgr, role, path)
    except ImportError as exc:
        raise unavailable(role, mgr.model_id(role), f"groundingdino-py cannot be imported ({exc}); "
                          "it needs torchvision") from exc


def _load_sam_original(mgr: ModelManager, role: str, path: Path) -> Any:
    try:
        from imagent.tools.backends import original_sam

        return original_sam.load(mgr, role, path)
    except ImportError as exc:
        raise unavailable(role, mgr.model_id(role), f"segment-anything cannot be imported ({exc}); "
                          "it needs torchvision") from exc


LOADERS: dict[str, Callable[[ModelManager, str, Path], Any]] = {
    "inpaint": _load_inpaint, "text2image": _load_text2image, "instruct": _load_instruct,
    "grounding": _load_grounding, "segmentation": _load_segmentation, "clip": _load_clip,
    "lama": _load_lama, "gdino_original": _load_gdino_original,
    "sam_original": _load_sam_original,
}


# ----------------------------------------------------------------- helpers for the tools
def model_available(state: Any, role: str) -> bool:
    """True when ``state.models`` is a manager whose ``role`` model is present (no loading)."""
    mgr = state.models
    return mgr is not None and bool(mgr.available(role))


def no_manager_error(tool: str, role: str, what: str, *, needs: bool = False
                     ) -> ModelUnavailableError:
    """The error for a request that needs ``role``'s model while model backends are off
    (``state.models`` is None): names the model, how to get it and ``--profile models``.
    ``needs=True`` gives ``NeedsModelError`` (the embedded default cannot do this at all)."""
    from imagent.errors import NeedsModelError

    mid = DEFAULT_MODELS.get(role, "")
    model = f"the {role} model {mid!r}" if mid else f"a {role} model"
    msg = (f"{tool}: {what} needs {model} ({ROLE_HELP.get(role, role)}), and model backends "
           "are off (the offline profile has no model manager)")
    if mid and role not in FILE_ROLES:
        hint = f"get it with `imagent models pull {role}`, then run with `--profile models`"
    else:
        hint = (f"set model_{role} (IMAGENT_MODEL_{role.upper()}) to "
                + ("the checkpoint file" if role in FILE_ROLES else "a local folder or hub id")
                + ", then run with `--profile models`")
    return (NeedsModelError if needs else ModelUnavailableError)(msg, hint=hint)


def step_reporter(state: Any, tool: str):
    """``on_step(step, total)`` for a backend: a ``step`` event per denoising step."""
    return lambda step, total: state.emit(kind="step", tool=tool, step=step, total=total)
