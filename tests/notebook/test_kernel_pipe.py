"""The kernel's one pipeline: created lazily from the magic's traits or $STUDIO_NB_CONFIG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio_nb.notebook import kernel_pipe


@pytest.fixture
def no_kernel_pipeline() -> Any:
    saved = kernel_pipe.current_pipeline()
    kernel_pipe.use_pipeline(None)
    yield
    kernel_pipe.use_pipeline(saved)


def test_created_once_from_the_environment(
    no_kernel_pipeline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "studio.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmax_tokens: 17\n")
    monkeypatch.setenv(kernel_pipe.ENV_VAR, str(config))
    pipe = kernel_pipe.kernel_pipeline()
    assert pipe.config["max_tokens"] == 17 and pipe.config["data_dir"] == str(tmp_path / "data")
    assert kernel_pipe.kernel_pipeline({"max_tokens": 99}) is pipe  # one per kernel
    kernel_pipe.reset_kernel_pipeline()
    assert kernel_pipe.current_pipeline() is None


def test_overrides_win_over_the_config_file(
    no_kernel_pipeline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(kernel_pipe.ENV_VAR, raising=False)
    pipe = kernel_pipe.kernel_pipeline(None, {"data_dir": str(tmp_path), "max_tokens": 5})
    assert pipe.config["max_tokens"] == 5
    kernel_pipe.use_pipeline(None)


def test_magic_traits_configure_the_pipeline(no_kernel_pipeline: None, shell: Any, tmp_path: Path) -> None:
    shell.user_ns["scratch_dir"] = str(tmp_path)
    shell.run_line_magic("config", 'StudioMagics.overrides = {"data_dir": scratch_dir, "max_tokens": 7}')
    try:
        magics = next(m for m in shell.configurables if type(m).__name__ == "StudioMagics")
        assert magics.pipe.config["max_tokens"] == 7 and magics.pipe.config["data_dir"] == str(tmp_path)
    finally:
        shell.run_line_magic("config", "StudioMagics.overrides = {}")
