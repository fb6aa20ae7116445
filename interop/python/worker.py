"""A Temporal worker written with the official Python SDK, for the cross-language test.

python worker.py ADDRESS TASK_QUEUE SECONDS — serves workflows `py_echo(obj, n)`,
`py_sleep(seconds)` and `py_fail(message)` for SECONDS.
"""
import asyncio
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker


@workflow.defn(name="py_echo")
class PyEcho:
    @workflow.run
    async def run(self, obj: dict, n: int) -> dict:
        return {"lang": "python", "obj": obj, "n": n, "workflowType": workflow.info().workflow_type}


@workflow.defn(name="py_sleep")
class PySleep:
    @workflow.run
    async def run(self, seconds: float) -> dict:
        await asyncio.sleep(seconds)
        return {"slept": seconds}


@workflow.defn(name="py_fail")
class PyFail:
    @workflow.run
    async def run(self, message: str) -> None:
        raise ApplicationError(message, non_retryable=True)


async def main() -> None:
    address, queue, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = await Client.connect(address)
    async with Worker(client, task_queue=queue, workflows=[PyEcho, PySleep, PyFail]):
        print("ready", flush=True)
        await asyncio.sleep(seconds)


if __name__ == "__main__":
    asyncio.run(main())
