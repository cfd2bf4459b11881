from kqv_demo.ui.planned import planned_page

planned_page(
    "Claims",
    "Every checkable claim of the source dialogue, quoted, with a verdict and a refutation text.",
    [
        "Filter by topic, verdict and importance; search the quotes.",
        "Each claim shows what is actually true, why the wrong idea is tempting, and primary references.",
        "A button runs the claim's live demo; a link shares a single claim.",
    ],
)
