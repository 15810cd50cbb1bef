"""A JAX circuit acting one control step at a time, as `circuitdsl.envs.swim.CircuitPolicy` drives it.

Each act is one call of one jitted program, and as few arrays as possible cross that call: two in, the carry and
the raw joint angles, and one out, the new carry.  The carry is the circuit's prepared parameters
(`JaxCircuit.prepare`: effective values and group operators, computed once per change of the parameters, not in
every act), its state and its last action, side by side in one flat array when they share a dtype, which is
donated, so the new carry is written over the old one's memory, and the action is read from its tail (else their
arrays as they are, not donated).  A jitted call on a CPU costs about 1 us per array it takes or returns, and the
runtime code it runs leaves the caches colder for the physics step after it (docs/engine.md, "Acting in the swim
task"), so the call itself is most of what a JAX policy costs per step.  The program is the circuit's own `step`,
traced once per structure of the carry, so the actions are those `step` gives."""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from circuitdsl.envs.swim import normalise_joints


class JaxActing:
    """The jitted step of a JAX circuit on raw joint angles; `params` is passed to each `act` (the policy's current
    table), `reset` starts a fresh state."""

    def __init__(self, compiled: Any, joints: int, inputs: str, output: str) -> None:
        self.compiled, self.joints, self.inputs, self.output = compiled, joints, inputs, output
        self._runs: dict[tuple[Any, ...], _Programs] = {}  # per structure of the prepared parameters and state
        self._run: Any = None  # the jitted step for the carry: carry, angles -> carry
        self._carry: Any = None  # (prepared parameters, state, action): one flat array when they share a dtype
        self._unravel: Callable[[Any], Any] = _same  # the carry as that triple
        self._action: Callable[[Any], np.ndarray] = _last  # the carry's action, as float64
        self._fresh: Any = None  # a reset's initial state, carried from the next act on
        self._params: Any = None  # the table the carry's parameters were prepared from; None: prepare at next act
        self._keys: list[Any] = []  # its keys and entries then (held: no identity is reused)
        self._entries: list[Any] = []

    @property
    def state(self) -> Any:
        """The state after the last act, as the circuit's `step` gives it (None before the first reset or act; the
        carry is donated to the next act, so a state read now is a copy)."""
        if self._fresh is not None or self._carry is None:
            return self._fresh
        return self._unravel(self._carry)[1]

    def reset(self, batch: int) -> None:
        """A fresh initial state for `batch` swimmers (the parameters are prepared again at the next act)."""
        self._fresh, self._params = self.compiled.initial_state(batch), None

    def act(self, params: Any, angles: np.ndarray) -> np.ndarray:
        """The action for the raw joint angles [batch, joints], as float64, with `params`: prepared again when the
        table or one of its keys or entries is not the one prepared last."""
        if (params is not self._params or list(params) != self._keys
                or any(map(operator.is_not, params.values(), self._entries))):
            self._read(params, angles)
        self._carry = carry = self._run(self._carry, angles)
        return self._action(carry)

    def _read(self, params: Any, angles: np.ndarray) -> None:
        """The carry with `params` prepared, the current state (the initial state for the angles' batch before any
        reset) and room for the action, and the programs for its structure.  The table is kept to compare while
        the table and its entries are the same objects, when every entry is a JAX array (immutable); entries of
        any other kind (numpy arrays can change in place) are prepared again at every act."""
        state = self.state
        carried = (self.compiled.prepare(params), self.compiled.initial_state(len(angles)) if state is None else state)
        arrays, tree = jax.tree_util.tree_flatten(carried)
        key = (tree, tuple((np.shape(x), np.result_type(x)) for x in arrays))
        if key not in self._runs:
            self._runs[key] = self._programs(carried, angles)
        programs = self._runs[key]
        self._run, self._unravel, self._action = programs.step, programs.unravel, programs.action
        self._carry, self._fresh = programs.pack((*carried, np.zeros(programs.shape, programs.dtype))), None
        immutable = all(isinstance(x, jax.Array) for x in params.values())
        self._params = params if immutable else None
        self._keys, self._entries = (list(params), list(params.values())) if immutable else ([], [])

    def _programs(self, carried: Any, angles: np.ndarray) -> _Programs:
        """The programs for the structure of (prepared parameters, state) and the action the step gives."""
        action = jax.eval_shape(lambda carried, angles: self._outputs(carried, angles)[0], carried, angles)
        with_action = (*carried, np.zeros(action.shape, action.dtype))
        if len({np.result_type(x) for x in jax.tree_util.tree_leaves(with_action)}) > 1:
            return _Programs(jax.jit(partial(self._step, _same, _same)), _same, _same, _last, action)
        unravel, size = ravel_pytree(with_action)[1], int(np.prod(action.shape))

        def read(carry: Any) -> np.ndarray:  # the tail of the carry, copied
            return np.asarray(carry)[-size:].reshape(action.shape).astype(np.float64)

        pack = jax.jit(lambda carried: jnp.array(_ravelled(carried), copy=True))  # its own array: it is donated
        return _Programs(jax.jit(partial(self._step, unravel, _ravelled), donate_argnums=0), pack, unravel, read,
                         action)

    def _outputs(self, carried: Any, angles: Any) -> tuple[Any, Any]:
        """The circuit's step on (prepared parameters, state) and raw joint angles, normalised inside the program:
        (action, new state)."""
        prepared, state = carried[:2]
        outputs, state = self.compiled.step(prepared, state, {self.inputs: normalise_joints(angles, self.joints)})
        return outputs[self.output], state

    def _step(self, unravel: Callable[[Any], Any], ravel: Callable[[Any], Any], carry: Any, angles: Any) -> Any:
        """The step on the carry: the new carry."""
        prepared, state, _ = unravel(carry)
        action, state = self._outputs((prepared, state), angles)
        return ravel((prepared, state, action))


class _Programs(NamedTuple):
    """What acting on one structure of carry needs: the jitted step (carry, angles -> carry), the carry made from
    (prepared parameters, state, action) and read back as those, the action read from it as float64, and the
    action's shape and dtype.  One flat array when every array shares a dtype: a fresh copy, donated to each step;
    else the arrays as they are (one vector would turn index arrays into floats; they may be the circuit's own, so
    they are not donated)."""

    step: Callable[..., Any]
    pack: Callable[[Any], Any]
    unravel: Callable[[Any], Any]
    action: Callable[[Any], np.ndarray]
    struct: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.struct.shape)

    @property
    def dtype(self) -> Any:
        return self.struct.dtype


def _ravelled(carried: Any) -> Any:
    return ravel_pytree(carried)[0]


def _same(carried: Any) -> Any:
    return carried


def _last(carried: Any) -> np.ndarray:
    return np.asarray(carried[2], dtype=np.float64)
