"""ray.workflow 2.47 code, run unchanged but for its import line (issue 10, item 10).

One module per page of the ray.workflow documentation (Getting Started, Key Concepts,
Workflow Management, Metadata) and one for the examples of its repository
(``python/ray/workflow/examples``). Each test is the scenario of one snippet, written
against the public names of ``engine`` imported as ``workflow`` (and Ray's own API), and
its docstring says where it comes from and what 2.47 did. Where 2.47's behaviour was not
plain from the docs, it was tried on ``ray==2.47.1`` (in a throwaway virtualenv) and the
docstring says what it did.

Changes to a snippet, always said in its test: the storage is given to
``workflow.init`` (Ray 2.60 removed ``ray.init(storage=...)``, see the README's migration
table); a bare ``workflow.init()`` becomes an init on the page's storage (a test session
runs many storages on one cluster, where a bare init refuses to guess); randomness and
external services (``random``, an HTTP fibonacci API) become deterministic local code;
GPU requests become CPU requests (the test cluster has no GPU).

A scenario that fails because of a known, open issue is marked
``xfail(strict=True, reason="issue N: ...")``, so it turns into a failure, to be unmarked, once
that is fixed. (Written while issue 10 was open, 20 of them were marked so; all of them pass
since its items landed.)

Out of scope: virtual actors (gone from ray.workflow before 2.47) and events,
``workflow.sleep`` and ``wait_for_event`` (the Events page and the snippets that use
them): they come with their own issue.
"""
