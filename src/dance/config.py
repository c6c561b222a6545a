"""Typed settings, one section per stage, loaded from YAML plus ``section.key=value`` overrides.

Defaults are the reference values of the authors' pipeline (see the README, "Reference values"); the demo
config (``dance/configs/demo.yaml``) overrides a few for its short synthetic videos.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from dance.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSettings(Section):
    path: str = Field("", description="dataset: annotations.csv, a class-folder root, a split-list folder, or the "
                      "root of a dataset format (kth, ucf101, haa500, penn_action; README 'Datasets')")
    format: str = Field("auto", description="how data.path is read: auto (by its layout), an index format (csv, "
                        "folders, ...) or a dataset format (README 'Datasets'); names checked when a run starts")
    splits: dict[str, str] = Field(default_factory=dict, description="split → list file (split_csv, mmaction2)")
    classes: str = Field("", description="class list file (one name per line; needed by mmaction2 lists; for a "
                         "dataset format: keep only these classes, e.g. HAA-100)")
    split_id: int = Field(1, ge=1, description="official split of a dataset format (ucf101: 1, 2 or 3; others: 1)")
    merge_val: bool = Field(False, description="move the val split into train (train on train+val); val_fraction "
                            "then draws a new val from it")
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0, description="train fraction moved to val if no val split")
    seed: int = 0


class KeyclipSettings(Section):
    signal: Literal["auto", "pixels", "poses"] = Field(
        "auto", description="keyframe signal: pixel differences, or pose motion for pose-only data (auto: by file)")
    n_clips: int = Field(10, ge=1, description="S: key clips per video")
    clip_len: int = Field(16, ge=2, description="L: frames per key clip")
    blur_sigma: float = Field(1.5, ge=0.0, description="Gaussian blur (pixels) before frame differences")
    baseline_degree: int = Field(3, ge=0, description="degree of the iterative polynomial baseline removed")
    min_distance: int = Field(2, ge=1, description="minimum frames between two keyframes")
    threshold: float = Field(0.1, ge=0.0, le=1.0, description="peak threshold, relative to the signal range")
    size: int = Field(128, ge=16, description="frames are resized to this square size for the differences")


class PoseSettings(Section):
    source: str = Field("annotations", description="pose source by name (see dance.motion.poses)")
    path: str = Field("", description="pose folder for source=annotations (default: the dataset if it is one)")


class MotionSettings(Section):
    min_frame_conf: float = Field(0.1, description="frames whose mean joint confidence is below are missing")
    min_clip_conf: float = Field(0.5, description="clips whose mean confidence is below are rejected")
    min_adjacent_cosine: float = Field(0.92, description="clips with a lower adjacent-frame cosine are rejected")
    partition: int | Literal["auto"] = Field(
        "auto", description="FINCH partition (0 = finest; the authors used 1, the second), or auto: the coarsest "
                            "one whose concept labels predict the class about as well as the best, by "
                            "cross-validation on the training videos")

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be >= 0 or 'auto'")
        return value
    distance: Literal["cosine", "euclidean"] = "cosine"
    seed: int = 0


class LanguageSettings(Section):
    concepts: str = Field("", description="object/scene concept set: a shipped name (kth, penn_action, ucf101), a "
                          "concept-set JSON file, or 'llm' to ask a language model ('': none)")
    llm_base_url: str = Field("", description="OpenAI-compatible endpoint for concepts=llm (else DANCE_LLM_BASE_URL)")
    llm_model: str = Field("", description="model name for concepts=llm (else DANCE_LLM_MODEL, then gpt-4o)")
    max_length: int = Field(30, ge=1, description="drop concepts longer than this (characters)")
    class_similarity: float = Field(0.85, description="drop concepts at least this similar to a class name")
    duplicate_similarity: float = Field(0.9, description="near duplicates at least this similar: keep one")


class SpatialSettings(Section):
    source: str = Field("annotations", description="object/scene labels: 'annotations', a dual encoder (xclip, "
                        "clip, precomputed: soft labels by Eq. 3 for the language stage's concepts), or 'none'")
    path: str = Field("", description="context_labels.csv for source=annotations (default: beside the index)")
    model: str = Field("", description="dual-encoder weights: a hub name or local folder (precomputed: the folder "
                       "with videos.npz and texts.npz); '' = the encoder's default")
    prompt: str = Field("{}", description="text template a concept is put in before encoding, e.g. 'a photo of {}'")
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"


class FeatureSettings(Section):
    backbone: str = Field("random-3dconv", description="backbone by name (see `dance backbones`)")
    model: str = Field("", description="the backbone's weights: hub name or local folder (precomputed: an .npz "
                                       "file or a folder of .npy); '' means the backbone's default")
    n_frames: int = Field(32, ge=1, description="frames per video (a model that fixes its input, e.g. videomae, "
                                                "uses its own)")
    size: int = Field(112, ge=16, description="frame size in pixels (a model that fixes it uses its own)")
    seed: int = 0
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"
    epochs: int = Field(60, ge=1, description="training epochs of a trainable backbone (pose-encoder)")
    length: int = Field(64, ge=4, description="frames a pose sequence is resampled to (pose-encoder)")
    keep: Literal["last", "best"] = Field(
        "last", description="pose-encoder: the weights kept after training: the last epoch's (the one-cycle "
        "schedule ends near zero learning rate) or the best validation accuracy's (noisy on small validation "
        "splits: docs/pose_accuracy.md, 'Settings chosen inside the run')")
    bones: bool = Field(True, description="pose-encoder: also feed bone vectors along the skeleton's edges (none "
                                          "when the layout has no edges)")
    threads: int = Field(0, ge=0, description="torch threads while training a backbone (0: the cores other "
                                              "processes leave free when the stage starts; dance.threads)")
    yaw: float = Field(60.0, ge=0.0, le=89.0, description="pose-encoder: training augmentations turn the camera "
                       "by up to this many degrees around the person (x foreshortened by cos yaw; 0: off)")
    roll: float = Field(10.0, ge=0.0, le=180.0, description="pose-encoder: training augmentations rotate the pose "
                        "in the image plane by up to this many degrees (0: off)")
    views: int = Field(8, ge=0, description="trained backbones (pose-encoder): features of this many random "
                       "training augmentations of each training video (crop, flip, scale, shift, camera turn), which "
                       "the train stage fits DANCE on beside the clean features (0: clean features only; README, "
                       "'Across camera views')")
    folds: int | Literal["auto"] = Field(
        "auto", description="trained backbones (pose-encoder): also train one backbone per fold of the training "
        "videos, each without its fold, so the train stage gets held-out features of every training video "
        "(cross-fitting: the concept layer, its width and activation are then chosen by cross-validation on train "
        "instead of on the validation split). 0: off; auto: 5 folds when there are fewer than 500 training "
        "videos and the train stage has a choice to make (train.concept_hidden or train.binary_activation auto), "
        "else off")

    @field_validator("folds")
    @classmethod
    def _folds(cls, value: int | str) -> int | str:
        if isinstance(value, int) and (value < 0 or value == 1):
            raise ValueError("must be 0 (off), at least 2, or 'auto'")
        return value


# ---------------------------------------------------------------------------------------------- estimator settings


def _hp(default: Any, description: str, *, setting: bool = True, auto: str = "", auto_default: bool = True,
        **bounds: float) -> Any:
    """A hyperparameter of :class:`DanceParams`: its default, what it does, and its bounds (``ge``, ``gt``,
    ``le``, ``lt``), which both :class:`TrainSettings` and ``DanceModel.fit`` check.

    ``setting=False``: an estimator parameter only, not a ``train.*`` key. ``auto``: the ``train.*`` key also takes
    ``auto``, meaning the run tries the values and keeps the best (the text says how); ``auto`` is the key's default
    unless ``auto_default=False`` (then ``auto`` is there on request and the key's default is ``default``).
    """
    return dataclasses.field(default=default, metadata={"description": description, "setting": setting,
                                                        "auto": auto, "auto_default": auto_default,
                                                        "bounds": bounds})


@dataclasses.dataclass(eq=False, repr=False)
class DanceParams:
    """The hyperparameters of the DANCE estimator, each declared once, here.

    :class:`~dance.model.dance.DanceModel` inherits this ``__init__`` (it only stores them, the scikit-learn
    contract) and :class:`TrainSettings` derives its ``train.*`` keys from the fields with ``setting=True``: same
    names, defaults (``auto`` where the run chooses), descriptions and bounds. Reference values: the authors'
    pipeline (README, "Reference values"). Lives in the settings module, the lowest layer, so that the settings do
    not import the model (torch).
    """

    concept_lr: float = _hp(1e-3, "Adam learning rate of the concept layers")
    concept_steps: int = _hp(1000, "Adam steps per concept layer (the weights best on validation are kept)", ge=1)
    concept_batch_size: int = _hp(512, "training rows per Adam step of the concept layers (shuffled minibatches; "
                                  "0, or at least the training rows: every row each step, full batch)", ge=0)
    concept_hidden: int | None = _hp(None, "hidden units of an MLP concept layer (None: linear, the default, with "
                                     "logits: where validation or cross-validation chose the 2048-unit MLP on "
                                     "development splits it lost up to 12 points to the linear layer; "
                                     "docs/pose_accuracy.md, 'A fixed concept layer')",
                                     auto_default=False,
                                     auto="linear or 2048 units, whichever is more accurate on the validation split "
                                     "or cross-validated (linear only when the training videos have augmented views, "
                                     "features.views, and concept_batch_size is 0); where the final layer distils "
                                     "(train.distill) and binary_activation is auto, the MLP is tried with logits only "
                                     "(docs/pose_accuracy.md, 'Across camera views')")
    binary_activation: Literal["probability", "logit"] = _hp(
        "logit", "what a motion (binary) concept feeds the final layer: its predicted probability or its logit (the "
        "default: on 16 development splits the linear layer with logits was never more than 0.9 points under the "
        "candidate that validation or cross-validation chose, and 1.3 points above it on average; "
        "docs/pose_accuracy.md, 'A fixed concept layer')", auto_default=False,
        auto="the more accurate on the validation split or cross-validated, with the concept layer")
    joint_weight: float = _hp(
        0.0, "weight of the class term when training the binary (motion) concept layer: a temporary linear class "
        "head on its concept probabilities is trained with it and then dropped (a joint concept bottleneck, Koh et "
        "al. 2020); 0: concepts only, the paper's sequential training. Raises accuracy across camera views and lowers "
        "how faithfully the concepts rank videos (docs/pose_accuracy.md, 'Across camera views')", ge=0.0)
    distill: float = _hp(
        0.0, "share of a teacher's class probabilities in the final layer's targets: (1 - distill) x one-hot label + "
        "distill x the probabilities of the trained backbone's own head (pose-encoder), on the training videos and "
        "their views (each cross-validation fold its own backbone's); 0: labels only (the paper). Every prediction "
        "still goes through the concepts; the final layer needs more non-zero weights. A run whose backbone has no "
        "head of its own has no teacher and fits on the labels", ge=0.0, le=1.0,
        auto="0.5 without trying 0: neither a validation split drawn from the training data nor cross-validation on "
        "the training videos scores the shares where they differ most, on videos from camera views the training "
        "videos lack (docs/pose_accuracy.md, 'Across camera views')")
    clip_cutoff: float = _hp(0.25, "drop object/scene concepts whose top-5 label mean is <= this")
    interpretability_cutoff: float = _hp(0.45, "drop concepts with validation cos^3 below this")
    lam: float = _hp(7e-4, "elastic-net strength of the final layer (Eq. 6); smaller keeps more non-zero weights",
                     gt=0.0, auto="7e-4 (the paper's), except where the final layer distils a teacher "
                     "(train.distill): 1e-4, which kept more of the teacher's invariance across camera views "
                     "(docs/pose_accuracy.md, 'Across camera views')")
    alpha: float = _hp(0.99, "L1 share of the elastic net", ge=0.0, le=1.0)
    n_lambdas: int = _hp(20, "points of the warm-started regularisation path down to lam", ge=1)
    final_max_iter: int = _hp(2000, "solver iterations per path point of the final layer", ge=1)
    standardize_features: bool = _hp(True, "standardise the features on the training videos", setting=False)
    validation_fraction: float = _hp(
        0.15, "share of each class held out for validation when fit gets no validation data (a run always gives "
        "its val split)", setting=False, gt=0.0, lt=1.0)
    device: str = _hp("cpu", "torch device the concept layers are trained on")
    seed: int = _hp(0, "seed of the concept layers' initialisation and of the validation hold-out")


def _train_fields() -> dict[str, Any]:
    """Pydantic fields of the ``train.*`` keys that are :class:`DanceParams` hyperparameters."""
    hints = typing.get_type_hints(DanceParams)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(DanceParams):
        meta = f.metadata
        if not meta["setting"]:
            continue
        annotation, default, description = hints[f.name], f.default, meta["description"]
        bounds = meta["bounds"]
        if meta["auto"]:
            literal = typing.get_origin(annotation) is Literal
            if bounds:  # the bounds hold for the values, not for "auto"
                annotation, bounds = Annotated[annotation, Field(**bounds)], {}
            annotation = Literal[("auto", *typing.get_args(annotation))] if literal else annotation | Literal["auto"]
            default = "auto" if meta["auto_default"] else default
            description = f"{description}; auto{'' if meta['auto_default'] else ' (on request)'}: {meta['auto']}"
        out[f.name] = (annotation, Field(default, description=description, **bounds))
    return out


#: The ``train.*`` keys that configure the estimator, derived from :class:`DanceParams`.
_EstimatorSettings = create_model("_EstimatorSettings", __base__=Section, **_train_fields())


class TrainSettings(_EstimatorSettings):  # type: ignore[misc,valid-type]
    """``train``: the estimator's hyperparameters (from :class:`DanceParams`), then what the stage itself needs."""

    threads: int = Field(0, ge=0, description="torch threads while fitting (0: the cores other processes leave "
                                              "free when the stage starts; dance.threads)")
    models: list[str] = Field(default_factory=lambda: ["dance"], description="models fit side by side: 'dance' "
                              "(always), 'lfcbm-entangled', 'lfcbm-disentangled' (the language-concept baselines "
                              "of the paper's Table 1; README 'Language-concept baselines')")

    @field_validator("models", mode="before")
    @classmethod
    def _models_list(cls, value: Any) -> Any:
        """Accept ``dance,lfcbm-entangled`` as well as a YAML list; check the names."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            known = ("dance", "lfcbm-entangled", "lfcbm-disentangled")
            unknown = [v for v in value if v not in known]
            if unknown:
                raise ValueError(f"unknown model(s) {', '.join(map(str, unknown))}; known: {', '.join(known)}")
            if "dance" not in value:
                raise ValueError("must include 'dance' (evaluate, explain and the catalogue use DANCE's model), "
                                 "e.g. [dance, lfcbm-entangled, lfcbm-disentangled]")
            value = list(dict.fromkeys(value))
        return value

    def estimator_params(self) -> dict[str, Any]:
        """The :class:`DanceParams` hyperparameters this section sets, by name (``auto`` values as they are: the
        caller picks concrete ones)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(DanceParams) if f.metadata["setting"]}


class EvaluateSettings(Section):
    causes: str = Field("", description="causes.json of a synthetic dataset (default: beside the index)")
    top_k: int = Field(3, ge=1, description="concepts per type shown in explanations")
    paper_dataset: str = Field("auto", description="paper Table 1 dataset to print beside this run's accuracy: "
                               "auto (from the classes), none, KTH, 'Penn Action', HAA-100, UCF-101")


class EngineSettings(Section):
    """How the per-video stages spread their work (:mod:`dance.pipeline.engine`). No stage's fingerprint reads this
    section: every engine writes the same artifacts and cache entries."""

    name: Literal["local", "ray"] = Field(
        "local", description="local: worker processes on this machine; ray: Ray actors on a Ray cluster "
        "(pip install 'dance-xai[ray]'; README 'Running the stages')")
    workers: int = Field(0, ge=0, description="processes (local) or Ray actors (ray) the keyclips, poses and "
                         "features stages and the spatial stage's video embeddings run their videos on (local 1: this "
                         "process; 0: the cores other processes leave free when the stage starts, and for the local "
                         "engine this process for fewer than 100 videos to do)")
    ray_address: str = Field("", description="engine.name=ray: the cluster to join (auto, ray://host:10001); empty: "
                             "a Ray instance started on this machine for the stage")


class Settings(Section):
    data: DataSettings = DataSettings()
    keyclips: KeyclipSettings = KeyclipSettings()
    poses: PoseSettings = PoseSettings()
    motion: MotionSettings = MotionSettings()
    language: LanguageSettings = LanguageSettings()
    spatial: SpatialSettings = SpatialSettings()
    features: FeatureSettings = FeatureSettings()
    train: TrainSettings = TrainSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    engine: EngineSettings = EngineSettings()


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML scalars) to a nested dict."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise ConfigError(f"override '{item}': the key must be section.key (e.g. motion.partition=2)")
        section, name = parts
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ConfigError(f"override '{item}': '{section}' is not a section")
        out[section][name] = _parse_value(value.strip())
    return out


def load_settings(path: Path | str | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from an optional YAML file and overrides; errors name the bad key."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at the top level")
        raw = loaded
    raw = apply_overrides(raw, overrides or [])
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        where = f" in {path}" if path else ""
        raise ConfigError("invalid settings" + where + ":\n" + "\n".join(lines)) from None


def packaged_config(name: str) -> Path:
    """Path of a config shipped with the package (e.g. 'demo')."""
    p = Path(__file__).parent / "configs" / f"{name}.yaml"
    if not p.is_file():
        raise ConfigError(f"no packaged config named '{name}'")
    return p
