"""The region tree (``regions.yaml``: ``child: parent``) and the fallback chain of a region."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from kb.documents import GLOBAL, normalize_region
from kb.errors import ConfigError, yaml_problem

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
    def load(cls, path: Path) -> RegionTree:
        """The tree in a ``regions.yaml`` file; no file is the default tree."""
        if not path.exists():
            return cls()
        try:
            return cls.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{REGIONS_FILE}: not UTF-8 text") from None

    @classmethod
    def loads(cls, text: str) -> RegionTree:
        """The tree in the text of a ``regions.yaml`` (or a ``dump``)."""
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{REGIONS_FILE}: not valid YAML ({yaml_problem(exc)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{REGIONS_FILE}: expected a mapping of region: parent")
        return cls({str(k): str(v) for k, v in data.items()})

    def dump(self) -> str:
        return yaml.safe_dump(self._parents, sort_keys=True)

    def chain(self, region: str) -> tuple[str, ...]:
        """Most specific first, ending in ``global``: ``DE -> EU -> global``."""
        chain = [normalize_region(region)]
        while chain[-1] != GLOBAL:
            parent = self._parents.get(chain[-1], GLOBAL)
            if parent in chain:
                raise ConfigError(f"{REGIONS_FILE}: regions form a cycle: {' -> '.join([*chain, parent])}")
            chain.append(parent)
        return tuple(chain)

    def names(self) -> list[str]:
        """Every region regions.yaml names, as a child or a parent."""
        return sorted({*self._parents, *self._parents.values()})

    def __contains__(self, region: object) -> bool:
        """Named in regions.yaml."""
        return region in self._parents
