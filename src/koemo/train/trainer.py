"""The one training loop every model uses: accelerate for the device, early stopping on validation macro-F1.

`accelerate` picks CUDA → MPS → CPU on its own. Under several processes (`runtime.processes`, see
`koemo.train.distributed`) it wraps the model in DDP; each process trains on its slice of every global batch of
`batch_size` rows, with the loss normalised over the whole batch, so the gradient is the 1-process one. On a GPU the forward pass runs under bf16 (fp16 where bf16 is
unsupported, with loss scaling); on CPU everything stays fp32 with deterministic algorithms, so the same
seed gives the same weights, probabilities and metrics byte for byte.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from koemo.core.device import describe as describe_device  # noqa: F401  (re-exported for the stages and benchmark)
from koemo.core.metrics import classification_report
from koemo.train.data import Examples, make_loader
from koemo.train.distributed import broadcast, gather, gather_rows, launched

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    schedule: str = "constant"      # learning-rate schedule after the warm-up
    warmup_ratio: float = 0.0       # share of all optimizer steps spent warming up linearly
    grad_clip: float | None = 1.0   # max gradient norm (None: no clipping)
    class_weighted: bool = True     # cross-entropy weighted by inverse training-class frequency
    patience: int | None = 3        # epochs without a better validation macro-F1 before stopping (None: never)
    precision: str = "auto"         # auto: bf16/fp16 on CUDA, fp32 elsewhere
    device: str = "auto"            # auto: what accelerate finds (CUDA → MPS → CPU); cpu forces CPU; cuda demands a GPU
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision={self.precision!r}: expected one of {PRECISIONS}")
        if self.device not in DEVICES:
            raise ValueError(f"train.device={self.device!r}: expected one of {DEVICES}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}: expected one of {SCHEDULES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")

    @classmethod
    def from_params(cls, shared: Mapping[str, Any], model: Mapping[str, Any], **overrides) -> "TrainConfig":
        """`train` (shared) then `train_<model>` params; only the keys this class knows are taken."""
        merged = {**shared, **model, **overrides}
        kwargs = {k: merged[k] for k in cls.__dataclass_fields__ if k in merged}
        for key in ("lr", "weight_decay", "warmup_ratio", "grad_clip"):  # YAML reads `2e-5` (no dot) as a string
            if kwargs.get(key) is not None:
                kwargs[key] = float(kwargs[key])
        for key in ("epochs", "batch_size", "seed", "patience"):
            if kwargs.get(key) is not None:
                kwargs[key] = int(kwargs[key])
        return cls(**kwargs)


def seed_everything(seed: int, device: torch.device | None = None) -> None:
    """Seed python, numpy and torch; on CPU also demand deterministic kernels (CUDA would need cuBLAS settings
    and slower kernels for that, and GPU runs are not promised to repeat bit for bit)."""
    from accelerate.utils import set_seed

    set_seed(seed)
    torch.use_deterministic_algorithms(device is None or device.type == "cpu")


def mixed_precision(precision: str, device_type: str) -> str:
    """accelerate's `mixed_precision` value for a `train.precision` param on a device type."""
    if precision == "fp32" or device_type != "cuda":
        return "no"  # CPU/MPS stay fp32: reproducible, and CPU autocast rarely pays off for these models
    if precision == "auto":
        from koemo.core.device import bf16_native

        return "bf16" if bf16_native() else "fp16"  # fp16 gets accelerate's GradScaler
    return precision


def make_accelerator(precision: str = "auto", device: str = "auto"):
    """An Accelerator for these settings; its process-wide state is reset first when the settings change."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from koemo.core.device import require_cuda, warn_unusable_gpu

    if device == "cuda":
        require_cuda("train.device")
    elif device == "auto" and not torch.cuda.is_available():
        warn_unusable_gpu()
    # accelerate only joins a torchrun process group on CPU when told cpu=True (with cpu=False and no GPU it falls back
    # to one process per worker: N independent runs racing on the same files)
    cpu = device == "cpu" or (launched() and not torch.cuda.is_available())
    probe_type = "cpu" if cpu else ("cuda" if torch.cuda.is_available() else "other")
    wanted = mixed_precision(precision, probe_type)
    state = AcceleratorState._shared_state
    if state and (state.get("_mixed_precision") != wanted or state.get("_cpu", cpu) != cpu):
        # A different device also needs a new PartialState, except under `accelerate launch` (its process group).
        AcceleratorState._reset_state(reset_partial_state=state.get("_cpu", cpu) != cpu and state.get("num_processes", 1) == 1)
    if not launched():
        return Accelerator(mixed_precision=wanted, cpu=cpu)
    from accelerate.utils import DataLoaderConfiguration

    # split_batches: a global batch is `batch_size` rows however many processes share it, so the schedule steps once
    # per optimizer step (accelerate's default would step it once per process)
    return Accelerator(mixed_precision=wanted, cpu=cpu, dataloader_config=DataLoaderConfiguration(split_batches=True))


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (k · count_c) per class ("balanced"); a class absent from training gets weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


# The three schedules, float for float as transformers' `get_{constant,linear,cosine}_schedule_with_warmup` (whose
# lambdas these copy; tests/test_schedules.py compares every step): importing transformers.optimization costs ~2 s
# (trainer_pt_utils pulls in torch._dynamo) in every training stage, most of which train no transformer.
def _constant_with_warmup(step: int, *, warmup: int) -> float:
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def _linear_with_warmup(step: int, *, warmup: int, total: int) -> float:
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def _cosine_with_warmup(step: int, *, warmup: int, total: int, cycles: float = 0.5) -> float:
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))


def make_scheduler(optimizer, config: TrainConfig, total_steps: int):
    """A LambdaLR: linear warm-up over `warmup_ratio` of the steps, then `config.schedule`."""
    from torch.optim.lr_scheduler import LambdaLR

    warmup = int(round(config.warmup_ratio * total_steps))
    if config.schedule == "cosine":
        return LambdaLR(optimizer, partial(_cosine_with_warmup, warmup=warmup, total=total_steps))
    if config.schedule == "linear":
        return LambdaLR(optimizer, partial(_linear_with_warmup, warmup=warmup, total=total_steps))
    return LambdaLR(optimizer, partial(_constant_with_warmup, warmup=warmup))


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int                      # 1-based epoch whose weights were kept
    best_valid_macro_f1: float | None    # None when trained without a validation slice
    history: list[dict[str, float]] = field(default_factory=list)
    train_samples: int = 0               # examples processed (summed over epochs)
    train_seconds: float = 0.0


class Trainer:
    """Fit and predict for any `nn.Module` whose forward takes a batch's inputs as keywords and returns logits."""

    def __init__(self, config: TrainConfig, n_classes: int):
        self.config = config
        self.n_classes = n_classes
        self.accelerator = make_accelerator(config.precision, config.device)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def precision(self) -> str:
        return {"no": "fp32"}.get(self.accelerator.mixed_precision, self.accelerator.mixed_precision)

    def fit(self, model: nn.Module, train: Examples, valid: Examples | None = None, tag: str = "",
            checkpoint: Path | None = None) -> FitResult:
        """Train `model` in place; with `valid`, keep the weights of the best validation macro-F1 epoch.

        With `checkpoint`, every finished epoch is saved there (weights, optimizer, schedule, the best weights so
        far, history, RNG states) and a fit that finds one continues after its epoch: a killed run loses at most
        the epoch in progress and, resumed, ends with the same weights as an uninterrupted one.
        """
        config, acc = self.config, self.accelerator
        shard = (acc.num_processes, acc.process_index) if acc.num_processes > 1 else None
        loader = make_loader(train, config.batch_size, shuffle=True, seed=config.seed, shard=shard)
        weight = class_weights(train.labels, self.n_classes) if config.class_weighted else None
        criterion = nn.CrossEntropyLoss(weight=None if weight is None else weight.to(acc.device))
        optimizer = torch.optim.AdamW(optimizer_params(model, config.lr), lr=config.lr, weight_decay=config.weight_decay)
        scheduler = make_scheduler(optimizer, config, total_steps=config.epochs * len(loader))
        if shard is None:
            model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
        else:  # the loader is already this process' share (accelerate's sharding would pad with repeated rows)
            model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)

        result = FitResult(epochs_run=0, best_epoch=0, best_valid_macro_f1=None)
        best_state, stale = None, 0
        # rank 0 reads the checkpoint and hands it to the others (on other machines they have no copy)
        state = broadcast(read_checkpoint(checkpoint) if checkpoint is not None and self.is_main_process
                          and Path(checkpoint).is_file() else None) if checkpoint is not None else None
        if state is not None:
            result, best_state, stale = restore_checkpoint(state, acc.unwrap_model(model), optimizer, scheduler,
                                                           acc.process_index)
            if self.is_main_process:
                print(f"{tag}: resumed after epoch {result.epochs_run} from {checkpoint}", flush=True)
        try:
            for epoch in range(result.epochs_run + 1, config.epochs + 1):
                if result.epochs_run and _stopped(result, config, stale, valid):
                    break
                # accelerate's loader numbers its passes itself (0, 1, …) and hands that number to the sampler when a
                # pass starts; setting it here keeps the batch order a function of the epoch, also after a resume
                (loader.set_epoch if hasattr(loader, "set_epoch") else loader.batch_sampler.set_epoch)(epoch - 1)
                start = time.perf_counter()
                loss_sum, seen = self._train_epoch(model, loader, optimizer, scheduler, criterion, f"{tag} epoch {epoch}")
                result.train_seconds += time.perf_counter() - start
                result.train_samples += seen
                row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "lr": scheduler.get_last_lr()[0]}
                if valid is not None and len(valid):
                    probs = self.predict(model, valid)
                    report = classification_report(valid.labels, probs.argmax(axis=1), list(map(str, range(self.n_classes))))
                    # valid_loss: unweighted NLL, comparable whatever the class weighting
                    row.update(valid_loss=_nll(probs, valid.labels), valid_macro_f1=report["macro_f1"],
                               valid_ua=report["ua"], valid_accuracy=report["accuracy"])
                result.history.append(row)
                result.epochs_run = epoch
                if valid is None or not len(valid):
                    result.best_epoch = epoch
                elif result.best_valid_macro_f1 is None or row["valid_macro_f1"] > result.best_valid_macro_f1:
                    result.best_valid_macro_f1, result.best_epoch, stale = row["valid_macro_f1"], epoch, 0
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in acc.unwrap_model(model).state_dict().items()})
                else:
                    stale += 1
                if checkpoint is not None:
                    rng = gather(_rng_states())  # every process' generators (their dropout draws differ)
                    if self.is_main_process:
                        save_checkpoint(checkpoint, acc.unwrap_model(model), optimizer, scheduler, result, best_state,
                                        stale, rng)
            if best_state is not None:
                acc.unwrap_model(model).load_state_dict(best_state)
        finally:
            acc.free_memory()  # drop accelerate's references; the caller keeps the (unwrapped) model
        return result

    def _train_epoch(self, model, loader, optimizer, scheduler, criterion, desc: str) -> tuple[float, int]:
        from tqdm import tqdm

        acc, config = self.accelerator, self.config
        model.train()
        loss_sum, seen = torch.zeros((), device=acc.device), 0  # summed on the device: no GPU sync per step
        for batch in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not (config.progress and self.is_main_process)):
            labels = batch.pop("labels")
            if acc.num_processes > 1:
                batch, labels = send_to(batch, acc.device), labels.to(acc.device)
                loss, rows = self._shard_loss(model, batch, labels, criterion)
                optimizer.zero_grad(set_to_none=True)
                acc.backward(loss * acc.num_processes)  # DDP averages over processes: the global batch's gradient
                if config.grad_clip:
                    acc.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * rows
                seen += len(labels)  # this process' rows; summed over the processes below
                continue
            logits = model(**batch)
            loss = criterion(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if config.grad_clip:
                acc.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(labels)
            seen += len(labels)
        if acc.num_processes > 1:
            loss_sum = acc.reduce(loss_sum, reduction="sum")  # each process summed its share of each batch's mean
            seen = int(acc.reduce(torch.tensor(float(seen), device=acc.device), reduction="sum").item())
        return float(loss_sum), seen

    def _shard_loss(self, model, batch, labels, criterion) -> tuple[torch.Tensor, int]:
        """This process' part of the global batch's loss: the sum of its rows' (weighted) losses over the weight of
        the whole batch (one small all-reduce), so the parts add up to the 1-process mean whatever the shard sizes."""
        import torch.nn.functional as F

        weight = criterion.weight
        rows = torch.full((), float(len(labels)), device=labels.device)  # built on the labels' device: a CPU
        # tensor stacked with a CUDA one is an error, and this runs on every step
        local = torch.stack([weight[labels].sum() if weight is not None else rows, rows])
        total = self.accelerator.reduce(local, reduction="sum")
        logits = model(**batch)
        losses = F.cross_entropy(logits.float(), labels, weight=weight, reduction="none")
        return losses.sum() / total[0], total[1]  # the global batch's rows, left on the device (no sync per step)

    def predict(self, model: nn.Module, examples: Examples, batch_size: int | None = None) -> np.ndarray:
        """float32 class probabilities [rows, classes] in `examples` order."""
        acc = self.accelerator
        probs = np.zeros((len(examples), self.n_classes), dtype=np.float32)
        if not len(examples):
            return probs
        loader = make_loader(examples, batch_size or self.config.batch_size, shuffle=False)
        if acc.num_processes > 1:
            return self._predict_shared(model, examples, _sampler_of(loader).batches())
        order = np.concatenate(_sampler_of(loader).batches())
        prepared = acc.prepare_data_loader(loader)
        if not isinstance(model, nn.parallel.DistributedDataParallel) and next(model.parameters()).device != acc.device:
            model = model.to(acc.device)
        was_training = model.training
        model.eval()
        chunks = []
        with torch.inference_mode(), acc.autocast():
            for batch in prepared:
                batch.pop("labels")
                logits = model(**batch).float()
                chunks.append(acc.gather_for_metrics(torch.softmax(logits, dim=-1)).cpu().numpy())
        model.train(was_training)
        probs[order] = np.concatenate(chunks)
        return probs

    def _predict_shared(self, model: nn.Module, examples: Examples, batches: list[np.ndarray]) -> np.ndarray:
        """Each process predicts every N-th batch with the plain module (no DDP collectives in its forward), then all
        gather every row's probabilities: each row predicted once, none padded in, every process the same array."""
        from torch.utils.data import DataLoader

        acc = self.accelerator
        module = acc.unwrap_model(model)
        if next(module.parameters()).device != acc.device:
            module = module.to(acc.device)
        mine = batches[acc.process_index::acc.num_processes]
        rows = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
        chunks = [np.zeros((0, self.n_classes), dtype=np.float32)]
        was_training = module.training
        module.eval()
        with torch.inference_mode(), acc.autocast():
            for batch in DataLoader(examples.dataset, batch_sampler=[b.tolist() for b in mine], collate_fn=examples.collate):
                batch.pop("labels")
                logits = module(**send_to(batch, acc.device)).float()
                chunks.append(torch.softmax(logits, dim=-1).cpu().numpy())
        module.train(was_training)
        return gather_rows(len(examples), rows, np.concatenate(chunks))


def _stopped(result: FitResult, config: TrainConfig, stale: int, valid: Examples | None) -> bool:
    """Early stopping: `patience` epochs in a row without a better validation macro-F1."""
    return valid is not None and len(valid) > 0 and config.patience is not None and stale >= config.patience


def _rng_states() -> dict:
    """Every generator training draws from (dropout, SpecAugment, modality dropout: torch; the rest for safety),
    as tensors and plain lists so `torch.load(weights_only=True)` reads them back."""
    import random

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(state), gauss_next]}


def _set_rng_states(states: dict) -> None:
    import random

    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        # one state per GPU visible when saved; a resume may see fewer (or more): set those that exist
        for index, state in enumerate(states["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = states["python"]
    random.setstate((version, tuple(state), gauss_next))


def send_to(batch, device):
    from accelerate.utils import send_to_device

    return send_to_device(batch, device)


def save_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, result: FitResult, best_state, stale: int,
                    rng: list[dict] | None = None) -> None:
    """The fit after its last finished epoch (written atomically: a kill mid-write leaves the previous one). `rng`:
    every process' generator states in rank order (default: this process')."""
    from koemo.core.io import atomic_path

    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "best_state": best_state, "stale": stale, "rng": rng if rng is not None else [_rng_states()],
             "result": {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                        "best_valid_macro_f1": result.best_valid_macro_f1, "history": result.history,
                        "train_samples": result.train_samples, "train_seconds": result.train_seconds}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path) -> dict:
    """What `save_checkpoint` wrote (tensors and plain types only: weights_only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def restore_checkpoint(state: dict, model: nn.Module, optimizer, scheduler, index: int = 0) -> tuple[FitResult, dict | None, int]:
    """Put a read checkpoint back; process `index` takes its own generator states (a run resumed under another
    process count wraps round them: a valid run, not a bit-for-bit continuation)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_states(state["rng"][index % len(state["rng"])])
    return FitResult(**state["result"]), state["best_state"], int(state["stale"])


def load_checkpoint(path: Path, model: nn.Module, optimizer, scheduler) -> tuple[FitResult, dict | None, int]:
    return restore_checkpoint(read_checkpoint(path), model, optimizer, scheduler)


def optimizer_params(model: nn.Module, lr: float):
    """What AdamW optimises: `model.param_groups(lr)` when the model defines it (separate learning rates, e.g. a
    fine-tuned encoder below its head), keeping only trainable parameters; else `model.parameters()`, as always."""
    if not hasattr(model, "param_groups"):
        return model.parameters()
    groups = []
    for group in model.param_groups(lr):
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            groups.append({**group, "params": params})
    if not groups:
        raise ValueError(f"{type(model).__name__}.param_groups: no trainable parameters")
    return groups


def _sampler_of(loader):
    """Our EpochBatchSampler, also when accelerate wrapped it (BatchSamplerShard under DDP)."""
    sampler = loader.batch_sampler
    while not hasattr(sampler, "batches") and hasattr(sampler, "batch_sampler"):
        sampler = sampler.batch_sampler
    return sampler


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def samples_per_second(result: FitResult) -> float | None:
    return result.train_samples / result.train_seconds if result.train_seconds > 0 else None
