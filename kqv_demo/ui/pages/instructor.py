"""Instructor: build a class round, give the class its code, watch the results come in, export the round."""

import streamlit as st
from pydantic import ValidationError

from kqv_demo import classroom
from kqv_demo.claim_source import headline
from kqv_demo.content.schema import TOPICS
from kqv_demo.content.yamlfile import problem_count
from kqv_demo.errors import UserInputError
from kqv_demo.markup import literal
from kqv_demo.quiz.items import ITEM_KINDS, KIND_LABELS
from kqv_demo.classroom.resolve import resolve_round
from kqv_demo.quiz.resolve import round_items
from kqv_demo.quiz.round_files import MAX_ROUND_FILE_BYTES, load_round_files, parse_round_upload
from kqv_demo.quiz.rounds import BUILT_IN, MAX_ROUND_ITEMS, RoundSpec
from kqv_demo.ratelimit import BULK_REQUESTS
from kqv_demo.ui.bank import bank, show_content_errors
from kqv_demo.ui.classroom_views import class_dashboard, created_notice, round_outline
from kqv_demo.ui.export_views import export_panel
from kqv_demo.ui.resources import preload
from kqv_demo.storage import StorageUnavailable
from kqv_demo.ui.store import store

ORDER_LABELS = {"shuffled": "Shuffled", "bank": "Bank order"}
FEEDBACK_LABELS = {"immediate": "After each answer", "end": "At the end of the round"}
START_LABELS = {"wait": "When I press Start (a class in the room)", "now": "As soon as they join (homework)"}

preload()  # so that the class does not wait for the models
st.title("Instructor")
loaded = bank()
show_content_errors(loaded)
try:
    db = store()
except StorageUnavailable as problem:  # class rounds need the database; exporting a built-in round does not
    db = None
    st.error(literal(str(problem)), icon=":material/database:")
new_tab, results_tab, export_tab = st.tabs(["New round", "Class results", "Export"])


def admission_choices() -> tuple[int, bool]:
    """How many may join, and whether they wait for the instructor's start (asked next to every way of building)."""
    left, right = st.columns(2)
    cap = left.number_input("Most students who can join", 1, classroom.MAX_STUDENTS_LIMIT,
                            classroom.DEFAULT_MAX_STUDENTS, key="max-students",
                            help="Anyone with the code can join until this many have, or until you close joining.")
    start = right.radio("Students start", list(START_LABELS), format_func=START_LABELS.get, key="start-mode",
                        help="When you press Start, nobody sees a question (or the time limit) before you do.")
    return int(cap), start == "wait"


def create(spec: RoundSpec, max_students: int, wait_for_start: bool) -> None:
    try:
        code, key = classroom.create_class(db, loaded, spec, max_students=max_students, wait_for_start=wait_for_start)
    except (UserInputError, StorageUnavailable) as problem:
        st.error(literal(str(problem)))
        return
    st.session_state["created_class"] = (code, key)
    st.session_state["class_access"] = code  # whoever created it may see its results in this session
    st.rerun()


def spec_from_choices() -> RoundSpec | None:
    with st.form("new-round"):
        title = st.text_input("Title the class sees", "Class round", max_chars=120)
        claims = st.multiselect(
            "Claims (none = any)", list(loaded.claims),
            format_func=lambda cid: f"{cid}: “{headline(loaded.claims[cid])[:70]}”")  # plain-text sink
        topics = st.multiselect("Topics (none = any)", TOPICS)
        kinds = st.multiselect("Item types", list(ITEM_KINDS), default=["verdict", "multiple_choice"],
                               format_func=KIND_LABELS.get)
        left, middle, right = st.columns(3)
        count = left.number_input("Questions", 1, MAX_ROUND_ITEMS, 10)
        limit = middle.number_input("Time limit in minutes (0 = none)", 0, 180, 0)
        order = right.radio("Order", list(ORDER_LABELS), format_func=ORDER_LABELS.get,
                            help="Bank order: claims in the bank's order, each claim's item types in the order chosen.")
        feedback = st.radio("Feedback", list(FEEDBACK_LABELS), format_func=FEEDBACK_LABELS.get, horizontal=True)
        if not st.form_submit_button("Create the class round", type="primary"):
            return None
    try:
        return RoundSpec(id="class", title=title.strip() or "Class round", claims=tuple(claims), topics=tuple(topics),
                         kinds=tuple(kinds), count=int(count), order=order, feedback=feedback,
                         time_limit_minutes=int(limit) or None)
    except ValidationError as invalid:
        st.error("This round cannot be built: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'round'}: {e['msg']}" for e in invalid.errors()))
        return None


def spec_from_file() -> RoundSpec | None:
    files = load_round_files(loaded)
    for problem in files.errors:
        st.error(literal(str(problem)))
    if not files.specs:
        st.info("There are no valid round files in content/rounds/.")
        return None
    chosen = st.selectbox("Round file", list(files.specs),
                          format_func=lambda rid: f"{files.specs[rid].title} ({files.files[rid].name})")
    round_outline(loaded, files.specs[chosen])
    return files.specs[chosen] if st.button("Create the class round", type="primary", key="create-from-file") else None


def spec_from_upload() -> RoundSpec | None:
    upload = st.file_uploader(f"A round file (YAML, at most {MAX_ROUND_FILE_BYTES // 1024} KB)", type=["yaml", "yml"])
    if upload is None:
        st.caption("The format is the one of content/rounds/*.yaml; see the README.")
        return None
    with BULK_REQUESTS:
        spec, errors = parse_round_upload(loaded, upload.name, upload.getvalue())
    if errors:
        st.error(f"{problem_count(errors)} problem(s) in {literal(upload.name)}; nothing was created.")
        st.code("\n".join(str(error) for error in errors), language=None)
        return None
    round_outline(loaded, spec)
    return spec if st.button("Create the class round", type="primary", key="create-from-upload") else None


with new_tab:
    if db is None:
        st.info("Class rounds are stored in the database, which is not available right now (see above).")
    elif "created_class" in st.session_state:
        code, key = st.session_state["created_class"]
        created_notice(code, key, db.class_by_code(code))
        if st.button("I have saved the key: build another round"):
            del st.session_state["created_class"]
            st.rerun()
    else:
        source = st.radio("Build the round from", ["Your choices", "A round file", "An uploaded file"],
                          horizontal=True)
        admission = admission_choices()
        spec = {"Your choices": spec_from_choices, "A round file": spec_from_file,
                "An uploaded file": spec_from_upload}[source]()
        if spec is not None:
            create(spec, *admission)

with results_tab:
    access = st.session_state.get("class_access")
    if db is None:
        st.info("The results are in the database, which is not available right now (see above).")
    elif access is None:
        with st.form("open-results"):
            typed_code = st.text_input("Round code", max_chars=20, placeholder="K7P-QX4-MRT")
            typed_key = st.text_input("Instructor key", type="password", max_chars=100)
            if st.form_submit_button("Show the results", type="primary"):
                try:
                    st.session_state["class_access"] = classroom.verify_key(db, typed_code, typed_key).code
                except UserInputError as problem:
                    st.error(literal(str(problem)))
                else:
                    st.rerun()
    else:
        class_dashboard(db, loaded, access)
        if st.button("Close these results"):
            del st.session_state["class_access"]
            st.rerun()

with export_tab:
    st.markdown("A printable handout with live figures and an answer key, or the questions for Moodle or Anki. "
                "The CLI does the same: `python -m kqv_demo export --round CODE_OR_FILE --format pdf -o out.pdf`.")
    choices = ([access] if access and db is not None else []) + list(BUILT_IN) + list(load_round_files(loaded).specs)
    chosen = st.selectbox("Round to export", choices, format_func=lambda name: (
        f"This class round ({classroom.format_code(name)})" if name == access else name))
    try:
        exported = resolve_round(loaded, chosen, db)
    except UserInputError as problem:
        st.error(literal(str(problem)))
    else:
        export_panel(loaded, exported, round_items(loaded, exported))
