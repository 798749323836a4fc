"""Config and jobs-table validation: one clear error naming the file, the row and the field."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from artify.config import ConfigError, load_jobs, load_schema, validate_config
from artify.settings import Settings, add_options, defaults, from_args, readme_fields, readme_with_values

REPO = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
JOBS_SCHEMA = load_schema(REPO / "workflow/schemas/jobs.schema.yaml")


def config():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_config_yaml_holds_exactly_the_library_defaults():
    cfg = config()
    assert {k: v for k, v in cfg.items() if k != "jobs"} == defaults()
    validate_config(cfg, CONFIG_SCHEMA)


def test_the_settings_object_holds_the_config_defaults_and_reads_by_attribute():
    cfg = {k: v for k, v in config().items() if k != "jobs"}
    s = Settings()
    assert {f: getattr(s, f) for f in cfg} == cfg and len(dataclasses.fields(s)) == len(cfg)
    assert Settings(**cfg) == s
    assert s.flow_blend == cfg["flow_blend"] == 0.7  # the one default (the method once fell back to 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.flow_blend = 0.0  # noqa: B018 (frozen: a stage cannot change a job's settings under another)


@pytest.mark.parametrize("values,message", [
    ({"method": "picasso"}, "setting 'method': 'picasso' is not one of gatys, segmented, arbitrary, propagate"),
    ({"iterations": "60"}, "setting 'iterations': '60' is not a int"),
    ({"temporal": 1}, "setting 'temporal': 1 is not a bool"),
    ({"flow_blend": True}, "setting 'flow_blend': True is not a float"),
    ({"preserve_colour": None}, "setting 'preserve_colour': None is not a str"),
])
def test_settings_are_checked_once_when_built(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**values)


@pytest.mark.parametrize("values,message", [
    ({"chunk_overlap": 300}, r"setting 'chunk_overlap': 300 is more than 255 \(frames each chunk repeats"),
    ({"chunk_overlap": -1}, "setting 'chunk_overlap': -1 is less than 0"),
    ({"size": 8}, "setting 'size': 8 is less than 32"),
    ({"train_width": 0.0}, "setting 'train_width': 0.0 is not more than 0"),
    ({"stats_momentum": 1.0}, "setting 'stats_momentum': 1.0 is not less than 1"),
    ({"long_term": "2;4"}, "setting 'long_term': '2;4' does not match"),
    ({"chunk_frames": 24, "chunk_overlap": 24}, "setting 'chunk_overlap': 24 is not less than chunk_frames 24"),
    ({"method": "arbitrary", "adain_decoder": "decoder.pth"},
     "setting 'adain_decoder': adain_decoder set, but arbitrary_network is magenta"),
])
def test_settings_are_checked_against_their_bounds_and_each_other(values, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**values)


def schema_entry(f: dataclasses.Field) -> dict:
    """What the config schema must say of a setting: its choices, or its type with its bounds and pattern."""
    if f.metadata["choices"]:
        return {"enum": f.metadata["choices"]}
    kind = {bool: "boolean", int: "integer", float: "number", str: "string"}[type(f.default)]
    return {"type": kind, **{k: v for k, v in f.metadata.items() if k not in ("help", "choices")}}


def test_the_schema_holds_exactly_the_choices_and_bounds_of_the_settings():
    differ = {f.name: (CONFIG_SCHEMA["properties"][f.name], schema_entry(f)) for f in dataclasses.fields(Settings)
              if CONFIG_SCHEMA["properties"][f.name] != schema_entry(f)}
    assert not differ, f"schema vs settings: {differ}"


def test_settings_take_an_int_for_a_float_and_refuse_unknown_keys():
    s = Settings(flow_blend=1, temporal_weight=0)
    assert type(s.flow_blend) is float and s.flow_blend == 1.0 and s.temporal_weight == 0.0
    with pytest.raises(TypeError, match="flow_blnd"):
        Settings(flow_blnd=0.5)


def test_a_stage_command_line_gives_settings_with_every_other_field_at_its_default():
    import argparse

    parser = argparse.ArgumentParser()
    add_options(parser, "stylize_chunk")
    s = from_args("stylize_chunk", parser.parse_args(["--flow-blend", "0.2", "--method", "arbitrary"]))
    assert s == Settings(flow_blend=0.2, method="arbitrary")
    values = s.stage_values("stylize_chunk")  # a span's resume key: only what the stage reads
    assert values["flow_blend"] == 0.2 and values["iterations"] == 60 and values["merge_mode"] == "feather"
    assert "size" not in values and "scene_detector" not in values and "train_iterations" not in values


def test_config_readme_has_one_line_per_setting_stating_its_type_default_choices_and_bounds():
    readme = (REPO / "config/README.md").read_text()
    named = readme_fields(readme)
    settings = [f.name for f in dataclasses.fields(Settings)]
    assert sorted(named) == sorted(settings + ["jobs"]), (
        f"config/README.md: no line for {sorted(set(settings) - set(named))}, lines for what is no setting "
        f"{sorted(set(named) - set(settings) - {'jobs'})}, twice: {sorted({n for n in named if named.count(n) > 1})}")
    differ = [old for old, new in zip(readme.splitlines(), readme_with_values(readme).splitlines()) if old != new]
    assert not differ, ("config/README.md states other values than artify/settings.py (run `python -m "
                        f"artify.settings --readme config/README.md`): {differ}")


@pytest.mark.parametrize("change,line", [
    ({"default": 19}, "- `crf` (integer, 0 to 51; default 19): "),
    ({"metadata": {"maximum": 50}}, "- `crf` (integer, 0 to 50; default 18): "),
    ({"metadata": {"minimum": None, "maximum": None, "exclusiveMinimum": 0}},
     "- `crf` (integer, over 0; default 18): "),
    ({"metadata": {"choices": ["x", "y"]}}, "- `crf` (`x` or `y`; default `18`): "),
])
def test_a_readme_line_changes_with_the_setting_it_states(monkeypatch, change, line):
    import artify.settings as settings

    crf = next(f for f in dataclasses.fields(Settings) if f.name == "crf")
    metadata = {k: v for k, v in (crf.metadata | change.get("metadata", {})).items()
                if v is not None or k == "choices"}
    changed = dataclasses.field(default=change.get("default", crf.default), metadata=metadata)
    changed.name = "crf"
    monkeypatch.setattr(settings, "fields", lambda _: [changed])
    readme = (REPO / "config/README.md").read_text()
    assert line in settings.readme_with_values(readme) and line not in readme


def test_schema_covers_every_default():
    assert set(CONFIG_SCHEMA["properties"]) == set(defaults()) | {"jobs"}


def test_the_jobs_schema_declares_the_jobs_own_columns_only():
    """A settings column of jobs.tsv is checked by the config schema after merging: declared once, not again
    (the jobs schema once typed `method`'s choices a second time)."""
    assert set(JOBS_SCHEMA["properties"]) == {"job", "content", "style"}


@pytest.mark.parametrize("field,value,message", [
    ("size", -3, "field 'size'"),
    ("method", "picasso", "field 'method'"),
    ("device", "tpu", "field 'device'"),
    ("chunk_frames", "many", "field 'chunk_frames'"),
    ("colour", 1, "colour"),
])
def test_bad_config_value_names_the_field(field, value, message):
    cfg = config()
    cfg[field] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, CONFIG_SCHEMA, "config/config.yaml")


def write_jobs(tmp_path, text):
    path = tmp_path / "jobs.tsv"
    path.write_text(text)
    return path


def test_jobs_columns_override_defaults_with_the_right_types(tmp_path):
    path = write_jobs(tmp_path, "job\tcontent\tstyle\tmethod\tsize\tstyle_weight\n"
                                "a\tin.mp4\tstyle.jpg\tgatys\t128\t\nb\tin.mp4\tstyle.jpg\tgatys\t\t1e3\n")
    jobs = load_jobs(path, config(), JOBS_SCHEMA, CONFIG_SCHEMA)
    assert jobs["a"]["size"] == 128 and jobs["a"]["style_weight"] == defaults()["style_weight"]
    assert jobs["b"]["size"] == defaults()["size"] and jobs["b"]["style_weight"] == 1000.0


@pytest.mark.parametrize("text,message", [
    ("job\tcontent\tstyle\nok\ta.mp4\tb.jpg\nbad job\ta.mp4\tb.jpg\n", r"row 3: field 'job'"),
    ("job\tcontent\nx\ta.mp4\n", r"row 2: field 'style'"),
    ("job\tcontent\tstyle\tsize\nx\ta.mp4\tb.jpg\ttiny\n", r"row 2: field 'size'"),
    ("job\tcontent\tstyle\tsize\nx\ta.mp4\tb.jpg\t8\n", r"row 2: field 'size'"),
    ("job\tcontent\tstyle\tchunk_overlap\nx\ta.mp4\tb.jpg\t300\n", r"row 2: field 'chunk_overlap'"),
    ("job\tcontent\tstyle\twhatever\nx\ta.mp4\tb.jpg\t1\n", r"row 2: unknown column 'whatever'"),
    ("job\tcontent\tstyle\nx\ta.mp4\tb.jpg\nx\tc.mp4\tb.jpg\n", r"row 3: field 'job': duplicate"),
])
def test_bad_jobs_row_names_file_row_and_field(tmp_path, text, message):
    path = write_jobs(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_jobs(path, config(), JOBS_SCHEMA, CONFIG_SCHEMA)
    assert str(path) in str(err.value)


def test_settings_that_cannot_go_together_fail_when_the_config_or_jobs_table_is_read(tmp_path):
    cfg = config()
    cfg["chunk_overlap"] = 30  # within its bounds, so the schema passes it, but not less than chunk_frames 24
    with pytest.raises(ConfigError, match="config/config.yaml: setting 'chunk_overlap': 30 is not less than"):
        validate_config(cfg, CONFIG_SCHEMA, "config/config.yaml")
    path = write_jobs(tmp_path, "job\tcontent\tstyle\tmethod\tadain_decoder\nx\ta.mp4\tb.jpg\tarbitrary\td.pth\n")
    with pytest.raises(ConfigError, match=r"jobs.tsv: row 2: setting 'adain_decoder': .* arbitrary_network is magenta"):
        load_jobs(path, config(), JOBS_SCHEMA, CONFIG_SCHEMA)


def test_missing_jobs_table_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.tsv: jobs table not found"):
        load_jobs(tmp_path / "nope.tsv", config(), JOBS_SCHEMA, CONFIG_SCHEMA)


# ------------------------------------------------------------------- bounds, whichever way settings come in

def _from_config_file(tmp_path, name, value):
    cfg = config()
    cfg[name] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    validate_config(yaml.safe_load((tmp_path / "config.yaml").read_text()), CONFIG_SCHEMA, "config.yaml")


def _from_jobs_row(tmp_path, name, value):
    path = write_jobs(tmp_path, f"job\tcontent\tstyle\t{name}\nx\ta.mp4\tb.jpg\t{value}\n")
    load_jobs(path, config(), JOBS_SCHEMA, CONFIG_SCHEMA)


def _from_command_line(tmp_path, name, value):
    import argparse

    from artify.settings import STAGES

    stage = next(s for s, groups in STAGES.items()
                 if any(f.name == name for g in groups for f in dataclasses.fields(g)))
    parser = argparse.ArgumentParser(prog=f"artify {stage}", exit_on_error=False)
    add_options(parser, stage)
    try:
        args = parser.parse_args([f"--{name.replace('_', '-')}", str(value)])
    except argparse.ArgumentError as e:  # a value not among the choices: the parser refuses it, naming the option
        raise ConfigError(f"setting '{name}': {e}") from None
    from_args(stage, args)


SOURCES = {"config file": _from_config_file, "jobs row": _from_jobs_row, "command line": _from_command_line,
           "code": lambda _, name, value: Settings(**{name: value}),
           "dataclasses.replace": lambda _, name, value: dataclasses.replace(Settings(), **{name: value})}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name,value", [("size", 8), ("chunk_overlap", 300), ("stats_momentum", 1.0),
                                        ("raft_scale", 0.0), ("flow_blend", float("nan")),
                                        ("temporal_weight", float("inf")), ("method", "picasso"),
                                        ("long_term", "2;4")])
def test_settings_are_checked_whichever_way_they_come_in(tmp_path, source, name, value):
    with pytest.raises(ConfigError, match=f"'{name}'|--{name.replace('_', '-')}"):
        SOURCES[source](tmp_path, name, value)


def test_every_bounded_setting_is_checked_on_the_command_line_of_each_stage_that_reads_it():
    import argparse

    from artify.settings import STAGES

    def outside(f):  # a value just outside the setting's bounds, or None where it takes any value of its type
        m, kind = f.metadata, type(f.default)
        for key, step in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1), ("exclusiveMaximum", 0)):
            if key in m:
                return kind(m[key] + step)
        return "x;y" if "pattern" in m else None

    checked = set()
    for stage, groups in STAGES.items():
        parser = argparse.ArgumentParser()
        add_options(parser, stage)
        for f in (f for g in groups for f in dataclasses.fields(g) if outside(f) is not None):
            args = parser.parse_args([f"--{f.name.replace('_', '-')}", str(outside(f))])
            with pytest.raises(ConfigError, match=f"setting '{f.name}'"):
                from_args(stage, args)
            checked.add(f.name)
    assert checked == {f.name for f in dataclasses.fields(Settings) if outside(f) is not None}


def test_a_stage_refuses_a_setting_out_of_bounds_before_reading_its_files(tmp_path, capsys):
    from artify.cli import main

    assert main(["plan-chunks", "--meta", str(tmp_path / "gone.json"), "-o", str(tmp_path / "c.tsv"),
                 "--size", "8"]) == 2
    assert capsys.readouterr().err.strip() == ("artify plan-chunks: error: setting 'size': 8 is less than 32 (long "
                                               "side of the processing resolution in pixels (rounded to even sizes))")
