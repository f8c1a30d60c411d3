"""with_options, description, ``.fn``, methods, and the Prefect names of the package surface."""

from __future__ import annotations

import threading

import pytest

import otel_runtime
from otel_runtime import flow, runtime, task
from otel_runtime.task_runners import ConcurrentTaskRunner, ThreadPoolTaskRunner
from otel_runtime.testing import CapturedSpans


@task(retries=0, tags=["a"])
def shout(text: str) -> str:
    """Say it loudly."""
    return text.upper()


def test_with_options_returns_a_changed_copy_and_keeps_the_original(spans: CapturedSpans) -> None:
    """``with_options`` gives a new task with the changed options; the original is unchanged."""
    louder = shout.with_options(name="louder", tags=["b"], retries=2)
    assert (louder.name, louder.tags, louder.retries) == ("louder", ("b",), 2)
    assert (shout.name, shout.tags, shout.retries) == ("shout", ("a",), 0)
    assert louder("hi") == "HI"
    assert spans.find("task louder").attributes["task_run.tags"] == ("b",)
    with pytest.raises(TypeError, match="nope"):
        shout.with_options(nope=1)


def test_with_options_carries_hooks_added_by_decorator() -> None:
    """Hooks added with ``@t.on_failure`` are in the copy too, and new ones can be given."""
    seen = []

    @task
    def flaky() -> None:
        raise ValueError("x")

    @flaky.on_failure
    def first(tsk: object, run: object, state: object) -> None:
        seen.append("first")

    copy = flaky.with_options(on_completion=[lambda *_: seen.append("never")])
    with pytest.raises(ValueError, match="x"):
        copy()
    assert seen == ["first"]


def test_description_defaults_to_the_docstring_and_fn_is_the_function() -> None:
    """``description`` is the docstring unless given; ``.fn`` calls the plain function."""
    assert shout.description == "Say it loudly."
    assert task(description="given")(lambda: None).description == "given"
    assert shout.fn("x") == "X"


class Greeter:
    """Flows and tasks as instance, class and static methods."""

    greeting = "hello"

    def __init__(self, name: str) -> None:
        self.name = name

    @task
    def greet(self, punctuation: str) -> str:
        return f"{self.greeting} {self.name}{punctuation}"

    @task
    @classmethod
    def kind(cls) -> str:
        return cls.__name__

    @task
    @staticmethod
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def run(self) -> list[object]:
        return [self.greet("!"), self.kind(), self.add(1, 2), self.greet.submit("?").result()]


def test_methods_static_and_class_methods_run_as_runs(spans: CapturedSpans) -> None:
    """A task on a method gets ``self``, on a class method the class; a static one neither; each call
    is a run, and ``submit`` works on a bound method too."""
    assert Greeter("ann").run() == ["hello ann!", "Greeter", 3, "hello ann?"]
    assert Greeter.add(2, 2) == 4
    assert len(spans.named("task greet")) == 2
    assert len(spans.named("task kind")) == 1


def test_prefect_names_on_the_package_surface() -> None:
    """``ConcurrentTaskRunner`` is the thread-pool runner; ``get_run_logger`` is importable from the
    package as from ``otel_runtime.logging``."""
    from otel_runtime import get_run_logger
    from otel_runtime.logging import get_run_logger as from_logging

    assert ConcurrentTaskRunner is ThreadPoolTaskRunner
    assert get_run_logger is from_logging
    assert "get_run_logger" in dir(otel_runtime)


def test_hooks_run_inside_the_run_context() -> None:
    """A hook sees the run's ``runtime.*`` values and its logger works; it gets the run record."""
    seen = {}

    def hook(tsk: object, run: object, state: object) -> None:
        seen["task_run_id"] = runtime.task_run.id
        seen["record_id"] = getattr(run, "id", None)
        seen["thread"] = threading.current_thread().name
        otel_runtime.get_run_logger().info("from a hook")

    @task(on_completion=[hook])
    def observed() -> None:
        seen["inside"] = runtime.task_run.id

    observed()
    assert seen["task_run_id"] == seen["inside"] == seen["record_id"]
