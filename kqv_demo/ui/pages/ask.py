"""Ask: the explainer chat. Answers only from the vetted bank; corrects, agrees, explains or declines."""

import streamlit as st

from kqv_demo.explainer.chat import Conversation
from kqv_demo.ratelimit import BULK_REQUESTS, RateLimited
from kqv_demo.ui.bank import bank, show_content_errors
from kqv_demo.ui.chat_views import explainer, learner_message, not_sent, reply_view
from kqv_demo.ui.resources import charge, runtime

EXAMPLES = [
    "so attention uses KL divergence, right?",
    "what does softmax do here?",
    "my teacher says the model learns while we chat",
    "KL divergence is used in distillation and in RLHF's penalty",
]

st.title("Ask")
st.caption(
    "Ask a question or state a belief about attention. Answers come only from the vetted claim bank: "
    "the tutor says plainly when something is wrong, agrees only with what is true, and says so when "
    "it has no vetted answer. Follow up with “why?”, “show me” or “and values?”."
)
show_content_errors(bank())
models = runtime()
chat = Conversation(explainer(models), st.session_state.setdefault("ask.turns", []))

pending = st.chat_input("Ask about queries, keys, values, softmax, layers…", max_chars=20_000)
if not chat.turns and not pending:
    st.markdown("**Try one of these:**")
    columns = st.columns(len(EXAMPLES))
    for column, example in zip(columns, EXAMPLES):
        if column.button(example, key=f"ask.example.{example}", width="stretch"):
            pending = example

refused = None
if pending is not None:
    try:
        charge("chat")
        with BULK_REQUESTS:
            chat.ask(pending)
    except RateLimited as limited:
        refused = (pending, str(limited))

for turn, (message, reply) in enumerate(chat.turns):
    learner_message(reply.text if reply.text or not message.strip() else message)
    reply_view(reply, turn, models)

if refused is not None:
    not_sent(*refused)

if chat.turns and st.button("Start a new conversation", icon=":material/refresh:"):
    st.session_state["ask.turns"] = []
    st.rerun()
