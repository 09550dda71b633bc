"""``demvae report`` opened in headless Chromium: no console errors, every section, the code table sorts,
the search filters, nothing is fetched from a network, nothing is wider than a 1400 px window; a screenshot of
the page is kept."""

from __future__ import annotations

import json
import shutil

from demvae.report.html import write_report

ROWS = "[...document.querySelectorAll('#codes-0 tbody tr')]"


def _with_control_columns(run, folder):
    """A copy of ``run`` whose metrics hold ``demvae eval --metrics control`` scores: the code table at its widest
    (code recovery, distinct, distinct-2 and one agreement column per label)."""
    folder = shutil.copytree(run, folder)
    metrics = json.loads((folder / "metrics-test.json").read_text())
    metrics["control"] = {"recovery": 0.5, "coverage": 0.9, "distinct": 0.5, "distinct_2": 0.5, "procedure": "rerank",
                          "codes": [{"code": [0, 0], "recovery": 0.5, "distinct": 0.5, "distinct_2": 0.5,
                                     "agreement": {"intent": 0.5, "style": 0.5}}]}
    (folder / "metrics-test.json").write_text(json.dumps(metrics))
    return folder


def test_report_in_headless_chromium(tiny_run, reproduction_folder, browser_page, tmp_path):
    repro = reproduction_folder(tmp_path / "dd-table2-mini", tiny_run)
    run = _with_control_columns(tiny_run, tmp_path / "dgm-vae")
    out = write_report([run, repro], tmp_path / "report.html", device="cpu", progress=False)
    page = browser_page
    page.call("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": 900, "deviceScaleFactor": 1,
                                                      "mobile": False})
    page.open(out.as_uri())
    assert page.js("window.innerWidth") == 1400
    # nothing runs off the page on the right, and the code table at its widest needs no scroll bar of its own (its
    # headers and sentences wrap; the paper table's 19 number columns may scroll in their box)
    assert page.js("document.documentElement.scrollWidth") <= 1400
    assert page.js("[...document.querySelectorAll('table.codes')].map(t => t.parentElement)"
                   ".filter(d => d.scrollWidth > d.clientWidth).length") == 0
    assert page.js("document.querySelector('#codes-0 th:last-child').getBoundingClientRect().right") <= 1400

    sections = page.js("[...document.querySelectorAll('main > section')].map(s => s.id)")
    assert sections == ["overview", "codes", "latent", "training", "metrics", "config", "reproduction"]
    assert page.js("[...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'))") == [
        f"#{s}" for s in sections]
    # figures: the latent map's thumbnail, the map, training curves, the reproduction's figure and its runs'
    # curves, all decoded
    assert page.js("[...document.images].filter(i => i.complete && i.naturalWidth > 100).length") == 5
    assert "7.63" in page.js("document.querySelector('table.paper').textContent")  # the paper's DGM-VAE BLEU

    # the code table sorts: by size (descending as rendered, then ascending, then descending), by code
    sizes = f"{ROWS}.map(r => +r.cells[1].dataset.v)"
    rendered = page.js(sizes)
    assert len(rendered) >= 3 and rendered == sorted(rendered, reverse=True)
    page.click("#codes-0 th:nth-child(2)")
    assert page.js(sizes) == sorted(rendered)
    assert page.js("document.querySelector('#codes-0 th:nth-child(2)').getAttribute('aria-sort')") == "ascending"
    page.click("#codes-0 th:nth-child(2)")
    assert page.js(sizes) == sorted(rendered, reverse=True)
    page.click("#codes-0 th:nth-child(1)")
    codes = page.js(f"{ROWS}.map(r => r.cells[0].textContent)")
    assert codes == sorted(codes, key=lambda c: tuple(int(v) for v in c.split(",")))

    # the search keeps the codes with a matching sentence and marks the matches
    sentences = page.js(f"{ROWS}.map(r => [...r.querySelectorAll('.sent')].map(s => s.textContent.toLowerCase()))")
    words = {w for row in sentences for s in row for w in s.split()}
    word = next(w for w in sorted(words) if w.isalpha()
                and 0 < sum(any(w in s for s in row) for row in sentences) < len(sentences))
    page.type("input[data-table=codes-0]", word)
    visible = page.js(f"{ROWS}.filter(r => !r.hidden).map(r => r.cells[0].textContent)")
    assert visible == [c for c, row in zip(codes, sentences) if any(word in s for s in row)]
    assert page.js("[...document.querySelectorAll('#codes-0 mark')].every(m => m.textContent.toLowerCase() === "
                   f"{json.dumps(word)})")
    assert page.js("document.querySelector('.count[data-for=codes-0]').textContent") == (
        f"{len(visible)} of {len(codes)} codes")

    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    assert page.problems() == []
    # self-contained: the page itself and its inline data: images, nothing else
    assert [u for u in page.requests() if not u.startswith("data:image/png;base64,")] == [out.as_uri()]
