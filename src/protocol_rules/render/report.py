"""The screening report: one self-contained HTML page (inline CSS and SVG, no network).

It shows the attrition funnel as a chart, each criterion's met / not met / unknown bar beside the
protocol's own text, what dropping each criterion would gain, the near misses and the malformed
records. Every text from the rules file or the data goes through `safe.html_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from .safe import html_text

if TYPE_CHECKING:
    from ..screening import Screening

PASS, FAIL, OPEN, INK, MUTED = "#2e7d5b", "#c0392b", "#d4a017", "#1f2933", "#6b7785"
STATUS_COLOURS = {"eligible": PASS, "ineligible": FAIL, "indeterminate": OPEN, "error": "#7b4fa0"}

CSS = f"""
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: {INK};
  margin: 0; background: #f5f7f9; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; }}
h1 {{ font-size: 24px; margin: 0 0 4px; }} h2 {{ font-size: 18px; margin: 32px 0 8px; }}
.sub {{ color: {MUTED}; margin: 0 0 16px; }}
.cards {{ display: flex; gap: 12px; flex-wrap: wrap; }}
.card {{ background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 140px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); border-top: 4px solid var(--c); }}
.card b {{ display: block; font-size: 26px; }} .card span {{ color: {MUTED}; }}
section {{ background: #fff; border-radius: 8px; padding: 16px 20px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
svg text {{ font: 12px system-ui, sans-serif; fill: {INK}; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ padding: 6px 8px; border-bottom: 1px solid #e4e8ec; text-align: left;
  vertical-align: top; }}
th {{ font-weight: 600; color: {MUTED}; font-size: 13px; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.id {{ font-weight: 600; white-space: nowrap; }} .kind {{ color: {MUTED}; font-size: 12px; }}
.text {{ color: #3e4c59; font-size: 13px; max-width: 520px; }}
.bar {{ display: flex; height: 16px; border-radius: 3px; overflow: hidden; min-width: 240px;
  background: #eef1f4; }}
.bar i {{ display: block; height: 100%; }}
.legend span {{ margin-right: 16px; }} .legend i {{ display: inline-block; width: 10px;
  height: 10px; border-radius: 2px; margin-right: 4px; }}
code {{ font-size: 13px; background: #eef1f4; padding: 1px 4px; border-radius: 3px; }}
footer {{ color: {MUTED}; font-size: 12px; margin-top: 32px; }}
"""


def report_html(screening: Screening, without: Sequence[str] = ()) -> str:
    """The whole page for a screening (see the module docstring)."""
    protocol = screening.protocol
    title = protocol.title or ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Screening — {html_text(protocol.id)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Screening — {html_text(protocol.id)}</h1>",
        f'<p class="sub">{html_text(title)}</p>' if title else "",
        _summary(screening),
        "<h2>Attrition</h2>",
        '<p class="sub">Criteria applied in file order: the patients still in after each one.</p>',
        f"<section>{_funnel(screening)}</section>",
        "<h2>Criteria</h2>",
        f"<section>{_criteria(screening)}</section>",
        "<h2>What if a criterion were dropped?</h2>",
        '<p class="sub">Patients each criterion alone keeps out, and how many of them would then '
        "be eligible.</p>",
        f"<section>{_gains(screening)}</section>",
    ]
    if without:
        parts += [
            f"<h2>Without {html_text(', '.join(without))}</h2>",
            f"<section>{_what_if(screening, without)}</section>",
        ]
    parts += [
        "<h2>Near misses</h2>",
        '<p class="sub">Patients kept out by one criterion decided by a comparison, nearest to '
        "its threshold first.</p>",
        f"<section>{_near_misses(screening)}</section>",
    ]
    errors = screening.errors()
    if errors.height:
        parts += [
            f"<h2>Malformed records ({errors.height})</h2>",
            f"<section>{_errors(errors)}</section>",
        ]
    parts += [
        f"<footer>protocol-rules {html_text(__version__)} · engine "
        f"{html_text(screening.engine)} · {html_text(protocol.source_name)}</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _summary(screening: Screening) -> str:
    counts = screening.status_counts()
    total = len(screening)
    cards = [f'<div class="card" style="--c:{INK}"><b>{total:,}</b><span>patients</span></div>']
    for status, n in counts.items():
        if status == "error" and not n:
            continue
        share = f" · {n / total:.0%}" if total else ""
        cards.append(
            f'<div class="card" style="--c:{STATUS_COLOURS[status]}"><b>{n:,}</b>'
            f"<span>{status}{share}</span></div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _funnel(screening: Screening) -> str:
    rows = list(screening.attrition().iter_rows(named=True))
    total = max(rows[0]["remaining"], 1)
    height, left, width = 22, 90, 640
    lines = [
        f'<svg role="img" aria-label="attrition funnel" width="{left + width + 190}" '
        f'height="{len(rows) * height + 8}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, row in enumerate(rows):
        y = i * height + 4
        label = row["criterion"] or "screened"
        w = width * row["remaining"] / total
        undecided = width * row["undecided"] / total
        lines.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html_text(label)}</text>'
        )
        lines.append(
            f'<rect x="{left + (width - w) / 2:.1f}" y="{y}" width="{w:.1f}" height="{height - 4}" '
            f'rx="2" fill="{PASS}"><title>{html_text(row["text"] or "all screened patients")}'
            f"</title></rect>"
        )
        if undecided:
            lines.append(
                f'<rect x="{left + (width - undecided) / 2:.1f}" y="{y + height - 8}" '
                f'width="{undecided:.1f}" height="4" fill="{OPEN}"/>'
            )
        removed = f"  −{row['removed']:,}" if row["removed"] else ""
        lines.append(
            f'<text x="{left + width + 8}" y="{y + 15}">{row["remaining"]:,}{removed}</text>'
        )
    lines.append("</svg>")
    legend = (
        f'<p class="legend"><span><i style="background:{PASS}"></i>remaining</span>'
        f'<span><i style="background:{OPEN}"></i>of which still undecided</span></p>'
    )
    return "".join(lines) + legend


def _criteria(screening: Screening) -> str:
    texts = {c.id: c for c in screening.protocol.criteria}
    rows = [
        "<table><tr><th>criterion</th><th>protocol text</th><th>met · not met · unknown</th>"
        "<th></th></tr>"
    ]
    for row in screening.counts().iter_rows(named=True):
        criterion = texts[row["criterion"]]
        total = max(row["met"] + row["not_met"] + row["unknown"], 1)
        exclusion = row["kind"] == "exclusion"
        met_colour, not_colour = (FAIL, PASS) if exclusion else (PASS, FAIL)
        bar = "".join(
            f'<i style="width:{100 * n / total:.2f}%;background:{colour}" title="{label}: {n:,}">'
            "</i>"
            for n, colour, label in (
                (row["met"], met_colour, "met"),
                (row["not_met"], not_colour, "not met"),
                (row["unknown"], OPEN, "unknown"),
            )
            if n
        )
        note = f"<br><i>note: {html_text(criterion.note)}</i>" if criterion.note else ""
        rows.append(
            f'<tr><td class="id">{html_text(row["criterion"])}<br>'
            f'<span class="kind">{row["kind"]}</span></td>'
            f'<td class="text">{html_text(criterion.text)}{note}</td>'
            f'<td><div class="bar">{bar}</div></td>'
            f'<td class="n">{row["met"]:,} · {row["not_met"]:,} · {row["unknown"]:,}</td></tr>'
        )
    rows.append("</table>")
    legend = (
        f'<p class="legend"><span><i style="background:{PASS}"></i>lets patients through</span>'
        f'<span><i style="background:{FAIL}"></i>keeps patients out</span>'
        f'<span><i style="background:{OPEN}"></i>unknown</span></p>'
    )
    return "".join(rows) + legend


def _gains(screening: Screening) -> str:
    gains = [r for r in screening.what_if().gains.iter_rows(named=True) if r["keeps_out"]]
    if not gains:
        return "<p>No patient is kept out by a single criterion.</p>"
    top = max(r["keeps_out"] for r in gains)
    height, left, width = 22, 70, 560
    lines = [
        f'<svg role="img" aria-label="what-if gains" width="{left + width + 220}" '
        f'height="{len(gains) * height + 8}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, row in enumerate(gains):
        y = i * height + 4
        w = width * row["keeps_out"] / top
        e = width * row["would_be_eligible"] / top
        lines += [
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html_text(row["criterion"])}'
            "</text>",
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{height - 4}" fill="#9fb3c8"/>',
            f'<rect x="{left}" y="{y}" width="{e:.1f}" height="{height - 4}" fill="{PASS}"/>',
            f'<text x="{left + w + 8:.1f}" y="{y + 15}">{row["keeps_out"]:,} kept out · '
            f"{row['would_be_eligible']:,} would be eligible</text>",
        ]
    lines.append("</svg>")
    return "".join(lines)


def _what_if(screening: Screening, without: Sequence[str]) -> str:
    result = screening.what_if(without)
    rows = ["<table><tr><th>status</th><th>now</th><th>without</th></tr>"]
    for row in result.counts.iter_rows(named=True):
        rows.append(
            f'<tr><td>{row["status"]}</td><td class="n">{row["before"]:,}</td>'
            f'<td class="n">{row["after"]:,}</td></tr>'
        )
    return "".join(rows) + "</table>"


def _near_misses(screening: Screening, limit: int = 25) -> str:
    near = screening.near_misses().head(limit)
    if not near.height:
        return "<p>None.</p>"
    rows = [
        "<table><tr><th>patient</th><th>criterion</th><th>comparison</th><th>value</th>"
        "<th>distance</th><th>then</th></tr>"
    ]
    for row in near.iter_rows(named=True):
        unit = f" {row['unit']}" if row["unit"] else ""
        rows.append(
            f"<tr><td>{html_text(str(row['patient_id']))}</td>"
            f'<td class="id">{html_text(row["criterion"])}</td>'
            f"<td><code>{html_text(row['expr'])}</code></td>"
            f'<td class="n">{_number(row["value"])}{html_text(unit)}</td>'
            f'<td class="n">{_number(row["distance"])}{html_text(unit)}</td>'
            f"<td>{row['would_be']}</td></tr>"
        )
    return "".join(rows) + "</table>"


def _errors(errors: Any, limit: int = 200) -> str:
    rows = ["<table><tr><th>patient</th><th>code</th><th>message</th><th>where</th></tr>"]
    for row in errors.head(limit).iter_rows(named=True):
        rows.append(
            f"<tr><td>{html_text(str(row['patient_id']))}</td><td>{html_text(row['code'])}</td>"
            f"<td>{html_text(row['message'])}</td><td><code>{html_text(row['path'] or '')}"
            "</code></td></tr>"
        )
    more = f"<p>… and {errors.height - limit:,} more.</p>" if errors.height > limit else ""
    return "".join(rows) + "</table>" + more


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"


__all__ = ["report_html"]
