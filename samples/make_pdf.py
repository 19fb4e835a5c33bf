"""Regenerate samples/quarterly_report_orion_q3_2024.pdf, a two-page text PDF.

Run with the development dependencies installed:  python samples/make_pdf.py
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

OUT = Path(__file__).with_name("quarterly_report_orion_q3_2024.pdf")

PAGES = [
    (
        "Orion Outdoor Gear plc - Third Quarter 2024 Report",
        [
            "Orion Outdoor Gear reported revenue of $73.4 million for Q3 2024, up from "
            "$66.0 million in Q3 2023, as autumn collections sold through faster than planned.",
            "Orion Outdoor Gear reported gross profit of $31.2 million for Q3 2024. Online sales "
            "grew to 41% of the total, from 35% a year earlier.",
        ],
    ),
    (
        "Profit and cash",
        [
            "Orion Outdoor Gear reported a net income of $8.9 million for Q3 2024, compared with "
            "$6.1 million in Q3 2023.",
            "Orion Outdoor Gear reported free cash flow of $5.4 million for Q3 2024. The board "
            "proposes an interim dividend of 4 cents per share.",
        ],
    ),
]


def main() -> None:
    pdf = FPDF()
    pdf.set_title("Orion Outdoor Gear Q3 2024")
    pdf.set_creation_date(datetime(2024, 10, 29, tzinfo=UTC))  # reproducible output
    for heading, paragraphs in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 15)
        pdf.multi_cell(0, 9, heading)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(3)
    pdf.output(str(OUT))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
