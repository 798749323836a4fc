"""Config and jobs-table validation: one clear error naming the file, the row and the field."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from artify.config import ConfigError, load_jobs, load_schema, validate_config
from artify.settings import Settings, add_options, defaults, from_args

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


def test_every_field_is_explained_in_config_readme():
    readme = (REPO / "config/README.md").read_text()
    missing = [k for k in config() if f"`{k}`" not in readme]
    assert not missing, f"config/README.md does not explain {missing}"


def test_schema_covers_every_default():
    assert set(CONFIG_SCHEMA["properties"]) == set(defaults()) | {"jobs"}


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
