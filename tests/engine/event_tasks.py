"""Listeners and tasks for the event tests (a module, so the listener actor and workers import them)."""

import asyncio
import os
import time

import ray

import engine as workflow
from engine.event_listener import EventListener
from engine.http_event_provider import HTTPListener
from tests.engine.tasks import count, note


class FileListener(EventListener):
    """The event is a file's content, once the file exists; every poll and commit is counted
    in ``<path>.polls`` / ``<path>.commits``. A commit waits while ``<path>.hold`` exists, and
    fails while ``<path>.refuse`` does."""

    async def poll_for_event(self, path):
        note(path + ".polls", "poll")
        while not os.path.exists(path):
            await asyncio.sleep(0.05)
        with open(path) as f:
            return {"path": path, "content": f.read()}

    async def event_checkpointed(self, event):
        path = event["path"]
        note(path + ".commits", event["content"])
        while os.path.exists(path + ".hold"):
            await asyncio.sleep(0.05)
        if os.path.exists(path + ".refuse"):
            raise RuntimeError("the source refused the commit")


class BrokenListener(EventListener):
    async def poll_for_event(self, reason):
        raise ValueError(f"no event source: {reason}")


class UnpicklableEventListener(EventListener):
    async def poll_for_event(self):
        import threading

        return threading.Lock()


class KeyedHTTPListener(HTTPListener):
    """An HTTPListener that also commits: still a mailbox wait (it keeps poll_for_event)."""

    async def event_checkpointed(self, event):
        key, payload = event
        note(payload["commits"], key)


@ray.remote
def stamp(value):
    """The value and when this task ran (Unix seconds)."""
    return {"value": value, "at": time.time()}


@ray.remote
def key_when_marked(key, marker):
    """Returns ``key`` once ``marker`` exists (so a wait on that key starts only then)."""
    while not os.path.exists(marker):
        time.sleep(0.05)
    return key


@ray.remote
def guarded(listener, arg):
    """A catch_exceptions task whose continuation is a wait (how a wait's failure is caught)."""
    return workflow.continuation(workflow.wait_for_event(listener, arg))


def wait_for(condition, what, timeout=90.0):
    """``condition()``'s first true value, polled; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def log_of(workflow_id, kind=None, task_id=None):
    """The workflow's events in the current storage (those of type ``kind`` and task ``task_id``)."""
    from engine.api._init import context
    from engine.store._sync import run_sync
    from replay import read_events

    async def read():
        return [event async for _seq, event in read_events(context().storage, workflow_id)]
    return [e for e in run_sync(read()) if (kind is None or isinstance(e, kind))
            and (task_id is None or e.task_id == task_id)]


def commits(path):
    return count(path + ".commits")


def polls(path):
    return count(path + ".polls")


class Message:
    """A queue message, as a Kafka client's (``.topic()``, ``.value()``)."""

    def __init__(self, topic, value):
        self._topic, self._value = topic, value

    def topic(self):
        return self._topic

    def value(self):
        return self._value


class Consumer:
    """A stand-in for the docs' Kafka ``Consumer``: a topic is a file; a commit is written beside it."""

    def __init__(self, config):
        assert config == {"enable.auto.commit": False}
        self.topics = []

    def subscribe(self, topic):
        self.topics.append(topic)

    async def poll(self):
        while not os.path.exists(self.topics[-1]):
            await asyncio.sleep(0.05)
        with open(self.topics[-1]) as f:
            return Message(self.topics[-1], f.read())

    def commit(self, message, asynchronous=True):
        with open(message.topic() + ".committed", "w") as f:
            f.write(message.value())


class QueueEventListener(EventListener):
    """events.rst's QueueEventListener, subclassing EventListener (the page's does not)."""

    def __init__(self):
        # Initialize the poll consumer.
        self.consumer = Consumer({'enable.auto.commit': False})

    async def poll_for_event(self, topic):
        self.consumer.subscribe(topic)

        message = await self.consumer.poll()
        return message

    async def event_checkpointed(self, event):
        self.consumer.commit(event, asynchronous=False)
