"""How a setting is declared once and read everywhere: the machinery behind :mod:`venus_grpc.settings`.

:func:`setting` writes a field's help text, section and bounds into its dataclass metadata;
:func:`specs_of` turns those fields into :class:`Spec` objects that parse a value by the field's resolved
type, enforce its bounds, and feed ``venus serve --help``, docs/configuration.md and the Helm chart.
A field without that metadata, or of a type no parser reads, is refused when the settings are imported
rather than passed through unvalidated.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

T = TypeVar("T")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ENV_PREFIX = "VENUS_"
_METADATA_KEY = "venus"
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
_NUMBER_NOUNS: Mapping[type, str] = {int: "whole number", float: "number"}


class SettingsError(ValueError):
    """A setting has a value Venus cannot use; the message names the key and the value.

    ``field`` and ``expected`` let a caller name the key the way the user wrote it (a CLI flag).
    """

    def __init__(self, message: str, *, field: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected


def invalid(name: str, value: object, expected: str, *, key: str = "") -> SettingsError:
    """The error for setting ``name`` holding ``value``, under ``key`` (default: its environment variable)."""
    key = key or _ENV_PREFIX + name.upper()
    return SettingsError(f"{key}={value!r} is not valid: expected {expected}", field=name, expected=expected)


@dataclass(frozen=True, slots=True)
class Section:
    """A group of related settings: a heading in docs/configuration.md, with a line saying what they share."""

    title: str
    about: str = ""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Limits of a number: at least ``ge``, above ``gt``, at most ``le``; None is no limit."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def hold(self, value: float) -> bool:
        """True when ``value`` is within every limit."""
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le))

    def describe(self, noun: str) -> str:
        """What a value within the limits is, in the words of an error message: "a positive whole number"."""
        if self == Bounds(gt=0):
            return f"a positive {noun}"
        if self == Bounds(ge=0):
            return f"zero or a positive {noun}"
        if self.ge is not None and self.le is not None and self.gt is None:
            return f"a {noun} from {_number(self.ge)} to {_number(self.le)}"
        limits = [f"{words} {_number(limit)}" for words, limit in
                  (("above", self.gt), ("at least", self.ge), ("at most", self.le)) if limit is not None]
        return f"a {noun} {' and '.join(limits)}" if limits else f"a {noun}"


@dataclass(frozen=True, slots=True)
class _Declared:
    help: str
    section: Section | None
    bounds: Bounds


def setting(default: T, help: str, *, section: Section | None = None, ge: float | None = None,
            gt: float | None = None, le: float | None = None, secret: bool = False) -> T:
    """A settings field: its default, what it does, and the bounds of a number (see :class:`Bounds`).

    ``section`` opens a new group with this field; ``secret`` keeps the value out of ``repr``, and so of logs.
    """
    declared = _Declared(help, section, Bounds(ge=ge, gt=gt, le=le))
    return dataclasses.field(default=default, repr=not secret, metadata={_METADATA_KEY: declared})


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting as every view needs it: how to parse and check it, and how to describe it."""

    name: str
    type: Any  # the resolved annotation
    default: Any
    help: str
    section: Section
    bounds: Bounds
    expected: str  # what a valid value is, in the words of an error message
    _read: Callable[[str], Any] = dataclasses.field(repr=False)

    @property
    def env(self) -> str:
        """The environment variable: ``VENUS_`` and the upper-cased name."""
        return _ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """The CLI flag of ``venus serve`` and ``venus dev``: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def choices(self) -> tuple[str, ...]:
        """The values a Literal setting takes; empty for other types."""
        return typing.get_args(self.type) if typing.get_origin(self.type) is typing.Literal else ()

    def parse(self, raw: str, *, key: str = "") -> Any:
        """The value that the text ``raw`` stands for; the error names ``key`` (default: the variable)."""
        try:
            return self._read(raw)
        except ValueError:
            raise invalid(self.name, raw, self.expected, key=key) from None

    def check(self, value: Any) -> None:
        """Refuse a value outside the bounds, naming the variable, the value and what was expected."""
        if not self.bounds.hold(value):
            raise invalid(self.name, value, self.expected)


def specs_of(cls: type) -> Mapping[str, Spec]:
    """Every field of the settings dataclass ``cls``, by name, in declaration order.

    Raises TypeError for a field not declared with :func:`setting`, of a type no parser reads, or with
    bounds on something that is not a number: those would otherwise reach a user unvalidated.
    """
    hints = typing.get_type_hints(cls)
    specs: dict[str, Spec] = {}
    section: Section | None = None
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_METADATA_KEY)
        if not isinstance(declared, _Declared) or not declared.help.strip():
            raise TypeError(f"{cls.__name__}.{f.name}: declare it with setting(default, 'what it does', ...)")
        section = declared.section or section
        if section is None:
            raise TypeError(f"{cls.__name__}.{f.name}: the first setting must open a section (section=...)")
        read, expected = _reader(hints[f.name], declared.bounds, f"{cls.__name__}.{f.name}")
        specs[f.name] = Spec(f.name, hints[f.name], f.default, declared.help, section, declared.bounds, expected,
                             read)
    return MappingProxyType(specs)


def _reader(hint: Any, bounds: Bounds, where: str) -> tuple[Callable[[str], Any], str]:
    """The parser of a value of type ``hint`` and what such a value is, in words."""
    if hint in _NUMBER_NOUNS:
        return hint, bounds.describe(_NUMBER_NOUNS[hint])
    if bounds != Bounds():
        raise TypeError(f"{where}: bounds (ge, gt, le) apply to int and float settings only, not {hint!r}")
    if hint is bool:
        return _boolean, "true or false (also 1/0, yes/no, on/off)"
    if hint is str:
        return str, "text"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal and all(isinstance(arg, str) for arg in args):
        return _choice(args), f"one of {', '.join(args)}"
    if origin is frozenset and args == (str,):
        return _names, "names separated by commas"
    if origin is tuple and args == (IPNetwork, ...):
        return _networks, "networks (CIDRs or addresses) separated by commas"
    raise TypeError(f"{where}: no parser for settings of type {hint!r}; add one to _reader() in {__name__}")


def _boolean(raw: str) -> bool:
    if raw.lower() not in _BOOLEANS:
        raise ValueError(raw)
    return _BOOLEANS[raw.lower()]


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw
    return read


def _names(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _networks(raw: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
