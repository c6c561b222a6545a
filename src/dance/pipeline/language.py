"""Stage ``language``: the object and scene concept set of the run (paper §3.2.2).

``language.concepts`` picks where the concepts come from:

* ``""`` (default): none; runs whose object/scene labels come from annotations (or that have none) need no set;
* a shipped name (``kth``, ``penn_action``, ``ucf101``) or a concept-set JSON file: used as it is;
* ``llm``: the paper's two prompts per class of the index are sent to an OpenAI-compatible language model
  (:class:`dance.language.client.ConceptDiscoveryClient`), the answers parsed and filtered (Label-free CBM
  filters). Raw answers are cached in ``RUN/.cache/llm/`` so a rerun, or a run interrupted half-way, costs no
  repeated calls. A class whose answer holds no list is reported and the set is built from the others. The
  ``temporal`` and ``entangled`` prompts are asked too, but only when a baseline of ``train.models`` needs them
  (:func:`dance.pipeline.variants.needed_kinds`).

A shipped set or a file is used with every list it has (``temporal`` / ``entangled`` included); the spatial stage
labels them all. A baseline of ``train.models`` whose list the set lacks stops the run here, before any video is
decoded, with what to set.

Writes ``language/concepts.json`` (the concept-set format of :mod:`dance.language.concept_set`).
"""

from __future__ import annotations

from pathlib import Path

from dance.errors import DanceError, StageError
from dance.language.concept_set import ConceptSet, build_concept_set, concept_set_path, load_concept_set
from dance.pipeline.artifacts import run_index
from dance.pipeline.runner import Context
from dance.pipeline.variants import check_variant_settings, needed_kinds
from dance.runs import StageWriter, file_hash, read_json


def _llm_settings(ctx: Context):
    from dance.language.client import LLMSettings

    s = ctx.settings.language
    kwargs = {}
    if s.llm_base_url:
        kwargs["base_url"] = s.llm_base_url
    if s.llm_model:
        kwargs["model"] = s.llm_model
    return LLMSettings(**kwargs)


def external(ctx: Context) -> dict[str, str]:
    c = ctx.settings.language.concepts.strip()
    if not c:
        return {"concepts": "none"}
    if c == "llm":
        d = _llm_settings(ctx).describe()
        kinds = needed_kinds(ctx.settings.train.models)
        return {"concepts": f"llm:{d['endpoint']}:{d['model']}:{d['temperature']}"} | (
            {"kinds": ",".join(kinds)} if kinds != ("objects", "scenes") else {})
    p = Path(c).expanduser()
    if p.is_file():
        return {"concepts": file_hash(p)}
    try:
        return {"concepts": f"shipped:{c}:{file_hash(concept_set_path(c))}"}
    except DanceError:
        return {"concepts": f"shipped:{c}"}  # the stage itself reports the unknown name


def run(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.language
    choice = s.concepts.strip()
    index = run_index(ctx.stage_dir("index"))
    if not choice:
        cs = ConceptSet(dataset="", object=[], scene=[], source={"kind": "none"})
        ctx.reporter.info("  language.concepts is empty: no language concepts (labels come from spatial.source)")
    elif choice == "llm":
        cs = _discover(ctx, index.classes)
    else:
        cs = load_concept_set(choice)
        missing = sorted(set(index.classes) - set(cs.classes)) if cs.classes else []
        if missing:
            ctx.reporter.info(f"  [yellow]concept set '{choice}' was made for other classes[/yellow]; not among "
                              f"its classes: {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}")
    check_variant_settings(ctx.settings.train.models, ctx.settings.spatial.source, cs.types(), choice)
    cs.save(out.path("concepts.json"))
    if choice:
        extra = "".join(f", {len(cs.names(t))} {t}" for t in cs.types()[2:])
        ctx.reporter.info(f"  {len(cs.object)} object and {len(cs.scene)} scene concepts{extra} "
                          f"({cs.source.get('kind', 'file')}: {cs.source.get('answered_by', choice)})")
    return {"object": len(cs.object), "scene": len(cs.scene), "source": cs.source.get("kind", "file")} | {
        t: len(cs.names(t)) for t in cs.types()[2:]}


def _discover(ctx: Context, classes: list[str]) -> ConceptSet:
    from dance.language.client import ConceptDiscoveryClient
    from dance.language.text_encoder import load_text_encoder

    s = ctx.settings.language
    settings = _llm_settings(ctx)
    kinds = needed_kinds(ctx.settings.train.models)
    with ConceptDiscoveryClient(settings, cache_dir=ctx.run.root / ".cache" / "llm") as client:
        with ctx.reporter.tracker() as progress:
            result = client.discover(classes, progress=progress, kinds=kinds)
    for f in result.failures:
        ctx.reporter.info(f"  [yellow]skipped[/yellow] {f['kind']} of class '{f['class']}': {f['reason']} "
                          f"(answer: {f['answer']!r})")
    if all(not result.lists(k).get(c) for c in classes for k in kinds):
        raise StageError("the language model gave no usable list for any class: see the answers cached in "
                         f"{ctx.run.root / '.cache' / 'llm'}")
    source = {"kind": "language model"} | settings.describe() | {"calls": result.calls, "cached": result.cached,
                                                                  "failures": result.failures}
    if kinds != ("objects", "scenes"):
        source["kinds"] = list(kinds)
    cs = build_concept_set(ctx.settings.data.path or "dataset", classes, result.objects, result.scenes,
                           load_text_encoder(), source, max_length=s.max_length,
                           class_similarity=s.class_similarity, duplicate_similarity=s.duplicate_similarity,
                           temporal=result.temporal if "temporal" in kinds else None,
                           entangled=result.entangled if "entangled" in kinds else None)
    ctx.reporter.info(f"  {result.calls} calls, {result.cached} answers from the cache; filters dropped "
                      + ", ".join(f"{len(cs.dropped[t])} {t}" for t in cs.dropped) + " candidates")
    return cs


def run_concepts(run_dir: Path) -> ConceptSet:
    """The concept set a run's language stage wrote."""
    path = run_dir / "language" / "concepts.json"
    if not path.is_file():
        raise StageError(f"{path} not found: run the language stage first")
    return ConceptSet.from_json(read_json(path), where=str(path))

