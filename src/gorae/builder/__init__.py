"""Dockerfile builds (the classic builder's behaviour): `parser` (the `dockerfile` package, validated, with
line-numbered errors), `words` (variable substitution), `ctxindex` (the received context indexed without
extracting it), `context` (the context on disk when a step needs its files, in-scope path resolution,
checksums), `steps` (the evaluator: each instruction, RUN in a real container), `history` (configs and history
entries as dockerd writes them), `cache`, `service` (`BuildService`: one build, the cache's usage and prune).
Nothing here speaks HTTP.
"""
