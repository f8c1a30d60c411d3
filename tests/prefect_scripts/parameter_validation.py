"""Prefect 3 docs, "Pass inputs to workflows": inputs validated against the type hints (coerced where
they can be, a ``ParameterTypeError`` before the run otherwise), ``validate_parameters=False``, and
pydantic models as parameters.
"""

from pydantic import BaseModel

from otel_runtime import flow, runtime
from otel_runtime.exceptions import ParameterTypeError


@flow
def my_workflow(name: str = "World"):
    return f"Hello, {name}!"


@flow(validate_parameters=False)
def unvalidated_workflow(name: str = "World"):
    return f"Hello, {name}!"


class Model(BaseModel):
    a: int
    b: str


ran = []


@flow
def flow_that_validates_parameters(model: Model):
    ran.append(model)
    return model


@flow
def count_to(limit: int):
    return limit, type(limit).__name__, runtime.flow_run.parameters["limit"]


if __name__ == "__main__":
    print(my_workflow(name="Marvin"))
    try:
        my_workflow(name=1)  # This will fail with a type validation error
    except ParameterTypeError as exc:
        print(f"my_workflow(name=1) raised ParameterTypeError: {exc}")
    print(unvalidated_workflow(name=1))
    print("coerced:", count_to("3"))
    print("model:", repr(flow_that_validates_parameters(model={"a": "1", "b": "fine"})))
    state = flow_that_validates_parameters(model={"a": "WRONG", "b": "fine"}, return_state=True)
    print(f"state: {state.type.value} {state.name}")
    print(f"message starts: {state.message.splitlines()[0]}")
    print(f"ran: {len(ran)}")
