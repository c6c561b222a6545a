"""``dance --help`` stays cheap: importing the CLI (and printing help) imports no heavy library.

Not a timing test (see benchmarks/cli_startup.py for the figures): it checks which modules get imported, in a
fresh interpreter, since this test process has imported them all already.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "mediapipe", "plotly", "transformers", "fastapi", "uvicorn")


def _imported_heavy(code: str) -> list[str]:
    check = f"import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", f"{code}\n{check}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert _imported_heavy("import dance.cli") == []


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["explain", "--help"], ["serve", "--help"],
                                  ["version"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    code = ("import sys\nfrom dance.cli import main\n"
            f"sys.argv = ['dance', *{argv!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n")
    assert _imported_heavy(code) == []


def test_the_cli_stage_commands_match_the_pipeline() -> None:
    """dance.cli keeps its own copy of the stage names and help (importing dance.pipeline imports torch)."""
    from dance.cli import STAGE_HELP
    from dance.pipeline import STAGES

    assert STAGE_HELP == tuple((s.name, s.help) for s in STAGES)


def test_a_pose_worker_imports_no_training_library() -> None:
    """A worker process of the keyclips or poses stage unpickles its factory, which imports that stage's module:
    it must not drag in every stage (torch, scikit-learn), which cost each worker ~4 s before its first video."""
    code = "import dance.pipeline.engine, dance.pipeline.motion\nassert hasattr(dance.pipeline.motion, 'PoseWork')"
    assert _imported_heavy(code) == []


def test_the_pipeline_package_still_exposes_the_stage_table() -> None:
    import dance.pipeline
    from dance.pipeline import STAGE_NAMES, run_pipeline
    from dance.pipeline.stages import STAGES

    assert STAGE_NAMES == tuple(s.name for s in STAGES) and callable(run_pipeline)
    with pytest.raises(AttributeError):
        dance.pipeline.no_such_name  # noqa: B018
