import pytest

from manager_pipeline.yamlfile import YamlError, load_yaml, suggest


def test_plain_data_loads():
    assert load_yaml("a: 1\nb: [x, y]\n", "f.yml") == {"a": 1, "b": ["x", "y"]}
    assert load_yaml("", "f.yml") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\nb: 2\na: 3\n", "f.yml:3:1: duplicate key 'a' (first defined at line 1)"),
        ("x: !!python/object/apply:os.system ['echo hi']\n", "f.yml:1:4: tag tag:yaml.org,2002:python/object"),
        ("a: [1, 2\n", "f.yml:2:1"),
        ("a: 1\n---\nb: 2\n", "f.yml:2:1: holds more than one YAML document; keep exactly one"),
        ("? [a, b]\n: 1\n", "f.yml:1:3: a key must be text, not a list or mapping"),
    ],
)
def test_unsafe_or_ambiguous_yaml_is_refused_with_its_location(text, message):
    with pytest.raises(YamlError) as caught:
        load_yaml(text, "f.yml")
    assert message in str(caught.value)


def test_suggest_finds_typos_and_prefixes():
    assert suggest("netwroking", ["networking", "tags"]) == "; did you mean `networking`?"
    assert suggest("prod", ["staging", "production"]) == "; did you mean `production`?"
    assert suggest("zzz", ["staging", "production"]) == ""
