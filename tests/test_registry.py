"""dance.registry.Registry, and a backbone added in one decorated definition reaching the pipeline by name."""

from __future__ import annotations

import numpy as np
import pytest

from dance.config import load_settings
from dance.encoders.registry import BACKBONES, make_video_backbone, register_backbone
from dance.errors import ConfigError
from dance.motion.poses import POSE_SOURCES
from dance.pipeline.validate import check_override, load_checked_settings, validate_settings
from dance.pipeline.variants import VARIANTS
from dance.registry import Registry, did_you_mean
from dance.spatial.labels import LABEL_SOURCES


def _colours() -> Registry[str]:
    r: Registry[str] = Registry("colour")
    r.add("crimson", "#f00", "the colour of blood")
    r.add("light-blue", "#adf", "the sky on a hazy day")

    @r.register("green", "grass")
    def green() -> str:
        return "#0f0"

    return r


def test_lookup_listing_and_membership() -> None:
    r = _colours()
    assert r.get("crimson") == "#f00" and r["light-blue"] == "#adf" and r.get("green")() == "#0f0"
    assert r.names() == ["crimson", "light-blue", "green"] == list(r) and len(r) == 3
    assert "crimson" in r and "blue" not in r and ["crimson"] not in r  # an unhashable value is just not a name
    assert r.describe() == [("crimson", "the colour of blood"), ("light-blue", "the sky on a hazy day"),
                            ("green", "grass")]
    assert r.description("green") == "grass"
    assert r.check("crimson") is None


def test_unknown_names_raise_one_error_with_did_you_mean() -> None:
    r = _colours()
    with pytest.raises(ConfigError, match=r"unknown colour 'gren'; did you mean: green \(known: crimson, light-blue, "
                                          r"green\)"):
        r.get("gren")
    with pytest.raises(ConfigError, match="did you mean: light-blue"):
        r["light_blue"]  # separators only
    with pytest.raises(ConfigError, match=r"^unknown colour 'purple' \(known: "):  # nothing close: no suggestion
        r.get("purple")
    assert r.check("gren") == "unknown colour 'gren'; did you mean: green (known: crimson, light-blue, green)"
    assert did_you_mean("random_3dconv", ["random-3dconv", "videomae"]) == "; did you mean: random-3dconv"
    assert did_you_mean("xyz", ["random-3dconv"]) == ""


def test_duplicate_registration_is_an_error_and_temporary_undoes_changes() -> None:
    r = _colours()
    with pytest.raises(ValueError, match="colour 'crimson' is already registered"):
        r.add("crimson", "#e00")
    with pytest.raises(ValueError, match="already registered"):
        r.register("green")(lambda: "#0e0")
    with r.temporary():
        r.add("blue", "#00f")
        r.remove("crimson")
        assert r.names() == ["light-blue", "green", "blue"]
    assert r.names() == ["crimson", "light-blue", "green"] and r.get("crimson") == "#f00"


def test_builtins_load_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    r: Registry[int] = Registry("thing", builtins=("some.module",))

    def fake_import(name: str) -> None:
        imported.append(name)
        r.add("one", 1)

    monkeypatch.setattr("dance.registry.importlib.import_module", fake_import)
    assert imported == [] and "not loaded" in repr(r)  # creating the registry imports nothing
    assert r.get("one") == 1 and r.names() == ["one"] and imported == ["some.module"]  # once


def test_the_settings_registries_list_their_entries() -> None:
    assert {"random-3dconv", "videomae", "clip-frames", "pose-encoder", "precomputed"} <= set(BACKBONES)
    assert POSE_SOURCES.names() == ["annotations", "penn-action", "mediapipe"]
    assert LABEL_SOURCES.names() == ["annotations"]
    assert VARIANTS.names() == ["dance", "lfcbm-entangled", "lfcbm-disentangled"]
    for registry in (BACKBONES, POSE_SOURCES, LABEL_SOURCES, VARIANTS):
        assert all(description for _, description in registry.describe())


# ------------------------------------------------------------------------------ a backbone in one definition


class _MeanColour:
    """The mean RGB of the frames: a backbone in a few lines."""

    name, dim = "mean-colour", 3

    def __init__(self, n_frames: int, size: int) -> None:
        self.n_frames, self.size = n_frames, size

    def fingerprint(self) -> dict:
        return {"name": self.name, "n_frames": self.n_frames, "size": self.size}

    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        return np.stack([v.reshape(-1, 3).mean(axis=0) for v in videos]).astype(np.float32)


def test_a_backbone_registered_in_a_test_is_selected_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'mean-colour'"):
        check_override("features.backbone=mean-colour")
    with BACKBONES.temporary():

        @register_backbone("mean-colour", "mean RGB of the frames (a test's backbone)", pretrained=False)
        def _make(n_frames: int = 8, size: int = 32, seed: int = 0, device: str = "cpu", model: str = ""
                  ) -> _MeanColour:
            return _MeanColour(n_frames, size)

        check_override("features.backbone=mean-colour")  # the --set check knows it
        settings = load_checked_settings(None, ["features.backbone=mean-colour", "features.n_frames=4"])
        validate_settings(settings)
        backbone = make_video_backbone(settings.features)
        assert isinstance(backbone, _MeanColour) and (backbone.n_frames, backbone.size) == (4, 112)
        frames = np.full((4, 112, 112, 3), 10, np.uint8)
        assert backbone.encode([frames]).tolist() == [[10.0, 10.0, 10.0]]
        assert ("mean-colour", "mean RGB of the frames (a test's backbone)") in BACKBONES.describe()
    assert "mean-colour" not in BACKBONES  # gone again
    with pytest.raises(ConfigError, match="unknown backbone 'mean-colour'"):
        validate_settings(load_settings(None, ["features.backbone=mean-colour"]))


def test_a_pose_backbone_must_say_how_it_is_loaded() -> None:
    with BACKBONES.temporary(), pytest.raises(ValueError, match="needs load="):
        register_backbone("poses-without-loader", "x", pretrained=False, input="poses")(lambda **kw: None)
    with pytest.raises(ValueError, match="input must be one of"):
        register_backbone("odd", "x", pretrained=False, input="audio")
