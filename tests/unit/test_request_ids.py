"""Request ids: 32 hex digits, distinct, and distinct again in a forked worker."""

from __future__ import annotations

import os
import re

from meshkit.context import new_request_id


def test_request_ids_are_32_hex_digits_and_distinct() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_process_draws_other_ids_than_its_parent() -> None:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next id, then leave without running pytest's exit
        os.write(write_end, new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    from_child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", from_child)
    assert from_child != new_request_id()
