"""ServerOptions nests what bounds each part of the server; a flag's flat name (as
server.start(**changes) and the tests take it) sets every nested field that flag bounds."""

import pytest

from serving.options import FLAT, ServerOptions


def test_a_flat_name_sets_each_nested_field_it_bounds():
    options = ServerOptions().replace(max_message_bytes=1024, queued_requests=0, rest_workers=2, grpc_port=0)
    assert options.limits.max_message_bytes == options.http.max_body_bytes == 1024
    assert options.http.queued == options.grpc.queued == 0
    assert options.http.workers == 2 and options.grpc.workers == ServerOptions().grpc.workers
    assert options.grpc_port == 0 and options.limits.max_batch_rows == ServerOptions().limits.max_batch_rows


def test_every_flat_name_reaches_a_field_and_an_unknown_one_is_refused():
    defaults = ServerOptions()  # one flag's default, the same in each part it bounds
    assert defaults.limits.max_message_bytes == defaults.http.max_body_bytes
    assert defaults.http.queued == defaults.grpc.queued
    for name, paths in FLAT.items():
        for path in paths:
            part, field = path.split(".")
            assert hasattr(getattr(defaults, part), field), path
    assert ServerOptions().replace(enable_signature_method_name_check=True).enable_signature_method_name_check
    with pytest.raises(TypeError):
        ServerOptions().replace(max_mesage_bytes=1)
