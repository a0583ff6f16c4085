"""Dockerfile builds (the classic builder's behaviour): `parser` (the `dockerfile` package, validated, with
line-numbered errors), `words` (variable substitution), `ctxindex` (the
received context indexed without extracting it), `context` (the context on disk when a step needs its files,
in-scope path resolution, checksums), `steps` (the evaluator: each instruction, RUN in
a real container), `service` (`BuildService`: one build's stream, the cache, prune). Nothing here speaks HTTP.
"""
