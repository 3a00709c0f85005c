"""Fixtures for tests that run on both search backends: the embedded index, and Meilisearch
through the fake server at the HTTP boundary (tests/fake_meili.py). A test module imports them:
`from tests.search_backends import meili, search_backend  # noqa: F401 - fixtures`."""

from __future__ import annotations

import uuid

import pytest

from publishing.search.embedded import EmbeddedSearch
from publishing.search.meili import MeiliSearch
from tests.fake_meili import FakeMeilisearch

FAKE_KEY = "fake-master-key"


@pytest.fixture(scope="module")
def meili():
    fake = FakeMeilisearch(master_key=FAKE_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture(params=("embedded", "meilisearch"))
def search_backend(request, engine):
    """An empty index of the test's own, of either backend."""
    if request.param == "embedded":
        backend = EmbeddedSearch(engine)
        backend.rebuild([])
        yield backend
        return
    fake = request.getfixturevalue("meili")
    backend = MeiliSearch(
        fake.url, FAKE_KEY, f"test_{uuid.uuid4().hex[:12]}",
        backoff=0.01, search_timeout=(1.0, 60.0),
    )
    backend.rebuild([])
    yield backend
    backend.drop()
