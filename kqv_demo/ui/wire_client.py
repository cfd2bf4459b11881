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
- the server answers with ForwardMsgs: `new_session` starts a run (and names the session), `delta`s carry
  the elements, `page_info_changed` carries query parameters the script set, and `script_finished` ends the
  run (FINISHED_EARLY_FOR_RERUN when the script called st.rerun(): another run follows);
- a chat message is a `chat_input_value` sent once (like a button's trigger); a file upload is three steps,
  as the browser does them: a BackMsg `file_urls_request` answered by `file_urls_response` (an upload URL
  for this session), an HTTP PUT of the file to that URL (multipart, with the double-submit XSRF token the
  server checks: the same token in the cookie `_streamlit_xsrf` and the header X-Xsrftoken), then a run with
  the uploader's `file_uploader_state_value` naming the file.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import ChatInputValue
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

WIDGET_KINDS = ("button", "text_input", "radio", "chat_input", "file_uploader")
FINISHED = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)
XSRF_COOKIE = "_streamlit_xsrf"


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
    metrics: dict[str, str] = field(default_factory=dict)  # st.metric: label -> shown value
    codes: list[str] = field(default_factory=list)  # st.code blocks (plain text)

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
            kind=kind, id=body.id, label=body.placeholder if kind == "chat_input" else body.label,
            form_id=getattr(body, "form_id", ""), options=tuple(body.options) if kind == "radio" else (),
            is_form_submitter=kind == "button" and body.is_form_submitter,
        ))
    elif kind == "metric":
        page.metrics[body.label] = body.body
    elif kind == "code":
        page.codes.append(body.code_text)
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
        self.session_id = ""  # the server's id of this tab's session (from new_session)

    async def open(self) -> tuple[Page, float]:
        """Connect and run the page, as a browser does when it loads the link (again, after a close: a new
        session on the server, nothing held from the old one)."""
        await self.close()
        self._held = {}
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
            socket, self._socket = self._socket, None
            try:
                await socket.close()
            except (OSError, websockets.WebSocketException):
                pass  # already gone (the server died): nothing to close

    async def click(self, button: Widget) -> tuple[Page, float]:
        return await self.run([WidgetState(id=button.id, trigger_value=True)])

    async def choose(self, radio: Widget, option: str) -> tuple[Page, float]:
        """Pick an option of a radio outside a form (the page runs at once, as in a browser)."""
        return await self.run([WidgetState(id=radio.id, string_value=option)])

    async def submit(self, submit_button: Widget, values: dict[Widget, str]) -> tuple[Page, float]:
        """Fill a form's widgets (radio: an option label; text input: the text) and press its submit button."""
        states = [WidgetState(id=widget.id, string_value=value) for widget, value in values.items()]
        return await self.run([*states, WidgetState(id=submit_button.id, trigger_value=True)])

    async def chat(self, chat_input: Widget, text: str) -> tuple[Page, float]:
        """Type `text` into the chat input and press Enter."""
        return await self.run([WidgetState(id=chat_input.id, chat_input_value=ChatInputValue(data=text))])

    async def upload(self, uploader: Widget, name: str, data: bytes) -> tuple[Page, float]:
        """Choose a file in a file uploader, as a browser does: ask for an upload URL, PUT the file there,
        then run the page with the uploader naming it. The seconds cover all three steps."""
        started = time.perf_counter()
        file_id, upload_path = await self._upload_url(name)
        await asyncio.to_thread(self._put_file, upload_path, name, data)
        state = WidgetState(id=uploader.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), file_id
        info.file_urls.file_id, info.file_urls.upload_url, info.file_urls.delete_url = file_id, upload_path, upload_path
        page, _run_seconds = await self.run([state])
        return page, time.perf_counter() - started

    async def _upload_url(self, name: str) -> tuple[str, str]:
        if self._socket is None:
            raise ProtocolError("the tab is not connected")
        message = BackMsg()
        message.file_urls_request.request_id = request_id = secrets.token_hex(8)
        message.file_urls_request.file_names.append(name)
        message.file_urls_request.session_id = self.session_id
        try:
            await self._socket.send(message.SerializeToString())
            async with asyncio.timeout(self.run_timeout):
                while True:
                    answer = ForwardMsg()
                    answer.ParseFromString(await self._socket.recv())
                    if answer.WhichOneof("type") == "file_urls_response" and \
                            answer.file_urls_response.response_id == request_id:
                        break
        except TimeoutError:
            raise ProtocolError(f"no upload URL within {self.run_timeout:.0f} s") from None
        except websockets.WebSocketException as closed:
            raise ProtocolError(f"disconnected: {closed}") from None
        response = answer.file_urls_response
        if response.error_msg or not response.file_urls:
            raise ProtocolError(f"the server gave no upload URL: {response.error_msg or 'none'}")
        return response.file_urls[0].file_id, response.file_urls[0].upload_url

    def _put_file(self, upload_path: str, name: str, data: bytes) -> None:
        parts = urlsplit(self.ws_url)
        scheme = "https" if parts.scheme == "wss" else "http"
        boundary = secrets.token_hex(16)
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        token = _xsrf_token()
        request = urllib.request.Request(
            f"{scheme}://{parts.netloc}{upload_path}", data=body, method="PUT",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": token,
                     "Cookie": f"{XSRF_COOKIE}={token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.run_timeout) as response:
                response.read()
        except urllib.error.HTTPError as refused:
            raise ProtocolError(f"the upload was refused: HTTP {refused.code} {refused.reason}") from None
        except OSError as failed:
            raise ProtocolError(f"the upload failed: {failed}") from None

    async def run(self, states: list[WidgetState]) -> tuple[Page, float]:
        """Ask for a run with these widget states; return the finished page and the seconds it took."""
        if self._socket is None:
            raise ProtocolError("the tab is not connected")
        for state in states:
            if not _is_trigger(state):
                self._held[state.id] = state
        message = BackMsg()
        client = message.rerun_script
        client.query_string = self.query_string
        client.page_name = self.page_name
        client.widget_states.widgets.extend([*self._held.values(), *(s for s in states if _is_trigger(s))])
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
                self.session_id = message.new_session.initialize.session_id or self.session_id
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


def _is_trigger(state: WidgetState) -> bool:
    """A value the browser sends once (a click, a chat message), not one it keeps sending."""
    return state.trigger_value or state.WhichOneof("value") in ("chat_input_value", "string_trigger_value",
                                                                  "json_trigger_value")


def _xsrf_token() -> str:
    """A version-2 Streamlit XSRF token ("2|mask|masked token|timestamp"): the server only checks that the
    cookie and the header carry the same token."""
    mask, token = secrets.token_bytes(4), secrets.token_bytes(16)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(token))
    return f"2|{mask.hex()}|{masked.hex()}|{int(time.time())}"
