"""Prefect 3 docs, "Run work concurrently" and "Task runners": submit, futures, wait, as_completed,
map with unmapped, futures passed between tasks (also inside dataclasses and pydantic models),
PrefectFutureList, and a flow that returns futures.
"""

import random
import time
from dataclasses import dataclass

from pydantic import BaseModel

from otel_runtime import flow, task, unmapped
from otel_runtime.futures import PrefectFuture, PrefectFutureList, as_completed, wait
from otel_runtime.task_runners import ConcurrentTaskRunner, ThreadPoolTaskRunner


@task
def stop_at_floor(floor: int):
    print(f"elevator moving to floor {floor}")
    time.sleep(floor / 100)
    print(f"elevator stops on floor {floor}")
    return floor


@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def elevator():
    floors = []
    for floor in range(10, 0, -1):
        floors.append(stop_at_floor.submit(floor))
    done, not_done = wait(floors)  # wait for the sequence of futures to complete
    return len(done), len(not_done)


@task
def cool_task():
    return "sup"


@task
def what_did_cool_task_say(what_it_said: str):
    return f"cool task said {what_it_said}"


@flow
def my_workflow():
    future = cool_task.submit()
    return what_did_cool_task_say(future)


@task
def my_task():
    return "I'm a task!"


@flow
def raise_on_failure_flow():
    future = my_task.submit()
    result = future.result(raise_on_failure=False)
    if future.state.is_failed():
        return "failed"
    return result


@task
def add_together(x, y):
    return x + y


@flow
def sum_it(numbers: list[int], static_value: int):
    futures = add_together.map(numbers, static_value)
    return futures.result()


@task
def sum_plus(x, static_iterable):
    return x + sum(static_iterable)


@flow
def sum_it_unmapped(numbers, static_iterable):
    futures = sum_plus.map(numbers, unmapped(static_iterable))
    return futures.result()


@dataclass
class Dataset:
    name: str


@dataclass
class ModelConfig:
    name: str


@task(task_run_name="train on {dataset.name} with {model_config.name}")
def train_model(dataset: Dataset, model_config: ModelConfig) -> dict:
    return {
        "dataset": dataset.name,
        "model": model_config.name,
        "score": random.random(),
    }


@flow
def evaluate_models(datasets: list[Dataset], model_configs: list[ModelConfig]):
    all_futures: list[PrefectFuture[dict[str, object]]] = []
    for dataset in datasets:
        futures = train_model.map(
            dataset=dataset,
            model_config=model_configs,
        )
        all_futures.extend(futures)

    results = [future.result() for future in wait(all_futures).done]
    best = max(results, key=lambda r: r["score"])
    return len(results), best["model"] in {"random_forest", "gradient_boosting"}


@dataclass
class Pair:
    left: object
    right: object


class Order(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    item: object
    quantity: object


@task
def combine(pair: Pair, order: Order, nested: dict):
    return pair.left + pair.right, order.item * order.quantity, nested["deep"][0]


@flow(task_runner=ConcurrentTaskRunner())
def resolves_inside_containers():
    one, two = add_together.submit(0, 1), add_together.submit(1, 1)
    return combine(Pair(one, two), Order(item="ab", quantity=two), {"deep": [one]})


@flow
def returns_futures():
    return add_together.submit(1, 2), [add_together.submit(2, 2)]


@flow
def first_finished():
    futures = stop_at_floor.map([3, 1, 2])
    assert isinstance(futures, PrefectFutureList)
    order = [future.result() for future in as_completed(futures)]
    futures.wait()
    return sorted(order), all(future.state.is_completed() for future in futures)


if __name__ == "__main__":
    print("elevator:", elevator())
    print("my_workflow:", my_workflow())
    print("raise_on_failure:", raise_on_failure_flow())
    resulting_sum = sum_it([1, 2, 3], 5)
    assert resulting_sum == [6, 7, 8]
    resulting_sum = sum_it_unmapped([4, 5, 6], [1, 2, 3])
    assert resulting_sum == [10, 11, 12]
    print("sums: ok")
    print(
        "evaluate_models:",
        evaluate_models(
            datasets=[Dataset("customers"), Dataset("products"), Dataset("orders")],
            model_configs=[ModelConfig("random_forest"), ModelConfig("gradient_boosting")],
        ),
    )
    print("containers:", resolves_inside_containers())
    print("returns_futures:", returns_futures())
    print("as_completed:", first_finished())
