"""Settings checked before any stage runs, so that a typo fails in a second, not six stages in.

:func:`validate_settings` checks every setting that names something from a registry — ``features.backbone``
(:data:`dance.encoders.registry.BACKBONES`), ``poses.source`` (:data:`dance.motion.poses.POSE_SOURCES`), ``data.format``
(:data:`dance.data.formats.FORMATS`, the dataset adapters of :mod:`dance.data.datasets` among them),
``spatial.source`` (:func:`dance.pipeline.spatial.spatial_sources`: ``none``, the label sources, the dual encoders),
``train.models`` (:data:`dance.pipeline.variants.VARIANTS`), ``language.concepts`` (a shipped concept set, a file
or ``llm``) and ``evaluate.paper_dataset`` — and, for the stages that use them, whether the configured baselines
can get their concepts. Unknown names get the closest known ones (``did you mean``, :mod:`dance.registry`).

:func:`load_checked_settings` is what the CLI uses: each ``--set`` is checked on its own first (section, key,
value, registry name), so that its error names the override (``--set features.backbone=foo: unknown backbone
'foo'; did you mean: …``) rather than the run's ``config.yaml``; then the merged settings are validated. The
pipeline (:func:`dance.pipeline.run_pipeline`) calls :func:`validate_settings` before any stage and before it
writes ``RUN/config.yaml``, so settings that fail here are never saved into a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dance.config import Settings, _parse_value, load_settings
from dance.errors import ConfigError, DanceError
from dance.registry import did_you_mean, unknown_name

#: stages that read the baselines' concept settings (``train.models`` with ``language.concepts``,
#: ``spatial.source``)
_CROSS_CHECK_STAGES = {"language", "spatial", "train", "evaluate"}


# ------------------------------------------------------------------------------------------- registries


def _backbones() -> list[str]:
    from dance.encoders.registry import BACKBONES

    return BACKBONES.names()


def _pose_sources() -> list[str]:
    from dance.motion.poses import POSE_SOURCES

    return POSE_SOURCES.names()


def _formats() -> list[str]:
    from dance.data.formats import FORMATS

    return FORMATS.names()


def _spatial_sources() -> list[str]:
    from dance.pipeline.spatial import spatial_sources

    return spatial_sources()


def _check_name(what: str, known: Callable[[], list[str]]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        names = known()
        return None if value in names else unknown_name(what, value, names)

    return check


def _check_models(value: Any) -> str | None:
    from dance.pipeline.variants import VARIANTS

    models = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(models, list | tuple):
        return f"expected a list of model names, e.g. dance,lfcbm-entangled (known: {', '.join(VARIANTS)})"
    problems = [VARIANTS.check(m) for m in models if m not in VARIANTS]
    if not problems and "dance" not in models:
        problems.append("must include 'dance' (evaluate, explain and the catalogue use DANCE's model), e.g. "
                        "dance,lfcbm-entangled,lfcbm-disentangled")
    return "; ".join(problems) or None


def _check_concepts(value: Any) -> str | None:
    from dance.language.concept_set import concept_set_path, shipped_names

    text = str(value).strip()
    if text in ("", "llm"):
        return None
    try:
        concept_set_path(text)
    except ConfigError:
        known = [*shipped_names(), "llm"]
        return (f"no concept set '{text}': not a file, a shipped set or 'llm'{did_you_mean(text, known)} "
                f"(shipped: {', '.join(shipped_names())}; '' for none)")
    return None


def _check_paper_dataset(value: Any) -> str | None:
    from dance.paper import PAPER_DATASETS, paper_dataset

    try:
        paper_dataset([], setting=str(value))
    except ConfigError as e:
        return str(e) + did_you_mean(str(value), [*PAPER_DATASETS, "auto", "none"])
    return None


#: ``section.key`` → check of its value (an error message, or None when the value is fine)
REGISTRY_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "data.format": _check_name("dataset format", _formats),
    "poses.source": _check_name("pose source", _pose_sources),
    "spatial.source": _check_name("spatial.source (object/scene label source)", _spatial_sources),
    "features.backbone": _check_name("backbone", _backbones),
    "train.models": _check_models,
    "language.concepts": _check_concepts,
    "evaluate.paper_dataset": _check_paper_dataset,
}


# ------------------------------------------------------------------------------------------- overrides


def _override_key(item: str) -> str:
    return item.split("=", 1)[0].strip()


def _from_override(key: str, overrides: Sequence[str]) -> str | None:
    """The last ``--set`` that sets ``key`` (the one that wins), or None."""
    hits = [o for o in overrides if "=" in o and _override_key(o) == key]
    return hits[-1] if hits else None


def check_override(item: str) -> None:
    """One ``section.key=value`` on its own: the form, a known section and key, a valid value, a known name.

    Raises :class:`ConfigError` whose message starts with ``--set ITEM:``.
    """
    where = f"--set {item}"
    if "=" not in item:
        raise ConfigError(f"{where}: not of the form section.key=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{where}: the key must be section.key (e.g. motion.partition=2)")
    section, name = parts
    sections = list(Settings.model_fields)
    if section not in sections:
        raise ConfigError(f"{where}: {unknown_name('section', section, sections)}")
    keys = list(getattr(Settings.model_fields[section].annotation, "model_fields", {}))
    if keys and name not in keys:
        raise ConfigError(f"{where}: {unknown_name('key', name, keys, f' in section {section}')}")
    value = _parse_value(text.strip())
    check = REGISTRY_CHECKS.get(f"{section}.{name}")
    problem = check(value) if check is not None else None
    if problem:
        raise ConfigError(f"{where}: {problem}")
    try:
        Settings.model_validate({section: {name: value}})
    except ValidationError as e:
        msgs = [err["msg"].removeprefix("Value error, ") for err in e.errors()
                if tuple(err["loc"][:2]) == (section, name)]
        if msgs:
            raise ConfigError(f"{where}: {'; '.join(dict.fromkeys(msgs))}") from None


# ------------------------------------------------------------------------------------------- settings


def _value(settings: Settings, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(settings, section), name)


def _origin(key: str, value: Any, overrides: Sequence[str], source: Path | str | None) -> str:
    item = _from_override(key, overrides)
    if item is not None:
        return f"--set {item}"
    shown = ",".join(value) if isinstance(value, list) else value
    where = f" in {source}" if source else ""
    fix = f" (fix it there, or with --set {key}=...)" if source else ""
    return f"{key}={shown}{where}{fix}"


def validate_settings(settings: Settings, overrides: Sequence[str] = (), source: Path | str | None = None,
                      stages: Sequence[str] | None = None) -> None:
    """Raise :class:`ConfigError` listing every setting that names something unknown (with the closest names).

    ``overrides`` / ``source``: where the settings came from (``--set`` items, the YAML file), for the messages.
    ``stages``: the stages about to run (None: all); the baselines' concept checks run only when one of
    language, spatial, train or evaluate is among them.
    """
    problems = []
    for key, check in REGISTRY_CHECKS.items():
        value = _value(settings, key)
        problem = check(value)
        if problem:
            problems.append(f"{_origin(key, value, overrides, source)}: {problem}")
    if problems:
        raise ConfigError("\n".join(problems) if len(problems) > 1 else problems[0])
    if stages is not None and not _CROSS_CHECK_STAGES & set(stages):
        return
    try:
        _check_baselines(settings)
    except DanceError as e:
        given = [f"--set {o}" for k in ("train.models", "spatial.source", "language.concepts")
                 if (o := _from_override(k, overrides)) is not None]
        if not given:
            raise
        raise ConfigError(f"{', '.join(given)}: {e}") from None


def _check_baselines(settings: Settings) -> None:
    """The baselines of ``train.models`` get their concepts: a dual encoder, and the concept set's lists when it
    is a file or a shipped set (an LLM's answers are only known once asked)."""
    from dance.pipeline.variants import baseline_names, check_variant_settings

    if not baseline_names(settings.train.models):
        return
    concepts = settings.language.concepts.strip()
    types: list[str] | None = None
    if concepts and concepts != "llm":
        from dance.language.concept_set import load_concept_set

        types = load_concept_set(concepts).types()
    elif not concepts:
        types = []
    check_variant_settings(settings.train.models, settings.spatial.source, types, concepts)


def load_checked_settings(path: Path | str | None, overrides: Sequence[str] = (),
                          stages: Sequence[str] | None = None) -> Settings:
    """:func:`dance.config.load_settings` with every override checked first (errors name the ``--set``), then
    :func:`validate_settings` on the result."""
    overrides = list(overrides)
    for item in overrides:
        check_override(item)
    settings = load_settings(path, overrides)
    validate_settings(settings, overrides, path, stages)
    return settings
