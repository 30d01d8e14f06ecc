"""The Hub's checks of a card's metadata (README.md front matter) in any repo type: ``license`` and ``model-index``.

One home for the Hub's license identifiers (``LICENSE_IDS``, from the Hub's documentation of repository licenses)
and for the shape of ``model-index``. Messages are worded as the Hub's validator words them (``"license" must be
one of [...]``, ``"model-index[0].results[0].task.type" is required``); the client shows them as
``ValueError: Invalid metadata in README.md.`` followed by one line per message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["LICENSE_IDS", "check_card_metadata"]

LICENSE_IDS = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "apple-ascl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0",
    "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2",
    "llama3", "llama3.1", "llama3.2", "llama3.3", "gemma", "unknown", "other",
)


def check_card_metadata(data: Mapping[str, Any]) -> list[str]:
    """The Hub's error messages for the ``license`` and ``model-index`` of a card's metadata (empty: valid)."""
    return _check_license(data.get("license")) + _check_model_index(data.get("model-index"))


def _check_license(value: Any) -> list[str]:
    """``license`` is one id of ``LICENSE_IDS``, or a list of them (cards that name several)."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    bad = [item for item in values if item not in LICENSE_IDS]
    if not bad:
        return []
    return [f'"license" must be one of [{", ".join(LICENSE_IDS)}], got {bad[0]!r}: use "other" with license_name '
            "and license_link for a license not in this list"]


def _check_model_index(value: Any) -> list[str]:
    """``model-index`` is ``[{name, results: [{task: {type}, metrics: [{type, value}]}]}]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        return ['"model-index" must be an array of {name, results} objects']
    errors: list[str] = []
    for where, entry in _objects(value, "model-index", errors):
        errors += _required_string(entry, "name", where)
        results = entry.get("results")
        if not isinstance(results, list):
            errors.append(f'"{where}.results" ' + ("is required" if results is None else "must be an array"))
            continue
        for here, result in _objects(results, f"{where}.results", errors):
            errors += _check_result(result, here)
    return errors


def _check_result(result: Mapping[str, Any], where: str) -> list[str]:
    task = result.get("task")
    if not isinstance(task, dict):
        errors = [f'"{where}.task" ' + ("is required" if task is None else "must be of type object")]
    else:
        errors = _required_string(task, "type", f"{where}.task")
    metrics = result.get("metrics")
    if not isinstance(metrics, list):
        return errors + [f'"{where}.metrics" ' + ("is required" if metrics is None else "must be an array")]
    for here, metric in _objects(metrics, f"{where}.metrics", errors):
        errors += _required_string(metric, "type", here)
        if metric.get("value") is None:
            errors.append(f'"{here}.value" is required')
    return errors


def _objects(items: list[Any], where: str, errors: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each object of ``items`` with its path (``where[N]``); an item that is not an object goes to ``errors``."""
    for number, item in enumerate(items):
        here = f"{where}[{number}]"
        if isinstance(item, dict):
            yield here, item
        else:
            errors.append(f'"{here}" must be of type object')


def _required_string(item: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = item.get(key)
    if value is None:
        return [f'"{where}.{key}" is required']
    return [] if isinstance(value, str) else [f'"{where}.{key}" must be a string']
