"""Operator hints in Vietnamese and English, taken from the runbook's steps.

One catalogue so a translation is reviewed in one place. Keys are stable; checks refer to
them by name.
"""

from __future__ import annotations

from nfdoctor.results import Hint

HINTS: dict[str, Hint] = {
    "database.unreachable": Hint(
        en="Check database connectivity: is the database server running and reachable from "
        "this host, and are the URL and password right? (runbook 1.2, 7.1)",
        vi="Kiểm tra kết nối cơ sở dữ liệu: máy chủ CSDL có đang chạy và truy cập được từ máy "
        "này không, URL và mật khẩu có đúng không? (runbook 1.2, 7.1)",
    ),
    "database.slow": Hint(
        en="Database answers slowly: check query performance and server load; optimise "
        "indexes (runbook 6.1, 6.2).",
        vi="CSDL phản hồi chậm: kiểm tra hiệu năng truy vấn và tải máy chủ; tối ưu chỉ mục "
        "(runbook 6.1, 6.2).",
    ),
    "database.locked": Hint(
        en="Another process holds a write lock on the database; wait for it or find it "
        "(fuser/lsof on the file) before repairing anything.",
        vi="Một tiến trình khác đang khóa ghi CSDL; hãy chờ hoặc tìm tiến trình đó "
        "(fuser/lsof trên tệp) trước khi sửa chữa.",
    ),
    "database.not_sqlite": Hint(
        en="The configured database file is not a SQLite database: check database.url "
        "points at the CRM's database, not a backup archive or log.",
        vi="Tệp CSDL được cấu hình không phải SQLite: kiểm tra database.url trỏ đến CSDL của "
        "CRM, không phải tệp sao lưu hay nhật ký.",
    ),
    "database.schema": Hint(
        en="The database does not match CRM schema v1: a migration is missing or was rolled "
        "back. Review recent deployments before running repairs (runbook 7.1).",
        vi="CSDL không khớp lược đồ CRM v1: thiếu migration hoặc đã bị rollback. Xem lại các "
        "lần triển khai gần đây trước khi chạy sửa chữa (runbook 7.1).",
    ),
    "database.integrity": Hint(
        en="Check database integrity: restore from the last good backup after verifying it "
        "(runbook 7.1, 7.2).",
        vi="Kiểm tra tính toàn vẹn CSDL: khôi phục từ bản sao lưu tốt gần nhất sau khi đã "
        "xác minh (runbook 7.1, 7.2).",
    ),
    "system.load": Hint(
        en="Monitor server CPU usage: find the busy processes (top), scale up workers or "
        "move load away (runbook 6.1, 6.2).",
        vi="Theo dõi CPU máy chủ: tìm tiến trình chiếm tải (top), tăng worker hoặc chuyển "
        "bớt tải (runbook 6.1, 6.2).",
    ),
    "system.memory": Hint(
        en="Monitor server memory usage: find what grows (ps aux --sort=-rss) and restart "
        "services in the right order (runbook 6.1, 7.1).",
        vi="Theo dõi bộ nhớ máy chủ: tìm tiến trình tăng bộ nhớ (ps aux --sort=-rss) và khởi "
        "động lại dịch vụ đúng thứ tự (runbook 6.1, 7.1).",
    ),
    "system.disk": Hint(
        en="Free disk space where the database and logs live: rotate or compress logs, "
        "move old backups off the host (runbook 7.2).",
        vi="Giải phóng dung lượng đĩa nơi chứa CSDL và nhật ký: xoay vòng hoặc nén nhật ký, "
        "chuyển bản sao lưu cũ khỏi máy (runbook 7.2).",
    ),
    "config.changes": Hint(
        en="Review recent configuration changes: if the trouble started after one of these, "
        "roll it back first (runbook 1.2, 7.1).",
        vi="Xem lại các thay đổi cấu hình gần đây: nếu sự cố bắt đầu sau một thay đổi, hãy "
        "hoàn tác nó trước (runbook 1.2, 7.1).",
    ),
}
