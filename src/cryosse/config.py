"""Config files: read with the file and line named, checked by the schema and across keys.

The workflow (``Snakefile``) and every subcommand that takes a config (``fetch -c``,
``build-pair --config``, ``query-emdb -c``, ``check-config``) check it the same way:

* :func:`load_yaml` names the file and the line of a YAML syntax error, and refuses a
  file that is not a mapping of keys;
* :func:`check` applies the JSON Schema (``cryosse/data/config.schema.yaml``, which
  ``workflow/schemas/config.schema.yaml`` links to), filling its defaults, then the rules
  a schema cannot say: ranges whose low end lies above the high end, split fractions
  that leave a role empty, resolution bands that do not ascend, bin cut-offs that
  do not get looser from bin 1 to bin 3, patch sizes the network cannot pool.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from cryosse import paths
from cryosse.io import non_finite


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file (or key) and the cause."""


def schema_path() -> Path:
    return Path(str(files("cryosse") / "data" / "config.schema.yaml"))


def load_yaml(path: str | os.PathLike, what: str = "config file") -> dict[str, Any]:
    """A YAML mapping from ``path``; an empty file is ``{}``."""
    path = Path(path)
    try:
        text = path.read_text()
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder, not a {what}") from exc
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such {what}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a {what} must be a mapping of keys (key: value), not a {type(data).__name__}"
        )
    return data


def merge(base: dict, over: dict) -> dict:
    """``over`` laid onto ``base``, section by section (as Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate_schema(config: dict, source: str) -> dict:
    """``config`` checked by the schema, with its defaults filled in (a copy)."""
    import jsonschema

    schema = load_yaml(schema_path(), "schema")
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    filling = jsonschema.validators.extend(base, {"properties": set_defaults})
    out = copy.deepcopy(config)
    errors = sorted(filling(schema).iter_errors(out), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_key(e.absolute_path)}: {e.message}{more}")
    return out


#: the ``entries`` value that makes the workflow search EMDB (rule emdb_search) for its entry table
SEARCH = "search"


def check_rules(config: dict, source: str) -> None:
    """The rules across keys that the schema cannot express; raise :class:`ConfigError` naming the key."""
    problems: list[str] = []
    acq = config.get("acquire", {})
    if acq.get("resolution_min", 0) > acq.get("resolution_max", float("inf")):
        problems.append(
            f"acquire.resolution_min {acq['resolution_min']} is above acquire.resolution_max {acq['resolution_max']}"
        )
    pairs = {"acquire.simulate.resolution_range": acq.get("simulate", {}).get("resolution_range")}
    for name, rng in (config.get("pretrain", {}).get("simulate", {}).get("ranges", {}) or {}).items():
        if isinstance(rng, list):
            pairs[f"pretrain.simulate.ranges.{name}"] = rng
    for name, rng in pairs.items():
        if rng and len(rng) == 2 and rng[0] > rng[1]:
            problems.append(f"{name} {rng}: the low end is above the high end")
    if config.get("entries") == SEARCH and config.get("source", "download") != "download":
        problems.append(
            f"entries: search asks the EMDB search API, which source {config['source']} does not use: "
            "give an entry table (entries: FILE)"
        )
    if config.get("source") == "local" and not acq.get("mirror"):
        problems.append("source local needs acquire.mirror (a folder with the archives' layout)")
    frac = config.get("split", {}).get("fractions")
    if frac and len(frac) == 3 and min(frac) <= 0:
        problems.append(f"split.fractions {frac}: train, validation and test must each be > 0")
    bands = config.get("evaluate", {}).get("resolution_bands")
    if bands and any(b >= a for a, b in zip(bands[1:], bands[:-1], strict=True)):
        problems.append(f"evaluate.resolution_bands {bands}: the band edges must ascend")
    q = config.get("dataset", {}).get("quality", {})
    cyl, pr = q.get("cyl_cutoffs"), q.get("pr_cutoffs")
    if cyl and any(b > a for a, b in zip(cyl, cyl[1:], strict=False)):
        problems.append(
            f"dataset.quality.cyl_cutoffs {cyl}: bin 1 must ask at least what bin 2 and 3 ask (descending)"
        )
    if pr and any(b < a for a, b in zip(pr, pr[1:], strict=False)):
        problems.append(
            f"dataset.quality.pr_cutoffs {pr}: bin 1 must ask at least what bin 2 and 3 ask (ascending)"
        )
    for section in ("train", "pretrain"):
        t = config.get(section, {}) if section == "train" else config.get("pretrain", {}).get("train", {})
        if t.get("patch", 0) % 4:
            problems.append(
                f"{section}.patch {t['patch']}: must be a multiple of 4 (the network pools twice by 2)"
            )
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def check(config: dict, source: str) -> dict:
    """Schema (defaults filled) and cross-key rules; returns the checked config."""
    bad = [f"{key}: {value} is not a finite number" for key, value in non_finite(config)]
    if bad:
        raise ConfigError(f"{source}: " + "; ".join(bad))
    out = validate_schema(config, source)
    check_rules(out, source)
    return out


def load(paths: Iterable[str | os.PathLike], required: bool = False) -> dict:
    """Config files laid onto each other (later ones win), checked; ``{}`` sections filled by the schema.

    Without files, the built-in defaults (the schema's); the workflow's required
    keys (``source``, ``entries``) are only demanded when ``required``.
    """
    merged: dict = {}
    names = []
    for p in paths:
        merged = merge(merged, load_yaml(p))
        names.append(str(p))
    source = " + ".join(names) or "default config"
    if not required:
        merged.setdefault("source", "download")
        merged.setdefault("entries", SEARCH)
    return check(merged, source)


def _cmd_check(args: Any) -> int:
    cfg = load(args.files, required=args.workflow)
    print(f"{' + '.join(args.files)}: valid ({len(cfg)} sections and keys after the defaults)")
    return 0


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="check config files as the workflow and the subcommands do (names the file, line and key)",
        description="Read the YAML files (later ones override earlier ones, as snakemake --configfile "
        "does), check them against the schema and the rules across keys, and say what is wrong. Use it "
        "when Snakemake reports 'Config file is not valid JSON or YAML' without naming the file or line.",
    )
    p.add_argument("files", nargs="+", help="config YAML files, e.g. config/config.yaml config/demo.yaml")
    p.add_argument(
        "--workflow",
        action="store_true",
        help="require the workflow's top-level keys (source, entries), as snakemake does",
    )
    p.set_defaults(func=_cmd_check)
    paths.declare(p, inputs=["files"])
