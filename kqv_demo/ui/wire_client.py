"""A headless Streamlit browser tab: the websocket protocol a real browser speaks, without the browser.

Used by the class load test (kqv_demo/ui/loadtest.py). It lives in kqv_demo/ui/ because it imports
Streamlit's wire protocol (streamlit.proto), and this package is the only one that imports streamlit.

The protocol, as the installed server implements it (streamlit/web/server/starlette/starlette_websocket.py,
streamlit/runtime/app_session.py):
- connect to ws://HOST:PORT/_stcore/stream with the subprotocol "streamlit" (no Origin header, so no XSRF
  token is needed; the second and third subprotocol entries are only for XSRF and reconnection);
- every run is asked for with a BackMsg `rerun_script` carrying a ClientState: the query string, the page
  and the widget states (a button or a form's submit button sends `trigger_value`; a radio sends its
  option's label as `string_value`; a text input its text);
- the server answers with ForwardMsgs: `new_session` starts a run, `delta`s carry the elements,
  `page_info_changed` carries query parameters the script set, and `script_finished` ends the run
  (FINISHED_EARLY_FOR_RERUN when the script called st.rerun(): another run follows).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

WIDGET_KINDS = ("button", "text_input", "radio")
FINISHED = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)


class ProtocolError(Exception):
    """The server closed the connection, sent something unexpected, or did not finish a run in time."""


@dataclass(frozen=True)
class Widget:
    kind: str
    id: str
    label: str
    form_id: str = ""
    options: tuple[str, ...] = ()
    is_form_submitter: bool = False


@dataclass
class Page:
    """What one finished run put on the screen."""

    widgets: list[Widget] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # "error: ...", "warning: ...", "info: ...", "success: ..."
    problems: list[str] = field(default_factory=list)  # exceptions, compile errors, page not found

    def find(self, kind: str, label_start: str) -> Widget | None:
        return next((w for w in self.widgets if w.kind == kind and w.label.startswith(label_start)), None)

    def button(self, label: str) -> Widget | None:
        return next((w for w in self.widgets if w.kind == "button" and w.label == label), None)

    def mentions(self, text: str) -> bool:
        return any(text in body for body in self.texts)


def _read_element(page: Page, element) -> None:
    kind = element.WhichOneof("type")
    body = getattr(element, kind)
    if kind in WIDGET_KINDS:
        page.widgets.append(Widget(
            kind=kind, id=body.id, label=body.label, form_id=body.form_id,
            options=tuple(body.options) if kind == "radio" else (),
            is_form_submitter=kind == "button" and body.is_form_submitter,
        ))
    elif kind == "exception":
        page.problems.append(f"exception {body.type}: {body.message}")
    elif kind == "alert":
        page.alerts.append(f"{Alert.Format.Name(body.format).lower()}: {body.body}")
        page.texts.append(body.body)
    elif kind in ("markdown", "heading"):
        page.texts.append(body.body)
    elif kind == "progress":
        page.texts.append(body.text)


class AppTab:
    """One browser tab on one page of the app. Not thread-safe; one asyncio task drives it."""

    def __init__(self, ws_url: str, page_name: str, query_string: str = "", run_timeout: float = 60.0) -> None:
        self.ws_url = ws_url
        self.page_name = page_name
        self.query_string = query_string
        self.run_timeout = run_timeout
        self._socket = None
        self._held: dict[str, WidgetState] = {}  # values the "browser" holds, sent with every run

    async def open(self) -> tuple[Page, float]:
        """Connect and run the page, as a browser does when it loads the link."""
        try:
            self._socket = await websockets.connect(
                self.ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=self.run_timeout,
                ping_interval=None,  # a browser answers pings but sends none; run_timeout catches a stuck server
            )
        except (OSError, websockets.WebSocketException, TimeoutError) as failed:
            raise ProtocolError(f"could not connect to {self.ws_url}: {failed}") from None
        return await self.run([])

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
            self._socket = None

    async def click(self, button: Widget) -> tuple[Page, float]:
        return await self.run([WidgetState(id=button.id, trigger_value=True)])

    async def submit(self, submit_button: Widget, values: dict[Widget, str]) -> tuple[Page, float]:
        """Fill a form's widgets (radio: an option label; text input: the text) and press its submit button."""
        states = [WidgetState(id=widget.id, string_value=value) for widget, value in values.items()]
        return await self.run([*states, WidgetState(id=submit_button.id, trigger_value=True)])

    async def run(self, states: list[WidgetState]) -> tuple[Page, float]:
        """Ask for a run with these widget states; return the finished page and the seconds it took."""
        if self._socket is None:
            raise ProtocolError("the tab is not connected")
        for state in states:
            if not state.trigger_value:
                self._held[state.id] = state
        message = BackMsg()
        client = message.rerun_script
        client.query_string = self.query_string
        client.page_name = self.page_name
        client.widget_states.widgets.extend([*self._held.values(), *(s for s in states if s.trigger_value)])
        started = time.perf_counter()
        try:
            await self._socket.send(message.SerializeToString())
            page = await asyncio.wait_for(self._read_run(), self.run_timeout)
        except TimeoutError:
            raise ProtocolError(f"no script_finished within {self.run_timeout:.0f} s") from None
        except websockets.WebSocketException as closed:
            raise ProtocolError(f"disconnected: {closed}") from None
        elapsed = time.perf_counter() - started
        shown = {widget.id for widget in page.widgets}
        self._held = {key: state for key, state in self._held.items() if key in shown}
        return page, elapsed

    async def _read_run(self) -> Page:
        page = Page()
        while True:
            message = ForwardMsg()
            message.ParseFromString(await self._socket.recv())
            kind = message.WhichOneof("type")
            if kind == "new_session":
                page = Page()  # a new run (after st.rerun) replaces the screen
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                _read_element(page, message.delta.new_element)
            elif kind == "page_info_changed":
                self.query_string = message.page_info_changed.query_string
            elif kind == "page_not_found":
                page.problems.append(f"page not found: {message.page_not_found.page_name}")
            elif kind == "session_event" and message.session_event.WhichOneof("type") == "script_compilation_exception":
                page.problems.append(f"compile error: {message.session_event.script_compilation_exception.message}")
            elif kind == "ref_hash":
                raise ProtocolError("the server sent a cached-message reference this client never asked for")
            elif kind == "script_finished" and message.script_finished in FINISHED:
                return page
