"""A cache hint for compiled loops: ``prefetch(arr, i)`` asks the CPU to bring ``arr[i]`` into
cache without waiting for it, so that a loop can start the memory reads of the iterations to come
while it computes the current one.

The join's scans read grid cells, routes and vertices at random places of arrays of hundreds of
megabytes: each read that misses the cache waits ~100 ns, and issued one after the other they
cost more than all the arithmetic. A hint has no effect on results, only on when the memory
arrives (and it never faults, even past the end of an array).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

AHEAD = 16
"""Iterations ahead a compiled pass asks for the memory of (far enough to hide a cache miss)."""

_cg: Any = cgutils  # numba ships no type hints for its code generation helpers
_I32 = ir.IntType(32)
_PTR = ir.PointerType(ir.IntType(8))


def _hint(write: int) -> Any:
    @intrinsic
    def hint(typingctx: Any, arr: Any, index: Any) -> Any:
        if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
            return None
        sig = types.void(arr, index)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            first = context.cast(builder, args[1], signature.args[1], types.intp)
            idx = [first] + [context.get_constant(types.intp, 0)] * (aryty.ndim - 1)
            ptr = _cg.get_item_pointer2(
                context,
                builder,
                data=ary.data,
                shape=_cg.unpack_tuple(builder, ary.shape, aryty.ndim),
                strides=_cg.unpack_tuple(builder, ary.strides, aryty.ndim),
                layout=aryty.layout,
                inds=idx,
                wraparound=False,
                boundscheck=False,
            )
            fnty = ir.FunctionType(ir.VoidType(), [_PTR, _I32, _I32, _I32])
            fn = _cg.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # read (0) or write (1), high temporal locality (3), data cache (1)
            consts = [ir.Constant(_I32, write), ir.Constant(_I32, 3), ir.Constant(_I32, 1)]
            builder.call(fn, [builder.bitcast(ptr, _PTR), *consts])
            return context.get_dummy_value()

        return sig, codegen

    return hint


def _no_hint(arr: Any, index: Any) -> None:
    """What a hint does when the kernels run as plain Python (``NUMBA_DISABLE_JIT=1``): nothing."""


# As compiled code calls them: prefetch(arr, index) before reading arr[index] (a 1-D array, or the
# first element of row ``index`` of a 2-D one), prefetch_write(arr, index) before writing it. With
# the compiler disabled (to measure the kernels' coverage) they do nothing, as an intrinsic cannot
# run in Python.
_JIT_DISABLED = bool(getattr(numba.config, "DISABLE_JIT", False))  # NUMBA_DISABLE_JIT
prefetch: Callable[[Any, Any], None] = _no_hint if _JIT_DISABLED else _hint(0)
prefetch_write: Callable[[Any, Any], None] = _no_hint if _JIT_DISABLED else _hint(1)
