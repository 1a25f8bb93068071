"""A custom template's single call or operation cannot build a huge value: each bomb is refused
before the value exists (within the test's memory), while the same calls at ordinary sizes
render as before."""

from __future__ import annotations

import resource

import pytest
from tests.support.renderer_reports import sample

from tidings.renderer import templating
from tidings.renderer.result import InputError

BOMBS = {
    "ljust": "{{ 'x'.ljust(10**9) }}",
    "rjust": "{{ 'x'.rjust(10**9) }}",
    "center": "{{ 'x'.center(10**9) }}",
    "zfill": "{{ '1'.zfill(10**9) }}",
    "expandtabs": "{{ ('\t' * 1000).expandtabs(10**6) }}",
    "percent-filter": "{{ '%0999999999d'|format(1) }}",
    "percent-operator": "{{ '%-999999999s' % 'x' }}",
    "percent-star": "{{ '%*d' % (10**9, 1) }}",
    "format-width": "{{ '{:>999999999}'.format(1) }}",
    "format-precision": "{{ '{:.999999999f}'.format(1.0) }}",
    "format-nested": "{{ '{:{w}}'.format(1, w=10**9) }}",
    "format-map": "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
    "center-filter": "{{ 'x'|center(10**9) }}",
    "indent-filter": "{{ ('a\n' * 1000)|indent(10**6, true) }}",
    "replace": "{{ ('x' * 1000).replace('x', 'y' * 10000) }}",
    "replace-filter": "{{ ('x' * 1000)|replace('x', 'y' * 10000) }}",
    "join": "{{ ('y' * 100000).join(['a'] * 100) }}",
    "join-filter": "{{ (['a'] * 100)|join('y' * 100000) }}",
    "wordwrap": "{{ ('x' * 100000)|wordwrap(1, wrapstring='y' * 100) }}",
    "batch": "{{ [1]|batch(10**9, 0)|list }}",
    "slice": "{{ [1]|slice(10**9)|list }}",
    "repeat": "{{ 'x' * 10**9 }}",
    "plus": "{% set ns = namespace(s='x' * 1000) %}"
    "{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "tilde": "{% set ns = namespace(s='x' * 1000) %}"
    "{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
}


def render(template: str) -> str:
    return templating.render_html(sample(), custom_template=template, logo=None, data_files="")


@pytest.fixture
def memory_ceiling() -> object:
    """An address-space limit this process's usual size plus 512 MiB: a bomb that allocated its
    gigabyte would fail with MemoryError (a different message) instead of being refused."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + 512 * 1024 * 1024, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.usefixtures("memory_ceiling")
@pytest.mark.parametrize("template", BOMBS.values(), ids=list(BOMBS))
def test_a_one_call_bomb_is_refused_before_it_is_built(template: str) -> None:
    with pytest.raises(InputError, match=r"^spec\.templateRef: .*(1,000,000 characters|allowed)"):
        render(template)


def test_the_same_calls_at_ordinary_sizes_render() -> None:
    html = render(
        "{{ 'a'.ljust(3) }}|{{ '7'.zfill(3) }}|{{ '%05.1f'|format(2.5) }}|{{ '%d items' % 3 }}|"
        "{{ '{:>4}'.format('b') }}|{{ 'c'|center(3) }}|{{ 'a b'|replace(' ', '-') }}|"
        "{{ [1, 2]|join(',') }}|{{ 'x' ~ 1 }}|{{ 'y' + 'z' }}|{{ [1, 2, 3]|batch(2)|list }}"
    )
    assert html == "a  |007|002.5|3 items|   b| c |a-b|1,2|x1|yz|[[1, 2], [3]]"


def test_lipsum_is_not_available() -> None:
    with pytest.raises(InputError, match="'lipsum' is undefined"):
        render("{{ lipsum(10**9) }}")
