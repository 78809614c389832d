"""The region tree (``regions.yaml``: ``child: parent``) and the fallback chain of a region."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from kb.documents import GLOBAL, normalize_region
from kb.errors import ConfigError

REGIONS_FILE = "regions.yaml"


class RegionTree:
    """Every region not named falls back to ``global``; ``global`` is the root."""

    def __init__(self, parents: Mapping[str, str] | None = None) -> None:
        self._parents: dict[str, str] = {}
        for child, parent in (parents or {}).items():
            try:
                self._parents[normalize_region(child)] = normalize_region(parent)
            except ValueError as exc:
                raise ConfigError(f"{REGIONS_FILE}: {exc}") from None
        self._parents.pop(GLOBAL, None)
        for region in self._parents:
            self.chain(region)  # refuse cycles now, not at query time

    @classmethod
    def load(cls, docs_dir: Path) -> RegionTree:
        path = docs_dir / REGIONS_FILE
        if not path.exists():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of region: parent")
        return cls({str(k): str(v) for k, v in data.items()})

    def chain(self, region: str) -> tuple[str, ...]:
        """Most specific first, ending in ``global``: ``DE -> EU -> global``."""
        chain = [normalize_region(region)]
        while chain[-1] != GLOBAL:
            parent = self._parents.get(chain[-1], GLOBAL)
            if parent in chain:
                raise ConfigError(f"{REGIONS_FILE}: regions form a cycle: {' -> '.join([*chain, parent])}")
            chain.append(parent)
        return tuple(chain)

    def __contains__(self, region: object) -> bool:
        """Named in regions.yaml."""
        return region in self._parents
