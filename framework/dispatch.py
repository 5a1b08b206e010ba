"""The signal dispatcher every part of ``framework`` announces itself on.

A :class:`Signal` keeps an ordered list of receivers. ``connect`` and
``disconnect`` replace that list under a lock (copy-on-write); ``send`` never
takes the lock: it reads a per-sender tuple of receiver references that is
rebuilt lazily after any change. Weak references only flag the signal as dirty
when their referent dies, so garbage collection inside a locked section can
never deadlock, and nothing here keeps a weakly connected receiver alive.

Senders match by identity. A sender that can be weakly referenced is held
weakly and its receivers are dropped when it dies, so a new object that reuses
its ``id()`` never receives them; any other sender is held strongly while
receivers are connected for it.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import inspect
import itertools
import keyword
import logging
import os
import sys
import threading
import types
import typing as t
import warnings
import weakref

__all__ = [
    "ANY",
    "DEFERRED",
    "ConnectionInfo",
    "DeprecatedSignal",
    "ModelSignal",
    "Sentinel",
    "Signal",
    "all_signals",
    "receiver",
    "set_debug",
    "set_model_registry",
    "set_on_commit_hook",
]

_logger = logging.getLogger("framework.dispatch")

Receiver = cabc.Callable[..., t.Any]
F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


class Sentinel:
    """A named marker object with a readable ``repr``, such as :data:`ANY`.

    The one sentinel type of the package: every "no value given" or "matches
    anything" marker is a ``Sentinel``, compared with ``is``. Copies and
    pickles of a sentinel are the sentinel itself, provided it is stored under
    its name in the module that created it.

    :param name: its ``repr``, and its attribute name in ``module``.
    :param module: the module that keeps it (default: the caller's).
    """

    __slots__ = ("name", "module")

    def __init__(self, name: str, module: str | None = None) -> None:
        self.name = name
        """The sentinel's name."""
        if module is None:
            module = sys._getframe(1).f_globals.get("__name__", "")
        self.module = module
        """The dotted name of the module holding it."""

    def __repr__(self) -> str:
        return self.name

    def __copy__(self) -> Sentinel:
        return self

    def __deepcopy__(self, memo: dict[int, t.Any]) -> Sentinel:
        return self

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (_find_sentinel, (self.module, self.name))


def _find_sentinel(module: str, name: str) -> Sentinel:
    """Return the sentinel ``name`` of ``module`` (what unpickling calls)."""
    import importlib

    found: Sentinel = getattr(importlib.import_module(module), name)
    return found


ANY = Sentinel("ANY")
"""Sender filter of a receiver connected for every sender (``sender=None``)."""

DEFERRED = Sentinel("DEFERRED")
"""Response recorded for an ``on_commit`` receiver whose call was deferred."""

_ANY_KEY: t.Final = ("any",)
_MAX_CACHED_SENDERS: t.Final = 1024

# The ORM installs a hook that defers ``on_commit=True`` receivers until the
# current transaction commits. It is called as ``hook(callback, named)`` and
# returns True when it took the callback, False to have it called at once.
OnCommitHook = cabc.Callable[[cabc.Callable[[], t.Any], dict[str, t.Any]], bool]
_on_commit_hook: OnCommitHook | None = None

_registry: weakref.WeakValueDictionary[int, Signal] = weakref.WeakValueDictionary()
_signal_seq = itertools.count()


def set_on_commit_hook(hook: OnCommitHook | None) -> OnCommitHook | None:
    """Install the function that defers ``on_commit=True`` receivers.

    The ORM calls this when it is imported; without a hook such receivers are
    called at once, as they would be outside a transaction.

    :param hook: ``hook(callback, named) -> bool``; ``named`` holds the send's
        keyword arguments (``using`` among them for model signals). It returns
        True when it will call ``callback`` after the commit.
    :returns: the hook that was installed before.
    """
    global _on_commit_hook
    previous, _on_commit_hook = _on_commit_hook, hook
    return previous


def all_signals() -> list[Signal]:
    """Return every live :class:`Signal`, in the order they were created."""
    return [_registry[key] for key in sorted(_registry.keys())]


class _StrongRef:
    """Stand-in for a weak reference that holds its object strongly."""

    __slots__ = ("obj",)

    def __init__(self, obj: t.Any) -> None:
        self.obj = obj

    def __call__(self) -> t.Any:
        return self.obj


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """A description of one connected receiver, for tooling."""

    receiver: Receiver
    """The receiver itself."""
    name: str
    """Its qualified name, ``module.qualname``."""
    location: str | None
    """``path:line`` of its definition, when it can be found."""
    sender: t.Any
    """The sender it was connected for, or :data:`ANY`."""
    weak: bool
    """Whether the signal holds it weakly."""
    dispatch_uid: t.Hashable | None
    """The ``dispatch_uid`` it was connected with."""
    priority: int
    """Its priority (higher runs first)."""
    is_async: bool
    """Whether it is a coroutine function, awaited by ``asend``."""
    on_commit: bool
    """Whether its call waits for the current transaction to commit."""


class _Record:
    """One connection: a receiver reference plus its sender filter."""

    __slots__ = (
        "key",
        "ref",
        "sender_key",
        "sender_ref",
        "dispatch_uid",
        "priority",
        "seq",
        "weak",
        "is_async",
        "on_commit",
        "robust",
    )

    key: t.Hashable
    ref: cabc.Callable[[], t.Any]
    sender_key: t.Hashable
    sender_ref: cabc.Callable[[], t.Any] | None
    dispatch_uid: t.Hashable | None
    priority: int
    seq: int
    weak: bool
    is_async: bool
    on_commit: bool
    robust: bool

    def alive(self) -> bool:
        if self.ref() is None:
            return False
        return self.sender_ref is None or self.sender_ref() is not None

    def matches(self, sender: t.Any) -> bool:
        if self.sender_ref is None:
            return True
        return self.sender_ref() is sender


def _receiver_key(receiver: t.Any, dispatch_uid: t.Hashable | None) -> t.Hashable:
    if dispatch_uid is not None:
        return ("uid", dispatch_uid)
    if isinstance(receiver, types.MethodType):
        return (id(receiver.__self__), id(receiver.__func__))
    return id(receiver)


def _describe(receiver: t.Any) -> str:
    target = receiver.__func__ if isinstance(receiver, types.MethodType) else receiver
    name: str | None = getattr(target, "__qualname__", None)
    module: str | None
    if name is None:
        name = type(target).__qualname__
        module = type(target).__module__
    else:
        module = t.cast("str | None", getattr(target, "__module__", None))
    return f"{module}.{name}" if module else name


def _location(receiver: t.Any) -> str | None:
    target = inspect.unwrap(getattr(receiver, "__func__", receiver))
    code = getattr(target, "__code__", None)
    if code is None:
        call = type(target).__dict__.get("__call__")
        code = getattr(call, "__code__", None)
    if code is None:
        return None
    return f"{code.co_filename}:{code.co_firstlineno}"


def _is_async(receiver: t.Any) -> bool:
    # PERF: plain functions and methods answer from their code flags.
    code = getattr(getattr(receiver, "__func__", receiver), "__code__", None)
    if code is not None:
        return bool(code.co_flags & inspect.CO_COROUTINE)
    if inspect.iscoroutinefunction(receiver):
        return True
    call = getattr(receiver, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def _check_receiver(signal: Signal, receiver: t.Any) -> None:
    if not callable(receiver):
        raise TypeError(
            f"Cannot connect {receiver!r} to {signal!r}: receivers must be"
            " callable, for example a function taking (sender, **kwargs)."
        )
    # PERF: plain functions and methods answer from their code flags; the
    # general inspect.signature() path costs several times more per connect.
    code = getattr(getattr(receiver, "__func__", receiver), "__code__", None)
    if code is not None and code.co_flags & inspect.CO_VARKEYWORDS:
        return
    try:
        params = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):
        # Some builtins have no introspectable signature; trust them.
        return
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise ValueError(
            f"Cannot connect {_describe(receiver)} to {signal!r}: receivers must"
            " accept keyword arguments (add **kwargs to its signature), because"
            " signals may grow new arguments."
        )


def _call_async(receiver: Receiver, kwargs: dict[str, t.Any]) -> t.Any:
    # NOTE: imported here: asyncio costs every worker megabytes of memory, and
    # only coroutine receivers called through send() need it.
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        # NOTE: outside the except block: the receiver must not run with
        # "no running event loop" as its current exception (sys.exception()
        # in it, and the context its own errors would be chained to).
        return asyncio.run(receiver(**kwargs))
    raise RuntimeError(
        f"{_describe(receiver)} is a coroutine function and an event loop is"
        " running in this thread: use 'await signal.asend(...)' instead of send()."
    )


Caller = cabc.Callable[
    ["Signal", t.Any, tuple[t.Any, ...], dict[str, t.Any]],
    "list[tuple[Receiver, t.Any]] | None",
]


class _Entry:
    """The receivers of one sender, and the function ``send`` calls them with."""

    __slots__ = ("plain", "refs", "call", "robust")

    def __init__(
        self, plain: bool, refs: tuple[t.Any, ...], call: Caller, robust: Caller
    ) -> None:
        self.plain = plain
        """False when a receiver is async or waits for the commit."""
        self.refs = refs
        """Weak (or strong stand-in) references when plain, else records."""
        self.call = call
        """``call(signal, sender, refs, named)``: the responses, or ``None`` to
        have send() take the generic path (names changed, receiver died)."""
        self.robust = robust
        """The same for send_robust()."""


def _call_none(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> list[tuple[Receiver, t.Any]]:
    return []


def _call_generic(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> list[tuple[Receiver, t.Any]]:
    named["signal"] = signal
    named["sender"] = sender
    # Dereference first: every receiver alive when the send starts is called.
    receivers = [receiver for ref in refs if (receiver := ref()) is not None]
    return [(receiver, receiver(**named)) for receiver in receivers]


def _call_generic_robust(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> list[tuple[Receiver, t.Any]]:
    named["signal"] = signal
    named["sender"] = sender
    receivers = [receiver for ref in refs if (receiver := ref()) is not None]
    responses: list[tuple[Receiver, t.Any]] = []
    for receiver in receivers:
        try:
            response = receiver(**named)
        except Exception as exc:
            signal._log_failure(receiver, exc)
            response = exc
        responses.append((receiver, response))
    return responses


def _call_unprepared(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> None:
    return None


def _call_special(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> list[tuple[Receiver, t.Any]]:
    return signal._send_special(refs, sender, named, robust=False)


def _call_special_robust(
    signal: Signal, sender: t.Any, refs: tuple[t.Any, ...], named: dict[str, t.Any]
) -> list[tuple[Receiver, t.Any]]:
    return signal._send_special(refs, sender, named, robust=True)


# PERF: a receiver called as ``r(**named)`` costs about twice a call with
# literal keywords, because CPython copies the dict at the call site. So
# send() runs a loop-free function, generated once per (receiver count,
# keyword names), that calls each receiver with literal keywords. It returns
# None when the names differ or a receiver died, and send() falls back to
# _call_generic. bench/dispatch.py measures it ("send, 1/10 receivers").
_UNROLL_MAX: t.Final = 24
_callers: dict[tuple[int, frozenset[str], bool], Caller] = {}


def _make_caller(count: int, names: cabc.Iterable[str], robust: bool = False) -> Caller:
    """Return the function that calls ``count`` plain receivers with ``names``.

    With ``robust``, each call catches ``Exception``, logs it and returns it
    as that receiver's response, as send_robust() does.
    """
    if count == 0:
        return _call_none
    key = (count, frozenset(names), robust)
    caller = _callers.get(key)
    if caller is not None:
        return caller
    ordered = sorted(key[1])
    if count > _UNROLL_MAX or not all(
        name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
        for name in ordered
    ):
        return _call_generic_robust if robust else _call_generic
    if len(_callers) > 256:
        _callers.clear()
    unpack = "".join(f"        {name} = _named[{name!r}]\n" for name in ordered)
    keywords = "".join(f", {name}={name}" for name in ordered)
    refs = "".join(f"_f{i}, " for i in range(count))
    receivers = "".join(f"_r{i}, " for i in range(count))
    derefs = "".join(f"_f{i}(), " for i in range(count))
    dead = " or ".join(f"_r{i} is None" for i in range(count))
    if robust:
        calls = "".join(
            f"    try:\n"
            f"        _v{i} = _r{i}(signal=_signal, sender=_sender{keywords})\n"
            f"    except Exception as _exc:\n"
            f"        _signal._log_failure(_r{i}, _exc)\n"
            f"        _v{i} = _exc\n"
            for i in range(count)
        )
        result = ", ".join(f"(_r{i}, _v{i})" for i in range(count))
    else:
        calls = ""
        result = ", ".join(
            f"(_r{i}, _r{i}(signal=_signal, sender=_sender{keywords}))"
            for i in range(count)
        )
    source = (
        "def _caller(_signal, _sender, _refs, _named):\n"
        f"    if len(_named) != {len(ordered)}:\n"
        "        return None\n"
        "    try:\n"
        f"{unpack}"
        "        pass\n"
        "    except KeyError:\n"
        "        return None\n"
        f"    {refs}= _refs\n"
        f"    {receivers}= {derefs}\n"
        f"    if {dead}:\n"
        "        return None\n"
        f"{calls}"
        f"    return [{result}]\n"
    )
    namespace: dict[str, t.Any] = {}
    name = f"<framework.dispatch {'robust ' if robust else ''}caller {count}>"
    exec(compile(source, name, "exec"), namespace)
    caller = t.cast(Caller, namespace["_caller"])
    _callers[key] = caller
    return caller


Emitter = cabc.Callable[..., "Exception | None"]
_emitter_factories: dict[tuple[tuple[bool, ...], tuple[str, ...]], t.Any] = {}


def _make_emitter_factory(strong: tuple[bool, ...], names: tuple[str, ...]) -> t.Any:
    """Return ``factory(signal, *receivers) -> emit`` for plain receivers.

    Each of ``receivers`` is the receiver itself where ``strong`` says so, a
    weak reference to it otherwise. ``emit(sender, *values)`` calls each
    live receiver with literal keywords (``signal``, ``sender`` and ``names``
    bound to ``values``), robustly, and returns the first exception raised
    (each one logged), or ``None``.
    """
    key = (strong, names)
    factory = _emitter_factories.get(key)
    if factory is not None:
        return factory
    if len(_emitter_factories) > 256:
        _emitter_factories.clear()
    params = "".join(f", {name}" for name in names)
    keywords = "".join(f", {name}={name}" for name in names)
    refs = "".join(f", _f{i}" for i in range(len(strong)))
    # Every receiver alive when the send starts is called, as by send_robust():
    # the weak ones are dereferenced first. A strongly held one is bound as
    # it is (it cannot die).
    lines = [f"        _r{i} = _f{i}()\n" for i, held in enumerate(strong) if not held]
    for i, held in enumerate(strong):
        indent = "        "
        if held:
            lines.append(f"        _r{i} = _f{i}\n")
        else:
            lines.append(f"        if _r{i} is not None:\n")
            indent += "    "
        lines.append(
            f"{indent}try:\n"
            f"{indent}    _r{i}(signal=_signal, sender=_sender{keywords})\n"
            f"{indent}except Exception as _exc:\n"
            f"{indent}    _signal._log_failure(_r{i}, _exc)\n"
            f"{indent}    if _first is None:\n"
            f"{indent}        _first = _exc\n"
        )
    source = (
        f"def _factory(_signal{refs}):\n"
        f"    def _emit(_sender{params}):\n"
        "        _first = None\n"
        f"{''.join(lines)}"
        "        return _first\n"
        "    return _emit\n"
    )
    namespace: dict[str, t.Any] = {}
    name = f"<framework.dispatch emitter {len(strong)}>"
    exec(compile(source, name, "exec"), namespace)
    factory = _emitter_factories[key] = namespace["_factory"]
    return factory


def _lone_receiver(records: cabc.Sequence[_Record]) -> Receiver | None:
    """Return the receiver of ``records`` if a send calls it alone, plainly.

    That is: one receiver, for any sender, strongly held, neither async nor
    on_commit. The framework's per-request sends call it directly (app.py,
    wrappers.py); anything else goes through an emitter (see _emitter).
    """
    if len(records) != 1:
        return None
    (rec,) = records
    if rec.weak or rec.sender_ref is not None or rec.is_async or rec.on_commit:
        return None
    return t.cast("Receiver | None", rec.ref())


class Signal:
    """A named event that receivers can subscribe to.

    :param name: the name shown by ``repr`` and in error messages.
    :param doc: who sends the signal, what ``sender`` is, and every argument.
    :param args: the keyword argument names each send carries; checked on
        every send while debug mode is on (see :func:`set_debug`).
    :param logger: where ``send_robust`` logs receiver failures (a logger or
        its name); ``framework.dispatch`` by default.
    """

    def __init__(
        self,
        name: str | None = None,
        doc: str | None = None,
        args: cabc.Iterable[str] | None = None,
        logger: logging.Logger | str | None = None,
    ) -> None:
        self.name = name
        """The signal's name."""
        self.logger = (
            logging.getLogger(logger) if isinstance(logger, str) else logger or _logger
        )
        """The logger ``send_robust`` reports receiver failures on."""
        self.__doc__ = doc
        self.args: frozenset[str] | None = frozenset(args) if args is not None else None
        """The declared keyword argument names, or ``None`` if undeclared."""
        self._lock = threading.Lock()
        self._records: tuple[_Record, ...] = ()
        self.connected = False
        """Whether any receiver is connected, for any sender: the hot-path guard.

        A plain attribute, so reading it costs what reading any attribute
        does: ``if signal.connected: signal.send(...)`` skips building the
        arguments of a send nobody listens to. It is replaced (never
        computed) on every connect and disconnect; after a weakly connected
        receiver is garbage collected it may stay ``True`` until the next
        one. :meth:`has_listeners` answers exactly, for one sender.
        """
        # Per-sender cache: id(sender) -> the receivers send() calls for it.
        self._cache: dict[int, _Entry] = {}
        # The framework's own hot sends (see _emitter): names -> emit.
        self._emitters: dict[tuple[str, ...], Emitter] = {}
        # The one receiver, when that is all a send calls (see _publish).
        self._lone: Receiver | None = None
        self._dirty = False
        self._seq = itertools.count()
        _registry[next(_signal_seq)] = self

    def __repr__(self) -> str:
        if self.name:
            return f"<Signal {self.name!r}>"
        return f"<Signal at {id(self):#x}>"

    # Connecting -----------------------------------------------------------

    def connect(
        self,
        receiver: Receiver,
        sender: t.Any = None,
        weak: bool = True,
        dispatch_uid: t.Hashable | None = None,
        priority: int = 0,
        on_commit: bool = False,
        robust: bool = True,
    ) -> Receiver:
        """Connect ``receiver`` so that it is called on every matching send.

        :param receiver: a callable accepting ``**kwargs``; it is called with
            ``signal``, ``sender`` and the send's keyword arguments.
        :param sender: only sends from this object (matched by identity) reach
            the receiver; ``None`` means any sender.
        :param weak: hold the receiver weakly, so that it disconnects itself
            when it is garbage collected.
        :param dispatch_uid: a hashable that identifies the connection instead
            of the receiver, to prevent duplicates.
        :param priority: receivers with a higher priority run first; equal
            priorities run in connection order.
        :param on_commit: call the receiver only after the current database
            transaction commits (never if it rolls back), or at once outside a
            transaction. Needs the ORM; otherwise the call is immediate.
            Such a call runs robustly: by then the data is committed, so an
            exception it raises is logged with its traceback on
            :attr:`logger` and the other receivers and callbacks still run;
            it never turns the committed write into an error.
        :param robust: ``False`` (only with ``on_commit=True``) lets the
            exception of the receiver's after-commit call propagate instead,
            out of the ``atomic()`` block that committed, as
            ``transaction.on_commit(func, robust=False)`` does.
        :returns: ``receiver``, so that ``connect`` can be used as a decorator.
        :raises TypeError: ``receiver`` is not callable, cannot be weakly
            referenced with ``weak=True``, or ``dispatch_uid`` is unhashable.
        :raises ValueError: ``receiver`` does not accept ``**kwargs``, or
            ``robust=False`` without ``on_commit=True``.
        """
        _check_receiver(self, receiver)
        if not robust and not on_commit:
            raise ValueError(
                f"Cannot connect {_describe(receiver)} to {self!r} with"
                " robust=False: it only applies to on_commit=True receivers."
                " A plain receiver's exception propagates from send() and is"
                " caught by send_robust()."
            )
        if dispatch_uid is not None:
            try:
                hash(dispatch_uid)
            except TypeError:
                raise TypeError(
                    f"dispatch_uid {dispatch_uid!r} given to {self!r}.connect() is"
                    " unhashable; use a string or another hashable value."
                ) from None
        record = _Record()
        record.key = _receiver_key(receiver, dispatch_uid)
        record.dispatch_uid = dispatch_uid
        record.priority = priority
        record.weak = weak
        record.is_async = _is_async(receiver)
        record.on_commit = on_commit
        record.robust = robust
        if weak:
            ref_type = (
                weakref.WeakMethod
                if isinstance(receiver, types.MethodType)
                else weakref.ref
            )
            try:
                record.ref = ref_type(receiver, self._flag_dead)
            except TypeError:
                raise TypeError(
                    f"Cannot connect {_describe(receiver)} to {self!r} weakly: it"
                    " cannot be weakly referenced. Pass weak=False to keep it alive."
                ) from None
        else:
            record.ref = _StrongRef(receiver)
        if sender is None:
            record.sender_key = _ANY_KEY
            record.sender_ref = None
        else:
            record.sender_key = id(sender)
            try:
                record.sender_ref = weakref.ref(sender, self._flag_dead)
            except TypeError:
                record.sender_ref = _StrongRef(sender)

        with self._lock:
            records = self._live_records()
            for existing in records:
                # Live records only: their ids cannot belong to another object.
                if (
                    existing.key == record.key
                    and existing.sender_key == record.sender_key
                ):
                    self._publish(records)
                    return receiver
            record.seq = next(self._seq)
            records.append(record)
            records.sort(key=lambda rec: (-rec.priority, rec.seq))
            self._publish(records)
        return receiver

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: t.Any = None,
        dispatch_uid: t.Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver, identified by itself or its ``dispatch_uid``.

        :param sender: the sender the receiver was connected for.
        :returns: whether a receiver was disconnected.
        """
        if receiver is None and dispatch_uid is None:
            raise TypeError(
                f"{self!r}.disconnect() needs a receiver or a dispatch_uid."
            )
        key = _receiver_key(receiver, dispatch_uid)
        sender_key = _ANY_KEY if sender is None else id(sender)
        with self._lock:
            records = self._live_records()
            kept = [
                rec
                for rec in records
                # Live records only: a matching key is this very receiver (a
                # bound method is a new object on each attribute access, so
                # identity cannot be used for those).
                if not (
                    rec.key == key
                    and rec.sender_key == sender_key
                    and rec.matches(sender)
                )
            ]
            self._publish(kept)
        return len(kept) != len(records)

    def connected_to(
        self, receiver: Receiver, sender: t.Any = None
    ) -> contextlib.AbstractContextManager[Receiver]:
        """Connect ``receiver`` (strongly) for the duration of a ``with`` block."""
        return self._connected_to(receiver, sender)

    @contextlib.contextmanager
    def _connected_to(self, receiver: Receiver, sender: t.Any) -> t.Iterator[Receiver]:
        self.connect(receiver, sender=sender, weak=False)
        try:
            yield receiver
        finally:
            self.disconnect(receiver, sender=sender)

    @contextlib.contextmanager
    def muted(self) -> t.Iterator[None]:
        """Disconnect every receiver inside a ``with`` block, then restore them.

        Receivers connected inside the block are dropped on exit; the original
        receivers come back in their original order.
        """
        with self._lock:
            saved = self._records
            self._publish([])
        try:
            yield
        finally:
            with self._lock:
                self._publish([rec for rec in saved if rec.alive()])

    # Sending --------------------------------------------------------------

    def send(
        self, sender: t.Any, *args: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        """Call every receiver connected for ``sender``, in order.

        A receiver's exception propagates and later receivers do not run.

        :param sender: the object sending the signal; may be ``None``.
        :param named: the keyword arguments passed to every receiver.
        :returns: a list of ``(receiver, response)`` pairs.
        """
        # PERF: no receivers is the common case on every request: one check.
        if not self._records:
            if args:
                raise self._positional_error(args)
            return []
        if args:
            raise self._positional_error(args)
        try:
            entry = self._cache[id(sender)]
        except KeyError:
            entry = self._lookup(sender)
        responses = entry.call(self, sender, entry.refs, named)
        if responses is None:
            # The keyword names changed, or a receiver died: re-pick the
            # caller for these names and take the generic path this time.
            self._check_names(named)
            entry.call = _make_caller(len(entry.refs), named)
            responses = _call_generic(self, sender, entry.refs, named)
        return responses

    def send_robust(
        self, sender: t.Any, *args: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        """Call every receiver like :meth:`send`, but collect exceptions.

        An :class:`Exception` raised by a receiver is logged on the
        ``framework.dispatch`` logger and returned as that receiver's response
        (its ``__traceback__`` set); the remaining receivers still run.
        ``KeyboardInterrupt`` and ``SystemExit`` propagate.
        """
        if args:
            raise self._positional_error(args)
        if not self._records:
            return []
        try:
            entry = self._cache[id(sender)]
        except KeyError:
            entry = self._lookup(sender)
        responses = entry.robust(self, sender, entry.refs, named)
        if responses is None:
            self._check_names(named)
            entry.robust = _make_caller(len(entry.refs), named, robust=True)
            responses = _call_generic_robust(self, sender, entry.refs, named)
        return responses

    async def asend(
        self, sender: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        """Call every receiver, awaiting coroutine receivers, in order.

        Synchronous receivers are called directly. Exceptions propagate.
        """
        return await self._asend(sender, named, robust=False)

    async def asend_robust(
        self, sender: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        """Await every receiver like :meth:`asend`, collecting exceptions."""
        return await self._asend(sender, named, robust=True)

    def has_listeners(self, sender: t.Any = None) -> bool:
        """Return whether any live receiver would be called for ``sender``."""
        if not self._records:
            return False
        try:
            entry = self._cache[id(sender)]
        except KeyError:
            entry = self._lookup(sender)
        if entry.plain:
            return any(ref() is not None for ref in entry.refs)
        return any(rec.ref() is not None for rec in entry.refs)

    def connections(self) -> list[ConnectionInfo]:
        """Describe every live receiver, in the order they would run."""
        infos = []
        for rec in self._records:
            receiver = rec.ref()
            if receiver is None:
                continue
            if rec.sender_ref is None:
                sender = ANY
            else:
                sender = rec.sender_ref()
                if sender is None:
                    continue
            infos.append(
                ConnectionInfo(
                    receiver=receiver,
                    name=_describe(receiver),
                    location=_location(receiver),
                    sender=sender,
                    weak=rec.weak,
                    dispatch_uid=rec.dispatch_uid,
                    priority=rec.priority,
                    is_async=rec.is_async,
                    on_commit=rec.on_commit,
                )
            )
        return infos

    # Internals --------------------------------------------------------------

    def _flag_dead(self, ref: t.Any) -> None:
        # NOTE: runs from the garbage collector, possibly while this thread
        # holds self._lock: it must not take the lock or do real work. A new
        # dict makes every sender's snapshot stale; connect/disconnect prune.
        self._dirty = True
        self._cache = {}
        self._emitters = {}

    def _live_records(self) -> list[_Record]:
        # Caller holds self._lock.
        if self._dirty:
            self._dirty = False
            return [rec for rec in self._records if rec.alive()]
        return list(self._records)

    def _publish(self, records: list[_Record]) -> None:
        # Caller holds self._lock. Order matters for lock-free readers: the
        # new records first, then the empty cache (see _lookup).
        self._records = tuple(records)
        self._lone = _lone_receiver(records)
        self.connected = bool(records)
        self._cache = {}
        self._emitters = {}

    def _lookup(self, sender: t.Any) -> _Entry:
        # Read the cache before the records: if a writer publishes in
        # between, this entry lands in the discarded dict, never in the new.
        cache = self._cache
        records = self._records
        sender_key = id(sender)
        matched = [
            rec
            for rec in records
            if (rec.sender_key is _ANY_KEY or rec.sender_key == sender_key)
            and rec.matches(sender)
            and rec.ref() is not None
        ]
        plain = not any(rec.is_async or rec.on_commit for rec in matched)
        if plain:
            refs = tuple(rec.ref for rec in matched)
            entry = _Entry(True, refs, _call_unprepared, _call_unprepared)
        else:
            entry = _Entry(False, tuple(matched), _call_special, _call_special_robust)
        if len(cache) >= _MAX_CACHED_SENDERS:
            cache.clear()
        cache[sender_key] = entry
        return entry

    def _send_special(
        self,
        records: tuple[_Record, ...],
        sender: t.Any,
        named: dict[str, t.Any],
        robust: bool,
    ) -> list[tuple[Receiver, t.Any]]:
        self._check_names(named)
        named["signal"] = self
        named["sender"] = sender
        responses: list[tuple[Receiver, t.Any]] = []
        for rec in records:
            receiver = rec.ref()
            if receiver is None:
                continue
            try:
                if rec.on_commit:
                    response = self._defer(
                        receiver, named, rec.is_async, robust or rec.robust
                    )
                elif rec.is_async:
                    response = _call_async(receiver, named)
                else:
                    response = receiver(**named)
            except Exception as exc:
                if not robust:
                    raise
                self._log_failure(receiver, exc)
                response = exc
            responses.append((receiver, response))
        return responses

    async def _asend(
        self, sender: t.Any, named: dict[str, t.Any], robust: bool
    ) -> list[tuple[Receiver, t.Any]]:
        if not self._records:
            return []
        try:
            entry = self._cache[id(sender)]
        except KeyError:
            entry = self._lookup(sender)
        self._check_names(named)
        named["signal"] = self
        named["sender"] = sender
        responses: list[tuple[Receiver, t.Any]] = []
        for item in entry.refs:
            rec = item if isinstance(item, _Record) else None
            receiver = item() if rec is None else rec.ref()
            if receiver is None:
                continue
            try:
                if rec is not None and rec.on_commit:
                    response = self._defer(
                        receiver, named, rec.is_async, robust or rec.robust
                    )
                elif rec is not None and rec.is_async:
                    response = await receiver(**named)
                else:
                    response = receiver(**named)
            except Exception as exc:
                if not robust:
                    raise
                self._log_failure(receiver, exc)
                response = exc
            responses.append((receiver, response))
        return responses

    def _defer(
        self, receiver: Receiver, kwargs: dict[str, t.Any], is_async: bool, robust: bool
    ) -> t.Any:
        def call() -> t.Any:
            try:
                if is_async:
                    return _call_async(receiver, kwargs)
                return receiver(**kwargs)
            except Exception as exc:
                if not robust:
                    raise
                self._log_failure(receiver, exc)
                return exc

        hook = _on_commit_hook
        if hook is not None and hook(call, kwargs):
            return DEFERRED
        return call()

    def _emitter(self, names: tuple[str, ...]) -> Emitter:
        """Return ``emit(sender, *values)``: a robust send of ``names=values``.

        ``names`` are the signal's argument names (identifiers that do not
        start with ``_``), in the order ``emit`` takes their values.

        NOTE: internal, for the framework's sends on every request (app.py,
        wrappers.py): read ``signal._emitters[names]`` first, and call this
        on a ``KeyError``. ``emit`` calls the receivers :meth:`send_robust`
        would, in the same order and the same way, logs each failure, and
        returns the first exception raised, or ``None``.

        PERF: a send_robust() to the request signals' few receivers costs
        more than the receivers themselves (the keyword dict, the sender
        lookup, the list of responses); with receivers for any sender only,
        ``emit`` takes its values positionally and is generated for them.
        Any other case (a receiver for one sender, async or on_commit
        receivers, more than ``_UNROLL_MAX``) is send_robust() itself.
        Connecting or disconnecting, or a receiver dying, drops every emit.
        A lone strongly held receiver (``_lone``) is called by those sends
        themselves, one frame less; this is for every other set.
        """
        # Read the dict before the records, as _lookup() does the cache.
        emitters = self._emitters
        records = self._records
        self._check_args(dict.fromkeys(names))
        self._check_names(dict.fromkeys(names))
        emit: Emitter
        if len(records) > _UNROLL_MAX or any(
            rec.sender_ref is not None or rec.is_async or rec.on_commit
            for rec in records
        ):

            def emit(sender: t.Any, *values: t.Any) -> Exception | None:
                named = dict(zip(names, values, strict=True))
                for _receiver, response in self.send_robust(sender, **named):
                    # A raised exception has its traceback; an exception
                    # object a receiver returned is a response like any.
                    if (
                        isinstance(response, Exception)
                        and response.__traceback__ is not None
                    ):
                        return response
                return None

        else:
            strong = tuple(not rec.weak for rec in records)
            factory = _make_emitter_factory(strong, names)
            emit = factory(
                self, *(rec.ref() if not rec.weak else rec.ref for rec in records)
            )
        emitters[names] = emit
        return emit

    def _check_names(self, named: dict[str, t.Any]) -> None:
        if "signal" in named:
            raise TypeError(
                f"{self!r}.send() got an argument named 'signal'; receivers get"
                " the signal itself under that name. Rename the argument."
            )

    def _log_failure(self, receiver: Receiver, exc: Exception) -> None:
        self.logger.error(
            "Error calling %s in %r", _describe(receiver), self, exc_info=exc
        )

    def _positional_error(self, args: tuple[t.Any, ...]) -> TypeError:
        return TypeError(
            f"{self!r}.send() takes the sender as its only positional argument;"
            f" got {len(args)} more. Pass the other arguments by keyword."
        )

    def _checked_send(
        self, sender: t.Any, *args: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        self._check_args(named)
        return _unchecked_send(self, sender, *args, **named)

    def _checked_send_robust(
        self, sender: t.Any, *args: t.Any, **named: t.Any
    ) -> list[tuple[Receiver, t.Any]]:
        self._check_args(named)
        return _unchecked_send_robust(self, sender, *args, **named)

    def _check_args(self, named: dict[str, t.Any]) -> None:
        if self.args is None:
            return
        sent = frozenset(named)
        if sent != self.args:
            unexpected = sorted(sent - self.args)
            missing = sorted(self.args - sent)
            raise TypeError(
                f"{self!r} was sent with unexpected arguments {unexpected} and"
                f" without {missing}; it declares {sorted(self.args)}."
            )


_unchecked_send = Signal.send
_unchecked_send_robust = Signal.send_robust


def set_debug(enabled: bool) -> None:
    """Turn the check of every send's keyword names against ``args`` on or off.

    It is off by default and costs nothing then: switching it on swaps the
    send methods for checking ones. ``FRAMEWORK_DISPATCH_DEBUG=1`` in the
    environment turns it on at import time.
    """
    if enabled:
        Signal.send = Signal._checked_send  # type: ignore[method-assign]
        Signal.send_robust = Signal._checked_send_robust  # type: ignore[method-assign]
    else:
        Signal.send = _unchecked_send  # type: ignore[method-assign]
        Signal.send_robust = _unchecked_send_robust  # type: ignore[method-assign]


if os.environ.get("FRAMEWORK_DISPATCH_DEBUG", "") not in ("", "0"):
    set_debug(True)  # pragma: no cover - tested in a subprocess


def _caller_stacklevel() -> int:
    """Return the stacklevel of the first frame outside this module."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class DeprecatedSignal:
    """A deprecated name for another signal; connecting to it warns.

    Receivers connected through it are connected to the target signal, so
    they receive exactly the target's sends.
    """

    def __init__(self, name: str, target: Signal, removed_in: str) -> None:
        self.name = name
        """The deprecated name."""
        self.target = target
        """The signal that replaces it."""
        self.removed_in = removed_in
        """The version that will remove it."""
        self.__doc__ = f"Deprecated alias of ``{target.name}``."

    def __repr__(self) -> str:
        return f"<DeprecatedSignal {self.name!r} -> {self.target.name!r}>"

    def connect(self, receiver: Receiver, *args: t.Any, **kwargs: t.Any) -> Receiver:
        """Warn, then connect ``receiver`` to the target signal."""
        warnings.warn(
            f"The {self.name} signal is deprecated and will be removed in"
            f" framework {self.removed_in}; connect to {self.target.name} instead.",
            DeprecationWarning,
            stacklevel=_caller_stacklevel(),
        )
        return self.target.connect(receiver, *args, **kwargs)

    def disconnect(self, *args: t.Any, **kwargs: t.Any) -> bool:
        """Disconnect from the target signal."""
        return self.target.disconnect(*args, **kwargs)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.target, name)


# The ORM installs its model registry here when it is imported; string
# senders connected before that wait in _pending_lazy (label, operation, what).
_model_registry: t.Any = None
_pending_lazy: list[tuple[str, cabc.Callable[[t.Any], t.Any], str]] = []
_lazy_lock = threading.Lock()


def set_model_registry(registry: t.Any) -> t.Any:
    """Install the registry that resolves lazy ``"app_label.Model"`` senders.

    The ORM calls this when it is imported, with ``framework.orm.registry``;
    string senders connected before then are handed to it now.

    :param registry: an object with ``lazy_model_operation(function, label,
        what)``, which calls ``function(model)`` once the model exists.
    :returns: the registry installed before.
    """
    global _model_registry
    with _lazy_lock:
        previous, _model_registry = _model_registry, registry
        pending = list(_pending_lazy)
        _pending_lazy.clear()
    for label, operation, what in pending:
        registry.lazy_model_operation(operation, label, what)
    return previous


def pending_model_senders() -> list[str]:
    """Return the string senders waiting for the ORM to be imported."""
    with _lazy_lock:
        return [label for label, _, _ in _pending_lazy]


def _check_label(signal: Signal, label: str) -> None:
    app_label, dot, name = label.partition(".")
    if not (app_label and dot and name) or "." in name:
        raise ValueError(
            f"{signal!r}: a string sender must be 'app_label.ModelName', got {label!r}."
        )


class ModelSignal(Signal):
    """A signal sent by models: ``sender`` may also be ``"app_label.ModelName"``.

    As in Django, a string sender is lazy: the receiver is connected to the
    model once it is registered, whether that is before or after the
    ``connect``. A label that names no model is an error, never a receiver
    that silently never runs: at ``connect`` when the apps are ready,
    otherwise when they become ready (``framework.apps.apps.populate()``).
    """

    def connect(
        self,
        receiver: Receiver,
        sender: t.Any = None,
        weak: bool = True,
        dispatch_uid: t.Hashable | None = None,
        priority: int = 0,
        on_commit: bool = False,
        robust: bool = True,
        apps: t.Any = None,
    ) -> Receiver:
        """Connect ``receiver`` as :meth:`Signal.connect` does.

        :param sender: a model class, ``"app_label.ModelName"``, or ``None``.
        :param apps: the model registry that resolves a string sender
            (default: ``framework.orm.registry``), as Django's ``apps``.
        :raises LookupError: a string sender names no model of ready apps.
        """
        options: dict[str, t.Any] = {
            "weak": weak,
            "dispatch_uid": dispatch_uid,
            "priority": priority,
            "on_commit": on_commit,
            "robust": robust,
        }
        if not isinstance(sender, str):
            return super().connect(receiver, sender, **options)
        _check_receiver(self, receiver)
        _check_label(self, sender)

        def connect_model(model: t.Any) -> None:
            Signal.connect(self, receiver, model, **options)

        what = f"{_describe(receiver)} connected to {self!r}"
        self._lazy(apps, sender, connect_model, what)
        return receiver

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: t.Any = None,
        dispatch_uid: t.Hashable | None = None,
        apps: t.Any = None,
    ) -> bool:
        """Disconnect as :meth:`Signal.disconnect` does; ``sender`` may be a label.

        With a label of a model not registered yet, the disconnection waits
        for it (undoing a waiting ``connect``) and this returns False.
        """
        if not isinstance(sender, str):
            return super().disconnect(receiver, sender, dispatch_uid)
        _check_label(self, sender)
        done: list[bool] = []

        def disconnect_model(model: t.Any) -> None:
            done.append(Signal.disconnect(self, receiver, model, dispatch_uid))

        what = f"disconnecting {receiver!r} from {self!r}"
        self._lazy(apps, sender, disconnect_model, what)
        return bool(done and done[0])

    def _lazy(
        self,
        apps: t.Any,
        label: str,
        operation: cabc.Callable[[t.Any], t.Any],
        what: str,
    ) -> None:
        if apps is None:
            with _lazy_lock:
                apps = _model_registry
                if apps is None:
                    _pending_lazy.append((label, operation, what))
                    return
        apps.lazy_model_operation(operation, label, what)


SignalLike = Signal | DeprecatedSignal


def receiver(
    signal: SignalLike | cabc.Iterable[SignalLike], **connect_kwargs: t.Any
) -> cabc.Callable[[F], F]:
    """Connect the decorated function to one signal or to each of a list.

    :param signal: a signal, or a list or tuple of signals.
    :param connect_kwargs: passed on to :meth:`Signal.connect` (``sender``,
        ``weak``, ``dispatch_uid``, ``priority``, ``on_commit``, ``robust``).
    """

    def decorator(func: F) -> F:
        signals = signal if isinstance(signal, list | tuple) else (signal,)
        for sig in signals:
            sig.connect(func, **connect_kwargs)
        return func

    return decorator
