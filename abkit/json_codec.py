"""One codec between typed results and JSON: dataclasses to plain JSON values and back.

:func:`to_jsonable` turns a result (dataclasses, tuples, dicts, numpy scalars and
arrays) into JSON values: NaN and ±inf become ``null`` (JSON has no NaN) and tuples
become lists.  :func:`from_jsonable` rebuilds a type from such values by its type hints
(Optional, unions, ``tuple[...]``, ``list[...]``, ``dict[str, ...]``, ``Literal``,
nested dataclasses), reading a ``null`` where a float is expected as NaN.  How a
dataclass is written is declared, not hand-written:

* field metadata ``{"json": "key"}`` writes a field under another key, and a tuple of
  keys such as ``{"json": ("control", "n")}`` inside a nested object;
* ``{"json_omit_none": True}``: the key is left out when the value is None; a missing
  key reads as None, a present ``null`` as the value's own type (NaN for a float);
* ``{"json_flatten": True}`` on a ``dict[str, ...]`` field: its items are written
  among the object's own keys, and read back from the keys no other field claims;
* a field with ``init=False`` (derived in ``__post_init__``) is written, not read;
* :func:`json_form` declares, for a class defined where its JSON is not, the constant
  keys written before its fields, the read-only properties written after them, and
  the order of its fields.

Reading is strict: an unknown key, a missing required key or a value of another type
raises :class:`JsonShapeError` naming where it is, so a union of dataclasses is read as
the first alternative whose fields fit.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

T = TypeVar("T")

JSON_KEY = "json"
OMIT_NONE = "json_omit_none"
FLATTEN = "json_flatten"


class JsonShapeError(ValueError):
    """A JSON value without the shape of the type it is read as."""


@dataclass(frozen=True)
class _Form:
    constants: dict[str, Any]
    properties: tuple[str, ...]
    order: tuple[str, ...] | None


@dataclass(frozen=True)
class _Entry:
    """One field as JSON sees it: its key path, type hint and how it is written."""

    name: str
    path: tuple[str, ...]
    hint: Any
    omit_none: bool
    flatten: bool
    read: bool
    required: bool


@dataclass(frozen=True)
class _Layout:
    constants: dict[str, Any]
    entries: tuple[_Entry, ...]
    properties: tuple[str, ...]


_FORMS: dict[type, _Form] = {}
_LAYOUTS: dict[type, _Layout] = {}


def json_form(
    cls: type,
    *,
    constants: Mapping[str, Any] | None = None,
    properties: Sequence[str] = (),
    order: Sequence[str] | None = None,
) -> None:
    """Declare how the dataclass ``cls`` is written beyond its fields.

    Parameters
    ----------
    cls : type
        A dataclass, typically one defined in a module that does not write JSON.
    constants : Mapping[str, Any], optional
        Keys written first with these JSON values (a method's name, say); ignored when
        read back.
    properties : Sequence[str]
        Read-only attributes written after the fields; ignored when read back.
    order : Sequence[str], optional
        Every field name, in the order the fields are written (default: declaration
        order).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from abkit.json_codec import json_form, to_jsonable
    >>> @dataclass(frozen=True)
    ... class Span:
    ...     low: float
    ...     high: float
    ...
    ...     @property
    ...     def width(self) -> float:
    ...         return self.high - self.low
    >>> json_form(Span, constants={"kind": "span"}, properties=("width",), order=("high", "low"))
    >>> to_jsonable(Span(1.0, 3.5))
    {'kind': 'span', 'high': 3.5, 'low': 1.0, 'width': 2.5}
    """
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    names = [f.name for f in fields(cls)]
    if order is not None and sorted(order) != sorted(names):
        raise ValueError(f"order of {cls.__name__} must name each of its fields once: {names}")
    _FORMS[cls] = _Form(
        dict(constants or {}), tuple(properties), tuple(order) if order is not None else None
    )
    _LAYOUTS.pop(cls, None)


def _layout(cls: type) -> _Layout:
    """How ``cls`` is written, worked out once per class."""
    known = _LAYOUTS.get(cls)
    if known is None:
        known = _LAYOUTS[cls] = _make_layout(cls)
    return known


def _make_layout(cls: type) -> _Layout:
    form = _FORMS.get(cls, _Form({}, (), None))
    hints = get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    entries = []
    for name in form.order or tuple(by_name):
        f = by_name[name]
        key = f.metadata.get(JSON_KEY, name)
        entries.append(
            _Entry(
                name=name,
                path=(key,) if isinstance(key, str) else tuple(key),
                hint=hints[name],
                omit_none=bool(f.metadata.get(OMIT_NONE, False)),
                flatten=bool(f.metadata.get(FLATTEN, False)),
                read=f.init,
                required=f.default is MISSING and f.default_factory is MISSING,
            )
        )
    return _Layout(form.constants, tuple(entries), form.properties)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as JSON values (dicts, lists, str, int, float, bool, None).

    Dataclasses become objects as their fields and metadata declare (see the module
    docstring), tuples and numpy arrays lists, numpy scalars Python numbers; NaN and
    ±inf become None, as ``json.dumps`` cannot write them as JSON.

    Parameters
    ----------
    obj : Any
        A dataclass instance, or a value built of dicts (with str keys), lists, tuples,
        numpy arrays and scalars, str, int, float, bool and None.

    Returns
    -------
    Any
        The same content in JSON values, ready for ``json.dumps``.

    Raises
    ------
    TypeError
        For a value of any other type, or a dict key that is not a str.

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from abkit.json_codec import to_jsonable
    >>> to_jsonable({"ci": (0.1, math.inf), "n": np.int64(3), "p": np.float64(math.nan)})
    {'ci': [0.1, None], 'n': 3, 'p': None}
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if is_dataclass(obj) and not isinstance(obj, type):
        return _encode(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"a JSON object's keys are str, not {type(key).__name__}")
            out[key] = to_jsonable(value)
        return out
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def _encode(obj: Any) -> dict[str, Any]:
    layout = _layout(type(obj))
    out = dict(layout.constants)
    for e in layout.entries:
        value = getattr(obj, e.name)
        if e.omit_none and value is None:
            continue
        encoded = to_jsonable(value)
        if e.flatten:
            out.update(encoded)
            continue
        node = out
        for key in e.path[:-1]:
            node = node.setdefault(key, {})
        node[e.path[-1]] = encoded
    for name in layout.properties:
        out[name] = to_jsonable(getattr(obj, name))
    return out


def from_jsonable(cls: type[T], data: Any) -> T:
    """Rebuild ``cls`` from the JSON values :func:`to_jsonable` wrote.

    The dataclass's type hints say what each value becomes: a list a tuple where a
    tuple is expected, ``null`` NaN where a float is expected (and None where None is
    allowed), a union of dataclasses the first alternative whose fields fit.

    Parameters
    ----------
    cls : type
        A dataclass (or another type :func:`to_jsonable` writes).
    data : Any
        JSON values, as ``json.loads`` returns them.

    Returns
    -------
    object
        An instance of ``cls``.

    Raises
    ------
    JsonShapeError
        When ``data`` does not have the shape of ``cls``: an unknown or missing key, or
        a value of another type (the message says where).

    Examples
    --------
    >>> import math
    >>> from dataclasses import dataclass
    >>> from abkit.json_codec import from_jsonable, to_jsonable
    >>> @dataclass(frozen=True)
    ... class Interval:
    ...     ci: tuple[float, float]
    ...     level: float | None = None
    >>> back = from_jsonable(Interval, {"ci": [0.25, None], "level": None})
    >>> back.ci[0], math.isnan(back.ci[1]), back.level
    (0.25, True, None)
    >>> to_jsonable(back)
    {'ci': [0.25, None], 'level': None}
    >>> from_jsonable(Interval, {"ci": [0.25, 1.0], "lvl": 0.95})
    Traceback (most recent call last):
    ...
    abkit.json_codec.JsonShapeError: $: unknown key(s) 'lvl' for Interval
    """
    value: T = _decode(cls, data, "$")
    return value


def _decode(tp: Any, v: Any, where: str) -> Any:
    if tp is Any or tp is object:
        return v
    origin = get_origin(tp)
    if origin is Literal:
        if not any(v == a and type(v) is type(a) for a in get_args(tp)):
            raise JsonShapeError(f"{where}: {v!r} is not one of {list(get_args(tp))}")
        return v
    if origin is Union or origin is types.UnionType:
        return _decode_union(get_args(tp), v, where)
    if origin is tuple:
        args = get_args(tp)
        items = _items(v, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], x, f"{where}[{i}]") for i, x in enumerate(items))
        if len(items) != len(args):
            raise JsonShapeError(f"{where}: {len(items)} values where {len(args)} are expected")
        pairs = enumerate(zip(args, items, strict=True))
        return tuple(_decode(a, x, f"{where}[{i}]") for i, (a, x) in pairs)
    if origin is list:
        (arg,) = get_args(tp)
        return [_decode(arg, x, f"{where}[{i}]") for i, x in enumerate(_items(v, where))]
    if origin is dict:
        _, arg = get_args(tp)
        return {k: _decode(arg, x, f"{where}.{k}") for k, x in _object(v, where).items()}
    if tp is float:
        if v is None:
            return math.nan
        if isinstance(v, int | float) and not isinstance(v, bool):
            return v  # an int stays an int (JSON told them apart): it writes back the same
        raise JsonShapeError(f"{where}: {v!r} is not a number")
    if tp is int or tp is bool or tp is str or tp is type(None):
        if type(v) is not tp:
            raise JsonShapeError(f"{where}: {v!r} is not {_name(tp)}")
        return v
    if isinstance(tp, type) and is_dataclass(tp):
        return _decode_dataclass(tp, v, where)
    raise TypeError(f"{where}: no JSON reading for the type {tp!r}")


def _name(tp: Any) -> str:
    """'null', 'an int', 'a str': the type as a message names it."""
    if tp is type(None):
        return "null"
    name = str(getattr(tp, "__name__", tp))
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _items(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list | tuple):
        raise JsonShapeError(f"{where}: {v!r} is not a list")
    return list(v)


def _object(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise JsonShapeError(f"{where}: {type(v).__name__} {v!r:.60} is not an object")
    return v


def _decode_union(args: tuple[Any, ...], v: Any, where: str) -> Any:
    if v is None and type(None) in args:
        return None
    reasons = []
    for alt in args:
        if alt is type(None):
            continue
        try:
            return _decode(alt, v, where)
        except JsonShapeError as e:
            reasons.append(str(e))
    raise JsonShapeError(f"{where}: fits none of the types it may be ({'; '.join(reasons)})")


def _without_none(tp: Any) -> Any:
    """The hint with None taken out of its union (``float | None`` → ``float``)."""
    if get_origin(tp) is Union or get_origin(tp) is types.UnionType:
        rest = [a for a in get_args(tp) if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    return tp


def _take(node: dict[str, Any], path: tuple[str, ...], copied: set[int]) -> tuple[bool, Any]:
    """Pop the value at ``path`` (nested objects are copied before they are changed)."""
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            return False, None
        if id(child) not in copied:
            child = node[key] = dict(child)
            copied.add(id(child))
        node = child
    if path[-1] not in node:
        return False, None
    return True, node.pop(path[-1])


def _decode_dataclass(cls: type, v: Any, where: str) -> Any:
    layout = _layout(cls)
    rest = dict(_object(v, where))
    for key in (*layout.constants, *layout.properties):
        rest.pop(key, None)
    copied: set[int] = set()
    kwargs: dict[str, Any] = {}
    flat: _Entry | None = None
    for e in layout.entries:
        if e.flatten:
            flat = e
            continue
        present, raw = _take(rest, e.path, copied)
        if not e.read:
            continue
        at = f"{where}.{'.'.join(e.path)}"
        if present:
            kwargs[e.name] = _decode(_without_none(e.hint) if e.omit_none else e.hint, raw, at)
        elif e.omit_none:
            kwargs[e.name] = None
        elif e.required:
            raise JsonShapeError(f"{at}: missing for {cls.__name__}")
    _drop_taken(rest, copied, where, cls.__name__)
    if flat is not None:
        kwargs[flat.name] = _decode(flat.hint, rest, where)
        rest = {}
    if rest:
        unknown = ", ".join(repr(k) for k in rest)
        raise JsonShapeError(f"{where}: unknown key(s) {unknown} for {cls.__name__}")
    return cls(**kwargs)


def _drop_taken(node: dict[str, Any], copied: set[int], where: str, owner: str) -> None:
    """Remove the nested objects whose every key a field took; a key left in one is
    unknown."""
    for key in list(node):
        child = node[key]
        if not (isinstance(child, dict) and id(child) in copied):
            continue
        _drop_taken(child, copied, f"{where}.{key}", owner)
        if child:
            unknown = ", ".join(repr(k) for k in child)
            raise JsonShapeError(f"{where}.{key}: unknown key(s) {unknown} for {owner}")
        del node[key]
