"""A corpus of hostile strings: what an attacker can put into the fields Vigil reads from logs
(user agents, request parameters, error messages, DNS names, S3 keys) and shows to analysts.

Every payload that would run script sets `window.__pwned` (or changes document.title), so a
browser test can tell whether any of them ran. `HOSTILE` is the full corpus (str values; invalid
UTF-8 and NUL bytes are in `HOSTILE_BYTES` because JSON text cannot carry raw bad bytes as
strings); `HOSTILE_SMALL` leaves out the 1 MB string for fuzzers.
"""

from __future__ import annotations

PWN = "window.__pwned=1;document.title='pwned'"

SCRIPT = [
    f"<script>{PWN}</script>",
    f"</title><script>{PWN}</script>",
    f"\"><script>{PWN}</script>",
    f"'><script>{PWN}</script><'",
    f"</textarea><script>{PWN}</script>",
    f"<script src=data:text/javascript,{PWN}></script>",
    f"<ScRiPt>{PWN}</sCrIpT>",
    f"<scr<script>ipt>{PWN}</scr</script>ipt>",
    f"<svg><script>{PWN}</script></svg>",
    f"<!--<script>-->{PWN}",
    f"<iframe srcdoc=\"<script>parent.{PWN}</script>\"></iframe>",
    f"<object data=\"javascript:{PWN}\"></object>",
    f"<embed src=\"javascript:{PWN}\">",
    f"<math><mtext><table><mglyph><style><img src=x onerror={PWN}>",
]
EVENT_HANDLERS = [
    f"<img src=x onerror=\"{PWN}\">",
    f"<svg onload=\"{PWN}\">",
    f"<body onload=\"{PWN}\">",
    f"<details open ontoggle=\"{PWN}\">",
    f"<input autofocus onfocus=\"{PWN}\">",
    f"<div onmouseover=\"{PWN}\">hover</div>",
    f"\" onmouseover=\"{PWN}\" x=\"",
    f"' onfocus='{PWN}' autofocus='",
    f"<video><source onerror=\"{PWN}\"></video>",
    f"<a href=# onclick=\"{PWN}\">click</a>",
    f"<marquee onstart=\"{PWN}\">",
    f"<style onload=\"{PWN}\"></style>",
]
URLS = [
    f"javascript:{PWN}",
    f"JaVaScRiPt:{PWN}",
    f"java\tscript:{PWN}",
    f"&#106;avascript:{PWN}",
    f"<a href=\"javascript:{PWN}\">x</a>",
    f"data:text/html,<script>{PWN}</script>",
    "vbscript:msgbox(1)",
    f"<meta http-equiv=\"refresh\" content=\"0;url=javascript:{PWN}\">",
    f"<form action=\"javascript:{PWN}\"><button>go</button></form>",
    f"<base href=\"javascript:{PWN}//\">",
]
TEMPLATES = [
    "{{ settings.SECRET_KEY }}",
    "{{ request.user.password }}",
    "{% debug %}",
    "{% load static %}{% static 'x' %}",
    "{% include '/etc/passwd' %}",
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{constructor.constructor('" + PWN + "')()}}",
    "{% csrf_token %}",
    "[[${7*7}]]",
]
SQL = [
    "' OR '1'='1",
    "'; DROP TABLE findings_finding; --",
    "\" OR 1=1 --",
    "1; SELECT pg_sleep(5)--",
    "' UNION SELECT password FROM auth_user --",
    "admin'--",
    "%' AND 1=1 AND '%'='",
    "\\'; DELETE FROM accounts_account; --",
    "1' AND (SELECT 1 FROM pg_user)='1",
    "$$; COPY (SELECT '') TO PROGRAM 'id'; $$",
]
UNICODE = [
    "\u202eexe.txt",                     # right-to-left override
    "admin\u202d\u202cuser",
    "\u2066isolate\u2069",
    "zero\u200bwidth\u200c\u200djoin\ufeff",
    "e\u0301\u0301\u0301\u0301\u0301\u0301\u0301",  # stacked combining marks
    "\U0001f4a9\U0001f525 emoji",
    "\ud7ff\ue000\uffff",
    "line\u2028separator\u2029paragraph",
    "\uff53\uff43\uff52\uff49\uff50\uff54 fullwidth",
    "<\u0000script>" + PWN,
    "tab\tcr\rlf\nend",
    "\x1b[31mANSI escape\x1b[0m",
]
MISC = [
    "",
    " ",
    "../../../../etc/passwd",
    "%00%3Cscript%3E" + PWN,
    "&lt;script&gt;" + PWN + "&lt;/script&gt;",
    "\\u003cscript\\u003e" + PWN,
    "<![CDATA[<script>" + PWN + "</script>]]>",
    "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
    "A" * 5000,
]
LARGE = ["<script>" + PWN + "</script>" + "X" * (1024 * 1024)]

HOSTILE_SMALL: list[str] = SCRIPT + EVENT_HANDLERS + URLS + TEMPLATES + SQL + UNICODE + MISC
HOSTILE: list[str] = HOSTILE_SMALL + LARGE

# Bytes that are not valid UTF-8, or carry NUL: only raw log bytes can hold them.
HOSTILE_BYTES: list[bytes] = [
    b"\xff\xfe<script>" + PWN.encode() + b"</script>",
    b"bad \xc3\x28 utf8 \xa0\xa1",
    b"overlong \xc0\xbcscript\xc0\xbe",
    b"surrogate \xed\xa0\x80 half",
    b"nul\x00byte<script>" + PWN.encode() + b"</script>",
    b"\x00\x00\x00",
]
