"""Parameters declared once, in a constructor's signature: the keys a config may set, and their checks.

A class that derives from ``Declared`` lists the allowed values of its numeric parameters in ``ranges`` and of its
string parameters in ``choices``; its constructor's defaults and annotations give the rest. From that one place
* ``constructor_keys`` gives the config keys (``Key``: default, type, choices, range, nullable) that
  ``replay-bench`` validates (priors' ``prior.<key>``, methods' ``method.<key>``);
* every construction, from a config or from a user's script, checks the values it was given, once, with the same
  one-line ``UserInputError`` (``<prefix><name> must be ...``).
"""
from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

from replay.checks import Range
from replay.errors import UserInputError


@dataclass(frozen=True)
class Key:
    """One config key: its default, its type and the values it allows.

    Args:
        default: the value when the config does not set it (``None``: "not set"; see ``nullable``).
        kind: the type of its values (``int``, ``float``, ``bool``, ``str`` or ``list``); a ``float`` key takes ints.
        choices: the allowed values of a ``str`` key (empty: any).
        range: the allowed numbers of a numeric key, or of each element of a ``list`` key.
        nullable: ``null`` is allowed (the key then means "the stream's protocol" or "not given").
        length: the required length of a ``list`` key (None: any non-empty length).
    """

    default: Any
    kind: type
    choices: tuple = ()
    range: Optional[Range] = None
    nullable: bool = False
    length: Optional[int] = None


class Declared:
    """Base of classes whose constructor parameters are config keys (priors, replay methods).

    ``ranges`` and ``choices`` name the allowed values; ``prefix`` starts each error message (``"prior."``). The
    outermost constructor of a subclass checks the arguments it receives before running (a subclass calling its
    parent's constructor is not checked twice).
    """

    ranges: ClassVar[dict[str, Range]] = {}
    choices: ClassVar[dict[str, tuple]] = {}
    prefix: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked(cls.__init__)


def _checked(init: Callable) -> Callable:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def checked_init(self: Declared, *args: Any, **kwargs: Any) -> None:
        if type(self).__init__ is checked_init:  # the outermost constructor only
            check_declared(type(self), signature.bind(self, *args, **kwargs).arguments)
        init(self, *args, **kwargs)

    return checked_init


def check_declared(cls: type[Declared], values: dict[str, Any]) -> None:
    """Refuse values outside ``cls.ranges`` and ``cls.choices`` (None values are left alone; the range of a list or
    tuple parameter holds for each element) in one line."""
    for name, allowed in cls.ranges.items():
        value = values.get(name)
        if isinstance(value, (list, tuple)):
            for index, element in enumerate(value):
                allowed.check(f"{cls.prefix}{name}[{index}]", element)
        elif value is not None:
            allowed.check(f"{cls.prefix}{name}", value)
    for key, allowed in cls.choices.items():
        if values.get(key) is not None and values[key] not in allowed:
            raise UserInputError(f"{cls.prefix}{key}: {values[key]!r} is not allowed; allowed: "
                                 f"{', '.join(map(str, allowed))}")


def constructor_parameters(cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parameters of ``cls``'s constructor that have a default, with it (``self`` and ``skip`` left out)."""
    signature = inspect.signature(cls.__init__)
    return {k: p.default for k, p in signature.parameters.items()
            if k != "self" and k not in skip and p.default is not inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def constructor_keys(cls: type[Declared], skip: tuple[str, ...] = ()) -> dict[str, Key]:
    """The config keys of ``cls``'s constructor parameters: defaults from the signature, types from the annotations
    (``Optional[...]``: nullable; ``tuple``/``list``: a list key), ranges and choices from the class."""
    hints = typing.get_type_hints(cls.__init__)
    keys = {}
    for name, default in constructor_parameters(cls, skip).items():
        hint = hints[name]
        optional = type(None) in typing.get_args(hint)
        kind = next(t for t in typing.get_args(hint) if t is not type(None)) if optional else hint
        kind = typing.get_origin(kind) or kind
        if kind is tuple:
            kind, default = list, list(default) if default is not None else None
        keys[name] = Key(default, kind, cls.choices.get(name, ()), cls.ranges.get(name), optional)
    return keys
