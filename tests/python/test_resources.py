"""``kiwi.Server``, ``kiwi.Cluster`` and ``kiwi.Database`` on a temporary
directory: ``with`` removes it, and so does the garbage collector for one
nobody closed (the directory never outlives its object)."""

from __future__ import annotations

import gc
import os
from typing import Any, Callable

import pytest

import kiwi

pytestmark = pytest.mark.kiwi_only


def open_database() -> tuple[Any, str]:
    db = kiwi.open()
    assert db.set("k", "v") is True
    return db, db.path


def start_server() -> tuple[Any, str]:
    server = kiwi.Server().start()
    client = server.client()
    assert client.set("k", "v") is True
    client.close()
    return server, server.dir


def start_cluster() -> tuple[Any, str]:
    cluster = kiwi.Cluster(1).start()
    base = os.path.dirname(cluster.nodes[0].dir)
    client = cluster.client()
    assert client.set("k", "v") is True
    client.close()
    return cluster, base


OPENERS: dict[str, Callable[[], tuple[Any, str]]] = {
    "database": open_database,
    "server": start_server,
    "cluster": start_cluster,
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_an_unclosed_temporary_directory_goes_with_its_object(kind: str) -> None:
    obj, path = OPENERS[kind]()
    assert os.path.isdir(path)
    del obj
    gc.collect()
    assert not os.path.exists(path)


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_with_releases_the_temporary_directory(kind: str) -> None:
    obj, path = OPENERS[kind]()
    with obj as entered:
        assert entered is obj
    assert not os.path.exists(path)
    obj.__exit__(None, None, None)  # releasing twice is harmless
