"""Unit tests start no process and open no network connection, not even to 127.0.0.1.

The guard below makes that a rule rather than a convention: a unit test that reaches a
subprocess (git, terraform, a server) or an IP socket fails, naming what it tried, even when
the code under test catches the error. Such a test belongs in tests/integration.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest


@pytest.fixture(autouse=True)
def no_processes_or_network(monkeypatch):
    tried: list[str] = []

    def refuse(what: str):
        tried.append(what)
        raise AssertionError(f"a unit test {what}: it belongs in tests/integration")

    def refuse_process(name: str):
        def refused(*args, **kwargs):
            command = args[1] if name == "subprocess" and len(args) > 1 else args
            refuse(f"started a process ({name}: {command!r})")

        return refused

    def refuse_ip(real, name: str):
        def guarded(sock, address, *args, **kwargs):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                refuse(f"used the network (socket.{name} {address!r})")
            return real(sock, address, *args, **kwargs)

        return guarded

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse_process("subprocess"))
    for name in ("system", "posix_spawn", "posix_spawnp", "fork", "forkpty"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse_process(f"os.{name}"))
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse_ip(getattr(socket.socket, name), name))
    yield
    assert not tried, f"a unit test {tried[0]}: it belongs in tests/integration"
