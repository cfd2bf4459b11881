from kqv_demo.ui.planned import planned_page

planned_page(
    "Quiz",
    "Practise with rounds of questions drawn from the claim bank, and get corrected in a way that sticks.",
    [
        "Rounds such as *Core 10* or *KL and dot products*, or your own by topic, with a seed to repeat them.",
        "Say how sure you are before the answer is revealed; confident mistakes are flagged for review.",
        "Predict-then-observe items: predict what the real model does, then watch it run.",
        "Progress saved between visits, with spaced review of what you missed.",
    ],
)
