"""Fixtures for tests that run against the lab (`lab/labctl up`).

The lab must already be up (`make test` brings it up); a missing lab is an error, never a skip.
"""
import json
import os
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LAB_STATE_DIR", REPO / "lab" / ".state"))


@pytest.fixture(scope="session")
def lab_state():
    """The lab's state folder: kubeconfig, pki/, lab.json (ports), logs/."""
    if not (STATE / "kubeconfig").exists():
        pytest.fail(f"the lab is not up: {STATE / 'kubeconfig'} is missing; run `make lab-up` first")
    return STATE


@pytest.fixture(scope="session")
def lab_info(lab_state):
    """lab.json: ports and paths that `labctl up` wrote."""
    return json.loads((lab_state / "lab.json").read_text())


@pytest.fixture(scope="session")
def kubeconfig(lab_state):
    return str(lab_state / "kubeconfig")


@pytest.fixture(scope="session")
def api(kubeconfig):
    """An admin ApiClient for the lab."""
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def get_json(api):
    """GET a raw API path with the admin client; returns parsed JSON (or text)."""
    def get(path):
        resp = api.call_api("GET", api.configuration.host + path,
                            header_params={"Accept": "application/json, */*"})
        resp.read()
        try:
            return json.loads(resp.data)
        except ValueError:
            return resp.data.decode()
    return get


@pytest.fixture(scope="session")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def custom(api):
    return client.CustomObjectsApi(api)


@pytest.fixture
def namespace(core):
    """A fresh namespace for one test, deleted afterwards (deletion not awaited)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"virtops.io/test": "true"})))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:  # already gone is fine
        if exc.status != 404:
            raise
