"""Load and validate the workflow configuration and the jobs table before any work starts.

A bad value gets one error that names the file, the row (for jobs.tsv) and the field.
"""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from artify.settings import ConfigError, Settings, defaults  # noqa: F401  (ConfigError is part of this module's API)


def load_schema(path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _first_error(validator, instance):
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(e.path), e.message))
    return errors[0] if errors else None


def validate_config(config: dict, schema: dict, source: str = "config") -> dict:
    """Validate (and fill defaults into) the config dict; raise ConfigError naming the field."""
    validator = jsonschema.Draft202012Validator(schema)
    err = _first_error(validator, config)
    if err is not None:
        field = ".".join(str(p) for p in err.path) or (err.message.split("'")[1] if "'" in err.message else "")
        raise ConfigError(f"{source}: field '{field}': {err.message}")
    missing = [k for k in defaults() if k not in config]
    if missing:
        raise ConfigError(f"{source}: missing field(s) {', '.join(missing)} (every default lives in config.yaml)")
    checked_settings(config, source)
    return config


def checked_settings(values: dict, source: str) -> Settings:
    """The Settings of a config or a job (its other keys, e.g. `jobs`, `content`, left out): every bound and
    every pair of settings that cannot go together checked here, before any work, with `source` named."""
    try:
        return Settings(**{k: values[k] for k in defaults()})
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _coerce(value, like):
    """jobs.tsv cells arrive as strings; give them the type of the config default they override."""
    if isinstance(like, bool):
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        return value
    for t in (int, float):
        if isinstance(like, t):
            try:
                return t(value) if t is float else int(str(value))
            except ValueError:
                return value
    return str(value)


def load_jobs(path, config: dict, jobs_schema: dict, config_schema: dict) -> dict[str, dict]:
    """Read jobs.tsv and return {job: settings}: config defaults overridden by the job's own columns.

    Relative content/style paths are resolved against the working directory (where snakemake runs).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: jobs table not found (config field 'jobs')")
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    validator = jsonschema.Draft202012Validator(jobs_schema)
    known = set(jobs_schema["properties"]) | set(config_schema["properties"])
    jobs: dict[str, dict] = {}
    for i, row in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
        unknown = [c for c in row if c not in known]
        if unknown:
            raise ConfigError(f"{path}: row {i}: unknown column '{unknown[0]}' (not a config field)")
        cells = {k: v for k, v in row.items() if v != ""}
        err = _first_error(validator, cells)
        if err is not None:
            field = ".".join(str(p) for p in err.path) or err.message.split("'")[1]
            raise ConfigError(f"{path}: row {i}: field '{field}': {err.message}")
        settings = dict(config)
        for k, v in cells.items():
            settings[k] = _coerce(v, config[k]) if k in config and k != "jobs" else v
        merged = {k: v for k, v in settings.items() if k in config_schema["properties"]}
        err = _first_error(jsonschema.Draft202012Validator(config_schema), merged)
        if err is not None:
            field = ".".join(str(p) for p in err.path)
            raise ConfigError(f"{path}: row {i}: field '{field}': {err.message}")
        checked_settings(settings, f"{path}: row {i}")
        if cells["job"] in jobs:
            raise ConfigError(f"{path}: row {i}: field 'job': duplicate job name '{cells['job']}'")
        jobs[cells["job"]] = settings
    if not jobs:
        raise ConfigError(f"{path}: no jobs")
    return jobs
