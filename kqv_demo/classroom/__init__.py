"""Class rounds: an instructor creates a round, students join it with a short code, the dashboard reads results.

No Streamlit here: the Instructor page, the Quiz page and the load script all call these functions.
"""

from kqv_demo.classroom.classes import (
    MAX_STUDENTS_LIMIT, admission, class_spec, create_class, join_class, open_class, remove_student, set_joining,
    start_class, verify_key,
)
from kqv_demo.classroom.codes import format_code, normalise_code
from kqv_demo.classroom.results import ClassResults, class_results, results_csv
from kqv_demo.storage import DEFAULT_MAX_STUDENTS

__all__ = [
    "DEFAULT_MAX_STUDENTS", "MAX_STUDENTS_LIMIT", "ClassResults", "admission", "class_results", "class_spec",
    "create_class", "format_code", "join_class", "normalise_code", "open_class", "remove_student", "results_csv",
    "set_joining", "start_class", "verify_key",
]
