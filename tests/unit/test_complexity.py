"""The core stays readable: no function or method in ``core/`` above cyclomatic
complexity 15 (radon's measure, as ``radon cc -s core`` prints it)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

CORE = Path(__file__).resolve().parents[2] / "core"
LIMIT = 15


def test_no_core_function_is_more_complex_than_the_limit():
    over = []
    for path in sorted(CORE.glob("*.py")):
        for block in cc_visit(path.read_text()):
            items = [block, *getattr(block, "methods", [])]
            over += [f"{path.name}:{b.lineno} {b.fullname} {b.complexity}"
                     for b in items if b.complexity > LIMIT]  # fmt: skip
    assert not over, "over the complexity limit:\n" + "\n".join(over)


def test_the_measure_sees_a_complex_function():
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(LIMIT + 1))
    (block,) = cc_visit(f"def f(x):\n{branches}    return -1\n")
    assert block.complexity == LIMIT + 2
