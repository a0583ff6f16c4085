"""Exact tests of the Go text/template engine written for its mutation run (docs/mutation.md, issue 16): each
pins a behaviour of Go's text/template / fmt (docker CLI 28) that a surviving mutant changed."""

from __future__ import annotations
