"""pytest fixtures for the egressd lab (root only; see lab.py)."""
import os

import pytest

import lab as labmod


def pytest_configure(config):
    if os.geteuid() != 0:
        raise pytest.UsageError("the netns suite needs root (network namespaces)")
    labmod.reap_stale()


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    return labmod.make_ca(str(tmp_path_factory.mktemp("ca")))


def _lab(request, tmp_path, ca, mode):
    lab = labmod.Lab(tmp_path, ca, mode=mode).up()
    yield lab
    # Stop everything first: the daemon writes its leak report when it exits.
    lab.close()
    reports = lab.sanitizer_reports()
    assert not reports, "sanitizer report(s) from egressd:\n" + "\n".join(reports)
    # A daemon that crashed, failed its SIGTERM or hung fails the test: an
    # attack that kills egressd is a finding, not a pass.
    problems = lab.daemon_problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def gwlab(request, tmp_path, ca):
    yield from _lab(request, tmp_path, ca, "gateway")


@pytest.fixture
def hostlab(request, tmp_path, ca):
    yield from _lab(request, tmp_path, ca, "host")


@pytest.fixture(params=["gateway", "host"])
def anylab(request, tmp_path, ca):
    yield from _lab(request, tmp_path, ca, request.param)
