"""The plain and table renderers, character for character, on one fixed report.

The report has a result of every status, Vietnamese text, a subject with quotes, a control
character and Rich markup in a summary, hints, next commands and details. The expected text
lives in the test (inline-snapshot): a change to what an operator reads shows up here as a
diff, and is accepted on purpose (``pytest --inline-snapshot=fix``), never by accident.
"""

from __future__ import annotations

from inline_snapshot import snapshot

from nfdoctor.render import plain, table
from tests.test_render import make_report, varied_results


def test_plain_in_english() -> None:
    text = plain.render(make_report(*varied_results()), lang="en")
    assert text == snapshot("""\
Status    Check                                             Summary
--------  ------------------------------------------------  ----------------------------------------------------
OK        database.connect                                  kết nối trong 12 ms, mục tiêu < 1 s
WARNING   platform.shopee.auth · Shop Hà Nội 'A'            token hết hạn sau 3 ngày, warn < 7 d
CRITICAL  webhook.tls · https://crm.example.vn/hook?x="1"\\  certificate expired 3 d ago [bold]x[/bold] | [31mred
UNKNOWN   ai.latency                                        hết thời gian chờ sau 5 s không đo được
SKIPPED   messaging.zalo                                    Zalo OA chưa cấu hình
OK        system.disk · /var/lib/nfdoctor                   system.disk is ok

WARNING platform.shopee.auth · Shop Hà Nội 'A'
  Refresh the Shopee token.
  → nfdoctor token refresh shopee
    hết hạn lúc 2026-11-04 08:00 (giờ Hà Nội)

CRITICAL webhook.tls · https://crm.example.vn/hook?x="1"\\
  Renew the certificate.
  → nfdoctor webhook check shopee
    issuer: R3
    not after: 2026-10-29

1 critical, 1 unknown, 1 warning, 2 ok, 1 skipped in 0.42 s
""")


def test_plain_in_vietnamese() -> None:
    text = plain.render(make_report(*varied_results()), lang="vi")
    assert text == snapshot("""\
Status    Check                                             Summary
--------  ------------------------------------------------  ----------------------------------------------------
OK        database.connect                                  kết nối trong 12 ms, mục tiêu < 1 s
WARNING   platform.shopee.auth · Shop Hà Nội 'A'            token hết hạn sau 3 ngày, warn < 7 d
CRITICAL  webhook.tls · https://crm.example.vn/hook?x="1"\\  certificate expired 3 d ago [bold]x[/bold] | [31mred
UNKNOWN   ai.latency                                        hết thời gian chờ sau 5 s không đo được
SKIPPED   messaging.zalo                                    Zalo OA chưa cấu hình
OK        system.disk · /var/lib/nfdoctor                   system.disk is ok

WARNING platform.shopee.auth · Shop Hà Nội 'A'
  Làm mới token Shopee.
  → nfdoctor token refresh shopee
    hết hạn lúc 2026-11-04 08:00 (giờ Hà Nội)

CRITICAL webhook.tls · https://crm.example.vn/hook?x="1"\\
  Gia hạn chứng chỉ.
  → nfdoctor webhook check shopee
    issuer: R3
    not after: 2026-10-29

1 nghiêm trọng, 1 không rõ, 1 cảnh báo, 2 ổn, 1 bỏ qua trong 0,42 s
""")


def test_table_without_colour_at_100_columns() -> None:
    text = table.render(make_report(*varied_results()), lang="en", width=100, color=False)
    assert text == snapshot("""\
Status   ┃ Check                                      ┃ Summary                                     \n\
━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
OK       │ database.connect                           │ kết nối trong 12 ms, mục tiêu < 1 s         \n\
WARNING  │ platform.shopee.auth · Shop Hà Nội 'A'     │ token hết hạn sau 3 ngày, warn < 7 d        \n\
CRITICAL │ webhook.tls ·                              │ certificate expired 3 d ago [bold]x[/bold] |
         │ https://crm.example.vn/hook?x="1"\\         │ [31mred                                     \n\
UNKNOWN  │ ai.latency                                 │ hết thời gian chờ sau 5 s không đo được     \n\
SKIPPED  │ messaging.zalo                             │ Zalo OA chưa cấu hình                       \n\
OK       │ system.disk · /var/lib/nfdoctor            │ system.disk is ok                           \n\

WARNING platform.shopee.auth · Shop Hà Nội 'A'
  Refresh the Shopee token.
  → nfdoctor token refresh shopee
    hết hạn lúc 2026-11-04 08:00 (giờ Hà Nội)

CRITICAL webhook.tls · https://crm.example.vn/hook?x="1"\\
  Renew the certificate.
  → nfdoctor webhook check shopee
    issuer: R3
    not after: 2026-10-29

1 critical, 1 unknown, 1 warning, 2 ok, 1 skipped in 0.42 s
""")
