"""The report a reviewer signs (issue 12): its order, its first pages, its clean pages.

The demo is rendered once (``auditor demo``) and read as HTML and as PDF text; the smaller tests
build results by hand (a fake remediation, declared report context, flat figures).
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DEMO_GROUP, ROOT, DemoRun
from markupsafe import escape
from test_render import make_result

from auditor.config import ConfigError, parse_config
from auditor.findings import Evidence, Status, Table
from auditor.remediation import Remediation, RemedyOutput, RemedyResult
from auditor.render.html import render_html
from auditor.render.labels import glossary_terms, humanize, metric_label
from auditor.render.view import build_view
from auditor.result import AuditInfo

# the module's expensive fixtures (whole audits) run once: all its tests in one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group(DEMO_GROUP)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
MAX_PAGES = 25  # issue 12: the demo's PDF, appendices included
DEMO_CONFIG = ROOT / "sample_models" / "audit.toml"


# ---- the demo, rendered once --------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> Path:
    assert demo_run.returncode in (0, 1), demo_run.stderr[-3000:]
    return demo_run.out


@pytest.fixture(scope="module")
def demo_html(demo: Path) -> str:
    return (demo / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo_pages(demo: Path) -> list[str]:
    from pypdf import PdfReader

    return [p.extract_text() or "" for p in PdfReader(str(demo / "report.pdf")).pages]


@pytest.fixture(scope="module")
def demo_features() -> list[str]:
    """Every column name the demo audits (features, protected attributes, target, id)."""
    cfg = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    import pandas as pd

    columns = list(pd.read_csv(ROOT / "sample_models" / "test.csv", nrows=1).columns)
    return sorted(set(columns) | set(cfg["data"]["protected"]) | {cfg["data"]["target"], cfg["data"]["id"]})


SECTION_ORDER = ("cover", "summary", "overview", "register", "family-data", "family-performance",
                 "family-sensitivity", "family-residual", "family-fairness", "family-benchmark", "family-security",
                 "family-explain", "methods", "glossary", "appendix", "signoff")


@pytest.mark.slow
def test_demo_pdf_page_count_is_bounded(demo_pages: list[str]) -> None:
    assert 10 <= len(demo_pages) <= MAX_PAGES, len(demo_pages)


@pytest.mark.slow
def test_demo_sections_come_in_the_reviewers_order(demo_html: str, demo_pages: list[str]) -> None:
    positions = [demo_html.find(f'id="{anchor}"') for anchor in SECTION_ORDER]
    assert all(p > 0 for p in positions), [a for a, p in zip(SECTION_ORDER, positions) if p <= 0]
    assert positions == sorted(positions), [a for a, _ in sorted(zip(SECTION_ORDER, positions), key=lambda x: x[1])]
    if 'id="remediation"' in demo_html:  # after the register, before the detailed results
        assert positions[3] < demo_html.index('id="remediation"') < positions[4]
    # on paper: the verdict on page 1, the issues and conditions on page 2, the overview on page 3,
    # the register before the first family, glossary and methods after the last
    assert "Gate failed" in demo_pages[0].replace("GATE FAILED", "Gate failed") and "Failed:" in demo_pages[0]
    assert "Executive summary" in demo_pages[1] and "Issues" in demo_pages[1]
    assert "What would have to change for approval" in demo_pages[1] and "What was not tested" in demo_pages[1]
    assert "Model overview" in demo_pages[2] and "Score credit applications" in demo_pages[2]  # the declared purpose
    first = {title: next(i for i, t in enumerate(demo_pages) if title in t and i > 0)
             for title in ("Findings register", "Data integrity", "Appendix A: Methods and samples",
                           "Appendix B: Glossary", "Appendix D: Sign-off")}
    assert (first["Findings register"] <= first["Data integrity"] < first["Appendix A: Methods and samples"]
            <= first["Appendix B: Glossary"] <= first["Appendix D: Sign-off"]), first


@pytest.mark.slow
def test_demo_register_lists_every_finding(demo: Path, demo_html: str) -> None:
    findings = json.loads((demo / "findings.json").read_text())["findings"]
    register = demo_html[demo_html.index('id="register"'):demo_html.index('id="family-data"')]
    rows = re.findall(r'data-finding="([^"]+)"', register)
    assert rows == [f["id"] for f in findings]
    for f in findings:  # each row links to its finding's card in the detailed results
        row = register[register.index(f'data-finding="{html_lib.escape(f["id"])}"'):]
        anchor = re.search(r'href="#(finding-\d+)"', row[:row.index("</tr>")]).group(1)
        card = demo_html[demo_html.index(f'id="{anchor}"'):]
        assert str(escape(f["title"])) in card[:4000]


@pytest.mark.slow
def test_demo_leaves_no_template_variable_unrendered(demo_html: str, demo_pages: list[str]) -> None:
    body = re.sub(r"<style>.*?</style>", "", demo_html, flags=re.S)
    for text in (body, "\n".join(demo_pages)):
        for marker in ("{{", "}}", "{%", "%}", "{#", "#}", "Undefined"):
            assert marker not in text, marker


def _wrapped_pairs(pdf: Path) -> list[tuple[int, str, str]]:
    """(page, last word of a line, first word of the next line) for every line that wraps onto the
    next one in the same text block. Rotated figure labels (whose lines overlap) are not wrapped text."""
    xml = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    pairs = []
    for number, page in enumerate(xml.split("<page ")[1:], start=1):
        for block in re.findall(r"<block.*?</block>", page, flags=re.S):
            lines = []
            for line in re.findall(r"<line ([^>]*)>(.*?)</line>", block, flags=re.S):
                box = dict(re.findall(r'(\w+)="([\d.]+)"', line[0]))
                words = [html_lib.unescape(w) for w in re.findall(r">([^<]*)</word>", line[1])]
                if words:
                    lines.append((float(box["yMin"]), float(box["yMax"]), words))
            for (_, y_max, a), (y_min, _, b) in zip(lines, lines[1:]):
                if y_min >= y_max - 1.0:
                    pairs.append((number, a[-1], b[0]))
    return pairs


def _straddles(name: str, a: str, b: str) -> bool:
    """Whether ``name`` is broken between the end of word ``a`` and the start of word ``b`` (with or
    without a hyphen added): its head ends ``a`` as a word of its own, its tail starts ``b``."""
    a = a[:-1] if a.endswith("-") and not name.startswith(a[-1:]) else a
    for k in range(1, len(name)):
        head, tail = name[:k], name[k:]
        if a.endswith(head) and b.startswith(tail):
            before = a[: len(a) - k][-1:]
            after = b[len(tail):][:1]
            if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
                return True
    return False


def test_a_split_name_is_recognised_and_a_mere_overlap_is_not() -> None:
    assert _straddles("checking_account", "(checking_accou", "nt).") and _straddles("age_band", "age_", "band")
    assert _straddles("duration", "dura-", "tion")
    assert not _straddles("sex", "its", "expectation") and not _straddles("age", "age", "band")


@pytest.mark.slow
def test_demo_pdf_splits_no_feature_name_across_lines(demo: Path, demo_features: list[str]) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pairs = _wrapped_pairs(demo / "report.pdf")
    assert len(pairs) > 300  # the reading worked: the report has many wrapped lines
    split = [(page, a, b, name) for page, a, b in pairs for name in demo_features if _straddles(name, a, b)]
    assert not split, split
    # and no word broken with a hyphen the text does not have
    assert not [(page, a, b) for page, a, b in pairs if len(a) > 1 and a.endswith("-") and (a[:-1] + b).isalpha()
                and (a[:-1] + b).lower() in {w.lower() for _, x, y in pairs for w in (x, y)}]


@pytest.mark.slow
def test_demo_methods_once_glossary_and_uninformative_evidence(demo: Path, demo_html: str,
                                                                demo_pages: list[str]) -> None:
    text = " ".join(" ".join(demo_pages).split())
    # each check's method and sample notes are stated once, in appendix A (after the results)
    notes = Counter(n for c in json.loads((demo / "findings.json").read_text())["checks"] for n in c.get("notes", []))
    assert len(notes) > 20
    appendix_a = demo_html.index('id="methods"')
    for note, checks in notes.items():  # a note two checks share ("Reference for sex: male") is in both
        assert demo_html.count(str(escape(note))) == checks and demo_html.index(str(escape(note))) > appendix_a, note
    glossary = text[text.index("Appendix B: Glossary", 2000):]
    for term in ("Adverse impact ratio (AIR)", "Four-fifths rule", "Standardized mean difference (SMD)", "ICE curve",
                 "ALE", "Population stability index (PSI)", "Membership inference"):
        assert term in glossary, term
    # the residual surrogate tree explains a negative share of held-out variance: left out, said so
    assert "surrogate tree of the residuals is not shown" in text
    # the HTML has every section collapsible and a sidebar that collapses on narrow screens
    assert demo_html.count("<details open>") >= 20 and "@media screen and (max-width: 62rem)" in demo_html
    assert "<script" not in demo_html.lower()


# ---- conditions from the remediation step -------------------------------------------------------

def _with_remedy(*, verified: bool = True):
    result = make_result(errored=False)
    target = "data.drift/income"
    rem = Remediation(id="threshold/demo", kind="threshold", addresses=(target,), title="Lower the threshold to 0.45",
                      summary="Moving the threshold closes the gap on the held-out rows.",
                      before={"adverse_impact_ratio": 0.74, "auc": 0.75},
                      after={"adverse_impact_ratio": 0.83, "auc": 0.75},
                      verified=verified, parameters={"threshold": 0.45}, caveats=("Re-audit after adopting it.",))
    remedy = RemedyResult(id="threshold", title="Decision threshold", status=Status.OK,
                          output=RemedyOutput(remediations=(rem,)))
    skipped = RemedyResult(id="retrain", title="Retrain", status=Status.SKIPPED, reason="no training data")
    return replace(result, remedies=(remedy, skipped)), target


def test_conditions_come_from_verified_remediations_and_name_what_they_address() -> None:
    result, target = _with_remedy()
    view = build_view(result)
    remedies = view["conditions"]["remedies"]
    assert [r["title"] for r in remedies] == ["Lower the threshold to 0.45"]
    assert [a["id"] for a in remedies[0]["addresses"]] == [target]
    assert remedies[0]["effect"][0]["before"] == 0.74 and remedies[0]["effect"][0]["after"] == 0.83
    # the gate issue it covers is not listed again as an open action
    assert target not in {a["title"] for a in view["conditions"]["actions"]}
    html = render_html(view)
    summary = html[html.index('id="summary"'):html.index('id="overview"')]
    assert "Lower the threshold to 0.45" in summary  # its summary is in the Remediation section
    assert f'href="#{remedies[0]["anchor"]}"' in summary and remedies[0]["anchor"] in html.split('id="remediation"')[1]
    assert "Retrain not tried: no training data" in summary
    # the remediation section keeps its place: after the register, before the detailed results
    assert html.index('id="register"') < html.index('id="remediation"') < html.index('id="family-data"')


def test_an_unverified_remediation_is_no_condition() -> None:
    result, _ = _with_remedy(verified=False)
    view = build_view(result)
    assert view["conditions"]["remedies"] == [] and view["conditions"]["n_unverified"] == 1
    assert [a["severity"] for a in view["conditions"]["actions"]] == ["high"]  # the open gate issue stays


# ---- model overview: the [report] context --------------------------------------------------------

def test_report_context_is_validated_and_shown() -> None:
    raw = {"model": {"path": "m.skops"}, "data": {"test": "t.csv", "target": "y"},
           "report": {"purpose": "Score retail credit applications.", "data_period": "2019-01 to 2020-12"}}
    cfg = parse_config(raw, base_dir=Path("/tmp"))
    assert dict(cfg.report.context)["purpose"] == "Score retail credit applications."
    with pytest.raises(ConfigError, match="report.limitations"):
        parse_config({**raw, "report": {"limitations": 3}}, base_dir=Path("/tmp"))
    result = make_result()
    result = replace(result, info=replace(result.info, context=cfg.report.context))
    html = render_html(build_view(result))
    overview = html[html.index('id="overview"'):html.index('id="register"')]
    assert "Score retail credit applications." in overview and "2019-01 to 2020-12" in overview
    assert overview.count("Not declared by the owner.") == 3  # intended use, out of scope, limitations


# ---- evidence that carries no information ----------------------------------------------------------

def test_a_flat_score_surface_is_one_line_not_a_figure() -> None:
    from auditor.analysis.adversarial.values import ScoreSurface
    from auditor.findings import Figure
    from auditor.plots import Uninformative
    from auditor.plots.adversarial import plot_score_surface
    from auditor.render.evidence import figure

    surface = ScoreSurface(x="a", y="b", x_values=(0.0, 1.0, 2.0), y_values=(0.0, 1.0), x_categorical=False,
                           y_categorical=False, z=((0.999, 0.999, 0.9991), (0.999, 0.999, 0.999)), x_observed=None,
                           y_observed=None, base_label="row 1", base_x=None, base_y=None, base_score=0.999)
    with pytest.raises(Uninformative, match="single colour"):
        plot_score_surface(surface, threshold=0.5)
    drawn = figure(Figure("surface", "Score surface", plot="adversarial.plot_score_surface",
                          data={"surface": surface, "threshold": 0.5}), "f1")
    assert drawn is not None and drawn["omitted"] and not drawn["src"]


def test_a_surrogate_tree_explaining_nothing_is_left_out_with_a_note() -> None:
    from auditor.findings import CheckResult
    from auditor.render.evidence import check_view

    rules = Table.from_records("surrogate_rules", "Surrogate tree", [{"rule": "x <= 1", "rows": 40}])
    check = CheckResult(id="residual.analysis", title="Residual analysis", family="residual", status=Status.OK,
                        evidence=Evidence(metrics={"tree_explained_share": -0.011}, tables=(rules,)))
    view = check_view(check, "7.1", lambda f: {})
    assert view["tables"] == [] and "explains -1.1%" in view["omitted"][0]


# ---- plots: whole labels, labels clear of the reference lines ---------------------------------------

def test_pdp_category_labels_are_never_cut_short() -> None:
    from auditor.plots.partial_dependence import wrap_label

    for text in ("furniture/equipment", "unskilled and non-resident", "supercalifragilistic", "a b"):
        assert wrap_label(text).replace("\n", " ").replace("/ ", "/") == text
        assert "\u2026" not in wrap_label(text)


def test_air_labels_move_past_the_four_fifths_and_parity_lines() -> None:
    from auditor.plots.fairness import _label_x

    assert _label_x(0.70, 0.15, (0.8, 1.0), pad=0.01) == pytest.approx(0.81)  # would cover 0.8
    assert _label_x(0.92, 0.15, (0.8, 1.0), pad=0.01) == pytest.approx(1.01)  # would cover 1.0
    assert _label_x(1.05, 0.10, (0.8, 1.0), pad=0.01) == 1.05  # clear of both


# ---- words --------------------------------------------------------------------------------------------

def test_metric_labels_are_words_with_units() -> None:
    assert humanize("tpr_at_1pct_fpr") == "TPR at 1% FPR" and humanize("hsj_rows") == "HopSkipJump rows"
    assert metric_label("cramers_v")[0] == "Cramér's V" and metric_label("epsilon_squared")[0].startswith("Epsilon")
    assert metric_label("min_adverse_impact_ratio/sex") == ("Lowest adverse impact ratio (sex)", "")
    assert metric_label("test_duplicate_share")[1] == "pct"
    from auditor.render.evidence import tiles

    folded = tiles({"auc": 0.75, "auc_ci_low": 0.69, "auc_ci_high": 0.8, "n": 300})
    assert [(t["label"], t["interval"]) for t in folded] == [("AUC", [0.69, 0.8]), ("Rows", [])]


def test_the_glossary_holds_the_terms_the_text_uses_only() -> None:
    terms = [t.term for t in glossary_terms(["The adverse impact ratio fails the four-fifths rule (AIR 0.74)."])]
    assert "Adverse impact ratio (AIR)" in terms and "Four-fifths rule" in terms
    assert "Membership inference" not in terms and "SHAP" not in terms


def test_a_table_column_is_as_wide_as_its_longest_unbreakable_piece() -> None:
    from auditor.render.evidence import TABLE_CHARS, column_widths

    rows = [["checking_account=not_known", 0.1, "x"], ["b", 0.2, "y"]]
    widths = column_widths(["feature", "psi", "note"], rows)
    assert widths[0] / 100 * TABLE_CHARS >= len("checking_account=") + 2


# ---- the result object in a notebook ---------------------------------------------------------------

def test_repr_is_one_screen_and_the_default_title_names_the_model() -> None:
    result = make_result()
    text = repr(result)
    assert text.startswith("<AuditResult 'credit-gbm': gate failed") and len(text.splitlines()) <= 15
    assert "AuditInfo(" not in text and "high" in text
    info: AuditInfo = replace(result.info, name="audit", title="", model_path="<in-memory model>",
                              model_kind="sklearn.ensemble.HistGradientBoostingClassifier")
    assert info.report_title == "Classification model audit: HistGradientBoostingClassifier"
    assert build_view(replace(result, info=info))["meta"]["title"] != "Model audit: audit"
    assert replace(info, name="credit-gbm").report_title == "Model audit: credit-gbm"


def test_cli_help_keeps_bracketed_text_and_shows_no_bool_metavar() -> None:
    run = subprocess.run([sys.executable, "-m", "auditor", "run", "--help"], capture_output=True, text=True,
                         cwd=ROOT, env={**ENV, "COLUMNS": "120"}, timeout=120).stdout
    checks = subprocess.run([sys.executable, "-m", "auditor", "checks", "--help"], capture_output=True, text=True,
                            cwd=ROOT, env={**ENV, "COLUMNS": "120"}, timeout=120).stdout
    assert "[audit] seed" in run and "<bool>" not in run and "--force" in run
    assert '[checks."<id>"]' in checks
