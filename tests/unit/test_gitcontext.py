"""Git context URLs read as docker reads them (`gorae.gitcontext`): which strings are git URLs, the remote,
the ref (`master` when none is named) and the subdirectory; hostile strings through hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.gitcontext import GitError, GitRemote, is_git_url, parse


@pytest.mark.parametrize(
    ("url", "git"),
    [
        ("git://host/repo", True),
        ("git@github.com:o/r.git", True),
        ("github.com/o/r", True),
        ("https://host/o/r.git", True),
        ("https://host/o/r.git#main:dir", True),
        ("http://host/o/r.git#v1", True),
        ("https://host/o/r", False),
        ("https://host/o/r.git/x", False),
        ("https://host/ctx.tar.gz", False),
        ("ssh://host/o/r.git", False),
        (".", False),
        ("./r.git", False),
    ],
)
def test_which_urls_are_git_contexts(url: str, git: bool) -> None:
    assert is_git_url(url) is git


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("git://h:9418/r.git", GitRemote("git://h:9418/r.git", "master", "")),
        ("https://h/r.git#dev", GitRemote("https://h/r.git", "dev", "")),
        ("https://h/r.git#dev:sub/dir", GitRemote("https://h/r.git", "dev", "sub/dir")),
        ("https://h/r.git#:sub", GitRemote("https://h/r.git", "master", "sub")),
        ("https://h/r.git#refs/pull/1/head:a:b", GitRemote("https://h/r.git", "refs/pull/1/head", "a:b")),
        ("github.com/o/r#v1", GitRemote("https://github.com/o/r", "v1", "")),
        ("git@github.com:o/r.git#v1:d", GitRemote("git@github.com:o/r.git", "v1", "d")),
    ],
)
def test_remote_ref_and_subdir(url: str, want: GitRemote) -> None:
    assert parse(url) == want


def test_a_ref_like_an_option_is_refused() -> None:
    with pytest.raises(GitError, match="^invalid refspec: --upload-pack=x$"):
        parse("git://h/r.git#--upload-pack=x")


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=200))
def test_any_string_parses_or_is_refused_and_no_ref_is_an_option(url: str) -> None:
    try:
        repo = parse(url)
    except GitError as e:
        assert e.message.startswith("invalid refspec: -")
        return
    assert not repo.ref.startswith("-") and repo.ref
    assert "#" not in repo.remote
    assert is_git_url(url) in (True, False)
