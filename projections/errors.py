"""Errors raised by projections, carrying the projector and version an operator needs."""

from __future__ import annotations


class ProjectionError(Exception):
    """Base of every error the projections package raises."""


class UnknownProjectorError(ProjectionError):
    def __init__(self, name: str, version: int | None = None) -> None:
        where = f"{name} v{version}" if version is not None else name
        super().__init__(f"no projector {where} is declared in code")
        self.name = name
        self.version = version
