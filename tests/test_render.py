"""Presentation layer: view, HTML, PDF and findings.json from a hand-built AuditResult."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CONTRACT_IDS, SCHEMA  # noqa: E402

from auditor.checks import default_registry
from auditor.findings import CheckResult, Evidence, Figure, Finding, Severity, Status, Table
from auditor.plots import new_figure
from auditor.render import write_report
from auditor.render.html import fmt_num, fmt_pct, render_html, render_summary_html, soft_breaks, templates_dir
from auditor.render.pdf import locked_url_fetcher, render_pdf
from auditor.render.view import build_view, column_widths
from auditor.result import AuditInfo, AuditResult, DatasetInfo

# the module's expensive fixtures (whole audits) run once: all its tests in one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("render")

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src="file:///etc/hostname">'
HOSTILE_COL = f"income {SCRIPT}"


REGISTRY = default_registry()


def draw_test_figure(values: tuple[float, ...], label: str, xlabel: str):
    """A figure function as checks name them in a figure spec (here by its full module path)."""
    fig = new_figure(5, 2.6)
    ax = fig.add_subplot()
    ax.plot(range(len(values)), values, label=label)
    ax.set_xlabel(xlabel)
    ax.legend()
    return fig


def _figure():
    return Figure("pdp", "Partial dependence of income", plot="test_render:draw_test_figure",
                  data={"values": (0.2, 0.4, 0.35, 0.8), "label": SCRIPT, "xlabel": HOSTILE_COL},
                  caption="ICE curves of 200 rows.")


def make_result(*, errored: bool = True, n_rows: int = 12) -> AuditResult:
    """A small synthetic audit: every contract check, with ok / skipped / error statuses."""
    table = Table.from_records(
        "by_feature", "Drift by feature",
        [{"feature": HOSTILE_COL if i == 0 else f"feature_{i}", "value": IMG if i == 1 else f"level {i}",
          "psi": 0.013 * i, "ks_p_value": 10.0 ** (-i), "rows": 1000 + i, "nan": float("nan")}
         for i in range(n_rows + 5)],
        max_rows=n_rows, caption="PSI above 0.25 is a material shift.")
    findings = (
        Finding(id="data.drift/income", check="data.drift", severity=Severity.HIGH,
                title=f"Strong drift in {HOSTILE_COL}", summary="The test data no longer looks like the training data.",
                features=(HOSTILE_COL,), metrics={"psi": 0.41, "p_value": 1.2e-9},
                remediation=("Retrain on recent data.", f"Check the pipeline that builds {IMG}."),
                evidence=("by_feature", "pdp")),
        Finding(id="data.drift/age", check="data.drift", severity=Severity.MEDIUM, title="Moderate drift in age",
                summary="Age shifted upward.", features=("age",), metrics={"psi": 0.18}),
        Finding(id="data.drift/target", check="data.drift", severity=Severity.INFO, title="Target rate stable",
                summary="The positive rate moved by 0.4 points.", metrics={"delta": 0.004}),
    )
    fairness = Finding(id="fairness.disparate_impact/race=Black", check="fairness.disparate_impact",
                       severity=Severity.LOW, title="Adverse impact ratio 0.86 for race = Black",
                       summary="Slightly lower approval rate.", features=("race",), groups=(("race", "Black"),),
                       metrics={"adverse_impact_ratio": 0.86, "p_value": 0.03}, remediation=("Review the cut-off.",))
    checks = []
    for cid in CONTRACT_IDS:
        title = cid.split('.')[1].replace('_', ' ').capitalize()
        family = cid.split(".")[0]
        if cid == "data.drift":
            checks.append(CheckResult(
                id=cid, title=title, family=family, status=Status.OK, duration_s=0.42,
                evidence=Evidence(metrics={"max_psi": 0.41, "n_drifted": 2, "share": float("inf")},
                                  tables=(table,), figures=(_figure(),),
                                  notes=(f"Sample: 2,000 of 9,769 rows; column {SCRIPT}.",)),
                findings=findings))
        elif cid == "fairness.disparate_impact":
            checks.append(CheckResult(id=cid, title=title, family=family, status=Status.OK, duration_s=0.1,
                                      evidence=Evidence(metrics={"min_ratio": 0.86}), findings=(fairness,)))
        elif cid == "performance.metrics":
            checks.append(CheckResult(id=cid, title=title, family=family, status=Status.OK, duration_s=1.5,
                                      evidence=Evidence(metrics={"auc": 0.8123456, "accuracy": 0.77, "rows": 9769})))
        elif cid == "security.membership_inference" and errored:
            checks.append(CheckResult(id=cid, title=title, family=family, status=Status.ERROR, duration_s=0.01,
                                      error=f"ValueError: bad column {SCRIPT}"))
        else:
            checks.append(CheckResult(id=cid, title=title, family=family, status=Status.SKIPPED,
                                      reason="no protected attributes in this audit"))
    families = {cls.family.name: cls.family.title for cls in (REGISTRY[i] for i in REGISTRY.ids())}
    checks = [replace(c, family_title=families[c.family]) for c in checks]
    info = AuditInfo(
        name="credit-gbm", title="Credit model <b>audit</b>", owner="Model risk team", seed=7, fail_on="high",
        model_path="models/model.skops", model_sha256="ab" * 32, model_kind="sklearn.pipeline.Pipeline",
        task="classification", target="default", features=("age", HOSTILE_COL, IMG, "race"),
        categorical=(IMG, "race"), protected=("race", "sex"), positive_class=1, favorable=0, threshold=0.5,
        test=DatasetInfo("data/test.csv", "cd" * 32, 9769, 15),
        train=DatasetInfo("data/train.csv", "ef" * 32, 30000, 15),
        config_path="audit.toml", config_sha256="12" * 32,
        config_text=f'[audit]\nname = "credit-gbm"\n# {SCRIPT}\n# {IMG}\n',
        environment={"python": "3.11.7", "platform": "Linux", "packages": {"numpy": "2.4.6", "weasyprint": "70.0"}},
        id_column="ID", reference=(("race", SCRIPT),), monotone=((HOSTILE_COL, 1),), immutable=(IMG,),
    )
    return AuditResult(info=info, checks=tuple(checks), started_at="2026-01-02T03:04:05Z", duration_s=12.5)


@pytest.fixture(scope="module")
def result() -> AuditResult:
    return make_result()


@pytest.fixture(scope="module")
def html(result: AuditResult) -> str:
    return render_html(build_view(result))


class SpyFetcher:
    """Wraps the locked fetcher and records every URL WeasyPrint asks for."""

    def __init__(self) -> None:
        self.inner = locked_url_fetcher()
        self.requested: list[str] = []
        self._fail_on_errors = False  # read by weasyprint.urls.fetch

    def fetch(self, url, headers=None):
        self.requested.append(url)
        return self.inner.fetch(url, headers)

    __call__ = fetch


@pytest.fixture(scope="module")
def spy() -> SpyFetcher:
    return SpyFetcher()


@pytest.fixture(scope="module")
def written(result: AuditResult, spy: SpyFetcher, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The full report, written once; the PDF is rendered through a spy around the locked fetcher."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("auditor.render.pdf.locked_url_fetcher", lambda: spy)
        return write_report(result, tmp_path_factory.mktemp("report"), ("html", "pdf", "json"))


# ---- view ----------------------------------------------------------------------------------

def _plain(value) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def test_view_holds_plain_values_only(result):
    view = build_view(result)
    assert _plain(view)
    assert set(view) >= {"meta", "verdict", "counts", "top_findings", "overview", "scope", "register", "conditions",
                         "not_tested", "families", "methods", "glossary", "appendix", "toc"}
    assert [f["key"] for f in view["families"]] == ["data", "performance", "sensitivity", "residual",
                                                      "fairness", "benchmark", "security", "explain"]
    assert view["verdict"]["status"] == "incomplete" and view["verdict"]["gate"] == "failed"
    assert [c["id"] for c in view["errored"]] == ["security.membership_inference"]
    drift = next(c for c in view["families"][0]["checks"] if c["id"] == "data.drift")
    assert drift["tables"][0]["omitted"] == 5
    assert drift["figures"][0]["src"].startswith("data:image/svg+xml;base64,")
    assert [f["severity"] for f in view["top_findings"]] == ["high", "medium", "low", "info"]


def test_view_caps_long_tables():
    view = build_view(make_result(n_rows=200))
    table = next(c for c in view["families"][0]["checks"] if c["id"] == "data.drift")["tables"][0]
    assert len(table["rows"]) == 60 and table["omitted"] == 145


def test_number_filters():
    assert fmt_num(None) == "\u2013"
    assert fmt_num(float("nan")) == "\u2013"
    assert fmt_num(0.8123456) == "0.8123"
    assert fmt_num(0.5) == "0.5"
    assert fmt_num(30000) == "30,000"
    assert fmt_num(123456.7) == "123,457"
    assert fmt_num(12.34567) == "12.35"
    assert fmt_num(1.2e-9) == "1.20e-09"
    assert fmt_num(2.0) == "2"
    assert fmt_num(True) == "yes"
    assert fmt_num("abc") == "abc"
    assert fmt_pct(0.1234) == "12.3%"
    assert fmt_pct(None) == "\u2013"


def test_soft_breaks_escape_first_and_never_split_a_name_or_a_number():
    assert str(soft_breaks("<a_b>")) == "&lt;a_b&gt;"
    assert str(soft_breaks("fairness.proxy/age_band=under_25")) == "fairness.<wbr>proxy/<wbr>age_band=<wbr>under_25"
    assert str(soft_breaks("checking_account (+0.146)")) == "checking_account (+0.146)"


def test_column_widths_sum_to_100():
    widths = column_widths(["feature", "psi"], [["a_long_feature_name", 0.1], ["b", 0.2]])
    assert abs(sum(widths) - 100) < 0.5 and widths[0] > widths[1]
    assert column_widths([], []) == []


def test_templates_are_found():
    folder = templates_dir()
    assert (folder / "report.html.j2").is_file() and (folder / "report.css").is_file()


# ---- HTML ----------------------------------------------------------------------------------

def test_html_escapes_untrusted_text(html):
    assert "<script" not in html.lower()
    assert "<img src=\"file:" not in html
    assert escape(SCRIPT, quote=False) in html or escape(SCRIPT) in html
    assert "&lt;img src=&#34;file:///etc/hostname&#34;&gt;" in html
    assert "Credit model &lt;b&gt;audit&lt;/b&gt;" in html


class _Tags(HTMLParser):
    """Collects every tag and attribute of a document, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_html_is_self_contained(html):
    tags = _tags(html)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed", "base")]
    refs = [a[k] for _, a in tags for k in ("src", "href", "srcset", "data", "action") if k in a]
    assert refs, "expected anchors and figure sources"
    for ref in refs:
        assert ref.startswith(("#", "data:")), ref
        assert not re.match(r"\s*(https?:|file:|//)", ref, flags=re.I)
    assert not any(k.startswith("on") for _, a in tags for k in a)
    imgs = [a["src"] for t, a in tags if t == "img"]
    assert imgs and all(s.startswith("data:image/svg+xml;base64,") for s in imgs)
    assert "@import" not in html and "url(" not in html
    # every internal link has a target
    ids = {a["id"] for _, a in tags if "id" in a}
    for ref in refs:
        if ref.startswith("#"):
            assert ref[1:] in ids, ref


def test_html_summary_shows_error_status(html):
    summary = html[html.index('id="summary"'):html.index('id="overview"')]
    assert "Audit incomplete" in summary
    assert "security.membership_inference" in summary
    cover = html[html.index('id="cover"'):html.index('id="summary"')]
    assert "Audit incomplete" in cover and "security.membership_inference" in cover


def test_html_shows_sections_and_details(html):
    for text in ("Model overview", "Data integrity", "Explanations", "Reproducibility manifest", "Prepared by",
                 "Reviewed by", "Approved by", "5 more rows not shown", "no protected attributes in this audit",
                 "ab" * 32, "12" * 32, "Retrain on recent data.", "PSI above 0.25", "0.8123", "30,000"):
        assert text in html, text
    assert html.count('class="finding ') == 4


def test_complete_audit_says_so():
    html = render_html(build_view(make_result(errored=False)))
    assert "Audit complete" in html and "Audit incomplete" not in html


def test_summary_html_for_jupyter(result):
    out = render_summary_html(build_view(result))
    assert "auditor-summary" in out and "<script" not in out.lower()
    assert "Gate failed" in out and "security.membership_inference" in out
    assert result._repr_html_() == out


# ---- PDF -----------------------------------------------------------------------------------

def test_fetcher_refuses_everything_but_data(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    fetcher = locked_url_fetcher()
    for url in (secret.as_uri(), "file:///etc/hostname", "http://127.0.0.1:9/x.png", "https://example.org/a.css",
                "ftp://example.org/a", "FILE:///etc/hostname"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 6
    response = fetcher.fetch("data:text/plain;base64,aGVsbG8=")
    assert response.read() == b"hello"
    response.close()


def test_pdf_fetches_nothing_but_data(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-42")
    fetcher = locked_url_fetcher()
    # a document that *does* reference local files: the fetcher must refuse them all
    hostile = (f'<p>x</p><img src="{secret.as_uri()}"><link rel="stylesheet" href="{secret.as_uri()}">'
               f'<img src="http://127.0.0.1:9/a.png"><object data="{secret.as_uri()}"></object>')
    out = render_pdf(hostile, tmp_path / "h.pdf", url_fetcher=fetcher)
    assert out.read_bytes().startswith(b"%PDF")
    assert b"SECRET-MARKER-42" not in out.read_bytes()
    assert secret.as_uri() in fetcher.refused
    assert all(not u.startswith("data:") for u in fetcher.refused)


def test_report_pdf_requests_no_url(written, spy):
    assert spy.requested, "the figure should have been loaded through the fetcher"
    assert all(u.startswith("data:") for u in spy.requested), spy.requested
    assert not spy.inner.refused
    hostname = Path("/etc/hostname")
    if hostname.is_file() and len(hostname.read_bytes().strip()) >= 6:
        assert hostname.read_bytes().strip() not in written["pdf"].read_bytes()


def _pdftotext(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    """The PDF's text, read with pypdf (pure Python: no system tools needed)."""
    from pypdf import PdfReader

    pages = PdfReader(str(pdf)).pages
    lo = (first or 1) - 1
    hi = last or len(pages)
    return "\n".join(p.extract_text() or "" for p in pages[lo:hi])


def _page_count(pdf: Path, html: str) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def test_pdf_is_written(written):
    data = written["pdf"].read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert _page_count(written["pdf"], written["html"].read_text(encoding="utf-8")) > 3


def test_pdf_text(written):
    first = _pdftotext(written["pdf"], 1, 1)
    assert "Credit model <b>audit</b>" in first
    assert "Page 1 of" in first
    assert "AUDIT INCOMPLETE" in first.upper() and "security.membership_inference" in first
    text = _pdftotext(written["pdf"])
    assert SCRIPT in text  # shown as text, never interpreted
    assert "Prepared by" in text and "Page 2 of" in text
    # the cover carries the contents, each entry with its page number (pypdf reads the numbers first)
    assert "Contents" in first and "Executive summary" in first and "Appendix D: Sign-off" in first
    assert re.match(r"(\d+\n){10,}", first), "contents should carry page numbers"


# ---- findings.json and write_report ---------------------------------------------------------

def test_findings_json_validates(written):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert data["audit"]["status"] == "incomplete"
    assert data["summary"] == {"high": 1, "medium": 1, "low": 1, "info": 1, "accepted": 0}
    drift = next(c for c in data["checks"] if c["id"] == "data.drift")
    assert drift["metrics"]["share"] is None and drift["tables"]["by_feature"][0]["nan"] is None


def test_write_report_writes_only_requested_formats(result, tmp_path):
    out = write_report(result, tmp_path / "a", ["json"])
    assert set(out) == {"json"} and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["findings.json"]
    out = write_report(result, tmp_path / "b", ("html",))
    assert set(out) == {"html"} and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["report.html"]
    with pytest.raises(ValueError, match="docx"):
        write_report(result, tmp_path / "c", ("html", "docx"))


def test_result_write_moves_files(result, tmp_path):
    paths = result.write(tmp_path / "out", ("html", "json"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["findings.json", "report.html"]
    assert paths["html"].read_text(encoding="utf-8") == result.to_html()


def failing_test_figure(**_: object):
    raise ValueError("no such column")


def empty_test_figure(**_: object):
    return None


def test_figure_specs_are_drawn_for_the_report_and_a_broken_one_is_named(tmp_path):
    """Figures are specs until the report draws them: a drawn one is an inline SVG image, one with
    nothing to draw is left out, and one whose drawing fails is a note naming the error while the
    rest of the report stands."""
    result = make_result(errored=False)
    specs = (_figure(), Figure("broken", "Broken figure", plot="test_render:failing_test_figure"),
             Figure("empty", "Empty figure", plot="test_render:empty_test_figure"))
    checks = [replace(c, evidence=replace(c.evidence, figures=specs)) if c.id == "data.drift" else c
              for c in result.checks]
    html = render_html(build_view(replace(result, checks=tuple(checks))))
    assert html.count('src="data:image/svg+xml;base64,') == 1
    assert "The figure could not be drawn (ValueError: no such column)." in html
    assert "Empty figure" not in html
    written = write_report(replace(result, checks=tuple(checks)), tmp_path / "json-only", formats=["json"])
    assert list(written) == ["json"]


def test_figures_drawn_ahead_in_worker_processes_are_the_ones_drawn_here():
    """write_report draws the figures in worker processes first (``plots.drawn_ahead``): the report
    is the same byte for byte as with every figure drawn in this process, broken and empty ones too."""
    from auditor.plots import drawn_ahead
    from auditor.render import figure_specs

    result = make_result(errored=False)
    specs = (_figure(), Figure("broken", "Broken figure", plot="test_render:failing_test_figure"),
             Figure("empty", "Empty figure", plot="test_render:empty_test_figure"), _figure())
    checks = [replace(c, evidence=replace(c.evidence, figures=specs)) if c.id == "data.drift" else c
              for c in result.checks]
    result = replace(result, checks=tuple(checks))
    here = render_html(build_view(result))
    ahead = drawn_ahead(figure_specs(result), 2)
    with ahead:
        from auditor import plots

        assert len(plots._AHEAD) == len(figure_specs(result)) >= 4  # drawn in the workers, not here
        there = render_html(build_view(result))
    assert there == here and "The figure could not be drawn (ValueError: no such column)." in there


def test_the_pdf_copy_leaves_out_only_what_is_screen_only_and_prints_the_same(result, tmp_path):
    """The PDF paginates a copy of the report without the screen-only elements (WeasyPrint would
    parse and style them although print CSS hides them): the same pages and text as the full HTML."""
    import re

    from auditor.render.pdf import render_pdf

    view = build_view(result)
    full, paper = render_html(view), render_html(view, paper=True)
    assert "screen-only" in full and not re.search(r'class="[^"]*screen-only', paper)
    assert len(paper) < len(full)
    assert '<nav class="toc' not in paper and "More evidence" not in paper  # the sidebar, the folded evidence
    texts = []
    for name, doc in (("full", full), ("paper", paper)):
        render_pdf(doc, tmp_path / f"{name}.pdf")
        texts.append(_pdftotext(tmp_path / f"{name}.pdf"))
    assert texts[0] == texts[1]
