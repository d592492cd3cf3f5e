"""Scraping /metrics in tests: the samples of a real answer, parsed by prometheus_client's own parser, and
promtool (Debian's prometheus package) on the same text."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=30)


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str, token: str | None = None) -> Samples:
    r = fetch(url, token)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers["content-type"]
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a missing sample is a failure that lists what there is of that name."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        have = sorted(str(dict(lbl)) for n, lbl in samples if n == name)
        raise AssertionError(f"no sample {name}{labels}; there are: {have}")
    return samples[key]


def grown(after: Samples, before: Samples, name: str, **labels: str) -> float:
    """How much a counter or histogram sample grew between two scrapes (absent: 0). The ``hub`` fixture's hub
    may have served other tests of the module before, and counts only grow."""
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/install-deps.sh does)")
    return path


def check_metrics(text: str) -> None:
    """``promtool check metrics``: the exposition parses and follows Prometheus' naming conventions."""
    out = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), \
        f"promtool check metrics -> {out.returncode}\n{out.stdout}\n{out.stderr}"
