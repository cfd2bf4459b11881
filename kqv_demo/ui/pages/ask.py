from kqv_demo.ui.planned import planned_page

planned_page(
    "Ask",
    "An explainer chat that answers only from the vetted claim bank and never agrees with a misconception.",
    [
        "Ask a question or state a belief (“so attention uses KL divergence, right?”).",
        "The answer says whether it corrects, agrees, explains or declines, and cites its sources.",
        "Each correction offers its live demo, and shows which vetted claim it matched.",
    ],
)
