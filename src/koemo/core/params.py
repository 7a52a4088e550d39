"""Reading params.yaml: stages call `load_params()` and take the sections they declare in dvc.yaml.

`load_params` validates the whole file against one schema (pydantic) before a stage does any work, so a wrong
value (`train.folds: two`, `text.model: nosuchmodel`, `labels.strategy: majoritty`) ends the stage at once with
one message naming every bad key, what it holds and what would be valid — not a traceback minutes later. Each
section and each key is optional here (a stage reads only its own; the code keeps its defaults), but a key that
is present must have the right type, range and name, and a key the schema does not know is an error (a typo
would otherwise be silently ignored). The schema only checks: the dict a stage gets is params.yaml as written.

The choices below mirror the constants of the modules that use them (`tests/test_params.py` keeps them equal);
they are spelled out here so that reading params imports nothing but pydantic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from koemo.core.errors import UserError


DEMO_DIR = "data/raw/demo"  # the demo stage's output: data.dir for the demo, never for a real source


class MissingParams(UserError, FileNotFoundError):
    """No params.yaml where a stage runs."""


class InvalidParams(UserError, ValueError):
    """params.yaml holds a value of the wrong type, out of range, or a name nothing defines."""


# ---- the schema: one TypedDict per section (total=False: keys optional, present ones checked) -----------------
_STRICT = ConfigDict(extra="forbid")
Count = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]           # a fraction, 0..1 inclusive
OpenShare = Annotated[float, Field(ge=0, lt=1)]       # a fraction below 1 (dropout, warm-up, a held-out slice)
Pair = Annotated[list[Count], Field(min_length=2, max_length=2)]
Device = Literal["auto", "cpu", "cuda"]
Schedule = Literal["constant", "cosine", "linear"]
SelectBy = Literal["ua", "macro_f1", "accuracy"]
Emotion = Literal["angry", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
FeatureKind = Literal["mel", "mfcc", "melmean"]
BaseModel_ = Literal["text", "audio", "multimodal", "wav2vec2", "fusion", "tfidf", "egemaps"]


@with_config(_STRICT)
class Runtime(TypedDict, total=False):
    threads: Union[Literal["auto"], Count]
    jobs: Count
    processes: Count   # network training stages: torchrun workers on this machine (koemo.train.distributed)


@with_config(_STRICT)
class Data(TypedDict, total=False):
    source: Literal["demo", "aihub", "kemdy20", "kemdy19"]
    dir: str


@with_config(_STRICT)
class Demo(TypedDict, total=False):
    size: Count
    seed: int
    sample_rate: Count
    speakers: Count
    annotator_noise: Share
    text_cue_strength: Share


@with_config(_STRICT)
class Labels(TypedDict, total=False):
    strategy: Literal["weighted", "majority", "situation"]
    classes: Annotated[list[Emotion], Field(min_length=2)]


@with_config(_STRICT)
class Split(TypedDict, total=False):
    test_size: Annotated[float, Field(gt=0, lt=1)]
    folds: Annotated[int, Field(ge=2)]
    seed: int
    group_by: Literal["sentence", "speaker", "sentence+speaker", "session"]


@with_config(_STRICT)
class Augment(TypedDict, total=False):
    methods: list[Literal["noise", "stretch", "pitch"]]
    copies: NonNegInt
    seed: int
    noise_amp: NonNeg
    stretch_rate: Positive
    pitch_steps: float


@with_config(_STRICT)
class Spectral(TypedDict, total=False):
    n_mels: Count
    n_mfcc: Count
    n_fft: Count
    hop_length: Count
    max_frames: Count
    max_seconds: Positive
    top_db: Positive
    dtype: Literal["float16", "float32"]
    augment: bool


@with_config(_STRICT)
class Audio(TypedDict, total=False):
    sample_rate: Count
    max_failure_fraction: Share
    min_rms_dbfs: Union[Annotated[float, Field(le=0)], None]
    workers: NonNegInt
    batch_seconds: Positive
    augment: Augment
    extra_features: list[FeatureKind]
    mel: Spectral
    mfcc: Spectral
    melmean: Spectral


@with_config(_STRICT)
class Egemaps(TypedDict, total=False):
    max_seconds: Positive
    workers: NonNegInt


class _HubEntry(TypedDict, total=False):
    """What every registry entry holds (`koemo.core.hub.HubEntry`): a local path or a hub id at a pinned revision."""

    hub_id: str
    path: str
    revision: Union[str, None]


@with_config(_STRICT)
class AudioEncoder(_HubEntry, total=False):
    pass


@with_config(_STRICT)
class TinyAudioEncoders(TypedDict, total=False):
    seed: int
    hidden_size: Count
    layers: Count
    heads: Count
    conv_dim: list[Count]
    conv_kernel: list[Count]
    conv_stride: list[Count]
    pos_conv_kernel: Count
    pos_conv_groups: Count


@with_config(_STRICT)
class Models(TypedDict, total=False):
    encoders: list[str]
    model: str


@with_config(_STRICT)
class TextModels(Models, total=False):
    source: Literal["transcript", "asr"]   # koemo.asr.text_source.TEXT_SOURCES


@with_config(_STRICT)
class AsrModel(_HubEntry, total=False):
    language: str


@with_config(_STRICT)
class TinyAsr(TypedDict, total=False):
    seed: int
    vocab_size: Count
    d_model: Count
    layers: Count
    heads: Count
    n_mels: Count
    chunk_seconds: Count


@with_config(_STRICT)
class Asr(TypedDict, total=False):
    models: list[str]
    model: str


@with_config(_STRICT)
class Transcribe(TypedDict, total=False):
    batch_size: Count
    max_new_tokens: Count
    num_beams: Count
    device: Device


@with_config(_STRICT)
class SSLFeatures(TypedDict, total=False):
    batch_seconds: Positive
    chunk_seconds: Positive
    block_clips: Count
    device: Device


@with_config(_STRICT)
class TextEncoder(_HubEntry, total=False):
    tokenizer: Literal["auto", "sentencepiece"]
    pooling: Literal["cls", "mean"]
    max_length: Annotated[int, Field(ge=3)]


@with_config(_STRICT)
class TinyEncoders(TypedDict, total=False):
    seed: int
    vocab_size: Count
    hidden_size: Count
    layers: Count
    heads: Count


@with_config(_STRICT)
class TextEmbeddings(TypedDict, total=False):
    batch_size: Count
    max_unknown_share: Share
    device: Device


@with_config(_STRICT)
class Train(TypedDict, total=False):
    seed: int
    folds: Count
    valid_fraction: OpenShare
    patience: Count
    class_weighted: bool
    grad_clip: Union[Positive, None]
    precision: Literal["auto", "fp32", "bf16", "fp16"]
    device: Literal["auto", "cpu", "cuda"]
    warn_min_recall: Share


class _Network(TypedDict, total=False):
    """What every network stage's section holds (`TrainConfig` reads these)."""

    epochs: Count
    batch_size: Count
    lr: Positive
    weight_decay: NonNeg
    schedule: Schedule
    warmup_ratio: OpenShare
    dropout: OpenShare
    patience: Count
    gradient_checkpointing: bool


@with_config(_STRICT)
class TrainText(_Network, total=False):
    pass


@with_config(_STRICT)
class SpecAugment(TypedDict, total=False):
    freq_masks: NonNegInt
    freq_width: NonNegInt
    time_masks: NonNegInt
    time_width: NonNegInt


@with_config(_STRICT)
class TrainAudio(_Network, total=False):
    features: Literal["mel", "mfcc"]
    width: Count
    blocks: Annotated[list[Count], Field(min_length=1)]
    stem_stride: Count
    pool: Pair
    use_augmented: bool
    spec_augment: Union[SpecAugment, None]


@with_config(_STRICT)
class TrainMultimodal(_Network, total=False):
    audio_features: Literal["melmean"]
    channels: Count
    kernel_size: Count
    hidden: Count


@with_config(_STRICT)
class TrainWav2vec2(_Network, total=False):
    mode: Literal["frozen", "finetune"]
    hidden: Count
    encoder_lr_scale: NonNeg
    max_seconds: Positive


@with_config(_STRICT)
class TrainFusion(_Network, total=False):
    hidden: Count
    modality_dropout: OpenShare


@with_config(_STRICT)
class TrainTfidf(TypedDict, total=False):
    char_ngrams: Pair
    word_ngrams: Pair
    min_df: Count
    sublinear_tf: bool
    max_features: Union[Count, None]
    C_grid: Annotated[list[Positive], Field(min_length=1)]
    class_weighted: bool
    select_by: SelectBy
    inner_folds: Annotated[int, Field(ge=2)]
    seed: int
    max_iter: Count


@with_config(_STRICT)
class TrainEgemaps(_Network, total=False):
    hidden: NonNegInt


@with_config(_STRICT)
class Stack(TypedDict, total=False):
    base_models: Annotated[list[BaseModel_], Field(min_length=1)]
    learner: Literal["logistic", "mean"]
    features: Literal["log_proba", "proba"]
    C_grid: Annotated[list[Positive], Field(min_length=1)]
    class_weighted: bool
    select_by: SelectBy
    seed: int


@with_config(_STRICT)
class Evaluation(TypedDict, total=False):
    bootstrap: Annotated[int, Field(ge=100)]
    seed: int
    confidence: Annotated[float, Field(gt=0.5, lt=1)]
    age_bands: Annotated[list[NonNegInt], Field(min_length=1)]
    min_group_rows: Count


@with_config(_STRICT)
class Params(TypedDict, total=False):
    runtime: Runtime
    data: Data
    demo: Demo
    labels: Labels
    split: Split
    audio: Audio
    egemaps: Egemaps
    audio_encoders: dict[str, AudioEncoder]
    tiny_audio_encoders: TinyAudioEncoders
    ssl: Models
    ssl_features: SSLFeatures
    encoders: dict[str, TextEncoder]
    tiny_encoders: TinyEncoders
    text: TextModels
    asr_models: dict[str, AsrModel]
    tiny_asr: TinyAsr
    asr: Asr
    transcribe: Transcribe
    text_embeddings: TextEmbeddings
    train: Train
    train_text: TrainText
    train_audio: TrainAudio
    train_multimodal: TrainMultimodal
    train_wav2vec2: TrainWav2vec2
    train_fusion: TrainFusion
    train_tfidf: TrainTfidf
    train_egemaps: TrainEgemaps
    stack: Stack
    evaluation: Evaluation


_SCHEMA = TypeAdapter(Params)


def _key_path(params: Any, loc: tuple) -> tuple:
    """`loc` without pydantic's union-branch tags (`literal['auto']`, `constrained-int`): only real keys/indices."""
    path, value = [], params
    for part in loc:
        if isinstance(value, Mapping) and part in value or isinstance(value, list) and isinstance(part, int) \
                and 0 <= part < len(value):
            path.append(part)
            value = value[part]
        elif isinstance(value, Mapping) and not str(part).startswith(("function-", "union[", "literal[", "constrained-",
                                                                         "nullable[", "typed-dict", "list[", "dict[")):
            path.append(part)  # an unknown key (extra_forbidden) or an absent one
            value = None
    return tuple(path)


def _where(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f"{'.' if i else ''}{p}" for i, p in enumerate(path))


def _value_at(params: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            params = params[part]
        except (KeyError, IndexError, TypeError):
            return None
    return params


def _cross_checks(params: Mapping[str, Any]) -> list[str]:
    """Rules between sections: names that must exist in a registry, ranges that depend on another key."""
    problems = []

    def section(name: str) -> Mapping[str, Any]:
        value = params.get(name)
        return value if isinstance(value, Mapping) else {}

    for models, registry in (("text", "encoders"), ("ssl", "audio_encoders")):
        if registry not in params:
            continue
        known = sorted(section(registry))
        chosen = section(models)
        if "model" in chosen and chosen["model"] not in known:
            problems.append(f"{models}.model = {chosen['model']!r}: must be one of {registry} {known} "
                            f"(or add an entry for it under {registry}:)")
        for name in chosen.get("encoders") or []:
            if name not in known:
                problems.append(f"{models}.encoders: {name!r} is not in {registry} {known}")
    if "asr_models" in params:
        known = sorted(section("asr_models"))
        chosen = section("asr")
        if "model" in chosen and chosen["model"] not in known:
            problems.append(f"asr.model = {chosen['model']!r}: must be one of asr_models {known} "
                            "(or add an entry for it under asr_models:)")
        for name in chosen.get("models") or []:
            if name not in known:
                problems.append(f"asr.models: {name!r} is not in asr_models {known}")
        if "model" in chosen and isinstance(chosen.get("models"), list) and chosen["model"] not in chosen["models"]:
            problems.append(f"asr.model = {chosen['model']!r} is not in asr.models {chosen['models']}: its transcribe "
                            "stage would not exist (add it to asr.models)")
    for registry in ("encoders", "audio_encoders", "asr_models"):
        for name, spec in section(registry).items():
            if isinstance(spec, Mapping) and bool(spec.get("hub_id")) == bool(spec.get("path")):
                problems.append(f"{registry}.{name}: give exactly one of hub_id and path (found {sorted(spec)})")
    data = section("data")
    if "aihub_dir" in data:
        problems.append("data.aihub_dir was renamed data.dir (the one directory the corpus stage reads): "
                        f"data.dir: {data['aihub_dir']}")
    if data.get("source", "demo") != "demo" and str(data.get("dir", "")).rstrip("/") in (DEMO_DIR, f"./{DEMO_DIR}"):
        problems.append(f"data.source = {data['source']!r} with data.dir = {data['dir']!r}, the demo stage's output: "
                        f"point data.dir at your {data['source']} copy (`koemo profile aihub-gpu --dir PATH`)")
    train, split = section("train"), section("split")
    folds, limit = train.get("folds"), split.get("folds")
    if isinstance(folds, int) and isinstance(limit, int) and folds > limit:
        problems.append(f"train.folds = {folds}: must be 1..split.folds ({limit}); the training folds merge split folds")
    bands = section("evaluation").get("age_bands")
    if isinstance(bands, list) and bands != sorted(set(bands)):
        problems.append(f"evaluation.age_bands = {bands}: band edges in increasing order, each once (e.g. [20, 30, 40, 50])")
    classes = section("labels").get("classes")
    if isinstance(classes, list) and len(set(classes)) != len(classes):
        problems.append(f"labels.classes = {classes}: each class once")
    for name in ("train_tfidf", "stack"):
        grid = section(name).get("C_grid")
        if name == "train_tfidf" and isinstance(grid, list) and len(set(grid)) > 1 and section(name).get("inner_folds") == 1:
            problems.append("train_tfidf.inner_folds = 1: at least 2 are needed to choose C from several C_grid values")
    for name in ("char_ngrams", "word_ngrams"):
        pair = section("train_tfidf").get(name)
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair) and pair[0] > pair[1]:
            problems.append(f"train_tfidf.{name} = {pair}: expected [min, max] with min <= max")
    return problems


def validate_params(params: Any, source: str | Path = "params.yaml") -> None:
    """Raise `InvalidParams` naming every bad key of `params` (types, ranges, allowed names, cross-references),
    each with its value and the valid choices; return quietly when all is well."""
    if not isinstance(params, Mapping):
        raise InvalidParams(f"{source}: expected a mapping of sections (runtime:, data:, …), found "
                            f"{type(params).__name__}. Restore it from git (`git checkout -- {source}`).")
    problems = []
    try:
        _SCHEMA.validate_python(params)
    except ValidationError as err:
        merged: dict[tuple, list[str]] = {}  # a union reports each branch: one line per key, its branches joined
        for error in err.errors(include_url=False):
            path = _key_path(params, error["loc"])
            if error["type"] == "extra_forbidden":
                known = _known_keys(path[:-1])
                merged.setdefault(path, []).append(f"unknown key{f' (known: {known})' if known else ''}")
            else:
                merged.setdefault(path, []).append(error["msg"])
        for path, messages in merged.items():
            first, *rest = dict.fromkeys(messages)
            text = " or ".join([first, *(m.removeprefix("Input should be ") for m in rest)])
            problems.append(f"{_where(path)}: {text}" if text.startswith("unknown key")
                            else f"{_where(path)} = {_value_at(params, path)!r}: {text}")
    problems += _cross_checks(params)
    if problems:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} invalid values"
        listed = "" if len(problems) == 1 else "\n" + "\n".join(f"  {p}" for p in problems[:30])
        raise InvalidParams(f"{source}: {head}{listed}\nFix the value(s) in params.yaml (or the `-S key=value` passed) "
                            "and rerun; `koemo check [-S key=value]` validates without running anything.")


def _known_keys(loc: tuple) -> list[str]:
    """The keys the schema allows in the mapping at `loc` (for an unknown key's message)."""
    annotation: Any = Params
    for part in loc:
        hints = getattr(annotation, "__annotations__", None)
        if hints is None or part not in _type_hints(annotation):
            if getattr(annotation, "__origin__", None) is dict:  # a registry: any name, then its entry type
                annotation = annotation.__args__[1]
                continue
            return []
        annotation = _type_hints(annotation)[part]
        while getattr(annotation, "__origin__", None) is Union:  # Optional[Section]
            annotation = next(a for a in annotation.__args__ if a is not type(None))
    return sorted(_type_hints(annotation)) if hasattr(annotation, "__annotations__") else []


def _type_hints(cls: Any) -> dict[str, Any]:
    from typing import get_type_hints

    return get_type_hints(cls)


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """params.yaml as written, after `validate_params` (an `InvalidParams` before any work when it is wrong)."""
    path = Path(path)
    if not path.exists():
        raise MissingParams(f"{path} not found: run stages from the repository root (dvc repro does).")
    with open(path, encoding="utf-8") as handle:
        try:
            params = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise InvalidParams(f"{path} is not valid YAML: {err}".replace("\n", " ")) from None
    validate_params(params, path)
    return params
