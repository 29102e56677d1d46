"""Reading manager.yaml: from disk (``load_config``) or from its text (``parse_config``), into ``ManagerConfig``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.config.problems import check_document
from manager_pipeline.errors import ConfigError
from manager_pipeline.yamlfile import parse_yaml


def parse_config(text: str | bytes, path: Path) -> ManagerConfig:
    """ManagerConfig, or YamlError (not YAML) / ConfigError (every problem, placed)."""
    document = parse_yaml(text, str(path))
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return check_document(document, path.name).config(path, hashlib.sha256(raw).hexdigest())


def load_config(path: Path) -> ManagerConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; create manager.yaml or point MANAGER_CONFIG at one") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; point MANAGER_CONFIG at the manager.yaml file in it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check MANAGER_CONFIG") from None
    return parse_config(text, path)
