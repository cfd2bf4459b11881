"""The export panel: pick a format, build the file (figures render live), download it."""

from __future__ import annotations

import hashlib

import streamlit as st

from kqv_demo.content.loader import Bank
from kqv_demo.errors import UserInputError
from kqv_demo.exports import FORMATS, build_export, file_name, model_runs_needed, needs_model
from kqv_demo.markup import literal
from kqv_demo.quiz.items import Item
from kqv_demo.quiz.rounds import RoundSpec
from kqv_demo.ratelimit import RateLimited


def _key(spec: RoundSpec, items: list[Item], fmt: str) -> str:
    digest = hashlib.sha256("|".join(item.id for item in items).encode()).hexdigest()[:12]
    return f"export:{spec.id}:{fmt}:{digest}"


def _build(bank: Bank, spec: RoundSpec, items: list[Item], fmt: str) -> bytes | None:
    from kqv_demo.ui.resources import charge, runtime

    chosen = FORMATS[fmt]
    models = runtime() if needs_model(chosen, items) else None
    try:
        if model_runs_needed(bank, items, fmt, models):  # figures already computed cost no model work
            charge("export")
    except RateLimited as limited:
        st.warning(str(limited), icon=":material/hourglass_top:")
        return None
    with st.status(f"Building {chosen.label}…", expanded=True) as status:
        def progress(step: str) -> None:
            status.update(label=f"Building {chosen.label}: {step}…")
            st.write(step)

        try:
            content = build_export(bank, spec, items, fmt, models, progress)
        except UserInputError as problem:
            status.update(label="Export failed", state="error")
            st.error(literal(str(problem)))
            return None
        status.update(label=f"{chosen.label} ready: {len(items)} questions", state="complete", expanded=False)
    return content.encode("utf-8") if isinstance(content, str) else content


def export_panel(bank: Bank, spec: RoundSpec, items: list[Item]) -> None:
    """Format choice, a build button (figures are computed by the real models), and the download."""
    fmt = st.radio("Format", list(FORMATS), format_func=lambda name: FORMATS[name].label,
                   key=f"export-format-{spec.id}", horizontal=True)
    st.caption(FORMATS[fmt].help)
    predictions = sum(item.kind == "predict" for item in items)
    if predictions:
        st.caption(f"{predictions} prediction question(s): their answers are what the model does "
                   "when the file is built.")
    key = _key(spec, items, fmt)
    if st.button("Build the file", key=f"export-build-{spec.id}", type="primary"):
        built = _build(bank, spec, items, fmt)
        if built is not None:
            st.session_state[key] = built
    if key in st.session_state:
        st.download_button(f"Download {file_name(spec, fmt)}", st.session_state[key], file_name=file_name(spec, fmt),
                           mime=FORMATS[fmt].mime, key=f"export-download-{spec.id}-{fmt}", on_click="ignore")
