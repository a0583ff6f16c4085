"""Dockerfile builds (the classic builder's behaviour): `parser` (the `dockerfile` package, validated, with
line-numbered errors), `words` (variable substitution), `context` (the build
context on disk, in-scope path resolution, content checksums), `steps` (the evaluator: each instruction, RUN in
a real container), `service` (`BuildService`: one build's stream, the cache, prune). Nothing here speaks HTTP.
"""
