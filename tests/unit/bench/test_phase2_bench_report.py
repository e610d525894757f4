"""The Phase 2 section of the benchmark report: written between markers, kept by ``make bench``."""

from pathlib import Path

import pytest

from bench.phase2 import BEGIN, END, replace_section, section_carry_over

pytestmark = pytest.mark.unit


def test_the_section_is_appended_once_then_replaced_in_place(tmp_path: Path) -> None:
    # given
    report = tmp_path / "report.md"
    report.write_text("# Report\n\nrows\n")
    # when
    replace_section(report, "## Phase 2\n\nfirst\n")
    replace_section(report, "## Phase 2\n\nsecond\n")
    # then
    text = report.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "second" in text and "first" not in text
    assert text.startswith("# Report\n\nrows\n")


def test_a_regenerated_report_keeps_the_last_section() -> None:
    # given
    old = f"# Report\n\nold rows\n\n{BEGIN}\n## Phase 2\n\n1.02x\n{END}\n"
    # when
    new = section_carry_over(old, "# Report\n\nnew rows\n")
    # then
    assert new == f"# Report\n\nnew rows\n\n{BEGIN}\n## Phase 2\n\n1.02x\n{END}\n"
    assert section_carry_over("# Report\n", "# Report\n\nnew rows\n") == "# Report\n\nnew rows\n"
