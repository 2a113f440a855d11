"""The query parameters of an ``s3://`` storage URL, as ray.workflow (Ray <= 2.47) accepted them.

ray.workflow's storage was ``ray.init(storage="s3://bucket/path?...")``, opened by
pyarrow's ``FileSystem.from_uri``, so its URLs carried pyarrow's S3 query
parameters. They map onto this backend's options here; an unknown parameter is
an error that names it and lists the valid ones (pyarrow refused those too).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ._errors import StorageURLError

# pyarrow's S3 URI parameters -> what they become here.
URL_PARAMETERS = {
    "region": "region_name",
    "endpoint_override": "endpoint_url (host[:port], with 'scheme'; or a full URL)",
    "scheme": "'http' or 'https' for endpoint_override (default https); alone: use_ssl",
    "allow_bucket_creation": "create the bucket if it does not exist (true/false)",
    "allow_bucket_deletion": "accepted; no effect (this backend never deletes a bucket)",
    "tls_verify_certificates": "verify (true/false)",
    "tls_ca_file_path": "verify=<CA bundle file>",
    "allow_delayed_open": "accepted; no effect (pyarrow's output-stream tuning)",
    "smart_defaults": "accepted; no effect (pyarrow's client tuning)",
}
# Refused with a reason rather than as unknown.
_UNSUPPORTED = {
    "tls_ca_dir_path": "botocore takes a CA bundle file, not a directory: use tls_ca_file_path=FILE "
                       "or $AWS_CA_BUNDLE",
}
_TRUE, _FALSE = ("true", "1"), ("false", "0")  # what pyarrow parses, in any case


def url_options(query: str, url: str) -> dict:
    """S3 storage options from the query string of ``url`` (``region=...&endpoint_override=...``).

    Args:
        query: the URL's query string, without the ``?``.
        url: the whole URL, for messages (it holds no credentials: those are refused earlier).

    Returns:
        options for :class:`~storage_backends.S3Storage` (``region_name``, ``endpoint_url``,
        ``use_ssl``, ``verify``, ``allow_bucket_creation``).

    Raises:
        StorageURLError: an unknown, unsupported, repeated or malformed parameter.
    """
    items = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in items]
    unknown = sorted({n for n in names if n not in URL_PARAMETERS and n not in _UNSUPPORTED})
    if unknown:
        raise StorageURLError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in S3 storage URL {url!r}; valid: {', '.join(sorted(URL_PARAMETERS))} (pyarrow's S3 URI "
            "parameters, as ray.workflow took them), or pass options such as endpoint_url as "
            "storage_options"
        )
    for name in names:
        if name in _UNSUPPORTED:
            raise StorageURLError(f"query parameter {name!r} in S3 storage URL {url!r} is not supported: "
                                  f"{_UNSUPPORTED[name]}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StorageURLError(f"query parameter {', '.join(map(repr, repeated))} given more than once "
                              f"in S3 storage URL {url!r}")
    params = dict(items)
    options: dict = {}
    if "region" in params:
        options["region_name"] = _nonempty(params, "region", url)
    scheme = params.get("scheme")
    if scheme is not None and scheme not in ("http", "https"):
        raise StorageURLError(f"query parameter scheme={scheme!r} in S3 storage URL {url!r} "
                              "must be 'http' or 'https'")
    if "endpoint_override" in params:
        endpoint = _nonempty(params, "endpoint_override", url)
        # pyarrow's endpoint_override is host[:port], its scheme a separate parameter.
        options["endpoint_url"] = endpoint if "://" in endpoint else f"{scheme or 'https'}://{endpoint}"
    elif scheme is not None:
        options["use_ssl"] = scheme == "https"
    for name in ("allow_bucket_creation", "allow_bucket_deletion", "allow_delayed_open",
                 "tls_verify_certificates"):
        if name in params:
            params[name] = _boolean(params, name, url)  # validated even where it has no effect
    if "allow_bucket_creation" in params:
        options["allow_bucket_creation"] = params["allow_bucket_creation"]
    if params.get("tls_verify_certificates") is False:
        options["verify"] = False  # (pyarrow, too, ignores a CA file when not verifying)
    elif "tls_ca_file_path" in params:
        options["verify"] = _nonempty(params, "tls_ca_file_path", url)
    return options


def _nonempty(params: dict, name: str, url: str) -> str:
    value = params[name]
    if not value:
        raise StorageURLError(f"query parameter {name!r} in S3 storage URL {url!r} is empty")
    return value


def _boolean(params: dict, name: str, url: str) -> bool:
    value = params[name].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise StorageURLError(f"query parameter {name}={params[name]!r} in S3 storage URL {url!r} "
                          "must be true or false")
