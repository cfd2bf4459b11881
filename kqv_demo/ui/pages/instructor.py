from kqv_demo.ui.planned import planned_page

planned_page(
    "Instructor",
    "Assign quiz rounds to a class, watch results come in, and export handouts and question banks.",
    [
        "Build a round and give the class a short code or link.",
        "A dashboard (protected by an instructor key) with per-item accuracy and confident misconceptions.",
        "Printable handouts with live figures, Moodle XML, GIFT and Anki exports.",
    ],
)
