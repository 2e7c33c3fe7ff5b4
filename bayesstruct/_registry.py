"""One name -> class registry, behind the ``register_*`` decorators of each concept.

Estimators, saliencies and primitives are resolved by name the same way (BoTorch's and
laplace-torch's factory + registry): names are case-insensitive, a miss lists the
registered names and says how to add one.
"""

from __future__ import annotations

from typing import Any, Callable

from bayesstruct.exceptions import InvalidArgumentError, UnknownNameError


class Registry:
    """Classes derived from ``base`` under case-insensitive names.

    Parameters
    ----------
    base : type
        Every registered class must subclass it; instances of it pass through :meth:`create`.
    kind : str
        What a name denotes, for messages (``"evidence method"``).
    decorator : str
        The public decorator's dotted path, for the "add one with" hint.
    """

    def __init__(self, base: type, kind: str, decorator: str) -> None:
        self.base, self.kind, self.decorator = base, kind, decorator
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"`name` must be a non-empty str; got {name!r}")

        def decorator(cls: type) -> type:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise InvalidArgumentError(f"@{self.decorator} decorates {self.base.__name__} subclasses")
            key = name.strip().lower()
            cls.name = key
            self._classes[key] = cls
            return cls

        return decorator

    def names(self) -> list[str]:
        return sorted(self._classes)

    def lookup(self, name: str) -> type:
        """The class registered as ``name``."""
        if not isinstance(name, str):
            raise InvalidArgumentError(f"a {self.kind} is named by a str; got {type(name).__name__} {name!r}")
        key = name.strip().lower()
        if key not in self._classes:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names())}. "
                f"Add one with @{self.decorator}('name')."
            )
        return self._classes[key]

    def create(self, method: Any, **options: Any) -> Any:
        """An instance: ``method`` itself if it is one, else the class registered as ``method`` built with ``options``."""
        if isinstance(method, self.base):
            if options:
                raise InvalidArgumentError(f"pass options either to the {self.kind}'s constructor or here, not both")
            return method
        if not isinstance(method, str):
            raise InvalidArgumentError(f"`method` must be a name or a {self.base.__name__}; got {type(method).__name__}")
        cls = self.lookup(method)
        try:
            return cls(**options)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad option for {self.kind} {cls.name!r}: {exc}") from None
